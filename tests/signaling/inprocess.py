"""The room engine without sockets: a case record of known identities, and a wire that keeps what is sent."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

from signaling.engine import RoomEngine
from signaling.errors import RoomError
from signaling.identity import Identity, Refused, Unavailable
from signaling.requests import REQUESTS
from signaling.roomsettings import RoomSettings
from signaling.roomstate import MemoryRoomStore

SESSION_ID = "ses_" + "5" * 32
CASE_ID = "cas_" + "c" * 32
PREFIX = {"mediator": "usr", "bank_representative": "usr", "borrower": "pty", "lender": "pty", "recorder": "rcd"}
_ids = itertools.count(1)


def identity(role: str, mode: str = "video") -> Identity:
    participant_id = f"{PREFIX[role]}_{next(_ids):032x}"
    return Identity(participant_id=participant_id, role=role, name=f"{role} {participant_id[-4:]}",
                    case_id=CASE_ID, session_id=SESSION_ID, mode=mode)


class CaseRecord:
    """The hooks of a case record that knows its identities; a revoked one may no longer take part."""

    def __init__(self, *, sealed: bool = True) -> None:
        self.identities: dict[str, Identity] = {}
        self.revoked: set[str] = set()
        self.audits: list[tuple[str, str, dict[str, Any]]] = []
        self.sealed = sealed
        self.recorder_started = 0
        self.batches = 0  # calls of authorize_many: the periodic re-checks of every socket at once
        self.asked: dict[str, int] = {}  # participant_id -> calls of authorize about it alone
        self.keys: list[tuple[str, bytes, dict[str, Any]]] = []  # e2ee keys filed: (participant_id, sealed, detail)
        self.answering = True  # False: authorize raises Unavailable, as a database that is down does
        self.proofs: dict[str, tuple[str, str]] = {}  # code_id -> (participant_id, act), spent by their use

    def add(self, role: str, mode: str = "video") -> Identity:
        made = identity(role, mode)
        self.identities[made.participant_id] = made
        return made

    async def authenticate(self, auth: Any, environ: dict[str, Any]) -> Identity:
        known = self.identities.get(auth.get("participant_id")) if isinstance(auth, dict) else None
        if known is None or known.participant_id in self.revoked:
            raise Refused("bad_token", "no such participant")
        return known

    async def authorize(self, identity: Identity) -> None:
        if not self.answering:
            raise Unavailable("the case record did not answer")
        self.asked[identity.participant_id] = self.asked.get(identity.participant_id, 0) + 1
        refusal = self._refusal(identity)
        if refusal is not None:
            raise refusal

    async def authorize_many(self, identities: Sequence[Identity]) -> list[Refused | None]:
        if not self.answering:
            raise Unavailable("the case record did not answer")
        self.batches += 1
        return [self._refusal(identity) for identity in identities]

    def _refusal(self, identity: Identity) -> Refused | None:
        if identity.participant_id in self.revoked:
            return Refused("bad_token", "this participant's link was revoked")
        if identity.expires_at is not None and time.time() >= identity.expires_at:
            return Refused("bad_token", "this participant's link has expired")
        return None

    async def audit(self, identity: Identity, action: str, detail: dict[str, Any]) -> None:
        self.audits.append((identity.participant_id, action, detail))

    async def participant_removed(self, identity: Identity, target_participant_id: str) -> None:
        self.revoked.add(target_participant_id)

    async def room_opened(self, identity: Identity) -> bool:
        return self.sealed

    async def chat_message(self, identity: Identity, message: dict[str, Any]) -> None:
        return None

    async def key_sealed(self, identity: Identity, sealed: bytes, recipients: list[str],
                         detail: dict[str, Any]) -> int:
        self.keys.append((identity.participant_id, sealed, detail))
        return len(self.keys) - 1

    def proof(self, identity: Identity, act: str) -> dict[str, str]:
        """A single-use proof of ``identity``'s possession factor for ``act`` (the server's are tested in
        tests/server/test_possession.py; here the engine must ask for one and refuse the act without it)."""
        code_id = f"pcd_{next(_ids):032x}"
        self.proofs[code_id] = (identity.participant_id, act)
        return {"code_id": code_id, "code": "12345678"}

    async def prove_possession(self, identity: Identity, act: str, proof: dict[str, str] | None) -> dict[str, Any]:
        if proof is None:
            raise RoomError("possession_required", f"{act} needs a possession proof")
        if self.proofs.pop(proof.get("code_id", ""), None) != (identity.participant_id, act):
            raise RoomError("possession_invalid", "not a proof for this member and act")
        return {"possession": {"method": "code", "code_id": proof["code_id"]}}

    async def consent_changed(self, identity: Identity, notice_sha256: str | None) -> None:
        return None

    async def start_recorder(self, identity: Identity) -> None:
        self.recorder_started += 1

    async def stop_recorder(self, identity: Identity, reason: str) -> None:
        return None

    async def session_ended(self, identity: Identity) -> None:
        return None


class Wire:
    """Stands where the socket adapter stands: keeps every notice, and closes sockets as socket.io would."""

    def __init__(self) -> None:
        self.engine: RoomEngine | None = None
        self.sent: list[tuple[str, str, Any]] = []  # (sid, event, data)
        self.closed: list[str] = []
        self.changed = asyncio.Event()

    async def emit(self, event: str, data: Any = None, *, to: str | list[str], ignore_queue: bool = False) -> None:
        for sid in [to] if isinstance(to, str) else to:
            self.sent.append((sid, event, data))
        self.changed.set()

    async def disconnect(self, sid: str) -> None:
        if sid in self.closed:
            return
        self.closed.append(sid)
        self.changed.set()
        assert self.engine is not None
        await self.engine.disconnected(sid)

    def to(self, sid: str, event: str | None = None, *, after: int = 0) -> list[Any]:
        return [data if event else (name, data) for to, name, data in self.sent[after:]
                if to == sid and (event is None or name == event)]

    async def wait_closed(self, sid: str, timeout: float = 5.0) -> None:
        async def closed() -> None:
            while sid not in self.closed:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(closed(), timeout)

    async def wait_sent(self, sid: str, event: str, *, after: int = 0, timeout: float = 5.0) -> list[Any]:
        """Every ``event`` sent to ``sid`` past the ``after``-th notice, once there is one."""
        async def sent() -> list[Any]:
            while not (found := self.to(sid, event, after=after)):
                self.changed.clear()
                await self.changed.wait()
            return found
        return await asyncio.wait_for(sent(), timeout)


class Rooms:
    """One engine on an in-process store; sockets named s1, s2, … connect with an identity and send requests."""

    def __init__(self, settings: RoomSettings | None = None, *, sealed: bool = True) -> None:
        self.record = CaseRecord(sealed=sealed)
        self.wire = Wire()
        self.store = MemoryRoomStore()
        self.engine = RoomEngine(self.record, self.store, settings or RoomSettings(), outlet=self.wire)
        self.wire.engine = self.engine
        self._sids = itertools.count(1)

    async def connect(self, who: Identity, address: str = "192.0.2.1") -> str:
        sid = f"s{next(self._sids)}"
        await self.engine.connect(sid, {"participant_id": who.participant_id}, {}, address)
        return sid

    async def send(self, sid: str, event: str, payload: Any = None) -> dict[str, Any]:
        """The ack of a request that succeeded; a refused one raises RoomError (the adapter maps it)."""
        return await self.engine.request(sid, REQUESTS[event], () if payload is None else (payload,))

    async def join(self, who: Identity) -> str:
        sid = await self.connect(who)
        await self.send(sid, "join_room", {})
        return sid

    async def close(self) -> None:
        await self.engine.close()
        await self.store.close()
