"""Passthrough WebM muxer: VP8 and Opus frames, as they came off the wire, into a streaming Matroska file.

Nothing is decoded or encoded. The file is written for a non-seekable sink (unknown-size Segment,
clusters written whole as they close, no index to patch at the end), so the bytes handed out by
successive ``cut()`` calls and the final ``close()`` concatenate into one playable file, and any
prefix ending at a cut is itself a playable file (what a crash leaves behind).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from fractions import Fraction

import av

logger = logging.getLogger(__name__)

KINDS = ("video", "audio")
CLOCK_RATES = {"video": 90_000, "audio": 48_000}  # RFC 7741 (VP8) and RFC 7587 (Opus): fixed
MILLISECOND = Fraction(1, 1000)  # Matroska's default TimestampScale; the muxer rebases to it anyway

# The Matroska header needs the video track's pixel size before the first packet, which only the
# first key frame tells. Audio waits for it this long (in media time) before the header is written
# with FALLBACK_SIZE; VP8 key frames carry their own size, so players follow the real one.
KEYFRAME_WAIT_MS = 2000
FALLBACK_SIZE = (640, 480)

# A stream's RTP clock is trusted unless it runs this far ahead of the arrival clock or back from
# its own last frame (sender restart, SSRC change, a timestamp jump): then the stream is
# re-anchored at the packet's arrival time.
RESYNC_MS = 5000


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` is a VP8 key frame (RFC 6386 section 9.1), else None.

    Checks the start code as well as the frame-type bit, so the tail of a frame whose first
    packets were lost (all a jitter buffer may emit when a stream is joined mid-frame) is not
    mistaken for a key frame.
    """
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    if not width or not height:
        return None
    return width, height


