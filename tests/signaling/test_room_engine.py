"""What docs/protocol.md decides beyond who may send what, through the room engine without sockets."""

from __future__ import annotations

import pytest

from signaling.errors import RoomError
from signaling.identity import Refused
from signaling.roomsettings import RoomSettings
from tests.signaling.inprocess import Rooms

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
ICE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


async def _trio(rooms: Rooms) -> tuple[list[str], list[str]]:
    """(participant ids, sids) of a mediator, an admitted bank representative and an admitted borrower."""
    people = [rooms.record.add(role) for role in ("mediator", "bank_representative", "borrower")]
    sids = [await rooms.join(who) for who in people]
    for who in people[1:]:
        await rooms.send(sids[0], "admit", {"participant_id": who.participant_id})
    return [who.participant_id for who in people], sids


async def _refusal(rooms: Rooms, sid: str, event: str, payload: dict) -> str:
    with pytest.raises(RoomError) as refused:
        await rooms.send(sid, event, payload)
    return refused.value.code


@pytest.mark.parametrize("limit", [90, 130])
async def test_engine_connects_per_minute_is_the_setting(limit: int) -> None:
    rooms = Rooms(RoomSettings(connects_per_minute=limit))
    try:
        who = rooms.record.add("borrower")
        for _ in range(limit):
            await rooms.connect(who, address="192.0.2.7")
        with pytest.raises(Refused) as refused:
            await rooms.connect(who, address="192.0.2.7")
        assert refused.value.code == "rate_limited"
        await rooms.connect(who, address="192.0.2.8")  # another address has its own budget
    finally:
        await rooms.close()


async def test_engine_typing_spends_the_chat_budget() -> None:
    rooms = Rooms(RoomSettings(chat_rate=0.01, chat_burst=4))
    try:
        _, (_, _, borrower) = await _trio(rooms)
        for _ in range(4):
            await rooms.send(borrower, "typing", {"active": True})
        assert await _refusal(rooms, borrower, "send_chat", {"text": "now?"}) == "rate_limited"
        await rooms.send(borrower, "chat_history", {})  # the signal budget is another
    finally:
        await rooms.close()


async def test_engine_signal_limit_counts_utf8_bytes_as_sent() -> None:
    rooms = Rooms()
    try:
        (mediator_id, _, _), (_, _, borrower) = await _trio(rooms)
        sdp = "é" * 30_000  # 60,000 bytes of UTF-8; 180,000 as ASCII-escaped JSON
        await rooms.send(borrower, "signal", {"to": mediator_id, "kind": "offer", "payload": {"type": "offer",
                                                                                            "sdp": sdp}})
        over = {"type": "offer", "sdp": "é" * 32_768}  # 65,536 bytes of text alone
        assert await _refusal(rooms, borrower, "signal", {"to": mediator_id, "kind": "offer",
                                                          "payload": over}) == "invalid_payload"
    finally:
        await rooms.close()


@pytest.mark.parametrize(("payload", "accepted"), [
    (ICE, True), ({**ICE, "usernameFragment": "abcd"}, True), ({**ICE, "sdpMLineIndex": None}, True),
    ({**ICE, "sdpMid": None}, True), ({"candidate": None}, True), ({"candidate": ICE["candidate"]}, False),
    ({"candidate": ICE["candidate"], "sdpMid": "0"}, False), ({**ICE, "sdpMid": None, "sdpMLineIndex": None}, False),
])
async def test_engine_ice_candidate_names_its_media_line(payload: dict, accepted: bool) -> None:
    rooms = Rooms()
    try:
        (mediator_id, _, _), (mediator, _, borrower) = await _trio(rooms)
        request = {"to": mediator_id, "kind": "ice_candidate", "payload": payload}
        if accepted:
            await rooms.send(borrower, "signal", request)
            assert rooms.wire.to(mediator, "signal")[-1]["payload"] == payload
        else:
            assert await _refusal(rooms, borrower, "signal", request) == "invalid_payload"
    finally:
        await rooms.close()


@pytest.mark.parametrize(("text", "kept"), [
    ("a\tb", "a\tb"), ("line one\r\nline two", "line one\nline two"), ("  trimmed \n", "trimmed"),
    ("e\u0301", "\u00e9"), ("lone\rcr", None), ("nul\x00", None), ("esc\x1b[31m", None), ("del\x7f", None),
    ("line\u2028sep", None), ("\u202eevil", None), ("\ue000private", None),
])
async def test_engine_chat_text_keeps_tab_and_newline_and_refuses_other_controls(text: str, kept: str | None) -> None:
    rooms = Rooms()
    try:
        _, (mediator, _, borrower) = await _trio(rooms)
        if kept is None:
            assert await _refusal(rooms, borrower, "send_chat", {"text": text}) == "invalid_payload"
        else:
            await rooms.send(borrower, "send_chat", {"text": text})
            assert rooms.wire.to(mediator, "chat_message")[-1]["text"] == kept
    finally:
        await rooms.close()


async def test_engine_caucus_changes_inside_send_the_party_left_out_nothing() -> None:
    rooms = Rooms()
    try:
        (_, bank_id, borrower_id), (mediator, bank, borrower) = await _trio(rooms)
        await rooms.send(mediator, "open_caucus", {"participant_id": borrower_id})
        mark = len(rooms.wire.sent)
        await rooms.send(borrower, "media_state", {"audio": True, "video": True})
        await rooms.send(borrower, "typing", {"active": True})
        await rooms.send(mediator, "media_state", {"audio": True, "video": False})
        assert rooms.wire.to(bank, after=mark) == []
        assert rooms.wire.to(mediator, "room_state", after=mark)  # those inside see it
        # A change the party left out can see still reaches it, with the caucus as frozen as before.
        await rooms.send(bank, "media_state", {"audio": True, "video": True})
        state = rooms.wire.to(bank, "room_state", after=mark)[-1]
        assert "members" not in state["caucus"] and not any(p["in_caucus"] for p in state["participants"])
        inside = [p for p in state["participants"] if p["participant_id"] != bank_id]
        assert all(p["connected"] and not p["audio"] and not p["video"] for p in inside)
    finally:
        await rooms.close()


async def test_engine_caucus_ends_when_a_members_socket_drops() -> None:
    rooms = Rooms()
    try:
        (_, _, borrower_id), (mediator, bank, borrower) = await _trio(rooms)
        await rooms.send(mediator, "open_caucus", {"participant_id": borrower_id})
        await rooms.wire.disconnect(borrower)
        assert rooms.wire.to(bank, "caucus_ended") == [{}]
        assert rooms.wire.to(bank, "media_isolation")[-1] == {"stop_sending_to": []}
        assert (await rooms.store.get(rooms.record.identities[borrower_id].session_id)).caucus is None
    finally:
        await rooms.close()


async def test_engine_mediator_joining_again_replaces_the_older_socket() -> None:
    # A party joining again waits as a second device instead: tests/signaling/test_devices.py.
    rooms = Rooms()
    try:
        (mediator_id, _, _), (mediator, _, _) = await _trio(rooms)
        again = await rooms.join(rooms.record.identities[mediator_id])
        assert rooms.wire.to(mediator, "error")[-1]["code"] == "replaced"
        await rooms.wire.wait_closed(mediator)
        await rooms.send(again, "send_chat", {"text": "from the new window"})
        assert [a for _, a, d in rooms.record.audits if a == "participant_replaced"
                and d["replaced_sid"] == mediator and d["device_sid"] == again]
    finally:
        await rooms.close()
