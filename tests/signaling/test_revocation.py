"""A credential or authority revoked while its socket is open stops that socket at once: its next request is
refused, it is told ``access_revoked`` and it closes, within a second (one node here; two in test_scale_out)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path

import socketio
import pytest
from sqlalchemy import update

from server.models import JoinLink, StaffSession, StaffUser
from server.tokens import hash_token
from tests.support.mailbox import Mailbox
from tests.conftest import _serve, make_settings, walk_to_scheduled
from tests.signaling.conftest import Session, issue_link
from tests.signaling.peer import WAIT, Participant
from tests.signaling.revoked import closed_within, refused_at_once


async def _refused_on_request(peer: Participant) -> dict:
    """Send requests until one is refused (found by the periodic re-check); its ack."""
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
    sent = time.monotonic()
    status, _ = await room.api.call("DELETE", f"/api/cases/{room.journey.case_id}/join-links/{link_id}",
                                    token=room.journey.officer)
    assert status == 200
    since = time.monotonic()  # answered: committed and announced
    await refused_at_once(borrower, "bad_token", since=since, sent=sent)
    assert (await mediator.request("chat_history", {}))["ok"]
    assert (await bank.request("chat_history", {}))["ok"]
    await mediator.wait_for("room_state", lambda s: borrower.participant_id not in
                            {p["participant_id"] for p in s["participants"]})


async def test_revocation_of_a_link_reaches_a_socket_that_sends_nothing(room: Session) -> None:
    mediator, _, borrower = await room.admitted_trio()
    sent = time.monotonic()
    status, _ = await room.api.call("POST", f"/api/cases/{room.journey.case_id}/close", token=room.journey.officer,
                                    json={"outcome": "not_settled"})
    assert status == 200
    since = time.monotonic()  # answered: committed and announced
    await closed_within(borrower, "bad_token", since=since, sent=sent)
    await closed_within(mediator, "bad_session", since=since, sent=sent)


async def test_revocation_of_a_staff_account_stops_its_open_socket(room: Session) -> None:
    _, bank, _ = await room.admitted_trio()
    _, admin = await room.api.staff("administrator")
    sent = time.monotonic()
    status, body = await room.api.call("POST", f"/api/staff/{room.journey.bank_id}/disable", token=admin)
    assert status == 200, body
    since = time.monotonic()  # answered: committed and announced
    await refused_at_once(bank, "bad_token", since=since, sent=sent)


async def test_revocation_by_signing_out_stops_the_staff_socket(room: Session) -> None:
    _, bank, _ = await room.admitted_trio()
    sent = time.monotonic()
    status, body = await room.api.call("POST", "/api/auth/logout", token=room.journey.bank)
    assert status in (200, 204), body
    since = time.monotonic()  # answered: committed and announced
    await refused_at_once(bank, "bad_token", since=since, sent=sent)


async def test_revocation_of_an_assignment_stops_the_old_assignees_socket(room: Session) -> None:
    mediator, bank, _ = await room.admitted_trio()
    other_id, _ = await room.api.staff("bank_representative")
    sent = time.monotonic()
    status, body = await room.api.call("PUT", f"/api/cases/{room.journey.case_id}/assignments",
                                       token=room.journey.officer, json={"bank_representative_id": other_id})
    assert status == 200, body
    since = time.monotonic()  # answered: committed and announced
    await refused_at_once(bank, "not_a_participant", since=since, sent=sent)
    assert (await mediator.request("chat_history", {}))["ok"]


async def test_revocation_by_cancelling_the_session_stops_every_socket(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    sent = time.monotonic()
    status, _ = await room.api.call(
        "POST", f"/api/cases/{room.journey.case_id}/sessions/{room.journey.session_id}/cancel",
        token=room.journey.officer)
    assert status == 200
    since = time.monotonic()  # answered: committed and announced
    await refused_at_once(mediator, "bad_session", since=since, sent=sent)
    await refused_at_once(borrower, "bad_token", since=since, sent=sent)
    await closed_within(bank, "bad_session", since=since, sent=sent)


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


@pytest.fixture
async def quick_recheck(tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[Session]:
    """A room on a server that asks about every open socket every half second, announced or not."""
    async for api in _serve(make_settings(tmp_path, credential_recheck_seconds=0.5, **mailbox.settings()), mailbox):
        journey = await walk_to_scheduled(api)
        session = Session(api=api, journey=journey, borrower_link=await issue_link(api, journey, journey.borrower_id),
                          lender_link=await issue_link(api, journey, journey.lender_id), peers=[])
        try:
            yield session
        finally:
            for peer in session.peers:
                await peer.close()


async def test_revocation_never_announced_is_found_by_the_periodic_recheck(quick_recheck: Session) -> None:
    room = quick_recheck
    _, bank, _ = await room.admitted_trio()
    # Written straight to the case record: no node is told, as when a notice is lost.
    async with room.api.services.db.write() as session:
        await session.execute(update(StaffUser).where(StaffUser.user_id == room.journey.bank_id).values(disabled=True))
    # The sweep may find it before the socket sends anything: the notice comes first, then the socket closes.
    assert (await bank.wait_for("access_revoked"))["code"] == "bad_token"
    async with asyncio.timeout(WAIT):
        while bank.client.connected:
            await asyncio.sleep(0.05)


async def test_revocation_not_announced_is_not_found_before_the_recheck_is_due(room: Session) -> None:
    _, bank, _ = await room.admitted_trio()
    async with room.api.services.db.write() as session:
        await session.execute(update(StaffUser).where(StaffUser.user_id == room.journey.bank_id).values(disabled=True))
    # Per request only the versions are compared (30 s between re-checks by default): no case-record query.
    assert (await bank.request("chat_history", {}))["ok"]


@pytest.mark.parametrize("who", ["bank", "borrower"])
async def test_a_credential_expiring_mid_connection_closes_its_socket_at_expiry(room: Session, who: str) -> None:
    # The periodic re-check is 30 s away (a sweep asks only about sockets older than half that): only the
    # socket's expiry timer can end it within the wait below.
    expires_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=6)
    async with room.api.services.db.write() as session:
        if who == "bank":
            await session.execute(update(StaffSession).where(StaffSession.token_hash == hash_token(room.journey.bank))
                                  .values(expires_at=expires_at))
        else:
            await session.execute(update(JoinLink).where(JoinLink.token_hash == hash_token(room.borrower_link))
                                  .values(expires_at=expires_at))
    mediator, bank, borrower = await room.admitted_trio()
    peer = bank if who == "bank" else borrower
    assert (await peer.request("chat_history", {}))["ok"]  # good until it expires
    notice = await peer.wait_for("access_revoked", timeout=12)  # it sends nothing meanwhile
    assert dt.datetime.now(dt.timezone.utc) >= expires_at, "closed before its credential expired"
    assert notice["code"] == "bad_token", notice
    async with asyncio.timeout(WAIT):
        while peer.client.connected:
            await asyncio.sleep(0.05)
    assert (await mediator.request("chat_history", {}))["ok"]
    await mediator.wait_for("room_state", lambda s: peer.participant_id not in
                            {p["participant_id"] for p in s["participants"]})
