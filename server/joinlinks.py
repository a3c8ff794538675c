"""Join links: a party's personal credential for one session, issued, verified and revoked only here.

A link is a random token bound to a case, a party, its role and one session; only its SHA-256 is
stored. Every revocation keeps why it happened, so a removed party is told it was removed.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import AuditLog
from server.changes import changed
from server.models import JoinLink, Party, ScheduledSession
from server.revocations import publish
from server.tokens import new_id, new_token

# However long the settings allow, a link stops working this long after its session's scheduled end.
AFTER_SESSION_END = dt.timedelta(hours=2)


class RevokeReason(enum.StrEnum):
    """Why a link stopped working; stored on the link and named in the audit log."""

    REVOKED = "revoked"  # a case officer or the mediator revoked this one link
    REMOVED = "removed_from_room"  # the mediator removed the party from the session
    SESSION_CANCELLED = "session_cancelled"
    CASE_CLOSED = "case_closed"
    REISSUED = "reissued"  # staff retried a delivery: a fresh link replaced this one


class LinkRefused(Exception):
    """A presented link does not open anything now; ``reason`` is "unknown", "expired" or a RevokeReason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def status(link: JoinLink, now: dt.datetime) -> str:
    """"revoked", "expired" or "active"."""
    if link.revoked_at is not None:
        return "revoked"
    return "expired" if link.expires_at <= now else "active"


class JoinLinks:
    """Issues, verifies and revokes join links inside the caller's transaction, auditing each change."""

    def __init__(self, audit: AuditLog, ttl_seconds: int) -> None:
        self._audit = audit
        self._ttl = dt.timedelta(seconds=ttl_seconds)

    async def issue(self, session: AsyncSession, *, party: Party, scheduled: ScheduledSession, issued_by: str,
                    actor: str, replaces: str | None = None) -> tuple[str, JoinLink]:
        """A new link for ``party`` to ``scheduled``: the token (for the party's delivery only) and its row."""
        now = _now()
        session_end = scheduled.starts_at + dt.timedelta(minutes=scheduled.duration_minutes)
        expires_at = min(now + self._ttl, session_end + AFTER_SESSION_END)
        token, token_hash = new_token("jln")
        link = JoinLink(link_id=new_id("lnk"), token_hash=token_hash, case_id=scheduled.case_id,
                        party_id=party.party_id, session_id=scheduled.session_id, role=party.role,
                        issued_by=issued_by, issued_at=now, expires_at=expires_at)
        session.add(link)
        await session.flush()
        detail = {"link_id": link.link_id, "party_id": party.party_id, "session_id": scheduled.session_id,
                  "expires_at": expires_at.isoformat()}
        if replaces is not None:
            detail["replaces"] = replaces
        await self._audit.append(session, actor=actor, action="link_issued", case_id=scheduled.case_id,
                                 detail=detail)
        changed(session, scheduled.case_id)
        return token, link

    @staticmethod
    async def of_case(session: AsyncSession, case_id: str) -> list[JoinLink]:
        """Every link of the case, oldest first."""
        return list((await session.execute(
            select(JoinLink).where(JoinLink.case_id == case_id).order_by(JoinLink.issued_at)
        )).scalars())

    @staticmethod
    async def get(session: AsyncSession, case_id: str, link_id: str) -> JoinLink | None:
        link = await session.get(JoinLink, link_id)
        return link if link is not None and link.case_id == case_id else None

    @staticmethod
    async def verify(session: AsyncSession, token_hash: bytes) -> JoinLink:
        """The link whose token hashes to ``token_hash`` if it opens its session now, else LinkRefused."""
        return JoinLinks.usable(await JoinLinks.find(session, token_hash))

    @staticmethod
    async def find(session: AsyncSession, token_hash: bytes) -> JoinLink | None:
        """The link whose token hashes to ``token_hash``, usable or not."""
        return (await session.execute(
            select(JoinLink).where(JoinLink.token_hash == token_hash)
        )).scalar_one_or_none()

    @staticmethod
    def usable(link: JoinLink | None) -> JoinLink:
        """``link`` if it opens its session now, else LinkRefused with the reason."""
        if link is None:
            raise LinkRefused("unknown", "this join link is not valid")
        if link.revoked_at is not None:
            reason = link.revoked_reason or RevokeReason.REVOKED
            if reason == RevokeReason.REMOVED:
                raise LinkRefused(reason, "the mediator removed you from this session")
            if reason == RevokeReason.REISSUED:
                raise LinkRefused(reason, "this join link was replaced by a newer one; use the latest link sent to you")
            raise LinkRefused(reason, f"this join link has been revoked ({reason.replace('_', ' ')})")
        if link.expires_at <= _now():
            raise LinkRefused("expired", "this join link has expired")
        return link

    async def revoke(self, session: AsyncSession, *, case_id: str, reason: RevokeReason, revoked_by: str,
                     actor: str, link_id: str | None = None, party_id: str | None = None,
                     session_id: str | None = None) -> list[JoinLink]:
        """Revoke the case's live links that match every given filter (none: all of the case's links).

        ``revoked_by`` is the subject kept on the link, ``actor`` how the audit log names them.
        """
        statement = select(JoinLink).where(JoinLink.case_id == case_id, JoinLink.revoked_at.is_(None))
        if link_id is not None:
            statement = statement.where(JoinLink.link_id == link_id)
        if party_id is not None:
            statement = statement.where(JoinLink.party_id == party_id)
        if session_id is not None:
            statement = statement.where(JoinLink.session_id == session_id)
        links = list((await session.execute(statement.order_by(JoinLink.issued_at))).scalars())
        now = _now()
        for link in links:
            link.revoked_at, link.revoked_by, link.revoked_reason = now, revoked_by, reason.value
            publish(session, participant_id=link.party_id)
            changed(session, case_id)
            await self._audit.append(session, actor=actor, action="link_revoked", case_id=case_id,
                                     detail={"link_id": link.link_id, "reason": reason.value})
        return links
