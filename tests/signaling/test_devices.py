"""One live presence per party: a second device waits for the mediator; the first is told and closed when it is
admitted (docs/protocol.md, "One live presence per party"). Through the room engine without sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signaling.errors import RoomError
from tests.signaling.inprocess import Rooms


@pytest.fixture
async def rooms() -> AsyncIterator[Rooms]:
    made = Rooms()
    try:
        yield made
    finally:
        await made.close()


async def _trio(rooms: Rooms) -> tuple[list[str], list[str]]:
    """(participant ids, sids) of a mediator, an admitted bank representative and an admitted borrower."""
    people = [rooms.record.add(role) for role in ("mediator", "bank_representative", "borrower")]
    sids = [await rooms.join(who) for who in people]
    for who in people[1:]:
        await rooms.send(sids[0], "admit", {"participant_id": who.participant_id})
    return [who.participant_id for who in people], sids


async def _second_device(rooms: Rooms, participant_id: str) -> tuple[str, dict]:
    sid = await rooms.connect(rooms.record.identities[participant_id])
    return sid, await rooms.send(sid, "join_room", {})


def _entry(state: dict, participant_id: str) -> dict:
    return next(p for p in state["participants"] if p["participant_id"] == participant_id)


def _audits(rooms: Rooms, action: str) -> list[dict]:
    return [detail for _, name, detail in rooms.record.audits if name == action]


async def test_devices_party_joining_again_waits_and_keeps_the_first_admitted(rooms: Rooms) -> None:
    (mediator_id, bank_id, borrower_id), (mediator, bank, borrower) = await _trio(rooms)
    second, joined = await _second_device(rooms, borrower_id)
    assert (joined["status"], joined["second_device"]) == ("lobby", True)
    assert joined["room"]["second_device"] is True
    assert [p["participant_id"] for p in joined["room"]["participants"]] == [borrower_id]
    assert _entry(joined["room"], borrower_id)["status"] == "lobby"
    # The first device is neither told to go nor closed; it is still the admitted borrower.
    assert rooms.wire.to(borrower, "error") == [] and borrower not in rooms.wire.closed
    await rooms.send(borrower, "send_chat", {"text": "still me"})
    # The mediator and the borrower itself see the waiting device; the bank does not.
    assert _entry(rooms.wire.to(mediator, "room_state")[-1], borrower_id)["second_device_waiting"] is True
    assert _entry(rooms.wire.to(borrower, "room_state")[-1], borrower_id)["second_device_waiting"] is True
    assert _entry(rooms.wire.to(bank, "room_state")[-1], borrower_id)["second_device_waiting"] is False
    assert _entry(rooms.wire.to(mediator, "room_state")[-1], borrower_id)["status"] == "admitted"
    waiting = _audits(rooms, "second_device_waiting")
    assert waiting == [{"participant_id": borrower_id, "role": "borrower", "device_sid": second, "link_id": None,
                        "present_sid": borrower}]


@pytest.mark.parametrize("event", ["send_chat", "chat_history", "give_consent", "media_state", "signal"])
async def test_devices_waiting_device_may_only_leave(rooms: Rooms, event: str) -> None:
    (mediator_id, _, borrower_id), _ = await _trio(rooms)
    second, _ = await _second_device(rooms, borrower_id)
    payloads = {"send_chat": {"text": "hello"}, "chat_history": {}, "give_consent": {"notice_sha256": "0" * 64},
                "media_state": {"audio": True, "video": True},
                "signal": {"to": mediator_id, "kind": "offer", "payload": {"type": "offer", "sdp": "v=0\r\n"}}}
    with pytest.raises(RoomError) as refused:
        await rooms.send(second, event, payloads[event])
    assert refused.value.code == "device_waiting"


async def test_devices_admitted_second_device_takes_the_place_and_the_first_is_told_and_closed(rooms: Rooms) -> None:
    (mediator_id, bank_id, borrower_id), (mediator, bank, borrower) = await _trio(rooms)
    second, _ = await _second_device(rooms, borrower_id)
    await rooms.send(mediator, "admit_device", {"participant_id": borrower_id})
    assert rooms.wire.to(borrower, "device_replaced") == [{"reason": "second_device_admitted"}]
    await rooms.wire.wait_closed(borrower)
    assert rooms.wire.to(second, "admitted") == [{}]
    assert (await rooms.send(second, "send_chat", {"text": "from the phone"}))["ok"]
    with pytest.raises(RoomError) as refused:
        await rooms.send(borrower, "send_chat", {"text": "from the laptop"})
    assert refused.value.code == "not_joined"
    state = rooms.wire.to(bank, "room_state")[-1]
    assert _entry(state, borrower_id)["status"] == "admitted" and _entry(state, borrower_id)["connected"]
    assert _entry(rooms.wire.to(mediator, "room_state")[-1], borrower_id)["second_device_waiting"] is False
    admitted = _audits(rooms, "second_device_admitted")
    assert admitted == [{"participant_id": borrower_id, "role": "borrower", "device_sid": second, "link_id": None,
                         "replaced_sid": borrower, "admitted_by": mediator_id}]
    assert [who for who, name, _ in rooms.record.audits if name == "second_device_admitted"] == [mediator_id]


async def test_devices_refused_second_device_is_closed_and_the_first_stays(rooms: Rooms) -> None:
    (_, _, borrower_id), (mediator, _, borrower) = await _trio(rooms)
    second, _ = await _second_device(rooms, borrower_id)
    await rooms.send(mediator, "refuse_device", {"participant_id": borrower_id, "reason": "not you"})
    assert rooms.wire.to(second, "refused") == [{"reason": "not you"}]
    await rooms.wire.wait_closed(second)
    assert borrower not in rooms.wire.closed
    await rooms.send(borrower, "send_chat", {"text": "still here"})
    assert _audits(rooms, "second_device_refused")[0]["device_sid"] == second


async def test_devices_admit_device_with_none_waiting_is_refused(rooms: Rooms) -> None:
    (_, _, borrower_id), (mediator, _, _) = await _trio(rooms)
    with pytest.raises(RoomError) as refused:
        await rooms.send(mediator, "admit_device", {"participant_id": borrower_id})
    assert refused.value.code == "no_second_device"


async def test_devices_only_the_mediator_admits_a_second_device(rooms: Rooms) -> None:
    (_, _, borrower_id), (_, bank, _) = await _trio(rooms)
    await _second_device(rooms, borrower_id)
    with pytest.raises(RoomError) as refused:
        await rooms.send(bank, "admit_device", {"participant_id": borrower_id})
    assert refused.value.code == "forbidden"


async def test_devices_first_socket_gone_lets_the_waiting_device_resume(rooms: Rooms) -> None:
    (_, _, borrower_id), (mediator, _, borrower) = await _trio(rooms)
    second, _ = await _second_device(rooms, borrower_id)
    await rooms.wire.disconnect(borrower)
    assert rooms.wire.to(second, "admitted") == [{}]
    await rooms.send(second, "send_chat", {"text": "back on the phone"})
    state = rooms.wire.to(mediator, "room_state")[-1]
    assert _entry(state, borrower_id)["connected"] and not _entry(state, borrower_id)["second_device_waiting"]


async def test_devices_waiting_device_leaving_keeps_the_first(rooms: Rooms) -> None:
    (_, _, borrower_id), (mediator, _, borrower) = await _trio(rooms)
    second, _ = await _second_device(rooms, borrower_id)
    await rooms.send(second, "leave_room", {})
    await rooms.wire.wait_closed(second)
    await rooms.send(borrower, "send_chat", {"text": "still here"})
    assert _entry(rooms.wire.to(mediator, "room_state")[-1], borrower_id)["second_device_waiting"] is False


async def test_devices_newer_waiting_device_replaces_the_older_waiting_one(rooms: Rooms) -> None:
    (_, _, borrower_id), (_, _, borrower) = await _trio(rooms)
    second, _ = await _second_device(rooms, borrower_id)
    third, _ = await _second_device(rooms, borrower_id)
    assert rooms.wire.to(second, "error")[-1]["code"] == "replaced"
    await rooms.wire.wait_closed(second)
    assert borrower not in rooms.wire.closed
    with pytest.raises(RoomError) as refused:
        await rooms.send(third, "send_chat", {"text": "let me in"})
    assert refused.value.code == "device_waiting"


async def test_devices_removing_the_party_closes_its_waiting_device(rooms: Rooms) -> None:
    (_, _, borrower_id), (mediator, _, borrower) = await _trio(rooms)
    second, _ = await _second_device(rooms, borrower_id)
    await rooms.send(mediator, "remove_participant", {"participant_id": borrower_id, "reason": "abusive"})
    assert rooms.wire.to(second, "removed") == [{"reason": "abusive"}]
    await rooms.wire.wait_closed(second)
    await rooms.wire.wait_closed(borrower)


async def test_devices_party_in_the_lobby_is_not_displaced_either(rooms: Rooms) -> None:
    mediator_identity, borrower_identity = rooms.record.add("mediator"), rooms.record.add("borrower")
    mediator = await rooms.join(mediator_identity)
    first = await rooms.join(borrower_identity)
    second, joined = await _second_device(rooms, borrower_identity.participant_id)
    assert joined["second_device"] is True and first not in rooms.wire.closed
    await rooms.send(mediator, "admit", {"participant_id": borrower_identity.participant_id})
    assert rooms.wire.to(first, "admitted") == [{}] and rooms.wire.to(second, "admitted") == []


async def test_devices_same_device_with_its_resume_key_takes_its_place_back_at_once(rooms: Rooms) -> None:
    people = [rooms.record.add(role) for role in ("mediator", "borrower")]
    mediator = await rooms.join(people[0])
    borrower_id = people[1].participant_id
    first = await rooms.connect(people[1])
    joined = await rooms.send(first, "join_room", {})
    await rooms.send(mediator, "admit", {"participant_id": borrower_id})
    # Its old socket still looks live (its node died unnoticed): the key says it is the same device.
    again = await rooms.connect(people[1])
    resumed = await rooms.send(again, "join_room", {"resume": joined["resume_key"]})
    assert (resumed["status"], resumed["second_device"]) == ("admitted", False)
    assert rooms.wire.to(first, "error")[-1]["code"] == "replaced"
    await rooms.wire.wait_closed(first)
    await rooms.send(again, "send_chat", {"text": "back"})
    assert resumed["resume_key"] != joined["resume_key"]


async def test_devices_a_wrong_or_stale_resume_key_makes_a_second_device(rooms: Rooms) -> None:
    (_, _, borrower_id), (_, _, borrower) = await _trio(rooms)
    identity = rooms.record.identities[borrower_id]
    for key in ("0" * 32, None):
        sid = await rooms.connect(identity)
        joined = await rooms.send(sid, "join_room", {} if key is None else {"resume": key})
        assert joined["second_device"] is True
    assert borrower not in rooms.wire.closed


async def test_devices_admitted_second_device_resumes_with_its_own_key(rooms: Rooms) -> None:
    (_, _, borrower_id), (mediator, _, borrower) = await _trio(rooms)
    second, waited = await _second_device(rooms, borrower_id)
    await rooms.send(mediator, "admit_device", {"participant_id": borrower_id})
    await rooms.wire.wait_closed(borrower)
    again = await rooms.connect(rooms.record.identities[borrower_id])
    resumed = await rooms.send(again, "join_room", {"resume": waited["resume_key"]})
    assert (resumed["status"], resumed["second_device"]) == ("admitted", False)
