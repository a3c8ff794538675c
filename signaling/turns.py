"""Turns: one request's exclusive view of its room, and what goes out once the room is saved."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from signaling import meeting
from signaling.errors import RoomError
from signaling.identity import Hooks, Identity
from signaling.liveness import NodeLiveness
from signaling.roomstate import ADMITTED, Member, Room, RoomStore
from signaling.tasks import Tasks
from signaling.throttle import TokenBucket
from signaling.views import isolated_from, left_out, room_view, waiting_view

log = logging.getLogger("mediation.signaling")


class Outlet(Protocol):
    """Where notices go: the socket adapter (across nodes unless ``ignore_queue``: the sid is on this node).

    ``to`` is one sid or several: the same notice to several sockets is encoded once (and, across nodes,
    published once)."""

    async def emit(self, event: str, data: Any = None, *, to: str | list[str], ignore_queue: bool = False) -> None: ...

    async def disconnect(self, sid: str) -> None: ...


@dataclasses.dataclass(slots=True)
class Connection:
    """What this node knows of one of its sockets; runs only on the socket's own node."""

    identity: Identity
    chat_bucket: TokenBucket
    signal_bucket: TokenBucket
    flood_bucket: TokenBucket | None
    joined: bool = False
    checked_at: float = dataclasses.field(default_factory=time.monotonic)  # credential last found good
    # The authority versions of its scopes when it was last found good (None: not since it connected).
    versions: tuple[int, ...] | None = None
    refusal: RoomError | None = None  # set once its credential was found revoked; its disconnect is under way
    expiry: asyncio.TimerHandle | None = None  # asks about it again when its credential expires
    # One request of a socket at a time, in arrival order: a burst from one client queues here, it
    # does not hold the room store's connections or its room's lock against everyone else.
    turns: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


@dataclasses.dataclass
class Turn:
    """One request's view of its room, and what to send once the room is saved."""

    room: Room
    member: Member
    identity: Identity
    sid: str
    outbox: list[tuple[str, Any, str]] = dataclasses.field(default_factory=list)
    disconnects: list[str] = dataclasses.field(default_factory=list)
    audits: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    after_save: list[Callable[[], Awaitable[None]]] = dataclasses.field(default_factory=list)
    roster_changed: bool = False
    isolation_changed: bool = False
    # The views of members left out of a caucus as the turn began: a change inside the caucus leaves
    # theirs as it was, and then they are sent nothing at all (not even that something happened).
    frozen: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @classmethod
    def begin(cls, room: Room, member: Member, identity: Identity, sid: str) -> Turn:
        frozen = {m.participant_id: room_view(room, m) for m in room.members.values() if left_out(room, m)}
        return cls(room=room, member=member, identity=identity, sid=sid, frozen=frozen)

    def send(self, sid: str | None, event: str, data: Any) -> None:
        if sid is not None:
            self.outbox.append((event, data, sid))

    def audit(self, action: str, **detail: Any) -> None:
        self.audits.append((action, detail))

    def target(self, participant_id: str) -> Member:
        member = self.room.members.get(participant_id)
        if member is None:
            raise RoomError("unknown_participant", f"participant {participant_id} is not in this room")
        return member

    def other(self, participant_id: str) -> Member:
        """A member other than the sender."""
        if participant_id == self.member.participant_id:
            raise RoomError("cannot_target_self", "you cannot do this to yourself")
        return self.target(participant_id)


def system_identity(room: Room) -> Identity:
    """Who acts in turns nobody asked for: a member's grace running out, a node found gone."""
    return Identity(participant_id="system", role="system", name="system", case_id=room.case_id,
                    session_id=room.session_id, mode=room.mode)


Action = Callable[[Turn, Any], Awaitable[dict[str, Any] | None]]


