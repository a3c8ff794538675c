"""What no announcement covers: a credential's expiry ends its socket at that moment, and the periodic re-check
asks the case record about all of a node's sockets in one batch, never one socket at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from signaling.authority import participant_scope
from signaling.identity import Identity
from signaling.roomsettings import RoomSettings
from tests.signaling.inprocess import Rooms


async def test_a_credential_expiring_mid_connection_closes_its_socket_at_expiry() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=3600))  # no sweep, no periodic re-check on a request
    try:
        mediator = rooms.record.add("mediator")
        borrower = rooms.record.add("borrower")
        expires_at = time.time() + 1.0
        rooms.record.identities[borrower.participant_id] = borrower = dataclasses.replace(borrower,
                                                                                         expires_at=expires_at)
        mediator_sid, borrower_sid = await rooms.join(mediator), await rooms.join(borrower)
        await rooms.send(mediator_sid, "admit", {"participant_id": borrower.participant_id})
        # The borrower sends nothing: its expiry alone ends it, not before.
        await rooms.wire.wait_closed(borrower_sid, timeout=10)
        assert time.time() >= expires_at
        assert rooms.wire.to(borrower_sid, "access_revoked") == [
            {"code": "bad_token", "message": "this participant's link has expired"}]
        async with asyncio.timeout(10):  # the room sees it leave
            while borrower.participant_id in _roster(rooms, mediator_sid):
                await asyncio.sleep(0.02)
        assert mediator_sid not in rooms.wire.closed
        assert rooms.record.asked.get(mediator.participant_id, 0) == 0
    finally:
        await rooms.close()


async def test_a_socket_closed_before_its_credential_expires_leaves_no_timer_behind() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=3600))
    try:
        borrower = rooms.record.add("borrower")
        rooms.record.identities[borrower.participant_id] = dataclasses.replace(borrower, expires_at=time.time() + 60)
        sid = await rooms.join(borrower)
        connection = rooms.engine.connections[sid]
        timer = connection.expiry
        assert timer is not None and not timer.cancelled()
        await rooms.wire.disconnect(sid)
        assert timer.cancelled() and connection.expiry is None
    finally:
        await rooms.close()


async def test_joining_asks_the_case_record_nothing_beyond_the_handshake_until_a_version_moves() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=3600))
    try:
        mediator, borrower = rooms.record.add("mediator"), rooms.record.add("borrower")
        mediator_sid, borrower_sid = await rooms.join(mediator), await rooms.join(borrower)
        await rooms.send(mediator_sid, "admit", {"participant_id": borrower.participant_id})
        await rooms.send(borrower_sid, "send_chat", {"text": "hello"})
        assert rooms.record.asked == {}
        rooms.engine.authority_check.start()  # hears revocations (and sweeps, not within the hour)
        # A revocation in its scopes moves a version: its next request asks, and is refused.
        rooms.record.revoked.add(borrower.participant_id)
        await rooms.engine.authority_check.authority.revoke({participant_scope(borrower.participant_id)})
        await rooms.wire.wait_closed(borrower_sid)
        assert rooms.record.asked == {borrower.participant_id: 1}
    finally:
        await rooms.close()


async def test_a_revocation_before_the_handshake_is_in_its_answer_and_no_request_asks_again() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=3600))
    try:
        borrower = rooms.record.add("borrower")
        # An earlier link of the same party was revoked before this socket's handshake asked the case record.
        await rooms.engine.authority_check.authority.revoke({participant_scope(borrower.participant_id)})
        await rooms.join(borrower)
        assert rooms.record.asked == {}
    finally:
        await rooms.close()


async def test_a_revocation_made_while_a_handshake_is_answered_makes_its_first_request_ask() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=3600))
    try:
        borrower, other = rooms.record.add("borrower"), rooms.record.add("lender")
        answer = rooms.record.authenticate

        async def racing(auth: Any, environ: dict[str, Any]) -> Identity:
            identity = await answer(auth, environ)
            # Committed after the case record answered, before the socket took its versions: any revocation
            # (here another participant's) means the answer may be stale, so the first request asks.
            await rooms.engine.authority_check.authority.revoke({participant_scope(other.participant_id)})
            return identity

        rooms.record.authenticate = racing  # type: ignore[method-assign]
        await rooms.join(borrower)
        assert rooms.record.asked == {borrower.participant_id: 1}
    finally:
        await rooms.close()


async def test_the_periodic_recheck_asks_about_every_socket_in_one_batch_and_closes_the_revoked() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=0.4))
    try:
        people = [rooms.record.add("mediator"), rooms.record.add("bank_representative"), rooms.record.add("borrower")]
        sids = [await rooms.join(who) for who in people]
        rooms.engine.authority_check.start()
        # Revoked in the case record and never announced: only the sweep can find it.
        rooms.record.revoked.add(people[2].participant_id)
        await rooms.wire.wait_closed(sids[2], timeout=10)
        assert rooms.wire.to(sids[2], "access_revoked")[0]["code"] == "bad_token"
        assert rooms.record.batches >= 1
        # The sockets found good were asked about only in batches; the revoked one once more, alone, on its turn.
        assert rooms.record.asked == {people[2].participant_id: 1}
        assert sids[0] not in rooms.wire.closed and sids[1] not in rooms.wire.closed
    finally:
        await rooms.close()


async def test_the_periodic_recheck_keeps_the_last_answers_while_the_case_record_does_not_answer() -> None:
    rooms = Rooms(RoomSettings(credential_recheck_seconds=0.2))
    try:
        mediator = rooms.record.add("mediator")
        sid = await rooms.join(mediator)
        rooms.record.answering = False
        rooms.engine.authority_check.start()
        await asyncio.sleep(0.5)  # sweeps run and fail meanwhile; nothing is asserted about how many
        assert sid not in rooms.wire.closed
        rooms.record.answering = True
        before = rooms.record.batches
        async with asyncio.timeout(10):
            while rooms.record.batches == before:
                await asyncio.sleep(0.05)
        assert sid not in rooms.wire.closed
    finally:
        await rooms.close()


def _roster(rooms: Rooms, sid: str) -> set[str]:
    return {p["participant_id"] for p in rooms.wire.to(sid, "room_state")[-1]["participants"]}
