"""Dependency direction: server may import signaling and recording; signaling may import recording only.

Inside recording/, the record format (records/) imports neither the recorder nor the officer's tool,
and those two do not import each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"signaling": {"server"}, "recording": {"server", "signaling"}}
FORBIDDEN_INSIDE_RECORDING = {
    "records": {"recording.recorder", "recording.compliance"},
    "recorder": {"recording.compliance"},
    "compliance": {"recording.recorder"},
}

# Runs in a fresh interpreter: CPython 3.11's ast.parse can fail with "AST constructor recursion
# depth mismatch" once any earlier test in the process hit a RecursionError (the hostile-nesting
# tests do, on purpose).
_SCRIPT = """
import ast, json, sys
names = {}
for path in sys.argv[1:]:
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), filename=path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    names[path] = sorted(found)
print(json.dumps(names))
"""


def _imports(paths: list[Path], *, top_level: bool = True) -> dict[str, set[str]]:
    """Module -> the modules it imports (with `from a import b`, both a and a.b), or their top-level packages."""
    result = subprocess.run([sys.executable, "-c", _SCRIPT, *map(str, paths)], capture_output=True, text=True,
                            check=True, timeout=120)
    return {path: {name.split(".")[0] if top_level else name for name in names}
            for path, names in json.loads(result.stdout).items()}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering_lower_packages_never_import_higher_ones(package: str) -> None:
    paths = sorted((ROOT / package).rglob("*.py"))
    assert paths, f"no modules found in {package}/"
    offenders = {str(Path(path).relative_to(ROOT)): sorted(names & FORBIDDEN[package])
                 for path, names in _imports(paths).items() if names & FORBIDDEN[package]}
    assert offenders == {}


def test_layering_no_utils_modules() -> None:
    assert not [p for p in ROOT.glob("*/utils.py")] and not [p for p in ROOT.glob("*/helpers.py")]


@pytest.mark.parametrize("package", sorted(FORBIDDEN_INSIDE_RECORDING))
def test_layering_recording_subpackages_keep_apart(package: str) -> None:
    paths = sorted((ROOT / "recording" / package).rglob("*.py"))
    assert paths, f"no modules found in recording/{package}/"
    offenders = {
        str(Path(path).relative_to(ROOT)): sorted(name for name in names
                                                 if any(name == f or name.startswith(f + ".")
                                                        for f in FORBIDDEN_INSIDE_RECORDING[package]))
        for path, names in _imports(paths, top_level=False).items()
    }
    assert {path: found for path, found in offenders.items() if found} == {}
