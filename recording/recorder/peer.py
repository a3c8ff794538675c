"""The recorder peer: one receive-only aiortc connection per participant, written to WebM segments.

The recorder is one more participant of the room: each browser offers it a connection carrying
its camera and microphone. We answer receive-only with VP8 and Opus as the only codecs, capture
the encoded frames (``recording.recorder.capture``), mux them untouched (``recording.recorder.webm``) and hand the
file over in segments to ``on_segment``, which seals and stores them. In a room on the selective
forwarding unit no browser connects to the recorder: Janus forwards each participant's RTP to it
(``recording.recorder.forwarded``) and ``open_forwarded`` starts the same file, segments and key frame
requests without a connection.

ICE: no STUN or TURN server unless given. aiortc would otherwise query Google's public STUN
server while gathering and wait for it up to its timeout; the recorder's host candidates are
enough when the browsers can reach the server, and TURN (from settings) covers the rest.

Everything here runs on one event loop, the recorder's own (in production a separate process,
so media work never stalls signaling). The module holds no global state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import SessionDescription, candidate_from_sdp

from recording.recorder.capture import capture_encoded_frames, request_keyframe
from recording.recorder.webm import KINDS, WebmMuxer, vp8_keyframe_size

logger = logging.getLogger(__name__)

SegmentCallback = Callable[[str, int, bytes, float, float, bool], Awaitable[None]]

# VP8 and Opus only; RTX carries retransmitted VP8 packets (answers to our NACKs), not a codec.
RECORDED_CODECS = {"video": ("video/vp8", "video/rtx"), "audio": ("audio/opus",)}
KEYFRAME_RETRY_SECONDS = 1.0


def recorded_codecs(kind: str) -> list[RTCRtpCodecCapability]:
    """aiortc's receive capabilities for ``kind``, filtered to what the recorder stores."""
    wanted = RECORDED_CODECS[kind]
    return [codec for codec in RTCRtpReceiver.getCapabilities(kind).codecs
            if codec.mimeType.lower() in wanted]


@dataclasses.dataclass
class _Recording:
    """One participant's connection, muxer and segment numbering. Owned by ``RecorderPeer``."""

    participant_id: str
    pc: RTCPeerConnection | None  # None: media forwarded by the SFU (``open_forwarded``)
    muxer: WebmMuxer
    started_at: float  # epoch seconds; start of the next segment
    receivers: dict[str, RTCRtpReceiver] = dataclasses.field(default_factory=dict)  # recorded, per kind
    index: int = 0
    stop: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    first_video: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    keyframe: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    segments_task: asyncio.Task[None] | None = None
    keyframes_task: asyncio.Task[None] | None = None
    # Asks the sender for a video key frame; None: no video, or nobody to ask yet.
    ask_keyframe: Callable[[], Awaitable[object]] | None = None
    screen: _Recording | None = None  # the shared screen of the same connection, a file of its own
    owns_pc: bool = True  # False for a screen: the participant's recording closes the connection


