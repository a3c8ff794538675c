"""Screen sharing and raised hands as the server holds them (signaling/meeting.py): one share at a time, who may
stop it, the hand queue and who may lower a hand, what a caucus hides and what leaving clears."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from signaling import payloads
from signaling.errors import RoomError
from signaling.identity import Identity
from tests.signaling.inprocess import Rooms


STREAM = "{0f8fad5b-d9cb-469f-a165-70867728950e}"


def share(meeting: Meeting, name: str, stream_id: str = STREAM) -> dict[str, str]:
    return {"participant_id": meeting.pid(name), "stream_id": stream_id}


class Meeting:
    def __init__(self, rooms: Rooms) -> None:
        self.rooms = rooms
        self.sids: dict[str, str] = {}
        self.who: dict[str, Identity] = {}

    async def enter(self, name: str, role: str, *, admit: bool = True) -> Identity:
        who = self.rooms.record.add(role)
        self.who[name], self.sids[name] = who, await self.rooms.join(who)
        if admit and role != "mediator":
            await self.send("mediator", "admit", {"participant_id": who.participant_id})
        return who

    async def send(self, name: str, event: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.rooms.send(self.sids[name], event, payload or {})

    async def refused(self, name: str, event: str, payload: dict[str, Any] | None = None) -> str:
        with pytest.raises(RoomError) as refused:
            await self.send(name, event, payload)
        return refused.value.code

    def pid(self, name: str) -> str:
        return self.who[name].participant_id

    def state(self, name: str) -> dict[str, Any]:
        return self.rooms.wire.to(self.sids[name], "room_state")[-1]


@pytest.fixture
async def meeting() -> AsyncIterator[Meeting]:
    rooms = Rooms()
    made = Meeting(rooms)
    await made.enter("mediator", "mediator")
    await made.enter("borrower", "borrower")
    await made.enter("lender", "lender")
    yield made
    await rooms.close()


async def test_meeting_one_share_at_a_time_seen_by_everyone_admitted(meeting: Meeting) -> None:
    await meeting.enter("bank", "bank_representative", admit=False)
    await meeting.send("borrower", "start_screen_share", {"stream_id": STREAM})
    for name in ("mediator", "borrower", "lender"):
        assert meeting.state(name)["screen_share"] == share(meeting, "borrower"), name
    assert meeting.state("bank")["screen_share"] is None  # the lobby sees nothing of it
    assert await meeting.refused("lender", "start_screen_share", {"stream_id": STREAM}) == "share_active"
    assert await meeting.refused("mediator", "start_screen_share", {"stream_id": STREAM}) == "share_active"
    await meeting.send("borrower", "start_screen_share", {"stream_id": STREAM})  # again by the sharer: nothing changes
    await meeting.send("borrower", "start_screen_share", {"stream_id": "other-stream"})  # another window
    assert meeting.state("lender")["screen_share"] == share(meeting, "borrower", "other-stream")
    await meeting.send("borrower", "stop_screen_share")
    assert meeting.state("lender")["screen_share"] is None
    await meeting.send("lender", "start_screen_share", {"stream_id": STREAM})
    assert meeting.state("mediator")["screen_share"] == share(meeting, "lender")
    audits = [(action, detail) for _, action, detail in meeting.rooms.record.audits if "screen_share" in action]
    assert audits == [("screen_share_started", {"participant_id": meeting.pid("borrower")}),
                      ("screen_share_stopped", {"participant_id": meeting.pid("borrower"), "reason": "self"}),
                      ("screen_share_started", {"participant_id": meeting.pid("lender")})]


async def test_meeting_only_the_mediator_stops_someone_elses_share(meeting: Meeting) -> None:
    await meeting.send("borrower", "start_screen_share", {"stream_id": STREAM})
    target = {"participant_id": meeting.pid("borrower")}
    assert await meeting.refused("lender", "stop_screen_share", target) == "forbidden"
    assert await meeting.refused("lender", "stop_screen_share") == "not_sharing"
    assert meeting.state("mediator")["screen_share"] == share(meeting, "borrower")
    mark = len(meeting.rooms.wire.sent)
    await meeting.send("mediator", "stop_screen_share", target)
    assert meeting.rooms.wire.to(meeting.sids["borrower"], "screen_share_stopped", after=mark) == [
        {"reason": "mediator"}]
    assert meeting.state("lender")["screen_share"] is None
    assert await meeting.refused("mediator", "stop_screen_share", target) == "not_sharing"
    assert await meeting.refused("mediator", "stop_screen_share",
                                 {"participant_id": "pty_" + "e" * 32}) == "unknown_participant"


async def test_meeting_a_share_ends_when_its_sharer_leaves_or_goes_to_the_lobby(meeting: Meeting) -> None:
    await meeting.send("borrower", "start_screen_share", {"stream_id": STREAM})
    await meeting.send("mediator", "return_to_lobby", {"participant_id": meeting.pid("borrower")})
    assert meeting.state("lender")["screen_share"] is None
    await meeting.send("lender", "start_screen_share", {"stream_id": STREAM})  # the room is free again
    await meeting.send("lender", "leave_room")
    assert meeting.state("mediator")["screen_share"] is None
    await meeting.send("mediator", "start_screen_share", {"stream_id": STREAM})
    assert meeting.state("mediator")["screen_share"] == share(meeting, "mediator")


async def test_meeting_a_caucus_ends_the_share_and_those_left_out_cannot_share(meeting: Meeting) -> None:
    await meeting.send("lender", "start_screen_share", {"stream_id": STREAM})
    mark = len(meeting.rooms.wire.sent)
    await meeting.send("mediator", "open_caucus", {"participant_id": meeting.pid("borrower")})
    assert meeting.rooms.wire.to(meeting.sids["lender"], "screen_share_stopped", after=mark) == [
        {"reason": "caucus"}]
    assert await meeting.refused("lender", "start_screen_share", {"stream_id": STREAM}) == "caucus_active"
    # Shared inside the caucus: the party left out sees nothing of it, and gets no room_state for it.
    mark = len(meeting.rooms.wire.sent)
    await meeting.send("borrower", "start_screen_share", {"stream_id": STREAM})
    assert meeting.state("mediator")["screen_share"] == share(meeting, "borrower")
    assert meeting.rooms.wire.to(meeting.sids["lender"], "room_state", after=mark) == []
    assert meeting.state("lender")["screen_share"] is None
    await meeting.send("mediator", "close_caucus")
    assert meeting.state("lender")["screen_share"] is None  # nothing shown inside comes out
    assert meeting.state("mediator")["screen_share"] is None


async def test_meeting_chat_only_sessions_share_no_screen() -> None:
    rooms = Rooms()
    try:
        mediator = rooms.record.add("mediator", mode="chat")
        sid = await rooms.join(mediator)
        with pytest.raises(RoomError) as refused:
            await rooms.send(sid, "start_screen_share", {"stream_id": STREAM})
        assert refused.value.code == "chat_only"
    finally:
        await rooms.close()


async def test_meeting_hands_queue_in_order_and_the_mediator_lowers_them(meeting: Meeting) -> None:
    await meeting.send("lender", "raise_hand", {"raised": True})
    await meeting.send("borrower", "raise_hand", {"raised": True})
    await meeting.send("lender", "raise_hand", {"raised": True})  # again: keeps its place
    assert meeting.state("mediator")["hands"] == [meeting.pid("lender"), meeting.pid("borrower")]
    assert meeting.state("borrower")["hands"] == [meeting.pid("lender"), meeting.pid("borrower")]
    assert await meeting.refused("mediator", "raise_hand", {"raised": True}) == "forbidden"
    assert await meeting.refused("borrower", "lower_hand", {"participant_id": meeting.pid("lender")}) == "forbidden"
    mark = len(meeting.rooms.wire.sent)
    await meeting.send("mediator", "lower_hand", {"participant_id": meeting.pid("lender")})
    assert meeting.rooms.wire.to(meeting.sids["lender"], "hand_lowered", after=mark) == [{}]
    assert meeting.state("lender")["hands"] == [meeting.pid("borrower")]
    assert await meeting.refused("mediator", "lower_hand", {"participant_id": meeting.pid("lender")}) == (
        "hand_not_raised")
    await meeting.send("borrower", "raise_hand", {"raised": False})
    assert meeting.state("mediator")["hands"] == []


async def test_meeting_a_hand_is_cleared_when_its_party_leaves_or_returns_to_the_lobby(meeting: Meeting) -> None:
    await meeting.send("borrower", "raise_hand", {"raised": True})
    await meeting.send("lender", "raise_hand", {"raised": True})
    await meeting.send("mediator", "return_to_lobby", {"participant_id": meeting.pid("borrower")})
    assert meeting.state("mediator")["hands"] == [meeting.pid("lender")]
    await meeting.send("mediator", "admit", {"participant_id": meeting.pid("borrower")})
    assert meeting.state("mediator")["hands"] == [meeting.pid("lender")]  # not raised again by coming back
    await meeting.send("lender", "leave_room")
    assert meeting.state("mediator")["hands"] == []


async def test_meeting_a_caucus_members_hand_is_hidden_from_those_left_out(meeting: Meeting) -> None:
    await meeting.send("mediator", "open_caucus", {"participant_id": meeting.pid("borrower")})
    await meeting.send("lender", "raise_hand", {"raised": True})
    await meeting.send("borrower", "raise_hand", {"raised": True})
    assert meeting.state("mediator")["hands"] == [meeting.pid("lender"), meeting.pid("borrower")]
    assert meeting.state("lender")["hands"] == [meeting.pid("lender")]


@pytest.mark.parametrize(("model", "payload"), [
    (payloads.RaiseHand, {}), (payloads.RaiseHand, {"raised": "yes"}), (payloads.RaiseHand, {"raised": 1}),
    (payloads.RaiseHand, {"raised": True, "extra": 1}), (payloads.StopScreenShare, {"participant_id": "me"}),
    (payloads.StopScreenShare, {"participant_id": 5}), (payloads.StopScreenShare, {"reason": "x"}),
    (payloads.StartScreenShare, {}), (payloads.StartScreenShare, {"stream_id": ""}),
    (payloads.StartScreenShare, {"stream_id": "a b"}), (payloads.StartScreenShare, {"stream_id": "x" * 65}),
    (payloads.StartScreenShare, {"stream_id": "<script>"}),
])
def test_meeting_payloads_refuse_what_is_not_their_shape(model: type[payloads.Payload], payload: dict) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(payload)


async def test_meeting_rooms_on_the_media_server_share_no_screen(meeting: Meeting) -> None:
    engine = meeting.rooms.engine
    engine.sfu = object()  # type: ignore[assignment]  # configured with Janus: it forwards one camera each
    try:
        assert await meeting.refused("borrower", "start_screen_share", {"stream_id": STREAM}) == "share_unsupported"
        await meeting.send("borrower", "raise_hand", {"raised": True})  # hands are the same in both
        assert meeting.state("mediator")["hands"] == [meeting.pid("borrower")]
    finally:
        engine.sfu = None
