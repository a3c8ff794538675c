"""Revocation reaching open sockets: the per-request authority check, the notice-driven re-check, expiry timers,
the slow batched sweep."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from signaling import lobby
from signaling.authority import ANY_SCOPE, Authority, scopes_of
from signaling.errors import RoomError
from signaling.identity import Identity, Refused, Unavailable
from signaling.turns import Connection, Turn

if TYPE_CHECKING:
    from signaling.engine import RoomEngine

log = logging.getLogger("mediation.signaling")

# How long a socket refused on a request stays open, so that the request's ack and error reach it first.
ACK_SECONDS = 0.1
# The shortest pause between two sweeps (a ``credential_recheck_seconds`` of 0 asks on every request).
MIN_SWEEP_SECONDS = 0.05
# Sockets asked about in one ``authorize_many`` (the case record's read names each credential in a list).
SWEEP_BATCH = 500


class AuthorityCheck:
    """Whether each of this node's sockets may still act; runs on the engine's tasks and its sockets' turns.

    A socket is asked about in the case record (``Hooks.authorize``) when the versions of its scopes
    changed since it was last asked (a revocation, announced or seen by a request) and when its
    credential's expiry passes (a timer per socket). What nothing announces (a lost notice, a database
    edited by hand) is found by the sweep: every ``credential_recheck_seconds`` / 2 the node's
    sockets not found good for a quarter of it are asked about together (``Hooks.authorize_many``, one
    read of the case record), so the cost grows with the changes, not with sockets × time. A request
    asks alone only if the sweep has not found its socket good for ``credential_recheck_seconds`` (the
    case record did not answer it)."""

    def __init__(self, engine: RoomEngine, authority: Authority) -> None:
        self._engine = engine
        self.authority = authority

    def start(self) -> None:
        self.authority.listen(self._revoked)
        self._engine.tasks.own(self.authority.run())
        self._engine.tasks.own(self._sweep())

    async def before_handshake(self) -> int:
        """How many revocations there have been, read before the case record is asked about a handshake."""
        return (await self.authority.versions((ANY_SCOPE,)))[0]

    async def admitted(self, sid: str, connection: Connection, before: int) -> None:
        """A socket just authenticated: remember its versions and arm its expiry.

        ``before``: ``before_handshake``'s count. If no revocation at all was made since (on any node:
        the count is bumped with the scopes, before the case record could be asked after the change),
        the handshake's answer is current at these versions and its requests need not ask again until
        one moves. Otherwise its first request asks, as after any revocation in its scopes."""
        *versions, count = await self.authority.versions((*scopes_of(connection.identity), ANY_SCOPE))
        if count == before:
            connection.versions = tuple(versions)
        self.arm(sid, connection)

    def arm(self, sid: str, connection: Connection) -> None:
        """Ask about the socket again the moment its credential expires (exactly then, not at a sweep)."""
        expires_at = connection.identity.expires_at
        if expires_at is None:
            return
        if connection.expiry is not None:
            connection.expiry.cancel()
        loop = asyncio.get_running_loop()
        connection.expiry = loop.call_later(max(0.0, expires_at - time.time()), self._expired, sid)

    def disarm(self, connection: Connection) -> None:
        if connection.expiry is not None:
            connection.expiry.cancel()
            connection.expiry = None

    def _expired(self, sid: str) -> None:
        connection = self._engine.connections.get(sid)
        if connection is None or connection.refusal is not None:
            return
        connection.expiry = None
        if time.time() < (connection.identity.expires_at or 0.0):
            self.arm(sid, connection)  # the loop's clock ran ahead of the wall clock: not yet
            return
        self._engine.tasks.own(self._recheck([sid], due=True))

    async def check(self, sid: str, connection: Connection, *, due: bool = False, in_request: bool = True) -> None:
        """Raise the socket's refusal if its authority is gone; ``due``: ask the case record whatever the versions;
        ``in_request``: a request waits for its ack, so the socket closes a moment later rather than at once."""
        if connection.refusal is not None:
            raise connection.refusal
        identity = connection.identity
        # Read before asking the case record: a revocation committed after this read bumps them again.
        versions = await self.authority.versions(scopes_of(identity))
        interval = self._engine.settings.credential_recheck_seconds
        if (versions == connection.versions and not due and time.monotonic() - connection.checked_at < interval
                and not (identity.expires_at is not None and time.time() >= identity.expires_at)):
            return
        try:
            await self._engine.hooks.authorize(identity)
        except Unavailable:
            if connection.versions is not None and versions != connection.versions:
                raise  # a revocation touched it since: serve nothing until the case record says which
            return  # only the periodic re-check: the last answer stands, and the next request asks again
        except Refused as exc:
            await self._refuse(sid, connection, exc, in_request=in_request)
            raise connection.refusal from None
        connection.versions, connection.checked_at = versions, time.monotonic()

    async def _refuse(self, sid: str, connection: Connection, exc: Refused, *, in_request: bool) -> None:
        """The socket is told ``access_revoked`` and closes; then it leaves its room.

        The close does not wait for the departure: leaving writes the roster and the audit log, which
        may queue behind other writers (the audit sequencer, a checkpoint, SQLite's one writer), and a
        revoked socket must stop within a second whatever they do."""
        engine, identity = self._engine, connection.identity
        connection.refusal = RoomError(exc.code, exc.message)
        log.info("participant no longer authorized; it leaves the room", extra={
            "session_id": identity.session_id, "participant_id": identity.participant_id, "code": exc.code})
        await engine.outlet.emit("access_revoked", {"code": exc.code, "message": exc.message}, to=sid,
                                 ignore_queue=True)
        # Its departure is the leave below, not a drop: the disconnect must not start a reconnect grace.
        joined, connection.joined = connection.joined, False
        if in_request:
            engine.tasks.own(engine.runner.disconnect_soon(sid, ACK_SECONDS))  # after the request's ack
        else:
            await engine.outlet.disconnect(sid)  # after the notice, on the same socket: it arrives first
        if joined:
            engine.tasks.own(self._leave(sid, identity, exc.code))

    async def _leave(self, sid: str, identity: Identity, code: str) -> None:
        engine = self._engine
        try:
            await engine.runner.run(sid, identity, _leave(engine, code), None)
        except RoomError:
            pass  # no longer on the roster
        except Unavailable as exc_store:
            log.warning("a revoked member's departure waits for the room store",
                        extra={"session_id": identity.session_id, "error": str(exc_store)})

    def _revoked(self, scopes: frozenset[str] | None) -> None:
        """A revocation notice (None: some may have been lost): ask at once about this node's sockets in it."""
        for sid, connection in self._engine.connections.items():
            if connection.refusal is None and (scopes is None or scopes.intersection(scopes_of(connection.identity))):
                self._engine.tasks.own(self._recheck([sid], due=scopes is None))  # each socket apart, at once

    async def _recheck(self, sids: list[str], *, due: bool) -> None:
        for sid in sids:
            connection = self._engine.connections.get(sid)
            if connection is None or connection.refusal is not None:
                continue
            try:
                # After the socket's own request, if one is running: that request came before the change.
                async with connection.turns:
                    await self.check(sid, connection, due=due, in_request=False)
            except RoomError:
                pass  # told and closing
            except Unavailable as exc:
                # The versions could not be read: the socket's next request, or the next sweep, asks again.
                log.warning("could not check a socket's authority", extra={"error": str(exc)})
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one failed check must not stop the others
                log.exception("checking a socket's authority failed",
                              extra={"session_id": connection.identity.session_id})

    async def _sweep(self) -> None:
        """The slow safety net: every socket is asked about at least once per ``credential_recheck_seconds``,
        all of the node's due sockets in one ``authorize_many``."""
        interval = self._engine.settings.credential_recheck_seconds
        while True:
            await asyncio.sleep(max(interval / 2, MIN_SWEEP_SECONDS))
            now = time.monotonic()
            # Older than a quarter: none waits past three quarters of the interval, so a request never has to.
            due = [(sid, c) for sid, c in self._engine.connections.items()
                   if c.refusal is None and now - c.checked_at >= interval / 4]
            for first in range(0, len(due), SWEEP_BATCH):
                await self._sweep_once(due[first:first + SWEEP_BATCH])

    async def _sweep_once(self, due: list[tuple[str, Connection]]) -> None:
        started = time.monotonic()
        try:
            answers = await self._engine.hooks.authorize_many([connection.identity for _, connection in due])
        except asyncio.CancelledError:
            raise
        except Unavailable as exc:
            log.warning("could not re-check the sockets' authority", extra={"error": str(exc)})
            return  # the last answers stand; a request overdue asks alone, the next sweep asks again
        except Exception:  # noqa: BLE001 - the next sweep asks again
            log.exception("re-checking the sockets' authority failed")
            return
        refused = []
        for (sid, connection), answer in zip(due, answers, strict=True):
            if answer is None:
                # Found good as of ``started``; its versions are left as they were, so a revocation
                # announced meanwhile still makes its next request ask.
                connection.checked_at = max(connection.checked_at, started)
            elif self._engine.connections.get(sid) is connection and connection.refusal is None:
                refused.append(sid)
        if refused:
            # Each asked alone on its own turn (a request of its own may be running), then told and closed.
            self._engine.tasks.own(self._recheck(refused, due=True))


def _leave(engine: RoomEngine, code: str) -> Any:
    async def leave(turn: Turn, _payload: Any) -> None:
        lobby.leave(engine, turn, reason=code)
        turn.disconnects.remove(turn.sid)  # closed by the caller, once its notice has gone out
    return leave
