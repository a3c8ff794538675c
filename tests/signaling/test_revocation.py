"""A credential revoked while its socket is open stops that socket: the next request is refused, then it closes."""

from __future__ import annotations

import asyncio

import socketio
import pytest
from sqlalchemy import update

from server.models import StaffUser
from tests.signaling.conftest import Session, issue_link
from tests.signaling.peer import WAIT, Participant


async def _refused_on_request(peer: Participant) -> dict:
    """Send requests until one is refused (the credential is checked again about once a second); its ack."""
    async with asyncio.timeout(WAIT):
        while True:
            result = await peer.request("chat_history", {})
            if not result["ok"]:
                break
            await asyncio.sleep(0.1)
    async with asyncio.timeout(WAIT):
        while peer.client.connected:
            await asyncio.sleep(0.05)
    return result


async def test_revocation_of_a_link_stops_its_open_socket(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    _, listed = await room.api.call("GET", f"/api/cases/{room.journey.case_id}/join-links", token=room.journey.officer)
    link_id = next(link["link_id"] for link in listed["links"] if link["party_id"] == room.journey.borrower_id)
    status, _ = await room.api.call("DELETE", f"/api/cases/{room.journey.case_id}/join-links/{link_id}",
                                    token=room.journey.officer)
    assert status == 200
    refused = await _refused_on_request(borrower)
    assert refused["error"] == "bad_token", refused
    assert (await borrower.wait_for("error"))["code"] == "bad_token"
    assert (await mediator.request("chat_history", {}))["ok"]
    assert (await bank.request("chat_history", {}))["ok"]


async def test_revocation_of_a_link_reaches_a_socket_that_sends_nothing(room: Session) -> None:
    mediator, _, borrower = await room.admitted_trio()
    status, _ = await room.api.call("POST", f"/api/cases/{room.journey.case_id}/close", token=room.journey.officer,
                                    json={"outcome": "not_settled"})
    assert status == 200
    refused = await borrower.wait_for("error")
    assert refused["code"] == "bad_token" and refused["event"] is None, refused
    assert (await mediator.wait_for("error"))["code"] == "bad_session"
    async with asyncio.timeout(WAIT):
        while borrower.client.connected or mediator.client.connected:
            await asyncio.sleep(0.05)


async def test_revocation_of_a_staff_account_stops_its_open_socket(room: Session) -> None:
    _, bank, _ = await room.admitted_trio()
    async with room.api.services.db.write() as session:
        await session.execute(update(StaffUser).where(StaffUser.user_id == room.journey.bank_id).values(disabled=True))
    assert (await _refused_on_request(bank))["error"] == "bad_token"


async def test_revocation_of_an_assignment_stops_the_old_assignees_socket(room: Session) -> None:
    _, bank, _ = await room.admitted_trio()
    other_id, _ = await room.api.staff("bank_representative")
    status, body = await room.api.call("PUT", f"/api/cases/{room.journey.case_id}/assignments",
                                       token=room.journey.officer, json={"bank_representative_id": other_id})
    assert status == 200, body
    assert (await _refused_on_request(bank))["error"] == "not_a_participant"


async def test_revocation_by_cancelling_the_session_stops_every_socket(room: Session) -> None:
    mediator, _, borrower = await room.admitted_trio()
    status, _ = await room.api.call(
        "POST", f"/api/cases/{room.journey.case_id}/sessions/{room.journey.session_id}/cancel",
        token=room.journey.officer)
    assert status == 200
    assert (await _refused_on_request(mediator))["error"] == "bad_session"
    assert (await _refused_on_request(borrower))["error"] == "bad_token"


async def test_revocation_by_removal_refuses_the_party_as_removed(room: Session) -> None:
    mediator, _, borrower = await room.admitted_trio()
    assert (await mediator.request("remove_participant", {"participant_id": borrower.participant_id}))["ok"]
    again = room.borrower()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await again.connect()
    assert again.refusal["code"] == "removed"
    # A new link for the removed party does not let it back into this session either.
    fresh = room.participant({"token": await issue_link(room.api, room.journey, room.journey.borrower_id)})
    with pytest.raises(socketio.exceptions.ConnectionError):
        await fresh.connect()
    assert fresh.refusal["code"] == "removed"