class RecorderPeer:
    """Records every participant who offers it a connection, one WebM file each.

    ``on_segment(participant_id, index, data, started_at, ended_at, final)`` receives the file in
    order: ``index`` counts from 0 per participant, the concatenation of a participant's ``data``
    in index order is one playable WebM file, and ``started_at``/``ended_at`` (epoch seconds) are
    the wall-clock window in which the segment's bytes were produced. It is awaited before the
    next segment of that participant is cut, and is called at least every ``segment_seconds``
    while media flows, then once more with ``final`` true (and the file's last bytes, possibly
    none) when the participant closes: a file whose final segment never came was cut off.
    What a crash of this process loses is what was not yet handed over: at most about
    ``segment_seconds`` plus the upload in flight.

    ``session_started_at`` (epoch seconds, default: now) is time zero of every file, so the
    files of a room line up: someone who joins 2 s after it starts 2 s into their file.
    Time is kept on the monotonic clock from there on.

    A participant id names one file: offering again under the same id is refused; a reconnecting
    participant gets a new id from the caller.
    """

    def __init__(
        self,
        on_segment: SegmentCallback,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        session_started_at: float | None = None,
        segment_seconds: float = 5.0,
        cluster_seconds: float | None = None,
    ) -> None:
        if cluster_seconds is None:
            cluster_seconds = min(0.5, segment_seconds / 4)
        if not 0 < cluster_seconds < segment_seconds:
            raise ValueError(f"need 0 < cluster_seconds < segment_seconds, got {cluster_seconds} "
                             f"and {segment_seconds}")
        self._on_segment = on_segment
        self._ice_servers = list(ice_servers)
        now = time.time()
        started_at = now if session_started_at is None else session_started_at
        self._monotonic_start = time.monotonic() - (now - started_at)
        # A cut takes the clusters closed so far; the one still open (<= cluster_seconds) goes
        # into the next cut. Cutting this often keeps each segment's media within segment_seconds.
        self._cut_seconds = segment_seconds - cluster_seconds
        self._cluster_ms = round(cluster_seconds * 1000)
        self._recordings: dict[str, _Recording] = {}
        self._finished: set[str] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def participant_ids(self) -> list[str]:
        return list(self._recordings)

    async def handle_offer(self, participant_id: str, offer_sdp: str, *, screen_stream: str | None = None,
                           screen_id: str | None = None) -> str:
        """Answer ``participant_id``'s offer (receive-only, VP8/Opus) and start recording it.

        With ``screen_stream`` (the room's ``screen_share`` stream id of this participant) and ``screen_id``,
        the video m-line whose ``msid`` names that stream is recorded as a file of its own, ``screen_id``,
        delivered through ``on_segment`` like a participant's and closed with it."""
        if self._closed:
            raise RuntimeError('Cannot handle an offer in recorder state "closed"')
        for file_id in (participant_id, screen_id):
            if file_id is not None and (file_id in self._recordings or file_id in self._finished):
                raise ValueError(f'participant "{file_id}" already has a recording')
        offer = SessionDescription.parse(offer_sdp)
        screen_index = _screen_line(offer, screen_stream) if screen_id is not None else None
        # The first m-line of each kind that sends is recorded, and the shared screen; any further one
        # (a second camera) is received but dropped.
        recorded: dict[int, str] = {}
        for index, media in enumerate(offer.media):
            if (media.kind in KINDS and media.direction in ("sendrecv", "sendonly") and index != screen_index
                    and media.kind not in recorded.values()):
                recorded[index] = media.kind
        if not recorded and screen_index is None:
            raise ValueError(f'participant "{participant_id}" offers no audio or video to record')

        recording = _Recording(
            participant_id=participant_id,
            pc=RTCPeerConnection(RTCConfiguration(iceServers=list(self._ice_servers))),
            muxer=WebmMuxer(set(recorded.values()), session_start=self._monotonic_start,
                            cluster_ms=self._cluster_ms),
            started_at=time.time(),
        )
        pc = recording.pc
        assert pc is not None
        screen = None
        if screen_index is not None and screen_id is not None:
            screen = recording.screen = _Recording(
                participant_id=screen_id, pc=pc, owns_pc=False, started_at=recording.started_at,
                muxer=WebmMuxer({"video"}, session_start=self._monotonic_start, cluster_ms=self._cluster_ms))
        self._recordings[participant_id] = recording
        if screen is not None:
            self._recordings[screen.participant_id] = screen
        try:
            # Transceivers created before the offer is applied are matched to its m-lines in
            # order, kind by kind, and only so do codec preferences narrow what is negotiated.
            for index, media in enumerate(offer.media):
                if media.kind not in KINDS:
                    continue
                transceiver = pc.addTransceiver(media.kind, direction="recvonly")
                transceiver.setCodecPreferences(recorded_codecs(media.kind))
                kind, into = recorded.get(index), recording
                if index == screen_index and screen is not None:
                    kind, into = "video", screen
                if kind is not None:
                    into.receivers[kind] = transceiver.receiver
                # Every receiver is tapped so that none ever decodes; unrecorded ones drop frames.
                capture_encoded_frames(transceiver.receiver, self._frame_sink(into, kind))
            pc.on("connectionstatechange", lambda: self._on_connection_state(recording))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            self._recordings.pop(participant_id, None)
            if screen is not None:
                self._recordings.pop(screen.participant_id, None)
            await pc.close()
            raise
        if recording.stop.is_set():
            raise RuntimeError(f'Cannot answer participant "{participant_id}" in recording state "closed"')
        for each in (recording, screen):
            if each is None:
                continue
            video = each.receivers.get("video")
            if video is not None:
                each.ask_keyframe = functools.partial(request_keyframe, video)
            self._start_tasks(each)
        return pc.localDescription.sdp

    def open_forwarded(self, participant_id: str, kinds: set[str],
                       ask_keyframe: Callable[[], Awaitable[object]] | None = None,
                       ) -> Callable[[str], Callable[[RTCRtpCodecParameters, JitterFrame], None]]:
        """Start recording ``participant_id`` from media that arrives without a connection (RTP forwarded by the
        SFU: ``recording.recorder.forwarded``); returns ``sink(kind)``, the frame callback of each kind.

        ``ask_keyframe()`` asks the sender for a video key frame. Whoever feeds the sinks stops before
        ``close_participant``: a frame written after it is lost."""
        if self._closed:
            raise RuntimeError('Cannot open a recording in recorder state "closed"')
        if participant_id in self._recordings or participant_id in self._finished:
            raise ValueError(f'participant "{participant_id}" already has a recording')
        recorded = kinds & set(KINDS)
        if not recorded:
            raise ValueError(f'participant "{participant_id}" forwards no audio or video to record')
        recording = _Recording(
            participant_id=participant_id, pc=None,
            muxer=WebmMuxer(recorded, session_start=self._monotonic_start, cluster_ms=self._cluster_ms),
            started_at=time.time(), ask_keyframe=ask_keyframe if "video" in recorded else None)
        self._recordings[participant_id] = recording
        self._start_tasks(recording)
        return lambda kind: self._frame_sink(recording, kind if kind in recorded else None)

    def _start_tasks(self, recording: _Recording) -> None:
        participant_id = recording.participant_id
        recording.segments_task = asyncio.create_task(
            self._run_segments(recording), name=f"recorder-segments-{participant_id}")
        recording.keyframes_task = asyncio.create_task(
            self._request_keyframes(recording), name=f"recorder-keyframes-{participant_id}")

    async def add_ice_candidate(self, participant_id: str, candidate: dict[str, Any] | None) -> None:
        """Add a trickled remote candidate, shaped like the browser's ``RTCIceCandidateInit``.

        ``None`` or an empty ``candidate`` string means end of candidates.
        """
        recording = self._recording(participant_id)
        if recording.pc is None:
            raise ValueError(f'participant "{participant_id}" is recorded from forwarded media: no ICE')
        if candidate is None or not candidate.get("candidate"):
            await recording.pc.addIceCandidate(None)
            return
        line = candidate["candidate"]
        parsed = candidate_from_sdp(line.split(":", 1)[1] if line.startswith("candidate:") else line)
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await recording.pc.addIceCandidate(parsed)

    async def close_participant(self, participant_id: str) -> None:
        """Stop recording ``participant_id``: the last segment is delivered before this returns."""
        recording = self._recordings.pop(participant_id, None)
        if recording is None:
            if participant_id in self._finished:
                return
            raise KeyError(f'no recording for participant "{participant_id}"')
        self._finished.add(participant_id)
        if recording.screen is not None:
            # The screen's file ends with the connection that carried it.
            await self.close_participant(recording.screen.participant_id)
        recording.stop.set()
        # The segment task finishes the segment it may be delivering; the key frame task only waits.
        if recording.keyframes_task is not None:
            recording.keyframes_task.cancel()
        for task in (recording.segments_task, recording.keyframes_task):
            if task is None:
                continue
            try:
                await task
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise
            except Exception:
                logger.exception("recorder task %s failed", task.get_name())
        if recording.pc is not None and recording.owns_pc:
            await recording.pc.close()  # stops the receivers: no frame arrives after this
        await self._deliver(recording, recording.muxer.close(), final=True)

    async def close(self) -> None:
        """Close every participant (delivering their last segments), then the recorder."""
        self._closed = True
        owners = [pid for pid, recording in self._recordings.items() if recording.owns_pc]
        await asyncio.gather(*(self.close_participant(pid) for pid in owners))
        if self._closing:
            await asyncio.gather(*self._closing)

    def _recording(self, participant_id: str) -> _Recording:
        try:
            return self._recordings[participant_id]
        except KeyError:
            raise KeyError(f'no recording for participant "{participant_id}"') from None

    @staticmethod
    def _frame_sink(recording: _Recording, kind: str | None) -> Callable[[RTCRtpCodecParameters, JitterFrame], None]:
        def on_frame(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
            # Runs on the event loop, inside aiortc's RTP handling.
            if kind is None or codec.mimeType.lower() not in RECORDED_CODECS[kind]:
                return  # not recorded; a foreign codec cannot be negotiated, but is never muxed
            if recording.stop.is_set():
                return  # a screen closed while its connection goes on: its file is complete
            is_keyframe = kind == "audio" or vp8_keyframe_size(frame.data) is not None
            recording.muxer.write(kind, frame.data, frame.timestamp, is_keyframe)
            if kind == "video":
                recording.first_video.set()
                if is_keyframe:
                    recording.keyframe.set()
        return on_frame

    async def _run_segments(self, recording: _Recording) -> None:
        """Cut and deliver a segment every ``segment_seconds - cluster_seconds`` until stopped.

        Cuts keep to their schedule: time spent delivering (an upload) is not added to the wait for
        the next cut, or what a crash loses would grow with the upload's duration.
        """
        loop = asyncio.get_running_loop()
        due = loop.time() + self._cut_seconds
        while not recording.stop.is_set():
            try:
                await asyncio.wait_for(recording.stop.wait(), max(0.0, due - loop.time()))
            except TimeoutError:
                pass
            if not recording.stop.is_set():
                await self._deliver(recording, recording.muxer.cut())
            due = max(due + self._cut_seconds, loop.time())

    async def _request_keyframes(self, recording: _Recording) -> None:
        """Ask for a key frame once video flows, and again every second until one arrives."""
        if recording.ask_keyframe is None:
            return
        await recording.first_video.wait()
        while recording.muxer.waiting_for_keyframe:
            await recording.ask_keyframe()
            try:
                await asyncio.wait_for(recording.keyframe.wait(), KEYFRAME_RETRY_SECONDS)
            except TimeoutError:
                logger.info("no key frame yet from participant %s, asking again", recording.participant_id)

    async def _deliver(self, recording: _Recording, data: bytes, *, final: bool = False) -> None:
        # A file with no bytes at all was never started; a started one always gets its final segment.
        if not data and not (final and recording.index):
            return
        ended_at = time.time()
        try:
            await self._on_segment(recording.participant_id, recording.index, data,
                                   recording.started_at, ended_at, final)
        except Exception:
            # The recording goes on; the gap is the storage layer's to report.
            logger.exception("segment %d of participant %s was not taken", recording.index,
                             recording.participant_id)
        recording.index += 1
        recording.started_at = ended_at

    def _on_connection_state(self, recording: _Recording) -> None:
        if recording.pc is not None and recording.pc.connectionState == "failed" and recording.participant_id in self._recordings:
            task = asyncio.create_task(self.close_participant(recording.participant_id),
                                       name=f"recorder-close-{recording.participant_id}")
            self._closing.add(task)
            task.add_done_callback(self._closed_after_failure)

    def _closed_after_failure(self, task: asyncio.Task[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("closing a failed connection", exc_info=task.exception())


def _screen_line(offer: SessionDescription, stream_id: str | None) -> int | None:
    """The index of the sending video m-line whose ``a=msid`` names ``stream_id`` (the shared screen's stream)."""
    if not stream_id:
        return None
    for index, media in enumerate(offer.media):
        msid_stream = (media.msid or "").split(" ")[0]
        if media.kind == "video" and media.direction in ("sendrecv", "sendonly") and msid_stream == stream_id:
            return index
    return None
