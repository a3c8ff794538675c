"""Room state (roster, lobby, lock, caucus, mutes, chat) behind one interface; the in-process store."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, Protocol

LOBBY, ADMITTED = "lobby", "admitted"


@dataclasses.dataclass
class Member:
    participant_id: str
    role: str
    name: str
    status: str = LOBBY
    sid: str | None = None
    node: str | None = None  # the server node holding the member's socket while connected
    connected: bool = True
    disconnected_at: float | None = None
    audio: bool = False
    video: bool = False
    chat_muted: bool = False
    resume_hash: str | None = None  # SHA-256 of the resume_key of the device holding the place
    public_key: str | None = None  # this join's X25519 device key, base64url (signaling/e2ee.py)


@dataclasses.dataclass
class Device:
    """A second connection of a party already present: it waits apart until the mediator admits it."""

    sid: str
    node: str  # the server node holding its socket
    since: float
    link_id: str | None = None  # the credential it entered with (None: a staff sign-in)
    resume_hash: str | None = None  # SHA-256 of the resume_key it was given, kept if it takes the place
    public_key: str | None = None  # its X25519 device key, kept if it takes the place


@dataclasses.dataclass
class Room:
    session_id: str
    case_id: str
    mode: str  # "video" or "chat"
    members: dict[str, Member] = dataclasses.field(default_factory=dict)
    locked: bool = False
    ended: bool = False
    caucus: list[str] | None = None  # participant_ids inside the caucus, mediator included
    removed: list[str] = dataclasses.field(default_factory=list)
    deleted: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # seq -> {by, at}
    consents: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # pid -> {notice_sha256, at}
    recording: bool = False
    sealed: bool = False  # whether records of this room are sealed to recipients (fixed when it opens)
    opened: bool = False
    waiting_devices: dict[str, Device] = dataclasses.field(default_factory=dict)  # participant_id -> its second
    janus: str | None = None  # the Janus instance (API URL) holding the room's media, once placed (signaling/sfu.py)
    # {participant_id, stream_id} of the one screen shared (signaling/meeting.py), or None
    screen_share: dict[str, str] | None = None
    hands: list[str] = dataclasses.field(default_factory=list)  # raised hands, in the order raised

    @property
    def mediator(self) -> Member | None:
        for member in self.members.values():
            if member.role == "mediator":
                return member
        return None

    def mediator_present(self) -> bool:
        mediator = self.mediator
        return mediator is not None and mediator.connected

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def clone(self) -> Room:
        """A copy that shares nothing mutable with this room (what the in-process store hands out and keeps).

        Field by field, since every field is a scalar, a list of strings, or a dict of flat dicts, of members
        or of devices (whose fields are scalars): a deep copy costs several times more, on every turn."""
        return Room(session_id=self.session_id, case_id=self.case_id, mode=self.mode,
                    members={pid: copy.copy(m) for pid, m in self.members.items()}, locked=self.locked,
                    ended=self.ended, caucus=None if self.caucus is None else list(self.caucus),
                    removed=list(self.removed), deleted={seq: dict(d) for seq, d in self.deleted.items()},
                    consents={pid: dict(c) for pid, c in self.consents.items()}, recording=self.recording,
                    sealed=self.sealed, opened=self.opened, janus=self.janus,
                    waiting_devices={pid: copy.copy(d) for pid, d in self.waiting_devices.items()},
                    screen_share=None if self.screen_share is None else dict(self.screen_share),
                    hands=list(self.hands))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Room:
        members = {pid: Member(**m) for pid, m in data.pop("members").items()}
        devices = {pid: Device(**d) for pid, d in data.pop("waiting_devices", {}).items()}
        return cls(members=members, waiting_devices=devices, **data)


class RoomStore(Protocol):
    """Where rooms live: this process (embedded) or Redis (several nodes). Both behave alike."""

    def transaction(self, session_id: str) -> contextlib.AbstractAsyncContextManager[Room | None]:
        """Exclusive access to one room across all nodes; changes are saved when the block exits cleanly."""

    async def create(self, room: Room) -> Room:
        """Create the room unless it exists; return the stored one."""

    async def get(self, session_id: str) -> Room | None: ...

    async def append_chat(self, session_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Give the message the room's next sequence number (from 1), store and return it.

        Callers hold the room's transaction, so numbering and storing are ordered with it."""

    async def next_seq(self, session_id: str) -> int:
        """The number the next appended message will get (callers hold the room's transaction)."""

    async def skip_seq(self, session_id: str) -> None:
        """Never give out the next number: it belongs to a message sealed but never stored."""

    async def chat_messages(self, session_id: str) -> list[dict[str, Any]]: ...

    async def shred(self, session_id: str) -> None:
        """Destroy the session's key and its chat once the transcript is sealed (or the session ended unsealed).

        The room stays, as a tombstone: ended, with no members, names or text."""

    async def close(self) -> None: ...


class MemoryRoomStore:
    """The embedded default: rooms in this process's memory."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}  # never handed out: callers get clones
        self._chats: dict[str, list[dict[str, Any]]] = {}
        self._seqs: dict[str, int] = {}  # the last number given out (or skipped) in each room
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def transaction(self, session_id: str) -> AsyncIterator[Room | None]:
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            stored = self._rooms.get(session_id)
            room = stored.clone() if stored is not None else None
            yield room
            if room is not None:
                self._rooms[session_id] = room.clone()

    async def create(self, room: Room) -> Room:
        async with self._locks.setdefault(room.session_id, asyncio.Lock()):
            if room.session_id not in self._rooms:
                self._rooms[room.session_id] = room.clone()
            return self._rooms[room.session_id].clone()

    async def get(self, session_id: str) -> Room | None:
        stored = self._rooms.get(session_id)
        return stored.clone() if stored is not None else None

    async def append_chat(self, session_id: str, message: dict[str, Any]) -> dict[str, Any]:
        messages = self._chats.setdefault(session_id, [])
        self._seqs[session_id] = self._seqs.get(session_id, 0) + 1
        stored = {**message, "seq": self._seqs[session_id]}
        messages.append(stored)
        return dict(stored)

    async def next_seq(self, session_id: str) -> int:
        return self._seqs.get(session_id, 0) + 1

    async def skip_seq(self, session_id: str) -> None:
        self._seqs[session_id] = self._seqs.get(session_id, 0) + 1

    async def chat_messages(self, session_id: str) -> list[dict[str, Any]]:
        return [dict(m) for m in self._chats.get(session_id, [])]

    async def shred(self, session_id: str) -> None:
        async with self._locks.setdefault(session_id, asyncio.Lock()):
            self._chats.pop(session_id, None)
            self._seqs.pop(session_id, None)
            stored = self._rooms.get(session_id)
            if stored is not None:
                self._rooms[session_id] = tombstone(stored)

    async def close(self) -> None:
        self._rooms.clear()
        self._chats.clear()
        self._seqs.clear()


def tombstone(room: Room) -> Room:
    """What is kept of a room once its session's key is shredded: that it ended, and nothing said in it."""
    return Room(session_id=room.session_id, case_id=room.case_id, mode=room.mode, ended=True, sealed=room.sealed,
                opened=room.opened)
