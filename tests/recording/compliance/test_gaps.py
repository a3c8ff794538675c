"""The tool reports each gap a verified transcript names, as the shared table (tests/fixtures/gaps.json) says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recording.compliance.open import Report, report_gaps

TABLE = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "gaps.json").read_text())
SESSION = "ses_0000beef"


def _transcript(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": "mediation-transcript/v1", "case_id": "cas_00c0ffee", "session_id": SESSION,
            "participants": [], "recordings": {}, "events": events}


@pytest.mark.parametrize("case", TABLE["cases"], ids=[case["name"] for case in TABLE["cases"]])
def test_gaps_each_named_gap_is_a_recording_gap_with_its_range_and_reason(case: dict[str, Any]) -> None:
    report = Report()
    report_gaps({SESSION: _transcript(case["events"])}, report)
    assert [(list(group), problem.code) for group, problem in report.problems] == \
        [(expected["group"], "recording_gap") for expected in case["problems"]]
    for (group, problem), expected in zip(report.problems, case["problems"]):
        assert f"misses {expected['range']} UTC" in problem.message, problem.message
        assert f": {expected['reason']}: " in problem.message, problem.message
    assert report.complete == (not case["problems"])
    for expected in case["problems"]:  # the file the gap is in is written INCOMPLETE
        group = expected["group"]
        assert report.spoiled(tuple(group) if group[0] == "recording" else ("recording", SESSION, "usr_other", "0000"))
