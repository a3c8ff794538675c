"""The room engine apart from any socket library: connect, one request's pipeline, disconnect, shutdown."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from signaling import devices, lobby, nodes, resync
from signaling.authority import Authority, LocalAuthority
from signaling.errors import RoomError
from signaling.identity import Hooks, Identity, Refused, Unavailable
from signaling.liveness import LocalLiveness, NodeLiveness
from signaling.partybudgets import LocalBudgets, PartyBudgets
from signaling.requests import Request
from signaling.revocation import AuthorityCheck
from signaling.roomsettings import RoomSettings
from signaling.roomstate import RoomStore
from signaling.janus import JanusClient
from signaling.sfu import Sfu, SfuSettings
from signaling.tasks import Tasks
from signaling.throttle import TokenBucket
from signaling.turns import Connection, Outlet, Turn, TurnRunner

log = logging.getLogger("mediation.signaling")

# How long a departure keeps asking a store that does not answer yet: 40 × 0.5 s.
RETRY_ATTEMPTS = 40
RETRY_SECONDS = 0.5
# Addresses remembered for the connection budget before the stale ones are dropped.
MAX_REMEMBERED_ADDRESSES = 10_000


class RoomEngine:
    """Every request is authorized on arrival against the room's current state, on whichever node.

    ``outlet`` sends notices and closes sockets (the socket adapter); the engine owns ``liveness`` and
    ``authority`` and closes them at ``close``."""

    def __init__(self, hooks: Hooks, store: RoomStore, settings: RoomSettings, outlet: Outlet,
                 liveness: NodeLiveness | None = None, authority: Authority | None = None,
                 on_node_lost: Callable[[int], None] = lambda _participants: None,
                 budgets: PartyBudgets | None = None, janus: JanusClient | None = None) -> None:
        self.hooks = hooks
        self.budgets: PartyBudgets = budgets or LocalBudgets()  # owned: closed at ``close``
        self.store = store
        self.settings = settings
        self.outlet = outlet
        self.liveness: NodeLiveness = liveness or LocalLiveness()
        self.on_node_lost = on_node_lost  # counts other nodes found gone, with the members marked
        self.connections: dict[str, Connection] = {}
        self.tasks = Tasks()
        # Names this process among the nodes sharing the room store; members record where their socket is.
        self.node_id = secrets.token_hex(8)
        self.runner = TurnRunner(store, hooks, self.liveness, outlet, self.tasks, self.node_id,
                                 settings.reconnect_grace_seconds)
        self.watch = nodes.NodeWatch(self)
        self.authority_check = AuthorityCheck(self, authority or LocalAuthority())
        # The rooms' media through Janus when instances are configured; otherwise the browsers' mesh.
        self.sfu: Sfu | None = None
        if settings.janus_urls:
            self.sfu = Sfu(SfuSettings(settings.janus_urls, settings.janus_api_secret, settings.janus_admin_key,
                                       settings.janus_video_bitrate, recorder_rtp_host=settings.recorder_rtp_host),
                           store, self._emit_here, self.tasks, client=janus)
            self.runner.media_changed = self.sfu.schedule
        self._connect_attempts: dict[str, list[float]] = {}

    def start(self) -> None:
        """Begin telling other nodes this one runs, looking after the members of nodes that stopped, and
        hearing revocations."""
        self.tasks.own(self.watch.keep_alive())
        self.authority_check.start()
        if self.sfu is not None:
            self.sfu.start()

    @property
    def media_mode(self) -> str:
        return "mesh" if self.sfu is None else "sfu"

    async def _emit_here(self, event: str, data: Any, sid: str) -> None:
        """A notice to a socket of this node (the SFU's offers go to the members whose handles it holds)."""
        await self.outlet.emit(event, data, to=sid, ignore_queue=True)

    async def close(self) -> None:
        for connection in self.connections.values():
            self.authority_check.disarm(connection)
        await self.tasks.close()
        if self.sfu is not None:
            await self.sfu.close()
        await self.watch.stopped()
        await self.liveness.close()
        await self.budgets.close()
        await self.authority_check.authority.close()

    def census(self) -> tuple[int, int]:
        """(rooms, participants) joined through this node's sockets."""
        joined = [c.identity.session_id for c in self.connections.values() if c.joined]
        return len(set(joined)), len(joined)

    def resync(self, since: float) -> None:
        """This node's sockets may have missed what other nodes sent since ``since``: resend it."""
        self.tasks.own(resync.resend(self, since))

    # --- connect and disconnect -------------------------------------------------------------------

    async def connect(self, sid: str, auth: Any, environ: dict[str, Any], address: str) -> None:
        """Accept the socket, or raise Refused (or Unavailable) with the reason for its ``connect_error``."""
        if not self._connect_allowed(address):
            raise Refused("rate_limited", "too many connection attempts; wait a minute")
        revocations = await self.authority_check.before_handshake()
        identity = await self.hooks.authenticate(auth, environ)
        room = await self.store.get(identity.session_id)
        if room is not None:
            lobby.check_entry(room, identity)
        settings = self.settings
        connection = Connection(
            identity=identity,
            chat_bucket=TokenBucket(settings.chat_rate, settings.chat_burst),
            signal_bucket=TokenBucket(settings.signal_rate, settings.signal_burst),
            flood_bucket=TokenBucket(settings.flood_rate, settings.flood_burst),
        )
        await self.authority_check.admitted(sid, connection, revocations)
        self.connections[sid] = connection

    def _connect_allowed(self, address: str) -> bool:
        now = time.monotonic()
        attempts = [t for t in self._connect_attempts.get(address, []) if t > now - 60]
        if len(attempts) >= self.settings.connects_per_minute:
            self._connect_attempts[address] = attempts
            return False
        attempts.append(now)
        self._connect_attempts[address] = attempts
        if len(self._connect_attempts) > MAX_REMEMBERED_ADDRESSES:
            self._connect_attempts = {a: t for a, t in self._connect_attempts.items() if t and t[-1] > now - 60}
        return True

    def knows(self, sid: str) -> bool:
        return sid in self.connections

    async def disconnected(self, sid: str) -> None:
        """The socket closed: its member is marked disconnected and its reconnect grace starts."""
        connection = self.connections.pop(sid, None)
        if connection is not None:
            self.authority_check.disarm(connection)
        if connection is None or not connection.joined:
            return
        identity = connection.identity
        # A departure not recorded would leave the member shown connected on a live node: while the room
        # store does not answer (Redis restarting), keep trying, as the resend after an outage does.
        for attempt in range(RETRY_ATTEMPTS):
            try:
                await self.runner.run(sid, identity, self._action(lobby.departed), None)
            except RoomError:
                pass  # the room has ended or dropped this member already: nothing to update
            except Unavailable as exc:
                if attempt + 1 < RETRY_ATTEMPTS:
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                log.error("departure not recorded: the room store did not answer",
                          extra={"session_id": identity.session_id, "error": str(exc)})
            except Exception:  # noqa: BLE001 - a disconnect has nobody to answer; log and go on
                log.exception("disconnect handling failed", extra={"session_id": identity.session_id})
            return

    # --- requests ---------------------------------------------------------------------------------

    def spend(self, sid: str, bucket: str) -> bool:
        """Take one request from the socket's ``bucket``; a socket that keeps on past refusals is cut off."""
        connection = self.connections[sid]
        taken = connection.chat_bucket if bucket == "chat" else connection.signal_bucket
        if taken.take():
            return True
        if connection.flood_bucket is not None and not connection.flood_bucket.take():
            # Refusing costs this node as much as serving: a socket that keeps on is cut off.
            connection.flood_bucket = None  # once
            log.warning("socket disconnected for flooding", extra={
                "session_id": connection.identity.session_id, "participant_id": connection.identity.participant_id})
            self.tasks.own(self.outlet.disconnect(sid))
        return False

    async def request(self, sid: str, request: Request, args: tuple[Any, ...]) -> dict[str, Any]:
        """Run one request of the table; its result for the ack. Raises RoomError or Unavailable."""
        event = request.event
        connection = self.connections.get(sid)
        if connection is None:
            raise RoomError("not_joined", "this socket is not connected to a room")
        if connection.refusal is not None:
            raise connection.refusal  # its authority was revoked; the socket is closing
        if len(args) > 1:
            raise RoomError("invalid_payload", f"{event} takes one payload object")
        if not self.spend(sid, request.bucket):
            raise RoomError("rate_limited", f"too many {event} requests; slow down")
        if request.needs_join and not connection.joined:
            raise RoomError("not_joined", "send join_room first")
        data = args[0] if args else None
        try:
            payload = request.payload.model_validate({} if data is None else data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            raise RoomError("invalid_payload", f"{event}: {where}: {first['msg']}") from None
        async with connection.turns:
            await self.authority_check.check(sid, connection)
            result = await self.runner.run(sid, connection.identity, self._guarded(sid, request), payload,
                                           joining=not request.needs_join)
            if not request.needs_join:
                connection.joined = True
        return {"ok": True, **(result or {})}

    async def _spend_budget(self, identity: Identity, request: Request) -> None:
        budget = self.settings.budget(request.budget or "")
        if not await self.budgets.take(identity.session_id, identity.participant_id, request.budget or "", budget):
            raise RoomError("rate_limited", f"too many {request.budget} requests from you ({request.event}): "
                                            f"{budget.describe()}")

    def _action(self, handler: Any) -> Any:
        async def act(turn: Turn, payload: Any) -> dict[str, Any] | None:
            return await handler(self, turn, payload)
        return act

    def _guarded(self, sid: str, request: Request) -> Any:
        async def act(turn: Turn, payload: Any) -> dict[str, Any] | None:
            if request.needs_join:
                if devices.waiting(turn.room, turn.member.participant_id, sid):
                    if request.event != "leave_room":
                        raise RoomError("device_waiting", "this device waits until the mediator admits it; "
                                        f"{turn.member.name} is present from another device")
                elif turn.member.sid != sid:
                    raise RoomError("not_joined", "this socket was replaced by a newer connection")
                else:
                    request.check_sender(turn.member)
            if request.budget is not None:
                # After the sender's checks: a request refused for who sent it files nothing, so spends nothing.
                await self._spend_budget(turn.identity, request)
            return await request.handler(self, turn, payload)
        return act