class _Sink:
    """Write-only byte sink; having no ``seek`` makes FFmpeg write a streaming (live) file."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class _StreamClock:
    """Maps one stream's RTP timestamps onto the session clock, in milliseconds.

    The first packet is placed at its arrival time; later packets follow their RTP timestamps
    (unwrapped modulo 2**32), so network jitter does not move them.
    """

    def __init__(self, clock_rate: int) -> None:
        self._clock_rate = clock_rate
        self._last_rtp: int | None = None
        self._ticks = 0  # unwrapped RTP ticks since the anchor
        self._anchor_ms = 0.0
        self.last_ms = -1

    def to_ms(self, rtp_timestamp: int, arrival_ms: float) -> int:
        rtp = rtp_timestamp & 0xFFFFFFFF
        if self._last_rtp is None:
            self._anchor(arrival_ms)
        else:
            # Signed difference modulo 2**32: a wrap moves forward, a reordered packet back.
            self._ticks += ((rtp - self._last_rtp + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        self._last_rtp = rtp
        ms = self._anchor_ms + self._ticks * 1000 / self._clock_rate
        # Arriving late is normal (a jitter buffer waiting for a retransmission releases frames
        # seconds late, with the right timestamps); being ahead of the clock, or far behind the
        # stream's own last frame, is a discontinuity.
        if ms > arrival_ms + RESYNC_MS or ms < self.last_ms - RESYNC_MS:
            self._anchor(arrival_ms)
            ms = arrival_ms
        # Matroska needs each track's timestamps non-decreasing; keep them strictly increasing.
        pts = max(round(ms), self.last_ms + 1, 0)
        self.last_ms = pts
        return pts

    def _anchor(self, arrival_ms: float) -> None:
        self._anchor_ms = arrival_ms
        self._ticks = 0


class WebmMuxer:
    """One participant's streaming WebM file: VP8 and/or Opus, passed through.

    ``session_start`` is a reading of ``clock`` (``time.monotonic`` by default) shared by every
    muxer of a room: timestamps count from it, so a participant who arrives later starts later
    in their file and all files of a room line up.

    Not thread-safe: every call runs on the recorder's event loop.
    """

    def __init__(
        self,
        kinds: Collection[str],
        *,
        session_start: float,
        clock: Callable[[], float] = time.monotonic,
        cluster_ms: int = 500,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, not {sorted(kinds)!r}")
        self.kinds = frozenset(kinds)
        self.cluster_ms = cluster_ms
        self._session_start = session_start
        self._clock = clock
        self._clocks = {kind: _StreamClock(CLOCK_RATES[kind]) for kind in self.kinds}
        self._sink = _Sink()
        self._container: av.container.OutputContainer | None = None
        self._streams: dict[str, av.stream.Stream] = {}
        self._pending: list[tuple[str, bytes, int, bool]] = []  # audio held until the header
        self._keyframe_seen = False
        self._closed = False
        self.packets_written = 0
        self.packets_dropped = 0

    @property
    def waiting_for_keyframe(self) -> bool:
        """True while video is expected and no VP8 key frame has arrived; video is dropped meanwhile."""
        return "video" in self.kinds and not self._keyframe_seen

    def write(self, kind: str, data: bytes, rtp_timestamp: int, is_keyframe: bool,
              arrival: float | None = None) -> None:
        """Add one encoded frame; ``arrival`` is a reading of the muxer's clock (default: now)."""
        if self._closed:
            raise RuntimeError(f'Cannot write a {kind} frame in muxer state "closed"')
        if kind not in self.kinds:
            raise ValueError(f"kind {kind!r} is not one of this muxer's kinds {sorted(self.kinds)!r}")
        if arrival is None:
            arrival = self._clock()
        size = None
        if kind == "video":
            size = vp8_keyframe_size(data) if is_keyframe else None
            if size is None and not self._keyframe_seen:
                self.packets_dropped += 1
                return
            if size is not None:
                self._keyframe_seen = True
        pts = self._clocks[kind].to_ms(rtp_timestamp, (arrival - self._session_start) * 1000)
        key = size is not None if kind == "video" else True  # every Opus packet stands alone

        if self._container is None:
            self._pending.append((kind, data, pts, key))
            if size is not None:
                self._start(size)
            elif "video" not in self.kinds or pts - self._pending[0][2] >= KEYFRAME_WAIT_MS:
                self._start(FALLBACK_SIZE)
            return
        self._mux(kind, data, pts, key)

    def cut(self) -> bytes:
        """The bytes written since the last cut, ending at a cluster boundary.

        Frames of the cluster still open (at most ``cluster_ms``) are in the next cut.
        """
        return self._sink.take()

    def close(self) -> bytes:
        """Finish the file and return its last bytes (empty if no frame was ever written)."""
        if self._closed:
            return b""
        self._closed = True
        if self._container is None and self._pending:
            self._start(FALLBACK_SIZE)
        if self._container is not None:
            self._container.close()
        return self._sink.take()

    def _start(self, video_size: tuple[int, int]) -> None:
        """Write the header (once, before the first packet), then what waited for it."""
        container = av.open(
            self._sink,
            "w",
            format="webm",
            container_options={
                "cluster_time_limit": str(self.cluster_ms),
                # Interleave audio and video by timestamp, but never hold a packet back longer
                # than this (microseconds) when the other stream goes quiet.
                "max_interleave_delta": "300000",
                "flush_packets": "1",
            },
        )
        if "video" in self.kinds:
            width, height = video_size
            self._streams["video"] = container.add_mux_stream(
                "vp8", width=width, height=height, time_base=MILLISECOND)
        if "audio" in self.kinds:
            # A libopus context gives the track its OpusHead (CodecPrivate), channel layout and
            # codec delay when the header is written; it is opened but never fed a frame.
            audio = container.add_stream("libopus", rate=48_000, layout="stereo")
            audio.bit_rate = 64_000  # never used to encode; set so libopus does not warn at open
            audio.time_base = MILLISECOND
            self._streams["audio"] = audio
        self._container = container
        pending, self._pending = self._pending, []
        for kind, data, pts, key in sorted(pending, key=lambda item: item[2]):
            self._mux(kind, data, pts, key)

    def _mux(self, kind: str, data: bytes, pts: int, key: bool) -> None:
        packet = av.Packet(data)
        packet.stream = self._streams[kind]
        packet.time_base = MILLISECOND
        packet.pts = packet.dts = pts
        packet.is_keyframe = key
        try:
            self._container.mux(packet)
        except av.FFmpegError:
            # One bad frame must not end the recording; the file stays valid without it.
            self.packets_dropped += 1
            logger.warning("dropped a %s frame at %d ms the muxer refused", kind, pts, exc_info=True)
            return
        self.packets_written += 1
