"""Authority versions: a counter per scope, bumped when a credential or an authority in it is revoked.

A scope names whose sockets a revocation may end: one participant (a party or a staff user), one session,
or one case. The server bumps the scopes a committed change touches; every node is told at once and asks
the case record again about its sockets in them. A request compares the versions its socket was last
checked at with the current ones, so it asks the case record only after a change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from signaling.identity import Identity

# Called with the scopes revoked, or None when notices may have been lost (every socket is asked about).
OnRevoked = Callable[[frozenset[str] | None], None]


# Bumped by every revocation, whatever its scopes: unchanged across a handshake, it proves that nothing was
# revoked while the case record was being asked (signaling/revocation.py, AuthorityCheck.admitted).
ANY_SCOPE = "any"


def scopes_of(identity: Identity) -> tuple[str, str, str]:
    """The scopes whose revocation may end a socket of ``identity``."""
    return (participant_scope(identity.participant_id), session_scope(identity.session_id),
            case_scope(identity.case_id))


def participant_scope(participant_id: str) -> str:
    return f"participant:{participant_id}"


def session_scope(session_id: str) -> str:
    return f"session:{session_id}"


def case_scope(case_id: str) -> str:
    return f"case:{case_id}"


class Authority(Protocol):
    """Versions shared by every node (in this process, or in Redis), and the notice of a bump."""

    async def versions(self, scopes: Sequence[str]) -> tuple[int, ...]:
        """The current version of each scope (0 for a scope never revoked); Unavailable if not answering."""

    async def revoke(self, scopes: Collection[str]) -> None:
        """Bump each scope's version and ANY_SCOPE's, then tell every node (``listen``'s callback on each)."""

    def listen(self, on_revoked: OnRevoked) -> None:
        """Call ``on_revoked`` (on the listener's task; it must not block) for every revocation, on this node."""

    async def run(self) -> None:
        """Receive revocations until cancelled (the engine owns this task)."""

    async def close(self) -> None: ...


class LocalAuthority:
    """The embedded default: one process, so a revocation is told to its only listener as it is made."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._listeners: list[OnRevoked] = []

    async def versions(self, scopes: Sequence[str]) -> tuple[int, ...]:
        return tuple(self._versions.get(scope, 0) for scope in scopes)

    async def revoke(self, scopes: Collection[str]) -> None:
        for scope in (*scopes, ANY_SCOPE):
            self._versions[scope] = self._versions.get(scope, 0) + 1
        for listener in self._listeners:
            listener(frozenset(scopes))

    def listen(self, on_revoked: OnRevoked) -> None:
        self._listeners.append(on_revoked)

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        self._listeners.clear()
