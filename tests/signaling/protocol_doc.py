"""docs/protocol.md read as data: its sections and the rows of their tables."""

from __future__ import annotations

import re
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def rows(part: str) -> list[list[str]]:
    """The cells of each table row naming an event or code (its first cell in backticks)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in part.splitlines() if line.startswith("| `")]


def name(cell: str) -> str:
    return re.match(r"`(\w+)`", cell).group(1)


def fields(cell: str) -> dict[str, bool]:
    """The first ``{a, b?: type}`` of a payload cell: field -> optional."""
    shape = re.search(r"`\{([^`]*)\}`", cell)
    found = {}
    for item in (shape.group(1).split(",") if shape else []):
        field = item.split(":")[0].strip()
        if field:
            found[field.rstrip("?")] = field.endswith("?")
    return found
