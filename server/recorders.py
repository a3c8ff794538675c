"""Recording peers: one worker process per recorded session, started and stopped on the room's word."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping

from server.tokens import new_token
from signaling.identity import Identity

log = logging.getLogger("mediation.recorders")

RECORDER_NAME = "录制 · Recorder"


# What a worker takes from its node's environment: how to find Python and its packages, locale and time
# zone. Never the node's settings: its database URL, TURN secret or key files are none of its business.
INHERITED = ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "HOME")


def worker_environment(parent: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """A recorder worker's whole environment: the few ``INHERITED`` variables of ``parent``, then ``own``."""
    return {**{name: parent[name] for name in INHERITED if name in parent}, **own}


@dataclasses.dataclass
class _Running:
    identity: Identity
    token_hash: bytes
    recipients: list[str]
    process: asyncio.subprocess.Process
    waiter: asyncio.Task[None]


class ProcessRecorders:
    """Starts ``python -m server.recorderworker`` per session; the worker joins the room as a participant.

    Media work runs in that process, never on the signaling event loop. Its credential lives only
    in this node's memory and dies with the worker: the worker connects back to this node.
    """

    def __init__(self, base_url: Callable[[], str], recipients: Callable[[str], object],
                 segment_seconds: float = 0.6, stop_grace_seconds: float = 30.0,
                 first_part: Callable[[str, str], Awaitable[int]] | None = None, log_level: str = "INFO",
                 log_bytes_per_minute: int = 256 * 1024, rtp_host: str = "127.0.0.1") -> None:
        self._base_url = base_url
        self._rtp_host = rtp_host  # where Janus forwards RTP to the worker, in rooms on the SFU
        self._log = {"MEDIATION_LOG_LEVEL": log_level, "MEDIATION_LOG_BYTES_PER_MINUTE": str(log_bytes_per_minute)}
        self._recipients = recipients
        # (case_id, session_id) -> the first part number free: a second recording of a session must
        # not reuse the storage keys of the first.
        self._first_part = first_part
        self._segment_seconds = segment_seconds
        self._stop_grace_seconds = stop_grace_seconds
        self._running: dict[str, _Running] = {}
        self._tokens: dict[bytes, Identity] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    async def start(self, identity: Identity) -> None:
        running = self._running.get(identity.session_id)
        if running is not None and running.process.returncode is None:
            return
        recipients = await self._recipients(identity.case_id)  # type: ignore[misc]
        first_part = 0 if self._first_part is None else await self._first_part(identity.case_id, identity.session_id)
        token, token_hash = new_token("rtk")
        recorder = Identity(participant_id=f"rcd_{secrets.token_hex(16)}", role="recorder", name=RECORDER_NAME,
                            case_id=identity.case_id, session_id=identity.session_id, mode=identity.mode)
        self._tokens[token_hash] = recorder
        env = worker_environment(os.environ, {**self._log, "RECORDER_TOKEN": token,
                                              "RECORDER_RECIPIENTS": ",".join(recipients)})
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.recorderworker", "--url", self._base_url(), "--session", identity.session_id,
            "--segment-seconds", str(self._segment_seconds), "--started-at", repr(time.time()),
            "--first-part", str(first_part), "--rtp-host", self._rtp_host, env=env,
            stdin=asyncio.subprocess.DEVNULL,
        )
        waiter = asyncio.create_task(self._reap(identity.session_id, process, token_hash))
        self._running[identity.session_id] = _Running(recorder, token_hash, list(recipients), process, waiter)
        log.info("recorder started", extra={"session_id": identity.session_id, "pid": process.pid})

    async def _reap(self, session_id: str, process: asyncio.subprocess.Process, token_hash: bytes) -> None:
        code = await process.wait()
        self._tokens.pop(token_hash, None)
        running = self._running.get(session_id)
        if running is not None and running.process is process:
            del self._running[session_id]
        level = logging.INFO if code == 0 else logging.ERROR
        log.log(level, "recorder exited", extra={"session_id": session_id, "returncode": code})

    async def stop(self, session_id: str, reason: str) -> None:
        """Called inside the room's turn: returns at once; the worker, disconnected by the room, flushes
        its last segment and exits, and is killed if it has not within the stop grace."""
        running = self._running.get(session_id)
        if running is None:
            return
        watcher = asyncio.create_task(self._ensure_exit(running, reason))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _ensure_exit(self, running: _Running, reason: str) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(running.waiter), self._stop_grace_seconds)
        except asyncio.TimeoutError:
            log.error("recorder did not exit; killing it",
                      extra={"session_id": running.identity.session_id, "reason": reason})
            with contextlib.suppress(ProcessLookupError):
                running.process.kill()

    async def wait_stopped(self, session_id: str, timeout: float = 60.0) -> None:
        """Return once the session's worker (if any) has exited, filing its last segments."""
        running = self._running.get(session_id)
        if running is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(running.waiter), timeout)
        except asyncio.TimeoutError:
            log.error("recorder still running; the transcript counts what is filed",
                      extra={"session_id": session_id})

    def participant(self, token_hash: bytes) -> Identity | None:
        """The running recorder whose token hashes to ``token_hash`` (server.credentials resolves it)."""
        return self._tokens.get(token_hash)

    def running(self) -> int:
        """Recorder workers alive on this node."""
        return len(self._running)

    def recipients(self, session_id: str) -> list[str]:
        """The keys this session's recorder seals to (fixed when it started)."""
        running = self._running.get(session_id)
        return list(running.recipients) if running is not None else []

    async def close(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        for running in list(self._running.values()):
            with contextlib.suppress(ProcessLookupError):
                running.process.terminate()
        for running in list(self._running.values()):
            try:
                await asyncio.wait_for(asyncio.shield(running.waiter), 10)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    running.process.kill()
                await running.waiter
