"""The ``/room`` socket.io namespace: a thin adapter from socket.io to the room engine.

It connects and disconnects sockets, dispatches each event through the request table
(``signaling/requests.py``, where every event's handler is named) and maps errors to the wire:
a RoomError or Unavailable becomes an ``error`` event and ``{ok: false}`` ack, the socket stays;
anything else is logged with its traceback and the sender learns only a request id."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

import socketio

from signaling.authority import Authority
from signaling.engine import RoomEngine
from signaling.errors import RoomError
from signaling.identity import Hooks, Refused, Unavailable
from signaling.janus import JanusClient
from signaling.liveness import NodeLiveness
from signaling.partybudgets import PartyBudgets
from signaling.requests import REQUESTS
from signaling.roomsettings import RoomSettings
from signaling.roomstate import RoomStore

log = logging.getLogger("mediation.signaling")

__all__ = ["NAMESPACE", "RoomNamespace", "RoomSettings"]

NAMESPACE = "/room"
# Sent when Redis or the case record did not answer; the client may try again.
UNAVAILABLE = "the room is briefly unavailable; try again in a moment"


class RoomNamespace(socketio.AsyncNamespace):
    """The only socket.io-aware part of the rooms, with the Redis fan-out (``signaling/fanout.py``)."""

    def __init__(self, hooks: Hooks, store: RoomStore, settings: RoomSettings,
                 on_error: Callable[[str], None] = lambda _code: None,
                 on_node_lost: Callable[[int], None] = lambda _participants: None,
                 liveness: NodeLiveness | None = None, authority: Authority | None = None,
                 budgets: PartyBudgets | None = None, janus: JanusClient | None = None) -> None:
        super().__init__(NAMESPACE)
        self._on_error = on_error  # counts each refused request by its code
        self.engine = RoomEngine(hooks, store, settings, outlet=self, liveness=liveness, authority=authority,
                                 on_node_lost=on_node_lost, budgets=budgets, janus=janus)

    @property
    def node_id(self) -> str:
        return self.engine.node_id

    def start(self) -> None:
        self.engine.start()

    async def close(self) -> None:
        await self.engine.close()

    def census(self) -> tuple[int, int]:
        return self.engine.census()

    def resync(self, since: float) -> None:
        """Called by the fan-out when its subscription is back (on its listener task; it does not block)."""
        self.engine.resync(since)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        http_request = environ.get("aiohttp.request")
        address = str(getattr(http_request, "remote", None) or environ.get("REMOTE_ADDR") or "unknown")
        try:
            await self.engine.connect(sid, auth, environ, address)
        except Refused as exc:
            raise _refused(exc.code, exc.message) from None
        except Unavailable as exc:
            log.warning("room connection refused", extra={"reason": str(exc)})
            raise _refused("unavailable", UNAVAILABLE) from None

    async def on_disconnect(self, sid: str, *_reason: Any) -> None:
        await self.engine.disconnected(sid)

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        sid = args[0] if args else None
        if not isinstance(event, str):
            return await self._unknown_event(sid, "")
        # A client can send a packet named "connect" or "disconnect"; only the server's own
        # dispatch may reach those handlers: a real connect comes before the socket is known,
        # a real disconnect after the manager has marked the socket as leaving.
        if event == "connect" and not self.engine.knows(sid):
            return await super().trigger_event(event, *args)
        if event == "disconnect" and not self.server.manager.is_connected(sid, self.namespace):
            return await super().trigger_event(event, *args)
        request = REQUESTS.get(event)
        if request is None:
            return await self._unknown_event(sid, event[:64])
        try:
            return await self.engine.request(sid, request, args[1:])
        # The sender's socket is on this node: its errors need not cross Redis to every node.
        except RoomError as exc:
            return await self._refuse(sid, event, exc.code, exc.message)
        except Unavailable as exc:
            log.warning("room request refused", extra={"event": event, "reason": str(exc)})
            return await self._refuse(sid, event, "unavailable", UNAVAILABLE)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the boundary: log it, tell the sender only a request id
            request_id = secrets.token_hex(8)
            log.exception("room request failed", extra={"event": event, "request_id": request_id})
            return await self._refuse(sid, event, "internal", f"internal error (request {request_id})")

    async def _refuse(self, sid: str, event: str, code: str, message: str) -> dict[str, Any]:
        self._on_error(code)
        await self.emit("error", {"code": code, "message": message, "event": event}, to=sid, ignore_queue=True)
        return {"ok": False, "error": code, "message": message}

    async def _unknown_event(self, sid: str | None, event: str) -> dict[str, Any]:
        """No such request, joined or not; unknown names spend the signal budget and past it get no ``error``."""
        if sid is None or not self.engine.knows(sid):
            return {"ok": False, "error": "unknown_event", "message": "no such request"}
        if not self.engine.spend(sid, "signal"):
            return {"ok": False, "error": "rate_limited", "message": "too many requests; slow down"}
        await self.emit("error", {"code": "unknown_event", "message": f"no such request {event!r}",
                                  "event": event}, to=sid, ignore_queue=True)
        return {"ok": False, "error": "unknown_event", "message": "no such request"}


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """The client's connect_error carries ``message`` and ``data: {code, message}``."""
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})
