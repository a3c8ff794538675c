"""Filing recording segments: a segment filed twice is a conflict the recorder is told about, never a 500."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.errors import Conflict
from tests.conftest import Api, walk_to_scheduled
from tests.recording.agekeys import generate


async def test_records_same_segment_filed_twice_is_segment_exists(api: Api, tmp_path: Path) -> None:
    journey = await walk_to_scheduled(api)
    recipient = generate(tmp_path / "officer").recipient
    segment = b"age-encryption.org/v1\n" + os.urandom(64)
    where = {"actor": "recorder:test", "recipients": [recipient], "case_id": journey.case_id,
             "session_id": journey.session_id, "participant_id": journey.mediator_id, "part": 0, "index": 0}
    first = await api.services.records.file_ciphertext(segment, **where)
    with pytest.raises(Conflict) as caught:
        await api.services.records.file_ciphertext(b"age-encryption.org/v1\n" + os.urandom(64), **where)
    assert caught.value.status == 409 and caught.value.code == "segment_exists" and caught.value.field == "index"
    assert (await api.services.records.segment_counts(journey.case_id, journey.session_id)) == {
        journey.mediator_id: [1]} and first.size == len(segment)


@pytest.mark.parametrize(("participant_id", "valid"), [
    ("pty_" + "a" * 32, True), ("usr_" + "b" * 32, True), ("pty_" + "a" * 32 + "-screen", True),
    ("pty_" + "a" * 32 + "-camera", False), ("pty_" + "a" * 32 + "-screen-screen", False), ("rcd_" + "c" * 32, False),
    ("pty_" + "a" * 32 + "/../x", False),
])
def test_records_a_segment_names_a_participant_or_the_screen_it_shared(participant_id: str, valid: bool) -> None:
    from pydantic import ValidationError

    from server.schemas import SegmentQuery
    if valid:
        assert SegmentQuery.model_validate({"participant_id": participant_id, "index": "0"}).participant_id == participant_id
    else:
        with pytest.raises(ValidationError):
            SegmentQuery.model_validate({"participant_id": participant_id, "index": "0"})
