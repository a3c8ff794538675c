"""Transcripts and chat render as plain text that shows everything and cannot drive a terminal."""

from __future__ import annotations

import pytest

from recording.records.transcript import (
    RoomEntry,
    build_transcript,
    clean_text,
    declared_parts,
    read_transcript,
    render_chat,
    render_transcript,
)


def _doc(**overrides: object) -> dict:
    doc = {
        "format": "mediation-transcript/v1", "case_id": "cas_1", "session_id": "ses_1",
        "started_at": "2026-03-01T23:59:58+00:00", "ended_at": None,
        "participants": [{"participant_id": "pty_1", "name": "Li Wei", "role": "borrower"}],
        "events": [
            {"at": "2026-03-01T23:59:59+00:00", "type": "participant_joined", "participant_id": "pty_1"},
            {"at": "2026-03-02T00:00:01+00:00", "type": "hand_raised", "participant_id": "pty_1", "note": "x\ny"},
            {"at": "yesterday", "type": "participant_left", "participant_id": "pty_unknown"},
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


def _entry(at: str, actor: str, action: str, **detail: object) -> RoomEntry:
    return RoomEntry(at=f"2026-03-01T{at}+00:00", actor=actor, action=action, detail={**detail, "session_id": "ses_1"})


def test_transcript_built_from_room_entries_names_events_as_notices_and_renders() -> None:
    entries = [
        _entry("10:00:00", "mediator:usr_m", "participant_joined", role="mediator"),
        _entry("10:00:05", "mediator:usr_m", "participant_admitted", participant_id="pty_b", role="borrower"),
        _entry("10:01:30", "mediator:usr_m", "message_deleted", seq=1, author="pty_b"),
        _entry("10:02:00", "mediator:usr_m", "caucus_opened", participant_id="pty_b"),
        _entry("10:02:30", "mediator:usr_m", "media_mute_requested", participant_id="pty_b", audio=True, video=False),
        _entry("10:03:00", "borrower:pty_b", "consent_given", notice_sha256="cd" * 32),
        _entry("10:04:00", "borrower:pty_b", "participant_disconnected"),
        _entry("10:04:30", "borrower:pty_b", "participant_rejoined", role="borrower"),
        RoomEntry(at="2026-03-01T10:05:00+00:00", actor="system", action="audit_novelty", detail={"x": 1}),
    ]
    messages = [{"seq": 1, "sent_at": "2026-03-01T10:01:00+00:00", "participant_id": "pty_b", "name": "Li Wei",
                 "role": "borrower", "text": "hello", "channel": "main"}]
    doc = build_transcript(case_id="cas_1", session_id="ses_1", ended_at="2026-03-01T10:30:00+00:00",
                           entries=entries, messages=messages, names={"usr_m": ("Mo", "mediator")},
                           recordings={"pty_b": [3, 1]})
    assert read_transcript(doc) == doc and declared_parts(doc) == {"pty_b": [3, 1]}
    assert [e["type"] for e in doc["events"]] == [
        "participant_joined", "admitted", "chat_message", "message_deleted", "caucus_started", "mute_media_requested",
        "consent_given", "participant_left", "participant_joined", "audit_novelty"]
    assert doc["started_at"] == "2026-03-01T10:00:00+00:00" and doc["ended_at"] == "2026-03-01T10:30:00+00:00"
    assert {p["participant_id"]: (p["name"], p["role"]) for p in doc["participants"]} == {
        "usr_m": ("Mo", "mediator"), "pty_b": ("Li Wei", "borrower")}
    lines = render_transcript(doc).splitlines()
    assert lines[lines.index("--- 2026-03-01 (UTC) ---") + 1:] == [
        "[10:00:00] Mo (mediator) joined",
        "[10:00:05] Mo (mediator) admitted Li Wei (borrower)",
        "[10:01:00] #1 Li Wei (borrower): hello",
        "[10:01:30] Mo (mediator) deleted message #1 by Li Wei (borrower) (hidden from the parties; its text "
        "stays in this record)",
        "[10:02:00] Mo (mediator) opened a private caucus with Mo (mediator), Li Wei (borrower)",
        "[10:02:30] Mo (mediator) asked Li Wei (borrower) to turn off audio",
        "[10:03:00] Li Wei (borrower) consented to recording (notice SHA-256 " + "cd" * 32 + ")",
        "[10:04:00] Li Wei (borrower) left: disconnected",
        "[10:04:30] Li Wei (borrower) joined (again)",
        "[10:05:00] event 'audit_novelty': x=1",
    ]


def test_transcript_legacy_room_log_form_refused() -> None:
    room_log = {"case_id": "cas_1", "session_id": "ses_1", "events": [], "messages": []}
    with pytest.raises(ValueError, match="transcript format is None"):
        read_transcript(room_log)


def test_transcript_lists_a_shared_screen_as_a_source_named_after_its_sharer() -> None:
    entries = [RoomEntry(at="2026-03-01T10:00:00+00:00", actor="borrower:pty_b", action="participant_joined",
                         detail={"session_id": "ses_1", "role": "borrower"}),
               RoomEntry(at="2026-03-01T10:01:00+00:00", actor="borrower:pty_b", action="screen_share_started",
                         detail={"session_id": "ses_1", "participant_id": "pty_b"})]
    doc = build_transcript(case_id="cas_1", session_id="ses_1", ended_at="2026-03-01T10:30:00+00:00",
                           entries=entries, messages=[], names={"pty_b": ("Bo", "borrower")},
                           recordings={"pty_b": [4], "pty_b-screen": [2]})
    assert declared_parts(doc) == {"pty_b": [4], "pty_b-screen": [2]}
    people = {p["participant_id"]: p for p in doc["participants"]}
    assert people["pty_b-screen"] == {"participant_id": "pty_b-screen", "name": "Bo (screen)", "role": "borrower",
                                      "screen_of": "pty_b"}
    assert people["pty_b"]["name"] == "Bo"
    assert [e["type"] for e in doc["events"]] == ["participant_joined", "screen_share_started"]
