"""The ``/room`` socket.io namespace: lobby, roster, chat, moderation, caucus and the WebRTC relay."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from pydantic import BaseModel, ValidationError

from signaling import payloads
from signaling.consent import NOTICE_HASHES, notice_view
from signaling.ice import ice_servers
from signaling.identity import Hooks, Identity, Refused, SequenceTaken, Unavailable
from signaling.roomstate import ADMITTED, LOBBY, Member, Room, RoomStore
from signaling.throttle import TokenBucket

log = logging.getLogger("mediation.signaling")

NAMESPACE = "/room"
# The recording peer only negotiates media and leaves; it never chats or moderates.
RECORDER_REQUESTS = frozenset({"signal", "media_state", "leave_room"})
PARTY_ROLES = frozenset({"borrower", "lender", "bank_representative"})
# Sent when Redis or the case record did not answer; the client may try again.
UNAVAILABLE = "the room is briefly unavailable; try again in a moment"
# How far before a lost Redis subscription chat is resent: a turn stamps sent_at before it publishes.
RESYNC_MARGIN_SECONDS = 5.0
# How long a resend keeps asking a store that does not answer yet: 40 × 0.5 s.
RESYNC_ATTEMPTS = 40
RESYNC_RETRY_SECONDS = 0.5


@dataclasses.dataclass(frozen=True)
class RoomSettings:
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl_seconds: int = 3600
    reconnect_grace_seconds: float = 60.0
    chat_rate: float = 5.0
    chat_burst: float = 10.0
    signal_rate: float = 100.0
    signal_burst: float = 300.0
    # Requests refused for rate a socket may send (burst, then per second) before it is disconnected:
    # far beyond what a client that heeds rate_limited ever reaches.
    flood_rate: float = 10.0
    flood_burst: float = 300.0
    connects_per_minute: int = 60
    # A socket's credential is checked again (Hooks.authorize) on a request once this long has passed
    # since its last check: a revocation stops an open socket at its next request after at most this.
    credential_recheck_seconds: float = 1.0
    # Every node says it runs this often; one silent for node_timeout_seconds counts as gone, and its
    # members are marked disconnected (their reconnect grace starts then).
    node_beat_seconds: float = 2.0
    node_timeout_seconds: float = 10.0


class SignalError(Exception):
    """A refused request: a code and a message for the sender; nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass
