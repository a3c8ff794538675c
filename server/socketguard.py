"""Per-address budgets of the socket transport, and malformed frames counted instead of logged at length.

Before anyone signs in, a client can open engine.io sessions, poll, and send frames. Each of those costs
this node memory, CPU or log lines, so each has a budget per client address (behind a trusted proxy,
the address its ``X-Forwarded-For`` names, see server/proxies.py), refused before engine.io sees the
request with 429, ``Retry-After`` and ``{code, message}`` (docs/protocol.md, "Handshake"):

- ``too_many_sessions``: engine.io sessions open at once from the address;
- ``handshake_rate_limited``: new sessions per minute;
- ``poll_rate_limited``: polling requests per minute.

Websockets are not compressed: an offer of permessage-deflate is dropped before engine.io answers it.

A frame that does not decode as socket.io is dropped and counted (``mediation_malformed_frames``), and
logged at most once per address per minute as one line without a traceback; its session stays.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from aiohttp import hdrs, web
from socketio import packet as sio_packet

from server.ratelimit import SlidingWindow

log = logging.getLogger("mediation.sockets")

SOCKET_PATH = "/socket.io/"


class MalformedFrame(ValueError):
    """A client's frame that is not a socket.io packet this server accepts."""


class CheckedPacket(sio_packet.Packet):
    """socket.io's packet, whose decoding failures are ``MalformedFrame`` (a client's fault, not a bug)."""

    def decode(self, encoded_packet: Any) -> int:
        try:
            attachments = super().decode(encoded_packet)
        except (ValueError, TypeError, IndexError, KeyError, RecursionError) as exc:
            raise MalformedFrame(f"{type(exc).__name__}: {str(exc)[:100]}") from None
        # A client never sends a connect error, nor a type this protocol does not have.
        if self.packet_type not in (sio_packet.CONNECT, sio_packet.DISCONNECT, sio_packet.EVENT, sio_packet.ACK,
                                    sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            raise MalformedFrame(f"packet type {self.packet_type!r} is not accepted from a client")
        return attachments


class OncePerMinute:
    """True for the first occurrence of a key in each minute, false for the rest."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}

    def first(self, key: str) -> bool:
        now = self._clock()
        if now - self._last.get(key, -61.0) < 60.0:
            return False
        if len(self._last) > 10_000:
            self._last = {k: t for k, t in self._last.items() if now - t < 60.0}
        self._last[key] = now
        return True


def _address(environ: dict[str, Any]) -> str:
    request = environ.get("aiohttp.request")
    return str(getattr(request, "remote", None) or environ.get("REMOTE_ADDR") or "unknown")


class SocketBudgets:
    """The budgets of every client address on this node, and the middleware that applies them."""

    def __init__(self, *, sessions_per_address: int, handshakes_per_minute: int, polls_per_minute: int,
                 on_refused: Callable[[str], None] = lambda _code: None,
                 on_malformed: Callable[[], None] = lambda: None) -> None:
        self.sessions_per_address = sessions_per_address
        self._handshakes = SlidingWindow(handshakes_per_minute, 60.0)
        self._polls = SlidingWindow(polls_per_minute, 60.0)
        self._open: collections.Counter[str] = collections.Counter()
        self._session_address: dict[str, str] = {}
        self._on_refused = on_refused
        self._on_malformed = on_malformed
        self._malformed_logged = OncePerMinute()

    def open_sessions(self, address: str) -> int:
        return self._open[address]

    # --- engine.io sessions, as the socket.io server sees them open and close ---------------------

    def session_opened(self, eio_sid: str, environ: dict[str, Any]) -> bool:
        """Count a new engine.io session; False (refuse it) past the address's budget."""
        address = _address(environ)
        if self._open[address] >= self.sessions_per_address:
            self._on_refused("too_many_sessions")
            return False
        self._open[address] += 1
        self._session_address[eio_sid] = address
        return True

    def session_closed(self, eio_sid: str) -> None:
        address = self._session_address.pop(eio_sid, None)
        if address is not None:
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]

    def malformed(self, eio_sid: str, environ: dict[str, Any] | None, error: MalformedFrame) -> None:
        self._on_malformed()
        address = _address(environ or {})
        if self._malformed_logged.first(address):
            log.warning("malformed socket.io frames dropped (logged once a minute per address)",
                        extra={"client": address, "error": str(error)})

    # --- HTTP requests to /socket.io/ -----------------------------------------------------------

    def refusal(self, request: web.Request) -> web.Response | None:
        """The 429 a request past its address's budgets gets, or None."""
        address = request.remote or "unknown"
        polling = request.query.get("transport") == "polling"
        if "sid" not in request.query:
            if self._open[address] >= self.sessions_per_address:
                return self._refuse("too_many_sessions", 30,
                                    f"{self._open[address]} sessions are open from your address; close one first")
            retry = self._handshakes.hit(address)
            if retry is not None:
                return self._refuse("handshake_rate_limited", retry,
                                    f"too many new connections from your address; retry in {retry} s")
        if polling:
            retry = self._polls.hit(address)
            if retry is not None:
                return self._refuse("poll_rate_limited", retry,
                                    f"too many polling requests from your address; retry in {retry} s")
        return None

    def _refuse(self, code: str, retry: int, message: str) -> web.Response:
        self._on_refused(code)
        return web.json_response({"code": code, "message": message}, status=429,
                                 headers={"Retry-After": str(retry)})

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def socket_budgets(request: web.Request,
                                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            if request.path.startswith(SOCKET_PATH):
                refused = self.refusal(request)
                if refused is not None:
                    return refused
                request = uncompressed(request)
            return await handler(request)

        return socket_budgets


def uncompressed(request: web.Request) -> web.Request:
    """The request without its offer of permessage-deflate, so the websocket is not compressed.

    A compressed websocket keeps a zlib compressor and decompressor for its whole life: about 300 KB of
    allocations per socket, most of our memory per connection (bench/memory.py), for frames that are
    short JSON. Uncompressed, attacker-chosen chat text is never compressed together with what else the
    stream carries either."""
    if hdrs.SEC_WEBSOCKET_EXTENSIONS not in request.headers:
        return request
    headers = request.headers.copy()
    del headers[hdrs.SEC_WEBSOCKET_EXTENSIONS]
    return request.clone(headers=headers)


class GuardedServer(socketio.AsyncServer):
    """python-socketio's server, counting each engine.io session against its address's budget and treating
    an undecodable frame as the client's fault: dropped, counted, briefly logged."""

    def __init__(self, budgets: SocketBudgets, **options: Any) -> None:
        super().__init__(serializer=CheckedPacket, **options)
        self.budgets = budgets

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        if not self.budgets.session_opened(eio_sid, environ):
            return False  # engine.io refuses the session (the middleware refuses it first, with 429)
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except MalformedFrame as exc:
            # Dropped: the sender may lose that request, never its socket (docs/protocol.md, "Connecting").
            self.budgets.malformed(eio_sid, self.environ.get(eio_sid), exc)

    async def close_session(self, eio_sid: str) -> None:
        """Close an engine.io session without waiting for its client to collect the close packet.

        engine.io's own ``disconnect`` waits until the client has fetched everything queued: a polling
        client that never polls again would hold the caller (and the node's shutdown) forever."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None:
            await socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
            self.eio.sockets.pop(eio_sid, None)
            # Past the close packet, end the writer: it closes a WebSocket even if the client ignores the
            # close packet (a hostile one would otherwise hold the connection until the ping timeout).
            await socket.queue.put(None)

    async def close_sessions(self) -> None:
        """Close every engine.io session of this node, as ``close_session`` does."""
        for eio_sid in list(self.eio.sockets):
            await self.close_session(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            self.budgets.session_closed(eio_sid)


class TransportErrors(logging.Filter):
    """On engine.io's and socket.io's own loggers: a transport error is one line a minute, without traceback.

    Their tracebacks are about a client's bad bytes (an unknown engine.io packet, a bad polling body);
    each record is counted by ``on_error`` and only the first of each message per minute is kept."""

    def __init__(self, on_error: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self._on_error = on_error
        self._logged = OncePerMinute()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        self._on_error()
        if record.exc_info and record.exc_info[1] is not None:
            record.error = f"{type(record.exc_info[1]).__name__}: {str(record.exc_info[1])[:100]}"
        record.exc_info = None
        record.exc_text = None
        return self._logged.first(f"{record.name}:{record.msg}")
