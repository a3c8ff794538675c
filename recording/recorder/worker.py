"""The recording worker: joins a room as its recorder and files each participant's sealed WebM segments.

Runs in its own process (``python -m server.recorderworker``), so media work never touches the
signaling event loop. It is just another client of the room: it answers the offers participants
send it, records what they send without decoding, seals every segment to the case's recipients in
memory and uploads only ciphertext. Credentials come from the environment, never the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import socketio

from recording.recorder.coverage import block_times, media_ranges
from recording.recorder.forwarded import ForwardedMedia
from recording.recorder.peer import RecorderPeer
from recording.records.sealing import parse_recipient, seal
from recording.records.transcript import SCREEN_SUFFIX

log = logging.getLogger("mediation.recorder")

NAMESPACE = "/room"
UPLOAD_ATTEMPTS = 5
# Segments uploading at once. A segment is handed over as soon as it is sealed, not after the one
# before it is filed: a crash then loses only what was not yet sent, however slow the node answers.
UPLOADS_IN_FLIGHT = 8
# In a room on the SFU, how often the datagrams dropped on the forwarding ports are logged (when they changed).
DROPS_REPORT_SECONDS = 60.0


def screen_source(participant_id: str) -> str:
    """The recording source id of ``participant_id``'s shared screen (docs/records.md, "Screen recordings")."""
    return f"{participant_id}{SCREEN_SUFFIX}"