class Connection:
    """What this node knows of one of its sockets; runs only on the socket's own node."""

    identity: Identity
    joined: bool = False
    chat_bucket: TokenBucket | None = None
    signal_bucket: TokenBucket | None = None
    flood_bucket: TokenBucket | None = None
    checked_at: float = dataclasses.field(default_factory=time.monotonic)  # credential last found good
    refusal: tuple[str, str] | None = None  # (code, message) once the credential was found revoked
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

    def send(self, sid: str | None, event: str, data: Any) -> None:
        if sid is not None:
            self.outbox.append((event, data, sid))

    def audit(self, action: str, **detail: Any) -> None:
        self.audits.append((action, detail))

    def target(self, participant_id: str) -> Member:
        member = self.room.members.get(participant_id)
        if member is None:
            raise SignalError("unknown_participant", f"participant {participant_id} is not in this room")
        return member


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def request(model: type[BaseModel], *, admitted: bool = True, mediator: bool = False, bucket: str = "signal"):
    """Declare a client request: its payload model and who may send it; errors go back as ``error``."""

    def decorate(handler: Callable[..., Awaitable[dict[str, Any] | None]]):
        event = handler.__name__.removeprefix("on_")

        @functools.wraps(handler)
        async def run(self: RoomNamespace, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
            try:
                connection = self._connections.get(sid)
                if connection is None:
                    raise SignalError("not_joined", "this socket is not connected to a room")
                if extra:
                    raise SignalError("invalid_payload", f"{event} takes one payload object")
                taken = connection.chat_bucket if bucket == "chat" else connection.signal_bucket
                if taken is not None and not taken.take():
                    if connection.flood_bucket is not None and not connection.flood_bucket.take():
                        # Refusing costs this node as much as serving: a socket that keeps on is cut off.
                        self._own(self._cut_off(sid, connection))
                    raise SignalError("rate_limited", f"too many {event} requests; slow down")
                if not connection.joined and event != "join_room":
                    raise SignalError("not_joined", "send join_room first")
                await self._recheck(sid, connection)
                try:
                    payload = model.model_validate({} if data is None else data)
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    where = ".".join(str(p) for p in first["loc"]) or "payload"
                    raise SignalError("invalid_payload", f"{event}: {where}: {first['msg']}") from None
                async with connection.turns:
                    return {"ok": True, **(await self._take_turn(sid, connection, event, payload, handler,
                                                                 admitted=admitted, mediator=mediator) or {})}
            # The sender's socket is on this node: its errors need not cross Redis to every node.
            except SignalError as exc:
                self._on_error(exc.code)
                await self.emit("error", {"code": exc.code, "message": exc.message, "event": event}, to=sid,
                                ignore_queue=True)
                return {"ok": False, "error": exc.code, "message": exc.message}
            except Unavailable as exc:
                log.warning("room request refused", extra={"event": event, "reason": str(exc)})
                self._on_error("unavailable")
                await self.emit("error", {"code": "unavailable", "message": UNAVAILABLE, "event": event}, to=sid,
                                ignore_queue=True)
                return {"ok": False, "error": "unavailable", "message": UNAVAILABLE}
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the boundary: log it, tell the sender only a request id
                request_id = secrets.token_hex(8)
                log.exception("room request failed", extra={"event": event, "request_id": request_id})
                self._on_error("internal")
                message = f"internal error (request {request_id})"
                await self.emit("error", {"code": "internal", "message": message, "event": event}, to=sid,
                                ignore_queue=True)
                return {"ok": False, "error": "internal", "message": message}

        run.request_event = event  # type: ignore[attr-defined]
        return run

    return decorate


class RoomNamespace(socketio.AsyncNamespace):
    """Every request is authorized on arrival against the room's current state, on whichever node."""

    def __init__(self, hooks: Hooks, store: RoomStore, settings: RoomSettings,
                 on_error: Callable[[str], None] = lambda _code: None,
                 on_node_lost: Callable[[int], None] = lambda _participants: None) -> None:
        super().__init__(NAMESPACE)
        self._hooks = hooks
        self._store = store
        self._settings = settings
        self._on_error = on_error  # counts each refused request by its code
        self._on_node_lost = on_node_lost  # counts other nodes found gone, with the members marked
        self._connections: dict[str, Connection] = {}
        self._connect_attempts: dict[str, list[float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Transcripts being sealed: awaited, never cancelled, at shutdown.
        self._finishing: set[asyncio.Future[None]] = set()
        # Names this process among the nodes sharing the room store; members record where their socket is.
        self.node_id = secrets.token_hex(8)
        self._counted = False  # whether the store has counted this node as running yet

    def start(self) -> None:
        """Begin telling other nodes this one runs, looking after the members of nodes that stopped, and
        checking again the credentials of sockets that send nothing."""
        self._own(self._keep_alive())
        self._own(self._recheck_quiet())

    # --- connection ---------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        http_request = environ.get("aiohttp.request")
        address = str(getattr(http_request, "remote", None) or environ.get("REMOTE_ADDR") or "unknown")
        if not self._connect_allowed(address):
            raise _refused("rate_limited", "too many connection attempts; wait a minute")
        try:
            identity = await self._hooks.authenticate(auth, environ)
            room = await self._store.get(identity.session_id)
            if room is not None:
                self._check_entry(room, identity)
        except Refused as exc:
            raise _refused(exc.code, exc.message) from None
        except Unavailable as exc:
            log.warning("room connection refused", extra={"reason": str(exc)})
            raise _refused("unavailable", UNAVAILABLE) from None
        settings = self._settings
        self._connections[sid] = Connection(
            identity=identity,
            chat_bucket=TokenBucket(settings.chat_rate, settings.chat_burst),
            signal_bucket=TokenBucket(settings.signal_rate, settings.signal_burst),
            flood_bucket=TokenBucket(settings.flood_rate, settings.flood_burst),
        )

    def resync(self, since: float) -> None:
        """This node's sockets may have missed what other nodes sent since ``since``: resend it."""
        self._own(self._resync(since - RESYNC_MARGIN_SECONDS))

    async def _resync(self, since: float) -> None:
        sockets: dict[str, list[tuple[str, Identity]]] = {}
        for sid, connection in list(self._connections.items()):
            if connection.joined:
                sockets.setdefault(connection.identity.session_id, []).append((sid, connection.identity))
        for session_id, members in sockets.items():
            # Right after Redis comes back, pooled connections it closed fail once each, and a Redis
            # loading its append-only file refuses reads: ask again until it answers, not just once.
            for attempt in range(RESYNC_ATTEMPTS):
                try:
                    room = await self._store.get(session_id)
                    stored = await self._store.chat_messages(session_id) if room is not None else []
                    break
                except Unavailable as exc:
                    if attempt + 1 == RESYNC_ATTEMPTS:
                        log.error("no resend: the room store did not answer", extra={
                            "session_id": session_id, "attempts": RESYNC_ATTEMPTS, "error": str(exc)})
                        room = None
                    else:
                        await asyncio.sleep(RESYNC_RETRY_SECONDS)
            if room is None:
                continue
            messages = [m for m in stored if dt.datetime.fromisoformat(m["sent_at"]).timestamp() >= since]
            for sid, identity in members:
                member = room.members.get(identity.participant_id)
                if member is None or member.sid != sid:
                    continue
                # Only to this node's own socket; a client keeps one chat_message per seq.
                await self.emit("room_state", room_view(room, member), to=sid, ignore_queue=True)
                if member.status == ADMITTED:
                    await self.emit("media_isolation", {"stop_sending_to": isolated_from(room, member)}, to=sid,
                                    ignore_queue=True)
                for message in visible_history(room, member, messages):
                    await self.emit("chat_message", message, to=sid, ignore_queue=True)

    async def _cut_off(self, sid: str, connection: Connection) -> None:
        connection.flood_bucket = None  # once
        log.warning("socket disconnected for flooding", extra={"session_id": connection.identity.session_id,
                                                                "participant_id": connection.identity.participant_id})
        await self.disconnect(sid)

    async def _recheck(self, sid: str, connection: Connection) -> None:
        """Refuse the request and close the socket if its credential no longer admits it (see RoomSettings)."""
        if connection.refusal is not None:
            raise SignalError(*connection.refusal)  # its disconnect is under way
        now = time.monotonic()
        if now - connection.checked_at < self._settings.credential_recheck_seconds:
            return
        try:
            await self._hooks.authorize(connection.identity)
        except Refused as exc:
            connection.refusal = (exc.code, exc.message)
            self._own(self._disconnect_soon(sid))
            raise SignalError(exc.code, exc.message) from None
        except Unavailable:
            # Open rooms carry on while the case record is down; no revocation can be written to it
            # meanwhile, so the last check stands until it answers again.
            return
        connection.checked_at = now

    async def _recheck_quiet(self) -> None:
        """A socket that only listens is checked here, so a revocation stops it as it stops a busy one."""
        interval = self._settings.credential_recheck_seconds
        while True:
            await asyncio.sleep(interval)
            for sid, connection in list(self._connections.items()):
                if not connection.joined or connection.refusal is not None or connection.turns.locked():
                    continue  # not in a room yet, refused already, or a request of its own is checking it
                try:
                    await self._recheck(sid, connection)
                except SignalError as exc:
                    self._on_error(exc.code)
                    await self.emit("error", {"code": exc.code, "message": exc.message, "event": None}, to=sid,
                                    ignore_queue=True)
                except Exception:  # noqa: BLE001 - one failed check must not end the others
                    log.exception("checking a socket's credential failed",
                                  extra={"session_id": connection.identity.session_id})

    def census(self) -> tuple[int, int]:
        """(rooms, participants) joined through this node's sockets."""
        joined = [c.identity.session_id for c in self._connections.values() if c.joined]
        return len(set(joined)), len(joined)

    def _connect_allowed(self, address: str) -> bool:
        now = time.monotonic()
        attempts = [t for t in self._connect_attempts.get(address, []) if t > now - 60]
        if len(attempts) >= self._settings.connects_per_minute:
            self._connect_attempts[address] = attempts
            return False
        attempts.append(now)
        self._connect_attempts[address] = attempts
        if len(self._connect_attempts) > 10_000:
            self._connect_attempts = {a: t for a, t in self._connect_attempts.items() if t and t[-1] > now - 60}
        return True

    @staticmethod
    def _check_entry(room: Room, identity: Identity) -> None:
        if room.ended:
            raise Refused("session_ended", "this session has ended")
        if identity.participant_id in room.removed:
            raise Refused("removed", "the mediator removed you from this session")
        if room.locked and identity.participant_id not in room.members and identity.role != "mediator":
            raise Refused("room_locked", "the mediator has locked the room")

    async def on_disconnect(self, sid: str, *_reason: Any) -> None:
        connection = self._connections.pop(sid, None)
        if connection is None or not connection.joined:
            return
        identity = connection.identity
        # A departure not recorded would leave the member shown connected on a live node: while the room
        # store does not answer (Redis restarting), keep trying, as the resend after an outage does.
        for attempt in range(RESYNC_ATTEMPTS):
            try:
                await self._run_turn(sid, identity, self._departed, None)
            except SignalError:
                pass  # the room has ended or dropped this member already: nothing to update
            except Unavailable as exc:
                if attempt + 1 < RESYNC_ATTEMPTS:
                    await asyncio.sleep(RESYNC_RETRY_SECONDS)
                    continue
                log.error("departure not recorded: the room store did not answer",
                          extra={"session_id": identity.session_id, "error": str(exc)})
            except Exception:  # noqa: BLE001 - a disconnect has nobody to answer; log and go on
                log.exception("disconnect handling failed", extra={"session_id": identity.session_id})
            return

    async def _departed(self, turn: Turn, _payload: Any) -> None:
        if turn.member.sid != turn.sid:
            return  # an older socket of a participant who has already reconnected
        self._gone(turn, turn.member)

    def _gone(self, turn: Turn, member: Member, **detail: Any) -> None:
        """``member``'s socket is gone: mark it disconnected and start its reconnect grace."""
        member.connected, member.sid, member.node, member.disconnected_at = False, None, None, time.time()
        turn.roster_changed = True
        if member.role == "recorder":
            # The recording peer died: segments sealed so far stay on the record; the mediator may
            # start a new recording.
            del turn.room.members[member.participant_id]
            if turn.room.recording:
                turn.room.recording = False
                for other in turn.room.members.values():
                    turn.send(other.sid, "recording_stopped", {"reason": "recorder_lost"})
                turn.audit("recording_stopped", reason="recorder_lost")
            return
        if member.role == "mediator":
            self._close_caucus(turn, reason="mediator_left")
            for other in turn.room.members.values():
                if other.role != "mediator" and other.status == ADMITTED:
                    other.status = LOBBY
                    turn.send(other.sid, "returned_to_lobby", {"reason": "mediator_left"})
        elif turn.room.caucus and member.participant_id in turn.room.caucus:
            self._close_caucus(turn, reason="member_left")
        turn.audit("participant_disconnected", **detail)
        self._own(self._expire_later(turn.room.session_id, member.participant_id, member.disconnected_at))

    # --- nodes that stop ------------------------------------------------------------------------

    async def _keep_alive(self) -> None:
        settings = self._settings
        heard_since: float | None = None  # since when every beat of this node has reached the store
        while True:
            try:
                counted = await self._store.node_alive(self.node_id, settings.node_timeout_seconds)
                heard_since = heard_since or time.monotonic()
                if self._counted and not counted:
                    log.error("this node went unheard past its timeout; other nodes may have marked its members "
                              "disconnected, so their sockets are closed and rejoin",
                              extra={"node": self.node_id, "timeout_seconds": settings.node_timeout_seconds})
                    await self._release_lost_sockets()
                self._counted = True
                # After this node's own start or outage, the others had no chance to beat since the store
                # came back: wait one timeout before taking their silence for death.
                if time.monotonic() - heard_since >= settings.node_timeout_seconds:
                    for node_id, sessions in (await self._store.gone_nodes()).items():
                        if node_id != self.node_id:
                            await self._settle_gone_node(node_id, sessions)
            except asyncio.CancelledError:
                raise
            except Unavailable as exc:
                heard_since = None
                log.warning("could not check on the other nodes", extra={"reason": str(exc)})
            except Exception:  # noqa: BLE001 - one failed round must not end the node's liveness
                log.exception("checking on the other nodes failed")
            await asyncio.sleep(settings.node_beat_seconds)

    async def _settle_gone_node(self, node_id: str, sessions: list[str]) -> None:
        """Mark disconnected the members whose socket was on the gone node ``node_id``."""
        marked = 0
        for session_id in sessions:
            turn = None
            async with self._store.transaction(session_id) as room:
                if room is not None and not room.ended:
                    for member in list(room.members.values()):
                        if member.connected and member.node == node_id:
                            turn = turn or Turn(room=room, member=member, identity=_system_identity(room), sid="")
                            self._gone(turn, member, participant_id=member.participant_id, reason="node_lost")
                            marked += 1
                        elif not member.connected and member.disconnected_at is not None:
                            # Its grace timer may have run on the gone node: keep one here (a second
                            # timer for the same departure does nothing).
                            self._own(self._expire_later(session_id, member.participant_id, member.disconnected_at))
            await self._flush(turn)
        await self._store.forget_node(node_id)
        self._on_node_lost(marked)
        log.warning("a node stopped; its participants are marked disconnected",
                    extra={"node": node_id, "rooms": len(sessions), "participants": marked})

    async def _release_lost_sockets(self) -> None:
        for sid, connection in list(self._connections.items()):
            if not connection.joined:
                continue
            room = await self._store.get(connection.identity.session_id)
            member = room.members.get(connection.identity.participant_id) if room is not None else None
            if member is None or member.sid != sid:
                await self.disconnect(sid)

    async def _expire_later(self, session_id: str, participant_id: str, since: float) -> None:
        await asyncio.sleep(max(0.0, since + self._settings.reconnect_grace_seconds - time.time()))
        turn = None
        async with self._store.transaction(session_id) as room:
            if room is None:
                return
            member = room.members.get(participant_id)
            if member is None or member.connected or member.disconnected_at != since:
                return
            del room.members[participant_id]
            turn = Turn(room=room, member=member, identity=_system_identity(room), sid="", roster_changed=True)
        await self._flush(turn)

    async def close(self) -> None:
        if self._finishing:
            await asyncio.wait(list(self._finishing), timeout=90)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._counted:
            # The other nodes settle this node's members now rather than after its timeout.
            try:
                await self._store.node_stopped(self.node_id)
            except Unavailable as exc:
                log.warning("could not tell the other nodes this one stops", extra={"reason": str(exc)})

    # --- the request pipeline -----------------------------------------------------------------

    async def _take_turn(self, sid: str, connection: Connection, event: str, payload: Any, handler: Callable,
                         *, admitted: bool, mediator: bool) -> dict[str, Any] | None:
        identity = connection.identity

        async def guarded(turn: Turn, payload: Any) -> dict[str, Any] | None:
            if event != "join_room":
                if turn.member.sid != sid:
                    raise SignalError("not_joined", "this socket was replaced by a newer connection")
                if turn.member.role == "recorder" and event not in RECORDER_REQUESTS:
                    raise SignalError("forbidden", f"the recorder may not {event.replace('_', ' ')}")
                if mediator and turn.member.role != "mediator":
                    raise SignalError("forbidden", f'role "{turn.member.role}" may not {event.replace("_", " ")}')
                if admitted and turn.member.status != ADMITTED:
                    raise SignalError("not_admitted", "wait until the mediator admits you")
            return await handler(self, turn, payload)

        result = await self._run_turn(sid, identity, guarded, payload, joining=event == "join_room")
        if event == "join_room":
            connection.joined = True
        return result

    async def _run_turn(self, sid: str, identity: Identity, action: Callable, payload: Any,
                        *, joining: bool = False) -> dict[str, Any] | None:
        if joining:
            await self._store.create(Room(session_id=identity.session_id, case_id=identity.case_id,
                                          mode=identity.mode))
            await self._store.node_hosts(self.node_id, identity.session_id)
        async with self._store.transaction(identity.session_id) as room:
            if room is None or room.ended:
                raise SignalError("session_ended", "this session has ended")
            self._expire_stale(room)
            member = room.members.get(identity.participant_id)
            if member is None:
                if not joining:
                    raise SignalError("not_joined", "you are no longer on this room's roster; join again")
                member = Member(participant_id=identity.participant_id, role=identity.role, name=identity.name)
            turn = Turn(room=room, member=member, identity=identity, sid=sid)
            result = await action(turn, payload)
        await self._flush(turn)
        return result

    def _expire_stale(self, room: Room) -> None:
        # Members whose node died never get their grace timer; expire them lazily here.
        limit = time.time() - self._settings.reconnect_grace_seconds
        for participant_id, member in list(room.members.items()):
            if not member.connected and member.disconnected_at is not None and member.disconnected_at < limit:
                del room.members[participant_id]

    async def _flush(self, turn: Turn | None) -> None:
        if turn is None:
            return
        for action in turn.after_save:
            await action()
        for event, data, to in turn.outbox:
            await self.emit(event, data, to=to)
        if turn.roster_changed or turn.isolation_changed:
            await self._broadcast_state(turn.room, isolation=turn.isolation_changed)
        for action, detail in turn.audits:
            try:
                await self._hooks.audit(turn.identity, action, detail)
            except Exception:  # noqa: BLE001 - the room goes on; the failure is logged loudly
                log.exception("audit of a room event failed", extra={"action": action})
        for sid in turn.disconnects:
            if sid == turn.sid:
                # The requester's own socket closes after its acknowledgement has gone out.
                self._own(self._disconnect_soon(sid))
            else:
                await self.disconnect(sid)

    async def _start_finish(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def _own(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _disconnect_soon(self, sid: str) -> None:
        await asyncio.sleep(1.0)
        await self.disconnect(sid)

    async def _broadcast_state(self, room: Room, *, isolation: bool) -> None:
        for member in room.members.values():
            if member.sid is None:
                continue
            await self.emit("room_state", room_view(room, member), to=member.sid)
            if isolation and member.status == ADMITTED:
                await self.emit("media_isolation", {"stop_sending_to": isolated_from(room, member)}, to=member.sid)

    # --- requests -----------------------------------------------------------------------------

    @request(payloads.Empty, admitted=False)
    async def on_join_room(self, turn: Turn, _payload: payloads.Empty) -> dict[str, Any]:
        room, member, identity = turn.room, turn.member, turn.identity
        self._check_entry_or_fail(room, identity)
        if not room.opened:
            room.sealed = await self._hooks.room_opened(identity)
            room.opened = True
        if member.role == "recorder" and not room.recording:
            raise SignalError("forbidden", "no recording is running in this room")
        returning = identity.participant_id in room.members
        if returning and member.sid is not None and member.sid != turn.sid:
            turn.send(member.sid, "error", {"code": "replaced", "message": "you joined from another window",
                                            "event": "join_room"})
            turn.disconnects.append(member.sid)
        member.sid, member.node, member.connected, member.disconnected_at = turn.sid, self.node_id, True, None
        if member.role in ("mediator", "recorder"):
            member.status = ADMITTED  # the mediator's control survives its reconnects
        room.members[member.participant_id] = member
        turn.roster_changed = True
        turn.audit("participant_rejoined" if returning else "participant_joined", role=member.role)
        return {
            "participant_id": member.participant_id, "role": member.role, "name": member.name,
            "status": member.status, "mode": room.mode, "case_id": room.case_id, "session_id": room.session_id,
            "ice_servers": ice_servers(self._settings.stun_urls, self._settings.turn_urls, self._settings.turn_secret,
                                       member.participant_id, self._settings.turn_ttl_seconds),
            "room": room_view(room, member), "records_sealed": room.sealed, "recording_notice": notice_view(),
            "schedule": {"case_number": identity.case_number, "starts_at": identity.starts_at,
                         "duration_minutes": identity.duration_minutes},
        }

    def _check_entry_or_fail(self, room: Room, identity: Identity) -> None:
        try:
            self._check_entry(room, identity)
        except Refused as exc:
            raise SignalError(exc.code, exc.message) from None

    @request(payloads.Empty, admitted=False)
    async def on_leave_room(self, turn: Turn, _payload: payloads.Empty) -> dict[str, Any]:
        member = turn.member
        if turn.room.caucus and member.participant_id in turn.room.caucus:
            self._close_caucus(turn, reason="member_left")
        if member.role == "mediator":
            member.connected, member.sid, member.node, member.disconnected_at = False, None, None, time.time()
            for other in turn.room.members.values():
                if other.role != "mediator" and other.status == ADMITTED:
                    other.status = LOBBY
                    turn.send(other.sid, "returned_to_lobby", {"reason": "mediator_left"})
        else:
            del turn.room.members[member.participant_id]
        self._connections.get(turn.sid, Connection(identity=turn.identity)).joined = False
        turn.roster_changed = True
        turn.disconnects.append(turn.sid)
        turn.audit("participant_left")
        return {}

    @request(payloads.Target, mediator=True)
    async def on_admit(self, turn: Turn, payload: payloads.Target) -> None:
        target = turn.target(payload.participant_id)
        if target.status != LOBBY:
            raise SignalError("not_in_lobby", f"{target.name} is not waiting in the lobby")
        target.status = ADMITTED
        turn.send(target.sid, "admitted", {})
        if turn.room.recording and target.role in PARTY_ROLES and target.participant_id not in turn.room.consents:
            await self._stop_recording(turn, reason="consent_missing")
        turn.roster_changed = True
        turn.isolation_changed = bool(turn.room.caucus)
        turn.audit("participant_admitted", participant_id=target.participant_id, role=target.role)

    @request(payloads.Refuse, mediator=True)
    async def on_refuse(self, turn: Turn, payload: payloads.Refuse) -> None:
        target = turn.target(payload.participant_id)
        if target.status != LOBBY:
            raise SignalError("not_in_lobby", f"{target.name} is not waiting in the lobby")
        del turn.room.members[target.participant_id]
        turn.send(target.sid, "refused", {"reason": payload.reason})
        if target.sid:
            turn.disconnects.append(target.sid)
        turn.roster_changed = True
        turn.audit("participant_refused", participant_id=target.participant_id, reason=payload.reason)

    @request(payloads.Target, mediator=True)
    async def on_return_to_lobby(self, turn: Turn, payload: payloads.Target) -> None:
        target = self._other(turn, payload.participant_id)
        if target.status != ADMITTED:
            raise SignalError("not_admitted", f"{target.name} is not in the room")
        if turn.room.caucus and target.participant_id in turn.room.caucus:
            self._close_caucus(turn, reason="member_left")
        target.status = LOBBY
        turn.send(target.sid, "returned_to_lobby", {"reason": "mediator"})
        turn.roster_changed = True
        turn.audit("participant_returned_to_lobby", participant_id=target.participant_id)

    @request(payloads.SendChat, bucket="chat")
    async def on_send_chat(self, turn: Turn, payload: payloads.SendChat) -> dict[str, Any]:
        member, room = turn.member, turn.room
        if member.chat_muted:
            raise SignalError("chat_muted", "the mediator has muted your chat")
        try:
            text = payloads.normalise_text(payload.text)
        except ValueError as exc:
            raise SignalError("invalid_payload", f"send_chat: text {exc}") from None
        if not text:
            raise SignalError("empty_message", "the message is empty")
        if len(text) > payloads.MAX_CHAT_CHARS:
            raise SignalError("message_too_long", f"messages are limited to {payloads.MAX_CHAT_CHARS} characters")
        in_caucus = bool(room.caucus) and member.participant_id in (room.caucus or [])
        channel = "caucus" if in_caucus else "main"
        admitted = [m.participant_id for m in room.members.values() if m.status == ADMITTED]
        audience = list(room.caucus or []) if in_caucus else admitted
        draft = {"sent_at": _now_iso(), "participant_id": member.participant_id, "name": member.name,
                 "role": member.role, "text": text, "channel": channel, "audience": audience}
        if room.sealed:
            # Sealed into the case record before it is stored, seen or acknowledged: if sealing
            # fails, nothing of the message exists anywhere.
            await self._seal_chat(turn, draft)
        message = await self._store.append_chat(room.session_id, draft)
        delivered = public_message(message)
        for recipient in live_recipients(room, channel):
            turn.send(recipient.sid, "chat_message", delivered)
        return {"seq": message["seq"], "sent_at": message["sent_at"]}

    async def _seal_chat(self, turn: Turn, draft: dict[str, Any]) -> None:
        """Seal the message under the number the store gives next (callers hold the room's turn)."""
        while True:
            seq = await self._store.next_seq(turn.room.session_id)
            try:
                await self._hooks.chat_message(turn.identity, {**draft, "seq": seq})
                return
            except SequenceTaken:
                # An earlier message got this number sealed, then its node or the store failed before
                # storing it: the number stays with that sealed copy, and this message takes the next.
                await self._store.skip_seq(turn.room.session_id)

    @request(payloads.Empty)
    async def on_chat_history(self, turn: Turn, _payload: payloads.Empty) -> dict[str, Any]:
        messages = await self._store.chat_messages(turn.room.session_id)
        return {"messages": visible_history(turn.room, turn.member, messages)}

    @request(payloads.Typing, bucket="chat")
    async def on_typing(self, turn: Turn, payload: payloads.Typing) -> None:
        room, member = turn.room, turn.member
        channel = "caucus" if room.caucus and member.participant_id in room.caucus else "main"
        for recipient in live_recipients(room, channel):
            if recipient.participant_id != member.participant_id:
                turn.send(recipient.sid, "typing", {"participant_id": member.participant_id,
                                                    "active": payload.active})

    @request(payloads.MediaState, admitted=False)
    async def on_media_state(self, turn: Turn, payload: payloads.MediaState) -> None:
        turn.member.audio, turn.member.video = payload.audio, payload.video
        turn.roster_changed = True

    @request(payloads.Signal)
    async def on_signal(self, turn: Turn, payload: payloads.Signal) -> None:
        room, member = turn.room, turn.member
        if room.mode != "video":
            raise SignalError("chat_only", "this is a chat-only session; no media is exchanged")
        target = self._other(turn, payload.to)
        if target.status != ADMITTED or not target.connected:
            raise SignalError("not_admitted", f"{target.name} is not in the room")
        if payload.to in isolated_from(room, member):
            raise SignalError("isolated", "a private caucus is in progress; no media crosses it")
        check_signal_payload(payload.kind, payload.payload)
        turn.send(target.sid, "signal", {"from": member.participant_id, "kind": payload.kind,
                                         "payload": payload.payload})

    @request(payloads.MuteChat, mediator=True)
    async def on_mute_chat(self, turn: Turn, payload: payloads.MuteChat) -> None:
        target = self._other(turn, payload.participant_id)
        target.chat_muted = payload.muted
        turn.send(target.sid, "chat_muted", {"muted": payload.muted})
        turn.roster_changed = True
        turn.audit("chat_muted" if payload.muted else "chat_unmuted", participant_id=target.participant_id)

    @request(payloads.RequestMuteMedia, mediator=True)
    async def on_request_mute_media(self, turn: Turn, payload: payloads.RequestMuteMedia) -> None:
        target = self._other(turn, payload.participant_id)
        turn.send(target.sid, "mute_media_requested", {"audio": payload.audio, "video": payload.video})
        turn.audit("media_mute_requested", participant_id=target.participant_id, audio=payload.audio,
                   video=payload.video)

    @request(payloads.Refuse, mediator=True)
    async def on_remove_participant(self, turn: Turn, payload: payloads.Refuse) -> None:
        room = turn.room
        target = self._other(turn, payload.participant_id)
        if room.caucus and target.participant_id in room.caucus:
            self._close_caucus(turn, reason="member_left")
        del room.members[target.participant_id]
        room.removed.append(target.participant_id)
        turn.send(target.sid, "removed", {"reason": payload.reason})
        if target.sid:
            turn.disconnects.append(target.sid)
        turn.roster_changed = True
        turn.audit("participant_removed", participant_id=target.participant_id, reason=payload.reason)
        await self._hooks.participant_removed(turn.identity, target.participant_id)

    @request(payloads.LockRoom, mediator=True)
    async def on_lock_room(self, turn: Turn, payload: payloads.LockRoom) -> None:
        turn.room.locked = payload.locked
        turn.roster_changed = True
        turn.audit("room_locked" if payload.locked else "room_unlocked")

    @request(payloads.Empty, mediator=True)
    async def on_end_session(self, turn: Turn, _payload: payloads.Empty) -> None:
        room = turn.room
        if room.recording:
            await self._stop_recording(turn, reason="session_ended")
        room.ended, room.caucus = True, None
        if room.sealed:
            messages, deleted = await self._store.chat_messages(room.session_id), dict(room.deleted)
            identity = turn.identity

            async def finish() -> None:
                # Outside the room's lock: the transcript waits for the recorder's last segments.
                try:
                    await self._hooks.session_ended(identity, messages, deleted)
                    # Forget the plaintext only once the transcript is sealed.
                    await self._store.purge_chat(identity.session_id)
                except Exception:  # noqa: BLE001 - nobody waits on this; it must be loud
                    log.exception("sealing the transcript failed", extra={"session_id": identity.session_id})

            turn.after_save.append(lambda: self._start_finish(finish()))
        for member in room.members.values():
            if member.sid:
                turn.send(member.sid, "session_ended", {})
                turn.disconnects.append(member.sid)
        connection = self._connections.get(turn.sid)
        if connection is not None:
            connection.joined = False
        turn.audit("session_ended")

    @request(payloads.DeleteMessage, mediator=True)
    async def on_delete_message(self, turn: Turn, payload: payloads.DeleteMessage) -> None:
        room = turn.room
        messages = await self._store.chat_messages(room.session_id)
        message = next((m for m in messages if m["seq"] == payload.seq), None)
        if message is None:
            raise SignalError("unknown_message", f"no message {payload.seq} in this room")
        if str(payload.seq) in room.deleted:
            raise SignalError("already_deleted", f"message {payload.seq} is already deleted")
        room.deleted[str(payload.seq)] = {"by": turn.member.participant_id, "at": _now_iso()}
        for participant_id in message["audience"]:
            member = room.members.get(participant_id)
            if member is not None:
                turn.send(member.sid, "message_deleted", {"seq": payload.seq})
        turn.audit("message_deleted", seq=payload.seq, author=message["participant_id"])

    @request(payloads.GiveConsent, admitted=False)
    async def on_give_consent(self, turn: Turn, payload: payloads.GiveConsent) -> None:
        member = turn.member
        if member.role not in PARTY_ROLES:
            raise SignalError("forbidden", f'role "{member.role}" does not give recording consent')
        if payload.notice_sha256 not in NOTICE_HASHES:
            raise SignalError("unknown_notice", "that is not the recording notice this server shows")
        turn.room.consents[member.participant_id] = {"notice_sha256": payload.notice_sha256, "at": _now_iso()}
        turn.roster_changed = True
        turn.audit("consent_given", notice_sha256=payload.notice_sha256)
        await self._hooks.consent_changed(turn.identity, payload.notice_sha256)

    @request(payloads.Empty, admitted=False)
    async def on_withdraw_consent(self, turn: Turn, _payload: payloads.Empty) -> None:
        member, room = turn.member, turn.room
        if member.participant_id not in room.consents:
            raise SignalError("no_consent", "you have not given consent")
        del room.consents[member.participant_id]
        turn.roster_changed = True
        turn.audit("consent_withdrawn")
        await self._hooks.consent_changed(turn.identity, None)
        if room.recording:
            await self._stop_recording(turn, reason="consent_withdrawn")

    @request(payloads.Empty, mediator=True)
    async def on_start_recording(self, turn: Turn, _payload: payloads.Empty) -> None:
        room = turn.room
        if room.recording:
            raise SignalError("recording_active", "the session is already being recorded")
        if room.mode != "video":
            raise SignalError("chat_only", "a chat-only session has no media to record; its chat is sealed")
        if not room.sealed:
            raise SignalError("no_recipients", "no compliance officer key is registered; nothing can be sealed")
        missing = [m.name for m in room.members.values()
                   if m.status == ADMITTED and m.role in PARTY_ROLES and m.participant_id not in room.consents]
        if missing:
            raise SignalError("consent_missing", f"waiting for consent from {', '.join(sorted(missing))}")
        room.recording = True
        turn.roster_changed = True
        for member in room.members.values():
            turn.send(member.sid, "recording_started", {})
        turn.audit("recording_started")
        await self._hooks.start_recorder(turn.identity)

    @request(payloads.Empty, mediator=True)
    async def on_stop_recording(self, turn: Turn, _payload: payloads.Empty) -> None:
        if not turn.room.recording:
            raise SignalError("not_recording", "no recording is running")
        await self._stop_recording(turn, reason="mediator")

    async def _stop_recording(self, turn: Turn, *, reason: str) -> None:
        room = turn.room
        room.recording = False
        turn.roster_changed = True
        for member in room.members.values():
            turn.send(member.sid, "recording_stopped", {"reason": reason})
        for member in list(room.members.values()):
            if member.role == "recorder":
                del room.members[member.participant_id]
                if member.sid:
                    turn.disconnects.append(member.sid)
        turn.audit("recording_stopped", reason=reason)
        await self._hooks.stop_recorder(turn.identity, reason)

    @request(payloads.Target, mediator=True)
    async def on_open_caucus(self, turn: Turn, payload: payloads.Target) -> None:
        room = turn.room
        if room.caucus:
            raise SignalError("caucus_active", "close the current caucus first")
        target = self._other(turn, payload.participant_id)
        if target.status != ADMITTED:
            raise SignalError("not_admitted", f"{target.name} is not in the room")
        room.caucus = [turn.member.participant_id, target.participant_id]
        for member in room.members.values():
            if member.status != ADMITTED:
                continue
            if member.participant_id in room.caucus:
                turn.send(member.sid, "caucus_started", {"members": list(room.caucus)})
            else:
                turn.send(member.sid, "caucus_in_progress", {})
        turn.roster_changed = turn.isolation_changed = True
        turn.audit("caucus_opened", participant_id=target.participant_id)

    @request(payloads.Empty, mediator=True)
    async def on_close_caucus(self, turn: Turn, _payload: payloads.Empty) -> None:
        if not turn.room.caucus:
            raise SignalError("no_caucus", "no caucus is open")
        self._close_caucus(turn, reason="mediator")

    def _close_caucus(self, turn: Turn, *, reason: str) -> None:
        room = turn.room
        if not room.caucus:
            return
        members = room.caucus
        room.caucus = None
        for member in room.members.values():
            if member.status == ADMITTED:
                turn.send(member.sid, "caucus_ended", {})
        turn.roster_changed = turn.isolation_changed = True
        turn.audit("caucus_closed", members=members, reason=reason)

    @staticmethod
    def _other(turn: Turn, participant_id: str) -> Member:
        if participant_id == turn.member.participant_id:
            raise SignalError("cannot_target_self", "you cannot do this to yourself")
        return turn.target(participant_id)

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        sid = args[0] if args else None
        if not isinstance(event, str):
            return await self._unknown_event(sid, "")
        # A client can send a packet named "connect" or "disconnect"; only the server's own
        # dispatch may reach those handlers: a real connect comes before the socket is known,
        # a real disconnect after the manager has marked the socket as leaving.
        if event == "connect" and sid not in self._connections:
            return await super().trigger_event(event, *args)
        if event == "disconnect" and not self.server.manager.is_connected(sid, self.namespace):
            return await super().trigger_event(event, *args)
        if getattr(getattr(self, f"on_{event}", None), "request_event", None) and event not in (
                "connect", "disconnect"):
            return await super().trigger_event(event, *args)
        return await self._unknown_event(sid, event[:64])

    async def _unknown_event(self, sid: str | None, event: str) -> dict[str, Any]:
        connection = self._connections.get(sid) if sid is not None else None
        if connection is None:
            return {"ok": False, "error": "unknown_event", "message": "no such request"}
        if connection.signal_bucket is not None and not connection.signal_bucket.take():
            # Unknown names are throttled like any request, and past the limit not even answered.
            return {"ok": False, "error": "rate_limited", "message": "too many requests; slow down"}
        await self.emit("error", {"code": "unknown_event", "message": f"no such request {event!r}",
                                  "event": event}, to=sid, ignore_queue=True)
        return {"ok": False, "error": "unknown_event", "message": "no such request"}


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """The client's connect_error carries ``message`` and ``data: {code, message}``."""
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})


def _system_identity(room: Room) -> Identity:
    return Identity(participant_id="system", role="system", name="system", case_id=room.case_id,
                    session_id=room.session_id, mode=room.mode)


def isolated_from(room: Room, member: Member) -> list[str]:
    """Whom ``member`` must neither send media to nor exchange signaling with, during a caucus."""
    if not room.caucus:
        return []
    inside = member.participant_id in room.caucus
    return [m.participant_id for m in room.members.values()
            if m.status == ADMITTED and m.participant_id != member.participant_id
            and (m.participant_id in room.caucus) != inside]


def live_recipients(room: Room, channel: str) -> list[Member]:
    """Connected members who receive live traffic of ``channel`` right now."""
    admitted = [m for m in room.members.values() if m.status == ADMITTED and m.sid]
    if not room.caucus:
        return admitted
    if channel == "caucus":
        return [m for m in admitted if m.participant_id in room.caucus]
    return [m for m in admitted if m.participant_id not in room.caucus]


def public_message(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key != "audience"}


def visible_history(room: Room, viewer: Member, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages ``viewer`` may see: its channels only; deletions hidden from parties, marked for the mediator."""
    visible = []
    for message in messages:
        if viewer.participant_id not in message["audience"]:
            continue
        deleted = room.deleted.get(str(message["seq"]))
        if deleted is not None and viewer.role != "mediator":
            continue
        shown = public_message(message)
        if deleted is not None:
            shown["deleted"] = deleted
        visible.append(shown)
    return visible


def room_view(room: Room, viewer: Member) -> dict[str, Any]:
    """The room as ``viewer`` may see it: lobby members see only themselves; outsiders of a caucus see it frozen."""
    participants = []
    in_lobby = viewer.status != ADMITTED
    caucus = room.caucus or []
    viewer_outside = bool(caucus) and viewer.participant_id not in caucus
    for member in room.members.values():
        if in_lobby and member.participant_id != viewer.participant_id:
            continue
        entry = {
            "participant_id": member.participant_id, "role": member.role, "name": member.name,
            "status": member.status, "connected": member.connected, "audio": member.audio, "video": member.video,
            "chat_muted": member.chat_muted, "in_caucus": member.participant_id in caucus,
            "consented": member.participant_id in room.consents,
        }
        if viewer_outside and member.participant_id in caucus:
            # Nothing of the caucus crosses to those left out of it: not its members, not their presence.
            entry.update(connected=True, audio=False, video=False, in_caucus=False)
        participants.append(entry)
    view: dict[str, Any] = {
        "session_id": room.session_id, "mode": room.mode, "locked": room.locked, "ended": room.ended,
        "mediator_present": room.mediator_present(), "participants": participants,
        "caucus": {"active": bool(caucus)}, "recording": room.recording,
        "isolated_from": isolated_from(room, viewer) if viewer.status == ADMITTED else [],
    }
    if caucus and not viewer_outside and not in_lobby:
        view["caucus"]["members"] = list(caucus)
    return view


def check_signal_payload(kind: str, payload: dict[str, Any]) -> None:
    """Offers and answers carry ``{type, sdp}``; ICE candidates ``{candidate, sdpMid, sdpMLineIndex}``."""
    if kind in ("offer", "answer"):
        if payload.get("type") != kind or not isinstance(payload.get("sdp"), str) or set(payload) - {"type", "sdp"}:
            raise SignalError("invalid_payload", f"signal: a {kind} payload is {{type: \"{kind}\", sdp: string}}")
        return
    allowed = {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"}
    candidate = payload.get("candidate")
    if set(payload) - allowed or "candidate" not in payload or not (candidate is None or isinstance(candidate, str)):
        raise SignalError("invalid_payload", "signal: an ice_candidate payload is {candidate, sdpMid, sdpMLineIndex}")
    fragment = payload.get("usernameFragment")
    if fragment is not None and not isinstance(fragment, str):
        raise SignalError("invalid_payload", "signal: usernameFragment must be a string")
    mid, index = payload.get("sdpMid"), payload.get("sdpMLineIndex")
    if mid is not None and not isinstance(mid, str) or index is not None and (
            not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 64):
        raise SignalError("invalid_payload", "signal: sdpMid must be a string and sdpMLineIndex a small integer")
