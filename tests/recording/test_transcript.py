"""Transcripts and chat render as plain text that shows everything and cannot drive a terminal."""

from __future__ import annotations

import pytest

from recording.transcript import clean_text, declared_parts, read_transcript, render_chat, render_transcript


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


@pytest.mark.parametrize("doc", [[], {"format": "other"}, _doc(events={"a": 1}), _doc(recordings={"p": {}}),
                                 _doc(recordings={"p": {"parts": [-1]}}), {"events": [], "messages": [1]}])
def test_transcript_not_a_transcript_refused(doc: object) -> None:
    with pytest.raises(ValueError):
        render_transcript(doc)


def test_transcript_declared_parts_read() -> None:
    assert declared_parts(_doc(recordings={"pty_1": {"parts": [3, 1]}})) == {"pty_1": [3, 1]}
    assert declared_parts(_doc(recordings={})) == {}
    assert declared_parts(_doc()) is None


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


def test_transcript_room_log_form_translated_and_rendered() -> None:
    room_log = {
        "case_id": "cas_1", "session_id": "ses_1", "ended_at": "2026-03-01T10:30:00+00:00",
        "events": [
            {"seq": 7, "at": "2026-03-01T10:00:00+00:00", "actor": "mediator:usr_m", "action": "participant_joined",
             "detail": {"role": "mediator", "session_id": "ses_1"}},
            {"seq": 9, "at": "2026-03-01T10:00:05+00:00", "actor": "mediator:usr_m", "action": "participant_admitted",
             "detail": {"participant_id": "pty_b", "role": "borrower", "session_id": "ses_1"}},
            {"seq": 11, "at": "2026-03-01T10:02:00+00:00", "actor": "mediator:usr_m", "action": "caucus_opened",
             "detail": {"participant_id": "pty_b", "session_id": "ses_1"}},
            {"seq": 12, "at": "2026-03-01T10:03:00+00:00", "actor": "borrower:pty_b", "action": "consent_given",
             "detail": {"notice_sha256": "cd" * 32, "session_id": "ses_1"}},
            {"seq": 13, "at": "2026-03-01T10:04:00+00:00", "actor": "borrower:pty_b",
             "action": "participant_disconnected", "detail": {"session_id": "ses_1"}},
            {"seq": 14, "at": "2026-03-01T10:05:00+00:00", "actor": "system", "action": "audit_novelty",
             "detail": {"x": 1}},
        ],
        "messages": [
            {"seq": 1, "sent_at": "2026-03-01T10:01:00+00:00", "participant_id": "pty_b", "name": "Li Wei",
             "role": "borrower", "text": "hello", "channel": "main",
             "deleted": {"by": "usr_m", "at": "2026-03-01T10:01:30+00:00"}},
        ],
    }
    doc = read_transcript(room_log)
    assert declared_parts(doc) is None
    lines = render_transcript(room_log).splitlines()
    assert lines[lines.index("--- 2026-03-01 (UTC) ---") + 1:] == [
        "[10:00:00] usr_m (mediator) joined",
        "[10:00:05] usr_m (mediator) admitted Li Wei (borrower)",
        "[10:01:00] #1 Li Wei (borrower): hello",
        "[10:01:30] usr_m (mediator) deleted message #1 by Li Wei (borrower) (hidden from the parties; its text "
        "stays in this record)",
        "[10:02:00] usr_m (mediator) opened a private caucus with usr_m (mediator), Li Wei (borrower)",
        "[10:03:00] Li Wei (borrower) consented to recording (notice SHA-256 " + "cd" * 32 + ")",
        "[10:04:00] Li Wei (borrower) left: disconnected",
        "[10:05:00] event 'audit_novelty': x=1",
    ]