class RecordingWorker:
    """One room's recorder: a socket.io client in front of a RecorderPeer."""

    def __init__(self, url: str, session_id: str, token: str, recipients: Sequence[str],
                 segment_seconds: float = 0.6, started_at: float | None = None, first_part: int = 0,
                 rtp_host: str = "127.0.0.1") -> None:
        self._url = url.rstrip("/")
        self._session_id = session_id
        self._token = token
        self._recipients = [parse_recipient(r) for r in recipients]
        if not self._recipients:
            raise ValueError("a recorder needs at least one recipient to seal to")
        self._sio = socketio.AsyncClient(reconnection=False)
        self._http: aiohttp.ClientSession | None = None
        # Time zero of every file is when the mediator started the recording, not when this
        # process came up, so the files match the session's clock.
        self._clock_zero = time.time() if started_at is None else started_at
        self._peer = RecorderPeer(self._on_segment, segment_seconds=segment_seconds,
                                  session_started_at=self._clock_zero)
        # A participant's current file: a new offer (after a caucus, a reconnect) starts a new part.
        self._current: dict[str, str] = {}
        self._parts: dict[str, int] = {}
        self._first_part = first_part  # parts below it hold an earlier recording of the session
        self._files: dict[str, tuple[str, int]] = {}
        # participant_id -> the stream id of the screen it shares (room_state's screen_share), recorded apart
        self._screens: dict[str, str] = {}
        self._done = asyncio.Event()
        self._failures = 0
        self._uploads: set[asyncio.Task[None]] = set()
        self._upload_slots = asyncio.Semaphore(UPLOADS_IN_FLIGHT)
        # In a room on the SFU: Janus forwards each participant's RTP here (``media_forwards``), no offers come.
        self._rtp_host = rtp_host
        self.forwarded: ForwardedMedia | None = None
        self._forwards: dict[str, frozenset[tuple[str, int]]] = {}  # participant -> its (kind, ssrc) now
        self._forwards_lock = asyncio.Lock()
        self._register()

    def _register(self) -> None:
        on = self._sio.on
        on("signal", self._on_signal, namespace=NAMESPACE)
        on("room_state", self._on_room_state, namespace=NAMESPACE)
        on("media_isolation", self._on_isolation, namespace=NAMESPACE)
        on("media_forwards", self._on_forwards, namespace=NAMESPACE)
        on("recording_stopped", self._on_stop, namespace=NAMESPACE)
        on("session_ended", self._on_stop, namespace=NAMESPACE)
        on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    async def run(self) -> int:
        """Record until the room stops the recording or drops the connection; 0 if every segment was filed."""
        self._http = aiohttp.ClientSession()
        try:
            await self._sio.connect(self._url, namespaces=[NAMESPACE], transports=["websocket"],
                                    auth={"token": self._token, "session_id": self._session_id}, wait_timeout=15)
            joined = await self._sio.call("join_room", {}, namespace=NAMESPACE, timeout=15)
            if not joined.get("ok"):
                log.error("the room refused the recorder", extra={"error": joined.get("error")})
                return 2
            log.info("recorder joined", extra={"session_id": self._session_id, "media": joined.get("media")})
            if joined.get("media") == "sfu" and not await self._receive_forwarded():
                return 2
            reported: dict[str, int] = {}
            while not self._done.is_set():
                try:
                    await asyncio.wait_for(self._done.wait(), DROPS_REPORT_SECONDS)
                except TimeoutError:
                    reported = self._report_drops(reported)
        finally:
            if self.forwarded is not None:
                self.forwarded.close()  # no frame reaches a file after this
                self._report_drops({})
            await self._peer.close()  # flushes every open file's last segment through _on_segment
            if self._uploads:
                await asyncio.wait(set(self._uploads))  # each logs and counts its own failure
            if self._sio.connected:
                await self._sio.disconnect()
            await self._sio.shutdown()
            await self._http.close()
        return 1 if self._failures else 0

    async def _on_signal(self, data: dict[str, Any]) -> None:
        sender, kind, payload = data.get("from"), data.get("kind"), data.get("payload") or {}
        if not isinstance(sender, str):
            return
        if kind == "offer":
            if self.forwarded is not None:
                return  # in a room on the SFU the recorder takes no connection from anyone
            await self._close_file(sender)
            file_id = self._new_part(sender)
            screen_stream = self._screens.get(sender)
            screen_id = None
            if screen_stream is not None and f"a=msid:{screen_stream} " in payload.get("sdp", ""):
                # The shared screen is a source of its own (docs/records.md, "Screen recordings"), with its
                # own parts: a new one only when a connection carries the screen again.
                source = screen_source(sender)
                screen_part = self._parts.get(source, self._first_part - 1) + 1
                self._parts[source] = screen_part
                screen_id = f"{source}#{screen_part}"
                self._files[screen_id] = (source, screen_part)
            answer = await self._peer.handle_offer(file_id, payload.get("sdp", ""), screen_stream=screen_stream,
                                                   screen_id=screen_id)
            await self._sio.call("signal", {"to": sender, "kind": "answer",
                                            "payload": {"type": "answer", "sdp": answer}},
                                 namespace=NAMESPACE, timeout=15)
        elif kind == "ice_candidate" and sender in self._current:
            await self._peer.add_ice_candidate(self._current[sender], payload)

    async def _receive_forwarded(self) -> bool:
        """Bind the sockets Janus forwards to and give the room their ports; False if the room refused them."""
        self.forwarded = ForwardedMedia(self._rtp_host)
        rtp_port, rtcp_port = await self.forwarded.open()
        taken = await self._sio.call("record_media", {"rtp_port": rtp_port, "rtcp_port": rtcp_port},
                                     namespace=NAMESPACE, timeout=15)
        if not taken.get("ok"):
            log.error("the room refused the recorder's forwarding ports", extra={"error": taken.get("error")})
            return False
        log.info("receiving forwarded media", extra={"host": self._rtp_host, "rtp_port": rtp_port,
                                                     "rtcp_port": rtcp_port})
        return True

    def _report_drops(self, reported: dict[str, int]) -> dict[str, int]:
        """Log the forwarded datagrams dropped so far, by reason, if they changed since ``reported``."""
        drops = dict(self.forwarded.drops) if self.forwarded is not None else {}
        if drops and drops != reported:
            log.warning("forwarded datagrams dropped", extra={"drops": drops, "taken": self.forwarded.taken})
        return drops

    async def _on_forwards(self, data: Any) -> None:
        """The streams Janus forwards here now: a participant's new set of streams starts a new file part."""
        forwarded = self.forwarded
        if forwarded is None or not isinstance(data, dict) or not isinstance(data.get("source"), str):
            return
        wanted: dict[str, dict[str, tuple[int, int | None]]] = {}
        for item in data.get("forwards") or []:
            if not isinstance(item, dict):
                continue
            pid, kind, ssrc, port = item.get("participant_id"), item.get("kind"), item.get("ssrc"), item.get("feedback_port")
            if (isinstance(pid, str) and kind in ("audio", "video") and isinstance(ssrc, int) and 0 < ssrc < 2 ** 32
                    and (port is None or isinstance(port, int) and 0 < port < 65536)):
                wanted.setdefault(pid, {})[kind] = (ssrc, port)
        async with self._forwards_lock:
            try:
                forwarded.expect_source(data["source"])
            except ValueError:
                log.error("the room named no address as the forwarder's source", extra={"source": data["source"]})
                return
            for participant_id in [p for p in self._forwards if p not in wanted]:
                await self._close_file(participant_id)
            for participant_id, streams in wanted.items():
                now = frozenset((kind, ssrc) for kind, (ssrc, _port) in streams.items())
                if self._forwards.get(participant_id) == now:
                    continue
                await self._close_file(participant_id)
                file_id = self._new_part(participant_id)
                video = streams.get("video")

                async def ask_keyframe(ssrc: int | None = video[0] if video else None) -> None:
                    if ssrc is not None:
                        forwarded.request_keyframe(ssrc)

                sink = self._peer.open_forwarded(file_id, set(streams), ask_keyframe if video else None)
                for kind, (ssrc, port) in streams.items():
                    if ssrc in forwarded.ssrcs:  # an SSRC reused for another participant: the old stream ends
                        forwarded.remove(ssrc)
                    forwarded.add(file_id, kind, ssrc, sink(kind), port)
                self._forwards[participant_id] = now

    def _new_part(self, participant_id: str) -> str:
        part = self._parts.get(participant_id, self._first_part - 1) + 1
        self._parts[participant_id] = part
        file_id = f"{participant_id}#{part}"
        self._files[file_id] = (participant_id, part)
        self._current[participant_id] = file_id
        return file_id

    async def _close_file(self, participant_id: str) -> None:
        """Close the participant's current file, if any (its forwarded streams first: no frame after the end)."""
        streams = self._forwards.pop(participant_id, frozenset())
        if self.forwarded is not None:
            for _kind, ssrc in streams:
                self.forwarded.remove(ssrc)
        file_id = self._current.pop(participant_id, None)
        if file_id is not None:
            await self._peer.close_participant(file_id)

    async def _on_room_state(self, state: dict[str, Any]) -> None:
        share = state.get("screen_share")
        self._screens = ({share["participant_id"]: share["stream_id"]} if isinstance(share, dict)
                         and isinstance(share.get("participant_id"), str) and isinstance(share.get("stream_id"), str)
                         else {})
        present = {p["participant_id"] for p in state.get("participants", [])
                   if p.get("status") == "admitted" and p.get("connected")}
        for participant_id in [p for p in self._current if p not in present]:
            await self._close_file(participant_id)

    async def _on_isolation(self, data: dict[str, Any]) -> None:
        for participant_id in data.get("stop_sending_to", []):
            await self._close_file(participant_id)

    async def _on_stop(self, _data: Any = None) -> None:
        self._done.set()

    async def _on_disconnect(self, *_args: Any) -> None:
        self._done.set()

    async def _on_segment(self, file_id: str, index: int, data: bytes, started_at: float, ended_at: float,
                          final: bool) -> None:
        participant_id, part = self._files[file_id]
        ciphertext = seal(data, self._recipients)
        url = f"{self._url}/api/recordings/{self._session_id}/segments"
        # What this segment holds, measured from its blocks: the transcript's gaps are computed from it.
        try:
            media = ",".join(f"{first}-{last}" for first, last in media_ranges(block_times(data)))
        except ValueError:
            log.exception("segment %s/%s: cannot read back its media times; filed as holding none", file_id, index)
            media = ""
        params = {"participant_id": participant_id, "part": str(part), "index": str(index), "media": media,
                  "clock_zero_ms": str(round(self._clock_zero * 1000)), "final": "true" if final else "false"}
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/octet-stream",
                   "X-Content-SHA256": hashlib.sha256(ciphertext).hexdigest()}
        if self._http is None:
            raise RuntimeError("segment produced before the worker started")
        await self._upload_slots.acquire()  # back pressure once too many are in flight
        task = asyncio.create_task(self._upload(self._http, file_id, index, url, params, ciphertext, headers),
                                   name=f"recorder-upload-{file_id}-{index}")
        self._uploads.add(task)
        task.add_done_callback(self._uploaded)

    def _uploaded(self, task: asyncio.Task[None]) -> None:
        self._uploads.discard(task)
        self._upload_slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("segment upload %s failed", task.get_name(), exc_info=task.exception())
            self._failures += 1

    async def _upload(self, http: aiohttp.ClientSession, file_id: str, index: int, url: str,
                      params: dict[str, str], ciphertext: bytes, headers: dict[str, str]) -> None:
        """POST one sealed segment, retrying what the node may take later; a refusal or the last failure is counted."""
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                async with http.post(url, params=params, data=ciphertext, headers=headers) as response:
                    if response.status == 201:
                        return
                    body = await response.text()
                    if response.status < 500:
                        log.error("segment %s/%s refused: HTTP %s %s", file_id, index, response.status, body[:200])
                        self._failures += 1
                        return
            except aiohttp.ClientError as exc:
                log.warning("segment upload failed (attempt %s): %s; retrying", attempt, exc)
            await asyncio.sleep(0.5 * 2 ** attempt)
        log.error("segment %s/%s lost after %s attempts", file_id, index, UPLOAD_ATTEMPTS)
        self._failures += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="recording.recorder.worker", description="record one mediation session")
    parser.add_argument("--url", required=True, help="the server node to join through")
    parser.add_argument("--session", required=True, help="the session to record")
    parser.add_argument("--segment-seconds", type=float, default=0.6)
    parser.add_argument("--started-at", type=float, default=None, help="epoch seconds the recording started")
    parser.add_argument("--first-part", type=int, default=0, help="the first recording part number free")
    parser.add_argument("--rtp-host", default="127.0.0.1",
                        help="the address Janus forwards RTP to, in rooms on the SFU (bound here)")
    args = parser.parse_args(argv)
    token = os.environ.get("RECORDER_TOKEN", "")
    recipients = [r for r in os.environ.get("RECORDER_RECIPIENTS", "").split(",") if r]
    if not token.startswith("rtk_"):
        parser.exit(2, "recorder worker: RECORDER_TOKEN is missing\n")
    # Where log records go is the runner's choice: server/recorderworker.py sends them as the server's JSON.
    worker = RecordingWorker(args.url, args.session, token, recipients, args.segment_seconds, args.started_at,
                             args.first_part, args.rtp_host)
    raise SystemExit(asyncio.run(worker.run()))


if __name__ == "__main__":
    main()
