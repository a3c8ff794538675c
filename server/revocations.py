"""Revocations: a committed change to a credential or an authority, announced to every node's open sockets.

Whoever revokes calls ``publish`` inside its write transaction, naming whose sockets the change may end:
a participant (a party, a staff user), a session, or a case. Once the transaction commits, the scopes'
versions are bumped and every node asks the case record again about its sockets in them (see
signaling/authority.py); the call that revoked returns after that announcement.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from signaling.authority import Authority, case_scope, participant_scope, session_scope
from signaling.identity import Unavailable

log = logging.getLogger("mediation.revocations")

# Where a transaction keeps the scopes it revoked until it commits (AsyncSession.info).
_PENDING = "revoked_scopes"


def publish(session: AsyncSession, *, participant_id: str | None = None, session_id: str | None = None,
            case_id: str | None = None) -> None:
    """Once ``session`` commits, end or re-check the open sockets of this participant, session or case."""
    pending: set[str] = session.info.setdefault(_PENDING, set())
    if participant_id:
        pending.add(participant_scope(participant_id))
    if session_id:
        pending.add(session_scope(session_id))
    if case_id:
        pending.add(case_scope(case_id))


class Revocations:
    """Announces, after its commit, what a transaction revoked (``Database.after_commit``)."""

    def __init__(self, authority: Authority) -> None:
        self._authority = authority

    async def announce(self, info: dict[Any, Any]) -> None:
        scopes = info.pop(_PENDING, None)
        if not scopes:
            return
        try:
            await self._authority.revoke(scopes)
        except Unavailable as exc:
            # The change is committed; open sockets in it are then ended by the periodic re-check.
            log.error("a revocation could not be announced; open sockets learn it at their next re-check",
                      extra={"scopes": sorted(scopes), "error": str(exc)})
