"""Recording consent over the room socket needs the party's possession proof (docs/protocol.md, "Possession proofs")."""

from __future__ import annotations

import json

from sqlalchemy import select

from server.models import AuditEntry, Consent
from signaling.consent import NOTICE_HASHES
from tests.signaling.conftest import Session


NOTICE = next(iter(NOTICE_HASHES))


async def _entries(room: Session, action: str) -> list[dict]:
    async with room.api.services.db.read() as session:
        rows = (await session.execute(select(AuditEntry.detail).where(
            AuditEntry.case_id == room.journey.case_id, AuditEntry.action == action))).scalars().all()
    return [json.loads(row) for row in rows]


async def test_consent_without_proof_or_with_anothers_is_refused_and_changes_nothing(room: Session) -> None:
    journey, http = room.journey, room.api.http
    mediator, bank, borrower = await room.admitted_trio()
    notice = NOTICE
    refused = await borrower.request("give_consent", {"notice_sha256": notice})
    assert refused["error"] == "possession_required"
    # The bank's proof, signed by the bank's enrolled device, does not stand for the borrower.
    stolen = await journey.proof(http, "bank", "give_consent")
    refused = await borrower.request("give_consent", {"notice_sha256": notice, "proof": stolen})
    assert refused["error"] == "possession_invalid"
    # A proof for withdrawing is not one for giving.
    other_act = await journey.proof(http, "borrower", "withdraw_consent")
    refused = await borrower.request("give_consent", {"notice_sha256": notice, "proof": other_act})
    assert refused["error"] == "possession_invalid"
    async with room.api.services.db.read() as session:
        assert (await session.execute(select(Consent))).first() is None
    assert await _entries(room, "room_consent_given") == []
    # With its own proof the borrower consents; the entry says how it proved it.
    proof = await journey.proof(http, "borrower", "give_consent")
    assert (await borrower.request("give_consent", {"notice_sha256": notice, "proof": proof}))["ok"]
    (given,) = await _entries(room, "room_consent_given")
    assert given["possession"]["enrolment_id"] == journey.devices["borrower"].enrolment_id
    assert given["possession"]["method"] == "device" and given["credential"]["kind"] == "join_link"
    # Withdrawing needs a proof too; without one the consent stands.
    assert (await borrower.request("withdraw_consent", {}))["error"] == "possession_required"
    assert len(await _entries(room, "room_consent_withdrawn")) == 0
    proof = await journey.proof(http, "borrower", "withdraw_consent")
    assert (await borrower.request("withdraw_consent", {"proof": proof}))["ok"]
    # The mediator is no party: the request table refuses it before any proof.
    assert (await mediator.request("give_consent", {"notice_sha256": notice}))["error"] == "forbidden"
