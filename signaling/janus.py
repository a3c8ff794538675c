"""A client of one Janus instance's HTTP API: its session, transactions, the long poll, plugin handles.

Only the signaling server speaks to Janus (docs/threat-model.md, "The selective forwarding unit"): every
request carries the API secret, browsers never see it. Requests Janus answers at once return the plugin's
answer; those it acknowledges first (join, publish, start, update) wait for the event carrying the same
transaction on the long poll. Events nobody waits for go to ``on_event`` with their handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp

log = logging.getLogger("mediation.signaling.janus")

VIDEOROOM = "janus.plugin.videoroom"
# Janus answers a long poll after 30 s with a keepalive at the latest; past that it is not answering.
POLL_SECONDS = 45.0
REQUEST_SECONDS = 10.0
MAX_EVENTS = 16


class JanusError(Exception):
    """Janus or its plugin refused a request: its numeric code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusLost(Exception):
    """The instance does not answer, or no longer knows our session (it restarted)."""


EventHandler = Callable[[int, dict[str, Any]], None]


class JanusClient:
    """The HTTP client every Janus session of this process goes through, and the sessions opened with it.

    Its own resource with its own lifetime (server/app.py ``janus_context``): ``start`` opens the connection
    pool, ``close`` destroys every session still open on its instance (their handles go with them) and
    waits for each long poll to end, then closes the pool. Nothing is left running once it returned."""

    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._sessions: set[JanusSession] = set()
        self.closed = False

    def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession()

    async def session(self, url: str, api_secret: str, on_event: EventHandler,
                      on_lost: Callable[[], None]) -> JanusSession:
        """A new API session on the instance at ``url`` (JanusLost if it does not answer)."""
        if self.closed:
            raise JanusLost("the Janus client is closed")
        self.start()
        assert self._http is not None
        session = JanusSession(self._http, url, api_secret, on_event, on_lost)
        self._sessions.add(session)
        session.on_closed = self._sessions.discard
        try:
            await session.open()
        except BaseException:
            await session.close()
            raise
        return session

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    async def close(self) -> None:
        self.closed = True
        for session in list(self._sessions):
            await session.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> JanusClient:
        self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


