"""The change feed: a committed change to a case, announced to every node and streamed to the pages that show it.

Whoever changes a case calls ``changed`` inside its write transaction. Once the transaction commits, the
change travels the path revocations travel (signaling.authority: in-process, or Redis pub/sub across
nodes) as a scope no room socket belongs to (``changed:case:<case_id>``), so the rooms pass over it and
each node's feed hears it. Each open stream (``GET /api/events``, server-sent events) is told of the
cases its principal may read, exactly as the corresponding GET decides: a party its own case, a case
officer or compliance officer every case, a mediator or bank representative the cases assigned to it
(and a case it was just assigned to or taken off, named with ``changed:staff:<user_id>``).

A stream carries no case content, only which case changed; the page fetches the view with its own
credential. The credential is resolved again before each event is sent, on every revocation notice that
touches it, and at least every ``credential_recheck_seconds``: a revoked credential's stream is told
``access_revoked`` and closed. Notices lost (a Redis subscription cut) become ``resync``: refetch all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server.access import ALL_CASE_ROLES, ASSIGNED_ROLES, Principal
from server.errors import ApiError, TooManyRequests, Unauthorized
from signaling.authority import Authority, case_scope, participant_scope, session_scope
from signaling.identity import Unavailable

if TYPE_CHECKING:  # credentials import the join links, which announce their changes here
    from server.credentials import Credentials

log = logging.getLogger("mediation.changes")

# Where a transaction keeps the changes it made until it commits (AsyncSession.info).
_PENDING = "changed_scopes"
_CASE = "changed:case:"
_STAFF = "changed:staff:"

# How often a quiet stream sends a comment, so proxies keep it open and the page sees it is alive.
HEARTBEAT_SECONDS = 15.0
# How long a browser waits before reconnecting after the stream ends (the SSE ``retry`` field).
RETRY_MILLISECONDS = 2000
# Open streams per credential: a page or two per tab; more is a leak or a flood.
STREAMS_PER_CREDENTIAL = 8

# Whether ``principal`` may read case ``case_id`` now (raises ApiError if not): CaseDesk.check_member.
MembershipCheck = Callable[[Principal, str], Awaitable[None]]
# What else the route requires of its caller, asked again with the credential (raises ApiError if no more).
StandingCheck = Callable[[], Awaitable[None]]


async def _no_further_check() -> None:
    return None


def changed(session: AsyncSession, case_id: str, *, staff: Iterable[str | None] = ()) -> None:
    """Once ``session`` commits, tell the pages showing case ``case_id`` (and these staff users) that it changed."""
    pending: set[str] = session.info.setdefault(_PENDING, set())
    pending.add(_CASE + case_id)
    pending.update(_STAFF + user_id for user_id in staff if user_id)


class _Stream:
    """One open event stream: what it has yet to send, and whether its credential must be asked about."""

    def __init__(self, principal: Principal, standing: StandingCheck) -> None:
        self.principal = principal
        self.standing = standing
        # Case id -> whether it may be told without asking (this staff user was assigned to it or taken off it).
        self.cases: dict[str, bool] = {}
        self.resync = False
        self.recheck = False
        self.closing = False
        self.wake = asyncio.Event()
        # The revocation scopes whose bump may mean this stream's credential is gone.
        self.scopes = {participant_scope(principal.subject_id or "")}
        if principal.case_id:
            self.scopes.add(case_scope(principal.case_id))
        if principal.session_id:
            self.scopes.add(session_scope(principal.session_id))

    def offer(self, scopes: frozenset[str] | None) -> None:
        if scopes is None:
            self.resync = self.recheck = True
            self.wake.set()
            return
        if self.scopes.intersection(scopes):
            self.recheck = True
            self.wake.set()
        cases = {scope[len(_CASE):] for scope in scopes if scope.startswith(_CASE)}
        if not cases:
            return
        principal = self.principal
        if principal.kind == "party":
            cases &= {principal.case_id or ""}
        # Assigned to it or taken off it in this very change: told either way, so the desk refetches.
        named = principal.kind == "staff" and _STAFF + (principal.subject_id or "") in scopes
        for case_id in cases:
            self.cases[case_id] = self.cases.get(case_id, False) or named
        if cases:
            self.wake.set()


class ChangeFeed:
    """Announces committed changes (``Database.after_commit``) and serves this node's event streams."""

    def __init__(self, authority: Authority, credentials: Credentials, check_member: MembershipCheck, *,
                 recheck_seconds: float, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self._authority = authority
        self._credentials = credentials
        self._check_member = check_member
        self._recheck_seconds = recheck_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._streams: set[_Stream] = set()
        self._closed = False
        authority.listen(self._notice)

    async def announce(self, info: dict[Any, Any]) -> None:
        scopes = info.pop(_PENDING, None)
        if not scopes:
            return
        try:
            await self._authority.revoke(scopes)
        except Unavailable as exc:
            # The change is committed; the pages showing it see it at their next refetch.
            log.error("a change could not be announced; open pages see it when they next refetch",
                      extra={"scopes": sorted(scopes), "error": str(exc)})

    def _notice(self, scopes: frozenset[str] | None) -> None:
        for stream in self._streams:
            stream.offer(scopes)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    async def close(self) -> None:
        """End every open stream (at shutdown): browsers reconnect, to this node or another."""
        self._closed = True
        for stream in self._streams:
            stream.closing = True
            stream.wake.set()

    async def serve(self, request: web.Request, principal: Principal,
                    standing: StandingCheck = _no_further_check) -> web.StreamResponse:
        """Stream ``principal``'s changes to ``request`` until the client leaves, the credential goes, or shutdown;
        ``standing`` is asked whenever the credential is (a compliance officer's key still in force)."""
        if self._closed:
            raise TooManyRequests("the server is shutting down; reconnect shortly", code="shutting_down",
                                  headers={"Retry-After": "2"})
        same = sum(1 for s in self._streams if s.principal.credential == principal.credential)
        if same >= STREAMS_PER_CREDENTIAL:
            raise TooManyRequests(f"{same} event streams are already open with this credential",
                                  code="too_many_streams")
        stream = _Stream(principal, standing)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a buffering proxy would hold every event until it fills a buffer
        })
        self._streams.add(stream)
        try:
            await response.prepare(request)
            await response.write(f"retry: {RETRY_MILLISECONDS}\nevent: ready\ndata: {{}}\n\n".encode())
            await self._pump(stream, response)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away; found at the next write (at most a heartbeat later)
        finally:
            self._streams.discard(stream)
        return response

    async def _pump(self, stream: _Stream, response: web.StreamResponse) -> None:
        checked_at = time.monotonic()
        while not stream.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.wake.wait(), self._heartbeat_seconds)
            stream.wake.clear()
            if stream.closing:
                return
            due = time.monotonic() - checked_at >= self._recheck_seconds
            if stream.recheck or stream.cases or stream.resync or due:
                refusal = await self._refusal(stream)
                if refusal is not None:
                    await _send(response, "access_revoked", {"code": refusal.code, "message": refusal.message})
                    return
                stream.recheck, checked_at = False, time.monotonic()
            if stream.resync:
                stream.resync, stream.cases = False, {}
                await _send(response, "resync", {})
                continue
            cases, stream.cases = stream.cases, {}
            sent = False
            for case_id, named in sorted(cases.items()):
                if named or await self._may_read(stream.principal, case_id):
                    await _send(response, "case_changed", {"case_id": case_id})
                    sent = True
            if not sent:
                await response.write(b": keepalive\n\n")

    async def _refusal(self, stream: _Stream) -> ApiError | None:
        """Why the stream's credential no longer stands, or None while it does."""
        principal = stream.principal
        try:
            now = await self._credentials.resolve_again(principal.credential or "")
        except Unauthorized as exc:  # CredentialRefused: expired, revoked, ended
            return exc
        if (now.kind, now.role, now.subject_id, now.case_id) != (principal.kind, principal.role,
                                                                  principal.subject_id, principal.case_id):
            return Unauthorized("the credential now stands for someone else", code="bad_token")
        try:
            await stream.standing()
        except ApiError as exc:
            return exc
        return None

    async def _may_read(self, principal: Principal, case_id: str) -> bool:
        if principal.kind == "party":
            return principal.case_id == case_id
        if principal.kind != "staff" or principal.role not in ALL_CASE_ROLES | ASSIGNED_ROLES:
            return False
        if principal.role in ALL_CASE_ROLES:
            return True
        try:
            await self._check_member(principal, case_id)
        except ApiError:
            return False
        return True


async def _send(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
