"""docs/threat-model.md's actor × capability table: every "cannot" names a test, and every test it names exists.

Test names are collected by parsing the test files (``ast``), not by importing or running them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "threat-model.md"
SECTION = "## Actors and capabilities"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
ACTORS = ("anonymous", "borrower (receipt)", "party (join link", "mediator", "bank representative", "case officer",
          "compliance officer", "administrator", "node operator", "database writer")
CAPABILITIES = ("cases", "party contacts", "live chat and video", "sealed records", "audit log",
                "sign, consent, confirm", "join rooms", "manage staff", "approve compliance keys")


def _table(text: str) -> list[list[str]]:
    """The rows (header first) of the first table under SECTION, each as its cells."""
    section = text[text.index(SECTION) + len(SECTION):]
    section = section[:section.index("\n## ")] if "\n## " in section else section
    rows = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]
    return [row for row in cells if not all(set(cell) <= {"-"} for cell in row)]


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")}


def test_threat_model_table_has_every_actor_and_capability() -> None:
    header, *rows = _table(DOC.read_text(encoding="utf-8"))
    assert header[0] == "actor" and len(header) == 1 + len(CAPABILITIES)
    for column, capability in zip(header[1:], CAPABILITIES):
        assert column.startswith(capability), (column, capability)
    assert len(rows) == len(ACTORS)
    for row, actor in zip(rows, ACTORS):
        assert row[0].startswith(actor), (row[0], actor)
        assert len(row) == len(header), f"{row[0]}: {len(row)} cells, expected {len(header)}"


def _problems(text: str) -> list[str]:
    """Each cell that says "cannot" without naming a test, and each named test that does not exist."""
    header, *rows = _table(text)
    problems = []
    known: dict[str, set[str]] = {}
    for row in rows:
        for capability, cell in zip(header[1:], row[1:]):
            references = REFERENCE.findall(cell)
            if "cannot" in cell and not references:
                problems.append(f"{row[0]} × {capability}: 'cannot' without a test")
            for file, name in references:
                path = ROOT / file
                if not path.is_file():
                    problems.append(f"{row[0]} × {capability}: no file {file}")
                elif name not in known.setdefault(file, _tests_in(path)):
                    problems.append(f"{row[0]} × {capability}: no test {file}::{name}")
    return problems


def test_threat_model_every_cannot_names_a_test_that_exists() -> None:
    problems = _problems(DOC.read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def test_threat_model_check_finds_a_bare_cannot_a_missing_test_and_a_missing_file() -> None:
    """The check itself fails on what it is there to catch (a check that cannot fail is a defect)."""
    doc = (f"{SECTION}\n\n| actor | cases |\n|---|---|\n| anonymous | cannot |\n"
           "| mediator | cannot (`tests/test_threat_model_doc.py::test_no_such_test`) |\n"
           "| administrator | cannot (`tests/no_such_file.py::test_x`), nor "
           "(`tests/test_threat_model_doc.py::test_threat_model_every_cannot_names_a_test_that_exists`) |\n")
    assert _problems(doc) == ["anonymous × cases: 'cannot' without a test",
                              "mediator × cases: no test tests/test_threat_model_doc.py::test_no_such_test",
                              "administrator × cases: no file tests/no_such_file.py"]
