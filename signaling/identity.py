"""Who a socket is, and the hooks the composition root gives the signaling layer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class Identity:
    """A participant as the case record knows it: resolved at connect, re-checked by ``Hooks.authorize`` after a
    revocation in its scopes and periodically (``signaling/revocation.py``)."""

    participant_id: str
    role: str  # mediator | bank_representative | borrower | lender | recorder
    name: str
    case_id: str
    session_id: str
    mode: str  # video | chat
    link_id: str | None = None
    # Shown in the room's header: the case number and the scheduled time.
    case_number: str = ""
    starts_at: str = ""
    duration_minutes: int = 0
    # Opaque to signaling: names the credential the socket entered with, so Hooks.authorize can
    # check it again.
    credential: str = dataclasses.field(default="", repr=False)
    # When that credential stops working by itself (seconds since the epoch), if it does: the socket is
    # asked about again at that moment (signaling/revocation.py).
    expires_at: float | None = None


class Refused(Exception):
    """A connection, or a participant's further part in its session, refused with a code and a reason to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Unavailable(Exception):
    """A service the room depends on (its store, the case record) did not answer: retry shortly."""


class UnknownRecipient(Exception):
    """A browser sealed a key to a recipient that is not in the statement in force."""


class SequenceTaken(Exception):
    """A chat number is sealed already, by an attempt whose message never reached the room store."""


class Hooks(Protocol):
    """What signaling needs from the case record; supplied by the server package."""

    async def authenticate(self, auth: Any, environ: dict[str, Any]) -> Identity:
        """Resolve the handshake's credentials, or raise Refused (or Unavailable, as every hook may)."""

    async def authorize(self, identity: Identity) -> None:
        """Raise Refused(code, message) if the credential ``identity`` entered with no longer lets it be in
        its session now (revoked, expired, account disabled, assignment lost, session cancelled, case closed).

        Called before a request's turn when a revocation touched the socket's scopes (or its periodic
        re-check is overdue), at once on every node when one is announced, and when the credential's
        ``expires_at`` passes: the socket then gets ``access_revoked`` with the code, the room sees it
        leave, and the socket is disconnected."""

    async def authorize_many(self, identities: Sequence[Identity]) -> list[Refused | None]:
        """``authorize`` for many sockets at once (the periodic re-check of a node's sockets): for each, its
        Refused or None; one read of the case record whatever their number. Unavailable as ``authorize``."""

    async def audit(self, identity: Identity, action: str, detail: dict[str, Any]) -> None:
        """Append a room event to the audit log."""

    async def participant_removed(self, identity: Identity, target_participant_id: str) -> None:
        """Make the removed participant's credentials stop working for this session."""

    async def room_opened(self, identity: Identity) -> bool:
        """Called when a room is created; True if its records can be sealed (the case has recipients)."""

    async def chat_message(self, identity: Identity, message: dict[str, Any]) -> None:
        """Seal one chat message into the case record before it is acknowledged; SequenceTaken if its
        ``seq`` is sealed already."""

    async def key_sealed(self, identity: Identity, sealed: bytes, recipients: list[str],
                         detail: dict[str, Any]) -> int:
        """File a base key the member's browser sealed to ``recipients`` (an e2ee_key record); its index.
        UnknownRecipient when a recipient is not in the statement in force."""

    async def prove_possession(self, identity: Identity, act: str, proof: dict[str, str] | None) -> dict[str, Any]:
        """Check and spend ``proof`` that the member holds its party's verified contact, for ``act``
        ("give_consent" or "withdraw_consent"); the evidence for the audit entry, or RoomError with
        possession_required, possession_invalid, code_wrong, code_expired, code_spent or party_act_only."""

    async def consent_changed(self, identity: Identity, notice_sha256: str | None) -> None:
        """Keep consent (a notice hash) or its withdrawal (None) as sealed evidence."""

    async def start_recorder(self, identity: Identity) -> None:
        """Start the recording peer for the identity's session (it joins as a participant)."""

    async def stop_recorder(self, identity: Identity, reason: str) -> None:
        """Stop the session's recording peer; segments sealed so far stay on the record."""

    async def session_ended(self, identity: Identity) -> None:
        """Seal the session's transcript from the case record's durable state; called once when the mediator
        ends a sealed session, before the room store shreds the session's key."""