class TurnRunner:
    """Runs an action inside its room's transaction, then sends, audits and disconnects what it queued."""

    def __init__(self, store: RoomStore, hooks: Hooks, liveness: NodeLiveness, outlet: Outlet, tasks: Tasks,
                 node_id: str, reconnect_grace_seconds: float) -> None:
        self.store = store
        self.hooks = hooks
        self.liveness = liveness
        self.outlet = outlet
        self.tasks = tasks
        self.node_id = node_id
        self.reconnect_grace_seconds = reconnect_grace_seconds
        # Called with the session id after each turn that changed the roster or the isolation (the SFU's
        # subscriptions follow them); None when the rooms use the mesh.
        self.media_changed: Callable[[str], None] | None = None

    async def run(self, sid: str, identity: Identity, action: Action, payload: Any,
                  *, joining: bool = False) -> dict[str, Any] | None:
        if joining:
            await self.store.create(Room(session_id=identity.session_id, case_id=identity.case_id,
                                         mode=identity.mode))
            await self.liveness.node_hosts(self.node_id, identity.session_id)
        async with self.store.transaction(identity.session_id) as room:
            if room is None or room.ended:
                raise RoomError("session_ended", "this session has ended")
            self.expire_stale(room)
            member = room.members.get(identity.participant_id)
            if member is None:
                if not joining:
                    raise RoomError("not_joined", "you are no longer on this room's roster; join again")
                member = Member(participant_id=identity.participant_id, role=identity.role, name=identity.name)
            turn = Turn.begin(room, member, identity, sid)
            result = await action(turn, payload)
            meeting.prune(turn)
        await self.flush(turn)
        return result

    def expire_stale(self, room: Room) -> None:
        # Members whose node died never get their grace timer; expire them lazily here.
        limit = time.time() - self.reconnect_grace_seconds
        for participant_id, member in list(room.members.items()):
            if not member.connected and member.disconnected_at is not None and member.disconnected_at < limit:
                del room.members[participant_id]

    async def flush(self, turn: Turn | None) -> None:
        if turn is None:
            return
        for action in turn.after_save:
            await action()
        for event, data, to in _grouped(turn.outbox):
            await self.outlet.emit(event, data, to=to[0] if len(to) == 1 else to)
        if turn.roster_changed or turn.isolation_changed:
            await self._broadcast_state(turn)
            if self.media_changed is not None:
                self.media_changed(turn.room.session_id)
        for action, detail in turn.audits:
            try:
                await self.hooks.audit(turn.identity, action, detail)
            except Exception:  # noqa: BLE001 - the room goes on; the failure is logged loudly
                log.exception("audit of a room event failed", extra={"action": action})
        for sid in turn.disconnects:
            if sid == turn.sid:
                # The requester's own socket closes after its acknowledgement has gone out.
                self.tasks.own(self.disconnect_soon(sid))
            else:
                await self.outlet.disconnect(sid)

    async def disconnect_soon(self, sid: str, delay: float = 1.0) -> None:
        """Close the socket a moment after its acknowledgement went out."""
        await asyncio.sleep(delay)
        await self.outlet.disconnect(sid)

    async def _broadcast_state(self, turn: Turn) -> None:
        room = turn.room
        for member in room.members.values():
            if member.sid is None:
                continue
            view = room_view(room, member)
            if not turn.isolation_changed and turn.frozen.get(member.participant_id) == view:
                continue
            await self.outlet.emit("room_state", view, to=member.sid)
            if turn.isolation_changed and member.status == ADMITTED:
                await self.outlet.emit("media_isolation", {"stop_sending_to": isolated_from(room, member)},
                                       to=member.sid)
        if turn.roster_changed:
            for participant_id, device in room.waiting_devices.items():
                member = room.members.get(participant_id)
                if member is not None:
                    await self.outlet.emit("room_state", waiting_view(room, member), to=device.sid)


def _grouped(outbox: list[tuple[str, Any, str]]) -> list[tuple[str, Any, list[str]]]:
    """Consecutive sends of one notice (the same event and the same payload object) become one send to
    their sids; every socket still gets its notices in the order they were queued."""
    grouped: list[tuple[str, Any, list[str]]] = []
    for event, data, sid in outbox:
        if grouped and grouped[-1][0] == event and grouped[-1][1] is data and sid not in grouped[-1][2]:
            grouped[-1][2].append(sid)
        else:
            grouped.append((event, data, [sid]))
    return grouped