class JanusSession:
    """One API session on one instance; runs on the signaling event loop. Opened through ``JanusClient``.

    ``on_event(handle_id, event)`` receives the events no request waits for (webrtcup, hangup, plugin
    events); ``on_lost()`` is called once when the session is gone, after every waiting request failed."""

    def __init__(self, http: aiohttp.ClientSession, url: str, api_secret: str,
                 on_event: EventHandler, on_lost: Callable[[], None]) -> None:
        self.url = url.rstrip("/")
        self.on_closed: Callable[[JanusSession], None] = lambda _session: None
        self._http = http
        self._secret = api_secret
        self._on_event = on_event
        self._on_lost = on_lost
        self.session_id: int | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poll: asyncio.Task[None] | None = None
        self.lost = False

    async def open(self) -> None:
        answer = await self._post(self.url, {"janus": "create"})
        self.session_id = int(answer["data"]["id"])
        self._poll = asyncio.create_task(self._long_poll(), name=f"janus-poll-{self.session_id}")

    async def close(self) -> None:
        """Destroy the session on Janus (its handles go with it) and stop polling; also once it was lost."""
        self.on_closed(self)
        if self._poll is not None and self._poll is not asyncio.current_task():
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
        if self.session_id is not None and not self.lost:
            with contextlib.suppress(JanusError, JanusLost):
                await self._post(self._session_url, {"janus": "destroy"}, timeout=2.0)
        self._fail_waiting()

    @property
    def _session_url(self) -> str:
        return f"{self.url}/{self.session_id}"

    async def attach(self, plugin: str = VIDEOROOM) -> int:
        answer = await self._post(self._session_url, {"janus": "attach", "plugin": plugin})
        return int(answer["data"]["id"])

    async def detach(self, handle_id: int) -> None:
        with contextlib.suppress(JanusError):
            await self._post(f"{self._session_url}/{handle_id}", {"janus": "detach"}, timeout=3.0)

    async def request(self, handle_id: int, body: dict[str, Any], jsep: dict[str, Any] | None = None,
                      *, timeout: float = REQUEST_SECONDS) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send a plugin message; (the plugin's data, the JSEP that came with it). A plugin error raises JanusError."""
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        transaction = secrets.token_hex(8)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = waiter
        try:
            answer = await self._post(f"{self._session_url}/{handle_id}", message, transaction=transaction,
                                      timeout=timeout)
            if answer.get("janus") == "ack":
                try:
                    answer = await asyncio.wait_for(asyncio.shield(waiter), timeout)
                except asyncio.TimeoutError:
                    raise JanusLost(f"Janus at {self.url} sent no answer to {body.get('request')!r} "
                                    f"within {timeout:g} s") from None
        finally:
            self._waiting.pop(transaction, None)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved: a loss after the answer is not an error of this request
        data = answer.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise JanusError(int(data["error_code"]), str(data.get("error", "")))
        return data, answer.get("jsep")

    async def trickle(self, handle_id: int, candidate: dict[str, Any]) -> None:
        await self._post(f"{self._session_url}/{handle_id}", {"janus": "trickle", "candidate": candidate})

    # --- transport ------------------------------------------------------------------------------------

    async def _post(self, url: str, message: dict[str, Any], *, transaction: str | None = None,
                    timeout: float = REQUEST_SECONDS) -> dict[str, Any]:
        if self.lost:
            raise JanusLost(f"the Janus session at {self.url} is gone")
        body = {**message, "transaction": transaction or secrets.token_hex(8), "apisecret": self._secret}
        try:
            async with self._http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise JanusLost(f"Janus at {self.url} did not answer: {type(exc).__name__}") from None
        if not isinstance(answer, dict):
            raise JanusLost(f"Janus at {self.url} sent something other than a JSON object")
        if answer.get("janus") == "error":
            error = answer.get("error") or {}
            code, reason = int(error.get("code", 0)), str(error.get("reason", ""))
            if code == 458:  # JANUS_ERROR_SESSION_NOT_FOUND: the instance restarted or timed us out
                self._lose()
                raise JanusLost(f"Janus at {self.url} no longer knows session {self.session_id}")
            raise JanusError(code, reason)
        return answer

    async def _long_poll(self) -> None:
        failures = 0
        while not self.lost:
            params = {"maxev": str(MAX_EVENTS), "rid": secrets.token_hex(4), "apisecret": self._secret}
            try:
                async with self._http.get(self._session_url, params=params,
                                          timeout=aiohttp.ClientTimeout(total=POLL_SECONDS)) as response:
                    answer = await response.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                failures += 1
                if failures >= 2:
                    log.warning("Janus stopped answering", extra={"janus": self.url, "error": type(exc).__name__})
                    self._lose()
                    return
                await asyncio.sleep(0.2)
                continue
            failures = 0
            for event in answer if isinstance(answer, list) else [answer]:
                if isinstance(event, dict):
                    self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "keepalive":
            return
        if kind == "error" and (event.get("error") or {}).get("code") == 458:
            self._lose()
            return
        waiter = self._waiting.get(str(event.get("transaction")))
        if waiter is not None and kind == "event" and not waiter.done():
            waiter.set_result(event)
            return
        sender = event.get("sender")
        if isinstance(sender, int):
            try:
                self._on_event(sender, event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the poll
                log.exception("a Janus event could not be handled", extra={"janus_event": kind})

    def _lose(self) -> None:
        if self.lost:
            return
        self.lost = True
        self._fail_waiting()
        self._on_lost()

    def _fail_waiting(self) -> None:
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(JanusLost(f"the Janus session at {self.url} is gone"))
        self._waiting.clear()
