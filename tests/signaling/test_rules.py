"""Who may send what, without sockets: every request of the table from every role, in the lobby and admitted.

The expected answer comes from the request table alone (``senders``, ``admitted``); the engine must give it.
Beside these, the wire tests (test_rooms, test_hostile, test_scale_out) fire the same rules through socket.io."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from signaling.consent import NOTICE_HASHES
from signaling.errors import RoomError
from signaling.roomsettings import RoomSettings
from signaling.authority import participant_scope
from signaling.identity import Identity, Unavailable
from signaling.requests import REQUESTS
from tests.signaling.inprocess import Rooms

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
RULE_CODES = {"forbidden", "not_admitted", "not_joined"}
NOTICE = next(iter(NOTICE_HASHES))


@dataclasses.dataclass(frozen=True)
class Sender:
    role: str
    admitted: bool
    joined: bool = True

    def __str__(self) -> str:
        return f"{self.role}-{'admitted' if self.admitted else 'lobby' if self.joined else 'unjoined'}"


SENDERS = [Sender("mediator", True), Sender("recorder", True),
           *(Sender(role, admitted) for role in ("borrower", "lender", "bank_representative")
             for admitted in (True, False)),
           Sender("borrower", False, joined=False)]


@dataclasses.dataclass
class Scene:
    rooms: Rooms
    mediator: Identity
    target: Identity  # an admitted party other than the sender, the target of the mediator's requests
    sender: Identity
    sids: dict[str, str]

    def payload(self, event: str) -> dict[str, Any]:
        target = self.target.participant_id
        other = self.mediator.participant_id if self.sender.participant_id != self.mediator.participant_id \
            else target
        return {
            "admit": {"participant_id": target}, "refuse": {"participant_id": target, "reason": "no"},
            "admit_device": {"participant_id": target},
            "refuse_device": {"participant_id": target, "reason": "no"},
            "return_to_lobby": {"participant_id": target}, "send_chat": {"text": "hello"},
            "typing": {"active": True}, "media_state": {"audio": True, "video": False},
            "signal": {"to": other, "kind": "offer", "payload": OFFER},
            "publish_media": {"offer": OFFER}, "answer_media": {"answer": {"type": "answer", "sdp": "v=0\r\n"}},
            "media_candidate": {"target": "publish", "candidate": {"candidate": None}},
            "media_layout": {"feeds": [{"participant_id": other, "width": 320, "height": 180}]},
            "record_media": {"rtp_port": 40000, "rtcp_port": 40001},
            "mute_chat": {"participant_id": target, "muted": True},
            "request_mute_media": {"participant_id": target, "audio": True, "video": True},
            "remove_participant": {"participant_id": target}, "lock_room": {"locked": True},
            "delete_message": {"seq": 1}, "open_caucus": {"participant_id": target},
            "file_key": {"channel": "main", "epoch": 0, "kid": 1, "recipients": ["age1" + "q" * 58],
                         "sealed": "YWdl"},
            "share_keys": {"channel": "main", "epoch": 0, "kid": 1,
                           "keys": [{"participant_id": other, "wrapped": "A" * 80}]},
            "raise_hand": {"raised": True}, "start_screen_share": {"stream_id": "screen-1"}, "lower_hand": {"participant_id": target},
            # The sender's own possession proof: what the table decides is who may send, not the proof.
            "give_consent": {"notice_sha256": NOTICE,
                             "proof": self.rooms.record.proof(self.sender, "give_consent")},
            "withdraw_consent": {"proof": self.rooms.record.proof(self.sender, "withdraw_consent")},
        }.get(event, {})


async def scene_for(sender: Sender) -> Scene:
    """A room with its mediator, an admitted target party and the sender as asked; a recording runs when the
    sender is the recorder (it can join only then)."""
    rooms = Rooms()
    record = rooms.record
    mediator = record.add("mediator")
    sids = {mediator.participant_id: await rooms.join(mediator)}
    target = record.add("lender" if sender.role == "borrower" else "borrower")
    sids[target.participant_id] = await rooms.join(target)
    await rooms.send(sids[mediator.participant_id], "admit", {"participant_id": target.participant_id})
    await rooms.send(sids[mediator.participant_id], "send_chat", {"text": "message one"})
    if sender.role == "mediator":
        return Scene(rooms, mediator, target, mediator, sids)
    if sender.role == "recorder":
        await rooms.send(sids[target.participant_id], "give_consent",
                         {"notice_sha256": NOTICE, "proof": record.proof(target, "give_consent")})
        await rooms.send(sids[mediator.participant_id], "start_recording", {})
    who = record.add(sender.role)
    if not sender.joined:
        sids[who.participant_id] = await rooms.connect(who)
        return Scene(rooms, mediator, target, who, sids)
    sids[who.participant_id] = await rooms.join(who)
    if sender.admitted and sender.role != "recorder":
        await rooms.send(sids[mediator.participant_id], "admit", {"participant_id": who.participant_id})
    return Scene(rooms, mediator, target, who, sids)


def expected_refusal(event: str, sender: Sender) -> str | None:
    """The code the request table gives, or None when the sender may send the request."""
    request = REQUESTS[event]
    if not sender.joined:
        return None if not request.needs_join else "not_joined"
    if not request.needs_join:
        return None
    if sender.role not in request.senders:
        return "forbidden"
    if request.admitted and not sender.admitted:
        return "not_admitted"
    return None


@pytest.fixture
async def scenes() -> AsyncIterator[list[Scene]]:
    made: list[Scene] = []
    yield made
    for scene in made:
        await scene.rooms.close()


@pytest.mark.parametrize("sender", SENDERS, ids=str)
@pytest.mark.parametrize("event", list(REQUESTS))
async def test_rules_each_request_from_each_sender_gets_the_tables_answer(event: str, sender: Sender,
                                                                         scenes: list[Scene]) -> None:
    scene = await scene_for(sender)
    scenes.append(scene)
    sid = scene.sids[scene.sender.participant_id]
    expected = expected_refusal(event, sender)
    try:
        ack = await scene.rooms.send(sid, event, scene.payload(event))
    except RoomError as refused:
        if expected is not None:
            assert refused.code == expected, (event, str(sender), refused)
        else:
            # Allowed by the table: the room may still refuse for its state, never for who sent it.
            assert refused.code not in RULE_CODES, (event, str(sender), refused)
        return
    assert expected is None, (event, str(sender), "accepted", ack)
    assert ack["ok"] is True


async def test_rules_a_revoked_participants_next_request_is_refused_and_its_socket_closed() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=0))
    try:
        mediator, borrower = rooms.record.add("mediator"), rooms.record.add("borrower")
        mediator_sid, borrower_sid = await rooms.join(mediator), await rooms.join(borrower)
        await rooms.send(mediator_sid, "admit", {"participant_id": borrower.participant_id})
        await rooms.send(borrower_sid, "send_chat", {"text": "before"})
        rooms.record.revoked.add(borrower.participant_id)  # the link is revoked elsewhere, on any node
        mark = len(rooms.wire.sent)
        with pytest.raises(RoomError) as refused:
            await rooms.send(borrower_sid, "send_chat", {"text": "after"})
        assert refused.value.code == "bad_token"
        await rooms.wire.wait_closed(borrower_sid)
        # The room saw it leave (after the close): the mediator's roster no longer has it, and nothing it
        # sent went out.
        roster = (await rooms.wire.wait_sent(mediator_sid, "room_state", after=mark))[-1]["participants"]
        assert [p["participant_id"] for p in roster] == [mediator.participant_id]
        assert not [m for m in rooms.wire.to(mediator_sid, "chat_message", after=mark)]
        assert ("participant_left", {"reason": "bad_token"}) in [(a, d) for _, a, d in rooms.record.audits]
        # Its credentials no longer connect either.
        with pytest.raises(Exception) as again:
            await rooms.connect(borrower)
        assert getattr(again.value, "code", None) == "bad_token"
    finally:
        await rooms.close()


async def test_rules_a_revoked_mediator_steps_out_and_parties_return_to_the_lobby() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=0))
    try:
        mediator, borrower = rooms.record.add("mediator"), rooms.record.add("borrower")
        mediator_sid, borrower_sid = await rooms.join(mediator), await rooms.join(borrower)
        await rooms.send(mediator_sid, "admit", {"participant_id": borrower.participant_id})
        rooms.record.revoked.add(mediator.participant_id)  # unassigned from the case
        with pytest.raises(RoomError) as refused:
            await rooms.send(mediator_sid, "lock_room", {"locked": True})
        assert refused.value.code == "bad_token"
        await rooms.wire.wait_closed(mediator_sid)
        assert await rooms.wire.wait_sent(borrower_sid, "returned_to_lobby") == [{"reason": "mediator_left"}]
        room = await rooms.store.get(mediator.session_id)
        assert room is not None and not room.locked
    finally:
        await rooms.close()


async def test_rules_a_revoked_participant_is_asked_about_again_only_after_the_recheck_interval() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=3600))
    try:
        mediator, borrower = rooms.record.add("mediator"), rooms.record.add("borrower")
        mediator_sid, borrower_sid = await rooms.join(mediator), await rooms.join(borrower)
        await rooms.send(mediator_sid, "admit", {"participant_id": borrower.participant_id})
        rooms.record.revoked.add(borrower.participant_id)
        # Within the interval the last answer stands: the case record is not asked on every request.
        assert (await rooms.send(borrower_sid, "chat_history", {}))["ok"] is True
    finally:
        await rooms.close()


async def test_rules_a_revoked_participant_is_served_nothing_while_the_case_record_does_not_answer() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=3600))
    try:
        mediator, borrower = rooms.record.add("mediator"), rooms.record.add("borrower")
        mediator_sid, borrower_sid = await rooms.join(mediator), await rooms.join(borrower)
        await rooms.send(mediator_sid, "admit", {"participant_id": borrower.participant_id})
        await rooms.send(borrower_sid, "chat_history", {})
        rooms.record.revoked.add(borrower.participant_id)
        rooms.record.answering = False
        await rooms.engine.authority_check.authority.revoke({participant_scope(borrower.participant_id)})
        with pytest.raises(Unavailable):
            await rooms.send(borrower_sid, "send_chat", {"text": "while it is down"})
        assert (await rooms.send(mediator_sid, "chat_history", {}))["ok"]  # not touched: the last answer stands
        rooms.record.answering = True
        with pytest.raises(RoomError) as refused:
            await rooms.send(borrower_sid, "send_chat", {"text": "after"})
        assert refused.value.code == "bad_token"
        assert rooms.wire.to(borrower_sid, "access_revoked") == [
            {"code": "bad_token", "message": "this participant's link was revoked"}]
    finally:
        await rooms.close()
