"""The problem codes a verifier may report are exactly those docs/records.md lists, of the kind it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recording.records.problems import PROBLEM_CODES, WARNING_CODES, Problem

SPEC = (Path(__file__).resolve().parents[3] / "docs" / "records.md").read_text()


def test_problems_codes_match_the_spec_table() -> None:
    listed = {(code, kind) for code, kind in re.findall(r"^\| `([a-z0-9_]+)` \| (problem|warning) \|", SPEC, re.M)}
    assert listed == {(code, "problem") for code in PROBLEM_CODES} | {(code, "warning") for code in WARNING_CODES}


def test_problems_unknown_code_refused() -> None:
    with pytest.raises(ValueError, match="'sha_mismatch' is not in docs/records.md"):
        Problem("sha_mismatch", "a typo for sha256_mismatch")
