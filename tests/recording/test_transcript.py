"""Transcripts and chat render as plain text that shows everything and cannot drive a terminal."""

from __future__ import annotations

import pytest

from recording.transcript import clean_text, declared_segments, render_chat, render_transcript


def _doc(**overrides: object) -> dict:
    doc = {
        "format": "mediation-transcript/v1", "case_id": "cas_1", "session_id": "ses_1",
        "started_at": "2026-03-01T23:59:58+00:00", "ended_at": None,
        "participants": [{"participant_id": "pty_1", "name": "Li Wei", "role": "borrower"}],
        "events": [
            {"at": "2026-03-01T23:59:59+00:00", "type": "joined", "participant_id": "pty_1"},
            {"at": "2026-03-02T00:00:01+00:00", "type": "hand_raised", "participant_id": "pty_1", "note": "x\ny"},
            {"at": "yesterday", "type": "left", "participant_id": "pty_unknown"},
        ],
    }
    doc.update(overrides)
    return doc


def test_transcript_unknown_event_shown_generically_never_dropped() -> None:
    text = render_transcript(_doc())
    assert "event 'hand_raised': note=x\\ny, participant_id=pty_1" in text


def test_transcript_day_change_and_unreadable_time_marked() -> None:
    lines = render_transcript(_doc()).splitlines()
    assert "--- 2026-03-01 (UTC) ---" in lines and "--- 2026-03-02 (UTC) ---" in lines
    assert "[unreadable time 'yesterday'] participant pty_unknown left" in lines
    assert "Ended: not recorded" in lines


@pytest.mark.parametrize("doc", [[], {"format": "other"}, _doc(events={"a": 1}), _doc(recordings={"p": {}})])
def test_transcript_not_a_transcript_refused(doc: object) -> None:
    with pytest.raises(ValueError):
        render_transcript(doc)


def test_transcript_declared_segments_read() -> None:
    assert declared_segments(_doc(recordings={"pty_1": {"segments": 3}})) == {"pty_1": 3}
    assert declared_segments(_doc()) == {}


def test_transcript_control_and_bidi_characters_escaped() -> None:
    assert clean_text("a\x1b[31mb\u202ec\td") == "a\\u001b[31mb\\u202ec\\td"
    assert clean_text("one\ntwo") == "one\\ntwo" and clean_text("one\ntwo", newlines=True) == "one\ntwo"


def test_transcript_chat_missing_messages_listed_in_order() -> None:
    text = render_chat(
        [{"seq": 3, "sent_at": "2026-03-01T10:00:03+00:00", "name": "Li", "role": "borrower", "text": "c"},
         {"seq": 1, "sent_at": "2026-03-01T10:00:01+00:00", "name": "Li", "role": "borrower", "text": "a"}],
        {2: "not in the bundle"})
    lines = [line for line in text.splitlines() if not line.startswith("---")]
    assert lines == ["[10:00:01] #1 Li (borrower): a", "[--:--:--] #2 MISSING: not in the bundle",
                     "[10:00:03] #3 Li (borrower): c"]
