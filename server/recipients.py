"""Who records are sealed to: compliance keys under two-person control, and the signed statement in force.

A compliance officer proposes their age key; it takes effect only when a second person approves:
another compliance officer whose key is in force, or, while no other officer's key is in force, two
administrators who are two people (neither created the other's account, directly or through others).
Nobody approves their own key. Every step is audited. An approved key enters a new recipient
statement, signed with the audit key; records are sealed to the statement in force and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from recording.records.checkpoint import key_id
from recording.records.sealing import parse_recipient
from recording.records.statement import STATEMENT_TYPE, statement_bytes, statement_message
from server.access import Principal
from server.accounts import lineage
from server.audit import AuditLog
from server.database import Database
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import RecipientProposal, RecipientStatement, StaffUser
from server.settings import Settings
from server.tokens import new_id

OFFICER = "compliance_officer"
ADMINISTRATOR = "administrator"
# Administrator approvals a key needs while no other officer's key is in force.
ADMINISTRATOR_APPROVALS = 2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def officers_in_force(statement: dict[str, Any] | None) -> set[str]:
    """The user ids of the officers a statement seals to."""
    if statement is None:
        return set()
    return {r["user_id"] for r in statement["recipients"] if r.get("kind") == OFFICER}


class RecipientKeys:
    """Owns key proposals, their approval, and the signed recipient statement."""

    def __init__(self, settings: Settings, db: Database, audit: AuditLog, signing_key: Ed25519PrivateKey) -> None:
        self._settings = settings
        self._db = db
        self._audit = audit
        self._key = signing_key

    # --- the statement in force -------------------------------------------------------------

    @staticmethod
    async def _latest(session: AsyncSession) -> RecipientStatement | None:
        return (await session.execute(
            select(RecipientStatement).order_by(RecipientStatement.version.desc()).limit(1)
        )).scalar_one_or_none()

    async def statement(self) -> RecipientStatement | None:
        """The statement in force; issues the first one (or a new one for a changed escrow key) if needed."""
        async with self._db.read() as session:
            latest = await self._latest(session)
        if latest is not None and self._escrow_matches(json.loads(latest.statement)):
            return latest
        if latest is None and not self._settings.escrow_recipient:
            return None  # nobody to seal to until a key is approved
        async with self._db.write() as session:
            return await self._issue(session, actor="system:recipients", reason="escrow")

    async def recipients(self) -> list[str]:
        """The age recipients of the statement in force: the only keys records are sealed to."""
        latest = await self.statement()
        if latest is None:
            return []
        return [r["recipient"] for r in json.loads(latest.statement)["recipients"]]

    def _escrow_matches(self, statement: dict[str, Any]) -> bool:
        escrow = [r["recipient"] for r in statement["recipients"] if r.get("kind") == "escrow"]
        return escrow == ([self._settings.escrow_recipient] if self._settings.escrow_recipient else [])

    async def _issue(self, session: AsyncSession, *, actor: str, reason: str) -> RecipientStatement | None:
        """Sign and store a statement of the keys now approved, unless it would repeat the one in force."""
        latest = await self._latest(session)
        previous = json.loads(latest.statement) if latest is not None else None
        in_force = {r["user_id"]: r for r in previous["recipients"] if r.get("kind") == OFFICER} if previous else {}
        officers = (await session.execute(
            select(StaffUser).where(StaffUser.role == OFFICER, StaffUser.disabled.is_(False),
                                    StaffUser.age_recipient.is_not(None)).order_by(StaffUser.user_id)
        )).scalars().all()
        approved = {p.user_id: p for p in (await session.execute(
            select(RecipientProposal).where(RecipientProposal.state == "approved")
            .order_by(RecipientProposal.decided_at)
        )).scalars()}
        recipients: list[dict[str, Any]] = []
        for officer in officers:
            proposal = approved.get(officer.user_id)
            if proposal is not None and proposal.recipient == officer.age_recipient:
                recipients.append({"kind": OFFICER, "user_id": officer.user_id, "username": officer.username,
                                   "recipient": officer.age_recipient, "proposal_id": proposal.proposal_id,
                                   "approved_by": [a["user_id"] for a in proposal.approvals]})
            elif officer.user_id in in_force and in_force[officer.user_id]["recipient"] == officer.age_recipient:
                recipients.append(in_force[officer.user_id])
        if self._settings.escrow_recipient:
            recipients.append({"kind": "escrow", "recipient": self._settings.escrow_recipient})
        if previous is not None and previous["recipients"] == recipients:
            return latest
        if previous is None and not recipients:
            return None
        version = (latest.version + 1) if latest is not None else 1
        now = _now()
        statement = {"type": STATEMENT_TYPE, "version": version, "issued_at": now.isoformat(),
                     "previous_sha256": hashlib.sha256(latest.statement).hexdigest() if latest else None,
                     "recipients": recipients}
        raw = statement_bytes(statement)
        row = RecipientStatement(version=version, statement=raw, key_id=key_id(self._key.public_key()),
                                 signature=self._key.sign(statement_message(raw)), issued_at=now)
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:
            # Another node issued this version first; the caller's transaction fails and is retried by its caller.
            raise Conflict(f"recipient statement version {version} was issued concurrently; try again",
                           code="statement_race") from None
        await self._audit.append(session, actor=actor, action="recipient_statement_issued",
                                 detail={"version": version, "reason": reason,
                                         "sha256": hashlib.sha256(raw).hexdigest(),
                                         "recipients": [r["recipient"] for r in recipients]})
        return row

    # --- proposals ----------------------------------------------------------------------------

    async def _needs(self, session: AsyncSession, proposer_id: str) -> str:
        latest = await self._latest(session)
        others = officers_in_force(json.loads(latest.statement) if latest else None) - {proposer_id}
        if others:
            active = (await session.execute(
                select(StaffUser.user_id).where(StaffUser.user_id.in_(others), StaffUser.disabled.is_(False))
            )).scalars().first()
            if active is not None:
                return OFFICER
        return "two_administrators"

    async def propose(self, principal: Principal, text: str) -> tuple[RecipientProposal, str]:
        """A compliance officer proposes their own key; earlier pending proposals of theirs are superseded."""
        try:
            recipient = parse_recipient(text)
        except ValueError as exc:
            raise ValidationFailed(f"recipient: {exc}", field="recipient") from None
        async with self._db.write() as session:
            user = await session.get(StaffUser, principal.subject_id)
            if user is None or user.disabled:
                raise NotFound(f"no active staff user {principal.subject_id}")
            if user.age_recipient == recipient:
                raise Conflict("this key is already the one in force for you", code="recipient_in_force")
            pending = (await session.execute(
                select(RecipientProposal).where(RecipientProposal.user_id == user.user_id,
                                                RecipientProposal.state == "pending")
            )).scalars().all()
            now = _now()
            for old in pending:
                old.state, old.decided_at, old.decided_by = "superseded", now, user.user_id
                await self._audit.append(session, actor=principal.actor, action="recipient_superseded",
                                         detail={"proposal_id": old.proposal_id, "recipient": old.recipient})
            proposal = RecipientProposal(proposal_id=new_id("rkp"), user_id=user.user_id, recipient=recipient,
                                         state="pending", proposed_at=now, approvals=[])
            session.add(proposal)
            needs = await self._needs(session, user.user_id)
            await self._audit.append(session, actor=principal.actor, action="recipient_proposed",
                                     detail={"proposal_id": proposal.proposal_id, "user_id": user.user_id,
                                             "recipient": recipient, "replaces": user.age_recipient,
                                             "needs": needs})
        return proposal, needs

    async def approve(self, principal: Principal, proposal_id: str) -> tuple[RecipientProposal, str]:
        """Record a second person's approval; the key takes effect (a new statement) once approval is complete."""
        async with self._db.write() as session:
            proposal = await self._pending(session, proposal_id)
            approver = principal.subject_id or ""
            if approver == proposal.user_id:
                raise Forbidden("nobody may approve their own compliance key", code="own_key")
            owner = await session.get(StaffUser, proposal.user_id)
            if owner is None or owner.disabled:
                raise Conflict(f"the key's owner {proposal.user_id} is disabled", code="owner_disabled")
            needs = await self._needs(session, proposal.user_id)
            if needs == OFFICER:
                latest = await self._latest(session)
                if principal.role != OFFICER or approver not in officers_in_force(
                        json.loads(latest.statement) if latest else None):
                    raise Forbidden("another compliance officer whose key is in force must approve this key",
                                    code="approver_not_in_force")
                complete = True
            else:
                if principal.role != ADMINISTRATOR:
                    raise Forbidden("no other compliance officer's key is in force: two administrators must "
                                    "approve this key", code="needs_administrators")
                mine = await lineage(session, approver)
                if proposal.user_id in mine:
                    raise Forbidden("an account created by the key's owner may not approve it", code="own_key")
                for earlier in proposal.approvals:
                    if earlier["user_id"] == approver:
                        raise Conflict("you have already approved this key; a second administrator must",
                                       code="already_approved")
                    if mine & await lineage(session, earlier["user_id"]):
                        raise Forbidden(f"administrator {earlier['user_id']} approved already, and one of you "
                                        "created the other's account: the second approval must come from "
                                        "another person", code="same_person")
                complete = len(proposal.approvals) + 1 >= ADMINISTRATOR_APPROVALS
            now = _now()
            proposal.approvals = [*proposal.approvals,
                                  {"user_id": approver, "role": principal.role, "at": now.isoformat()}]
            await self._audit.append(session, actor=principal.actor, action="recipient_approved",
                                     detail={"proposal_id": proposal.proposal_id, "user_id": proposal.user_id,
                                             "recipient": proposal.recipient, "complete": complete,
                                             "approvals": len(proposal.approvals)})
            if complete:
                proposal.state, proposal.decided_at, proposal.decided_by = "approved", now, approver
                owner.age_recipient = proposal.recipient
                await session.flush()
                await self._issue(session, actor=principal.actor, reason="approved")
        return proposal, needs

    async def reject(self, principal: Principal, proposal_id: str) -> tuple[RecipientProposal, str]:
        """The owner withdraws a pending key, or an officer or administrator refuses it."""
        async with self._db.write() as session:
            proposal = await self._pending(session, proposal_id)
            if principal.role not in (OFFICER, ADMINISTRATOR):
                raise Forbidden(f'role "{principal.role}" may not reject compliance keys')
            proposal.state, proposal.decided_at, proposal.decided_by = "rejected", _now(), principal.subject_id
            await self._audit.append(session, actor=principal.actor, action="recipient_rejected",
                                     detail={"proposal_id": proposal.proposal_id, "user_id": proposal.user_id,
                                             "recipient": proposal.recipient})
            needs = await self._needs(session, proposal.user_id)
        return proposal, needs

    @staticmethod
    async def _pending(session: AsyncSession, proposal_id: str) -> RecipientProposal:
        # Locked (on PostgreSQL) so that two approvals at once cannot both count as the first.
        proposal = await session.get(RecipientProposal, proposal_id, with_for_update=True)
        if proposal is None:
            raise NotFound(f"no key proposal {proposal_id}", field="proposal_id")
        if proposal.state != "pending":
            raise Conflict(f"key proposal {proposal_id} is {proposal.state}, not pending", code="not_pending",
                           state=proposal.state)
        return proposal

    async def proposals(self) -> list[tuple[RecipientProposal, str, str]]:
        """Every proposal, newest first, with its owner's username and what approval it needs now."""
        async with self._db.read() as session:
            rows = (await session.execute(
                select(RecipientProposal, StaffUser.username).join(StaffUser, StaffUser.user_id == RecipientProposal.user_id)
                .order_by(RecipientProposal.proposed_at.desc()).limit(200)
            )).all()
            return [(proposal, username, await self._needs(session, proposal.user_id)) for proposal, username in rows]

    async def in_force(self, user_id: str) -> bool:
        """Whether the user's key is in the statement in force (an officer reaches cases only then)."""
        latest = await self.statement()
        return user_id in officers_in_force(json.loads(latest.statement) if latest else None)

    async def staff_disabled(self, principal: Principal, user_id: str) -> None:
        """A disabled officer's key leaves the statement, and their pending proposals lapse."""
        async with self._db.write() as session:
            pending = (await session.execute(
                select(RecipientProposal).where(RecipientProposal.user_id == user_id,
                                                RecipientProposal.state == "pending")
            )).scalars().all()
            for proposal in pending:
                proposal.state, proposal.decided_at, proposal.decided_by = "superseded", _now(), principal.subject_id
                await self._audit.append(session, actor=principal.actor, action="recipient_superseded",
                                         detail={"proposal_id": proposal.proposal_id, "reason": "owner_disabled"})
            await self._issue(session, actor=principal.actor, reason="officer_disabled")
