"""A second device of a party through the real server: it waits, the mediator admits it, the first is told and
closed, and the audit log names the sockets, the link and the mediator who admitted it."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from server.models import AuditEntry
from tests.signaling.conftest import Session, issue_link
from tests.signaling.peer import WAIT


async def _audit(room: Session, action: str) -> list[tuple[str, dict]]:
    async with room.api.services.db.read() as session:
        entries = (await session.execute(
            select(AuditEntry).where(AuditEntry.case_id == room.journey.case_id, AuditEntry.action == action)
        )).scalars().all()
    return [(entry.actor, json.loads(entry.detail)) for entry in entries]


def _waiting(state: dict, participant_id: str) -> bool:
    return any(p["participant_id"] == participant_id and p["second_device_waiting"] for p in state["participants"])


async def test_second_device_waits_until_the_mediator_admits_it_and_the_first_is_closed(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    # Another link issued for the same borrower: the connection holding it is a second device.
    second = room.participant({"token": await issue_link(room.api, room.journey, room.journey.borrower_id)})
    joined = await second.join()
    assert (joined["status"], joined["second_device"]) == ("lobby", True)
    await mediator.wait_for("room_state", lambda s: _waiting(s, borrower.participant_id))
    refused = await second.request("send_chat", {"text": "let me in"})
    assert (refused["ok"], refused["error"]) == (False, "device_waiting")
    assert (await borrower.request("send_chat", {"text": "still the borrower"}))["ok"]

    assert (await mediator.request("admit_device", {"participant_id": borrower.participant_id}))["ok"]
    assert await borrower.wait_for("device_replaced") == {"reason": "second_device_admitted"}
    async with asyncio.timeout(WAIT):
        while borrower.client.connected:
            await asyncio.sleep(0.05)
    await second.wait_for("admitted")
    assert (await second.request("send_chat", {"text": "from the phone"}))["ok"]
    await bank.wait_for("chat_message", lambda m: m["text"] == "from the phone")

    _, listed = await room.api.call("GET", f"/api/cases/{room.journey.case_id}/join-links", token=room.journey.officer)
    second_link = [link["link_id"] for link in listed["links"] if link["party_id"] == room.journey.borrower_id][-1]
    (waited_actor, waited), = await _audit(room, "room_second_device_waiting")
    assert waited_actor == f"borrower:{room.journey.borrower_id}" and waited["link_id"] == second_link
    (admitted_actor, admitted), = await _audit(room, "room_second_device_admitted")
    assert admitted_actor == f"mediator:{room.journey.mediator_id}"
    assert admitted["admitted_by"] == room.journey.mediator_id and admitted["link_id"] == second_link
    assert admitted["device_sid"] == waited["device_sid"] and admitted["replaced_sid"] == waited["present_sid"]
