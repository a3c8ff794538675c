"""The recorder over real loopback WebRTC: aiortc senders with synthetic tracks, files re-opened with av.

One recording session (two participants, the second joining 2 s late) runs once per module and
several tests inspect what it left; the capture hook is also checked on its own, against aiortc's
internals, so an aiortc upgrade that moves them fails here rather than in production.
"""

from __future__ import annotations

import array
import asyncio
import dataclasses
import io
import math
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import pytest
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
    VideoStreamTrack,
    rtcrtpreceiver,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from recording.recorder.capture import (
    CaptureUnsupportedError,
    EncodedFrameTap,
    capture_encoded_frames,
    request_keyframe,
)
from recording.compliance.seekable import write_seekable
from recording.recorder.coverage import block_times, media_ranges
from recording.recorder.peer import RecorderPeer
from recording.recorder.webm import WebmMuxer, vp8_keyframe_size

WIDTH, HEIGHT = 320, 240
LATE_JOIN = 2.0  # seconds after the session starts
RECORD_FOR = 7.0  # seconds of session before the recorder closes
SEGMENT_SECONDS = 5.0
WAIT = 10.0


class MovingPattern(VideoStreamTrack):
    """Diagonal stripes sliding a few pixels per frame: real motion for the VP8 encoder."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self.width, self.height = width, height
        self._count = 0
        self._luma = bytes(range(256)) * (width * height // 256 + 64)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y, u, v = frame.planes
        shift = (self._count * 3) % 256
        y.update(self._luma[shift:shift + y.buffer_size])
        u.update(b"\x60" * u.buffer_size)
        v.update(b"\xa0" * v.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self._count += 1
        return frame


class Tone(AudioStreamTrack):
    """A 1 kHz sine at 48 kHz, 20 ms per frame (exactly 20 periods, so every frame is the same)."""

    RATE, SAMPLES = 48_000, 960

    def __init__(self) -> None:
        super().__init__()
        wave = array.array("h", (int(8000 * math.sin(2 * math.pi * 1000 * n / self.RATE))
                                 for n in range(self.SAMPLES)))
        self._pcm = wave.tobytes()
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += self.SAMPLES
            await asyncio.sleep(self._start + self._pts / self.RATE - time.time())
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(self._pcm)
        frame.pts, frame.sample_rate, frame.time_base = self._pts, self.RATE, Fraction(1, self.RATE)
        return frame


class Sender:
    """A participant's browser stand-in: an aiortc peer sending a moving pattern and a tone."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks = [MovingPattern(), Tone()]
        for track in self.tracks:
            self.pc.addTrack(track)
        self.connected_at: float | None = None  # epoch seconds
        self.pc.on("connectionstatechange", self._on_state)

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected" and self.connected_at is None:
            self.connected_at = time.time()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def offer_trickled(self) -> tuple[str, list[dict]]:
        """The offer without its candidates, and those as a browser trickles them."""
        lines = (await self.offer()).splitlines()
        candidates = [{"candidate": line[2:], "sdpMid": "0", "sdpMLineIndex": 0}
                      for line in lines if line.startswith("a=candidate:")]
        kept = [line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
        return "\r\n".join(kept) + "\r\n", candidates

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def close(self) -> None:
        for track in self.tracks:
            track.stop()
        await self.pc.close()


@dataclasses.dataclass
class Segment:
    index: int
    data: bytes
    started_at: float
    ended_at: float
    final: bool = False


@dataclasses.dataclass
class Session:
    segments: dict[str, list[Segment]]
    connected: dict[str, float]  # seconds after session start, when the sender's media could flow
    answers: dict[str, str]
    closed_at: float  # seconds after session start
    decoder_calls: int
    taps: list[EncodedFrameTap]
    decoded_frames_queued: int
    decoder_threads_left: int


async def record_session() -> Session:
    segments: dict[str, list[Segment]] = {}
    first_segment = {pid: asyncio.Event() for pid in ("early", "late")}

    async def on_segment(participant_id: str, index: int, data: bytes, started_at: float, ended_at: float,
                         final: bool) -> None:
        segments.setdefault(participant_id, []).append(Segment(index, data, started_at, ended_at, final))
        first_segment[participant_id].set()

    started = time.time()
    recorder = RecorderPeer(on_segment, session_started_at=started, segment_seconds=SEGMENT_SECONDS)
    senders = {"early": Sender(), "late": Sender()}
    answers: dict[str, str] = {}
    receivers: list[RTCRtpReceiver] = []
    try:
        answers["early"] = await recorder.handle_offer("early", await senders["early"].offer())
        await senders["early"].accept(answers["early"])
        await asyncio.sleep(started + LATE_JOIN - time.time())
        # The late participant trickles its candidates, as browsers do.
        offer, candidates = await senders["late"].offer_trickled()
        answers["late"] = await recorder.handle_offer("late", offer)
        await senders["late"].accept(answers["late"])
        for candidate in candidates:
            await recorder.add_ice_candidate("late", candidate)
        await recorder.add_ice_candidate("late", None)
        receivers = [t.receiver for r in recorder._recordings.values() for t in r.pc.getTransceivers()]
        # Both participants have a segment cut before the end, however slowly they connected.
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in first_segment.values())), WAIT)
        await asyncio.sleep(max(started + RECORD_FOR - time.time(), 0.5))  # the recording itself
        closed_at = time.time() - started
        await recorder.close()
    finally:
        await recorder.close()
        for sender in senders.values():
            await sender.close()
    return Session(
        segments=segments,
        connected={pid: sender.connected_at - started for pid, sender in senders.items()},
        answers=answers,
        closed_at=closed_at,
        decoder_calls=0,
        taps=[r._RTCRtpReceiver__decoder_queue for r in receivers],
        decoded_frames_queued=sum(_queued_frames(r) for r in receivers),
        decoder_threads_left=sum(r._RTCRtpReceiver__decoder_thread is not None for r in receivers),
    )


def _queued_frames(receiver: RTCRtpReceiver) -> int:
    """Decoded frames waiting on the receiver's track (the end-of-track None aside)."""
    items = []
    while receiver.track is not None and not receiver.track._queue.empty():
        items.append(receiver.track._queue.get_nowait())
    return sum(item is not None for item in items)


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    calls = []
    real = rtcrtpreceiver.get_decoder

    def counting_get_decoder(codec):  # a spy on aiortc: the decoder thread must never get here
        calls.append(codec)
        return real(codec)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rtcrtpreceiver, "get_decoder", counting_get_decoder)
        result = asyncio.run(record_session())
    result.decoder_calls = len(calls)
    yield result


def _open(data: bytes) -> av.container.InputContainer:
    return av.open(io.BytesIO(data), "r")


def _packet_times(data: bytes) -> dict[str, list[float]]:
    """Presentation times (s) of every packet, per stream type."""
    times: dict[str, list[float]] = {"video": [], "audio": []}
    with _open(data) as container:
        for packet in container.demux():
            if packet.pts is not None:
                times[packet.stream.type].append(float(packet.pts * packet.time_base))
    return times


def _decode_all(data: bytes) -> tuple[int, int]:
    """How many video and audio frames decode from ``data``."""
    counts = []
    for kind in ("video", "audio"):
        with _open(data) as container:
            streams = container.streams.get(**{kind: 0}) if getattr(container.streams, kind) else []
            counts.append(sum(1 for _ in container.decode(*streams)) if streams else 0)
    return counts[0], counts[1]


def _file(session: Session, pid: str) -> bytes:
    return b"".join(segment.data for segment in session.segments[pid])


# --- the recording session -------------------------------------------------------------------


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_answer_receives_only_vp8_and_opus(session: Session, pid: str) -> None:
    lines = session.answers[pid].splitlines()
    codecs = {line.split(" ", 1)[1].split("/")[0].lower() for line in lines if line.startswith("a=rtpmap:")}
    assert codecs == {"vp8", "rtx", "opus"}
    directions = [line for line in lines if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")]
    assert directions == ["a=recvonly", "a=recvonly"]


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_participant_file_is_webm_with_vp8_and_opus(session: Session, pid: str) -> None:
    with _open(_file(session, pid)) as container:
        assert "webm" in container.format.name
        assert [s.codec_context.name for s in container.streams.video] == ["vp8"]
        assert [s.codec_context.name for s in container.streams.audio] == ["opus"]
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (WIDTH, HEIGHT)


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_participant_file_lasts_as_long_as_the_recording(session: Session, pid: str) -> None:
    times = _packet_times(_file(session, pid))
    recorded = session.closed_at - session.connected[pid]
    for kind in ("video", "audio"):
        span = max(times[kind]) - min(times[kind])
        assert abs(span - recorded) < 1.0, (kind, span, recorded)


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_participant_file_decodes_every_frame(session: Session, pid: str) -> None:
    data = _file(session, pid)
    times = _packet_times(data)
    video, audio = _decode_all(data)
    assert video == len(times["video"]) and audio == len(times["audio"])
    recorded = session.closed_at - session.connected[pid]
    assert video > 20 * (recorded - 1)  # ~30 fps sent
    assert audio > 45 * (recorded - 1)  # 50 Opus packets a second


def test_recorder_late_participant_starts_at_its_join_time(session: Session) -> None:
    early, late = (_packet_times(_file(session, pid)) for pid in ("early", "late"))
    # Each file starts when its participant's media started to flow, on the session's clock.
    for pid, times in (("early", early), ("late", late)):
        for kind in ("video", "audio"):
            assert 0 <= min(times[kind]) - session.connected[pid] < 0.5, (pid, kind)
    assert min(late["video"]) >= LATE_JOIN and min(late["audio"]) >= LATE_JOIN
    assert min(early["audio"]) < min(late["audio"]) - 1
    # Both files count from the same session start: they end together.
    assert abs(max(early["audio"]) - max(late["audio"])) < 0.5


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_segments_are_numbered_and_at_most_five_seconds(session: Session, pid: str) -> None:
    segments = session.segments[pid]
    assert len(segments) >= 2
    assert [s.index for s in segments] == list(range(len(segments)))
    ends = [0.0]
    for k in range(1, len(segments) + 1):
        times = _packet_times(b"".join(s.data for s in segments[:k]))
        ends.append(max(max(times["video"]), max(times["audio"])))
    starts = [min(min(t) for t in _packet_times(_file(session, pid)).values())] + ends[1:-1]
    for start, end in zip(starts, ends[1:]):
        assert 0 < end - start <= SEGMENT_SECONDS, (start, end)
    for segment in segments:
        assert segment.started_at <= segment.ended_at


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_only_the_last_segment_is_final(session: Session, pid: str) -> None:
    assert [s.final for s in session.segments[pid]] == [False] * (len(session.segments[pid]) - 1) + [True]


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_segment_media_ranges_are_its_packet_times(session: Session, pid: str) -> None:
    segments = session.segments[pid]
    previous: Counter[int] = Counter()
    for k in range(1, len(segments) + 1):
        cumulative = _packet_times(b"".join(s.data for s in segments[:k]))
        times = Counter(round(t * 1000) for t in cumulative["video"] + cumulative["audio"])
        own = sorted((times - previous).elements())  # this segment's packets: those the longer prefix adds
        previous = times
        ranges = media_ranges(block_times(segments[k - 1].data))
        if not own:
            assert ranges == []
            continue
        # Steady synthetic media: one range from the segment's first packet to its last (the demuxer
        # moves Opus packets back by the codec delay, 6.5 ms; the blocks keep their own times).
        assert len(ranges) == 1, (k, ranges)
        assert abs(ranges[0][0] - own[0]) <= 7 and abs(ranges[0][1] - own[-1]) <= 7, (k, ranges, own[0], own[-1])


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_joined_file_rewritten_seekable_keeps_packets_and_times(session: Session, pid: str,
                                                                         tmp_path: Path) -> None:
    joined = tmp_path / "joined.webm"
    joined.write_bytes(_file(session, pid))
    streaming = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                                str(joined)], capture_output=True, text=True, check=True).stdout.strip()
    assert streaming == "N/A"
    seekable = tmp_path / "seekable.webm"
    with seekable.open("wb") as target:
        write_seekable(joined, target)
    duration = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                               str(seekable)], capture_output=True, text=True, check=True).stdout.strip()
    times = _packet_times(_file(session, pid))
    assert abs(float(duration) - max(max(times["video"]), max(times["audio"]))) < 0.2, duration
    assert _packet_times(seekable.read_bytes()) == times  # same packets, on the same session clock
    cues = b"\x1c\x53\xbb\x6b"  # the Cues element's id (RFC 9559)
    assert cues not in joined.read_bytes() and cues in seekable.read_bytes()


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_file_cut_after_any_segment_still_plays(session: Session, pid: str) -> None:
    segments = session.segments[pid]
    for k in range(1, len(segments)):
        prefix = b"".join(s.data for s in segments[:k])
        times = _packet_times(prefix)
        video, audio = _decode_all(prefix)
        assert video == len(times["video"]) > 0 and audio == len(times["audio"]) > 0


def test_recorder_never_decodes(session: Session) -> None:
    assert session.decoder_calls == 0
    assert session.decoded_frames_queued == 0
    assert session.decoder_threads_left == 0
    assert session.taps and all(isinstance(tap, EncodedFrameTap) for tap in session.taps)
    assert all(tap.frames > 0 for tap in session.taps)


# --- the capture hook against aiortc's internals -------------------------------------------------


async def test_capture_delivers_complete_encoded_frames_in_rtp_units() -> None:
    frames: dict[str, list[JitterFrame]] = {"video": [], "audio": []}
    enough, second_keyframe = asyncio.Event(), asyncio.Event()
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = Sender()
    receivers: dict[str, RTCRtpReceiver] = {}

    @receiver_pc.on("track")
    def on_track(track) -> None:
        receiver = next(t.receiver for t in receiver_pc.getTransceivers() if t.receiver.track is track)
        receivers[track.kind] = receiver

        def on_frame(codec, frame) -> None:
            assert codec.mimeType.lower() == {"video": "video/vp8", "audio": "audio/opus"}[track.kind]
            frames[track.kind].append(frame)
            if len(frames["video"]) >= 30 and len(frames["audio"]) >= 50:
                enough.set()
            if track.kind == "video" and len(frames["video"]) > 1 and vp8_keyframe_size(frame.data):
                second_keyframe.set()

        capture_encoded_frames(receiver, on_frame)

    try:
        await receiver_pc.setRemoteDescription(RTCSessionDescription(sdp=await sender.offer(), type="offer"))
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender.accept(receiver_pc.localDescription.sdp)
        await asyncio.wait_for(enough.wait(), WAIT)
        threads = [r._RTCRtpReceiver__decoder_thread for r in receivers.values()]
        assert all(thread is not None and thread.is_alive() for thread in threads)  # idle, not decoding
        # A PLI through aiortc's receiver makes the sender's encoder produce a key frame.
        assert not second_keyframe.is_set()
        assert await request_keyframe(receivers["video"]) == 1
        await asyncio.wait_for(second_keyframe.wait(), WAIT)
    finally:
        await sender.close()
        await receiver_pc.close()
    assert all(not thread.is_alive() for thread in threads)  # the stop sentinel still gets through

    video, audio = frames["video"], frames["audio"]
    assert all(type(f) is JitterFrame and isinstance(f.data, bytes) for f in video + audio)
    # The first video frame is a whole key frame: VP8 header, start code and the sent size.
    assert vp8_keyframe_size(video[0].data) == (WIDTH, HEIGHT)
    assert all(vp8_keyframe_size(f.data) is None for f in video[1:30])  # then inter frames
    # Every frame decodes on its own decoder, in order: nothing is missing from .data.
    decoder = av.CodecContext.create("vp8", "r")
    decoded = [frame for f in video for frame in decoder.decode(av.Packet(f.data))]
    assert len(decoded) == len(video) and decoded[0].width == WIDTH
    # Timestamps are RTP ticks from 0: 90 kHz at ~30 fps, 48 kHz at 20 ms per Opus packet.
    assert video[0].timestamp == 0 and audio[0].timestamp == 0
    steps = {b.timestamp - a.timestamp for a, b in zip(audio, audio[1:])}
    assert steps == {960}
    video_steps = [b.timestamp - a.timestamp for a, b in zip(video, video[1:])]
    assert 2500 < sum(video_steps) / len(video_steps) < 3500
    # Each frame is one whole Opus packet: each decodes to exactly one audio frame.
    opus = av.CodecContext.create("opus", "r")
    assert sum(len(opus.decode(av.Packet(f.data))) for f in audio) == len(audio)


async def test_capture_refuses_a_started_receiver() -> None:
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        receiver = receiver_pc.addTransceiver("audio", direction="recvonly").receiver
        receiver._RTCRtpReceiver__decoder_thread = object()  # what receive() leaves behind
        with pytest.raises(ValueError, match='receiver state "started"'):
            capture_encoded_frames(receiver, lambda codec, frame: None)
        receiver._RTCRtpReceiver__decoder_thread = None
        capture_encoded_frames(receiver, lambda codec, frame: None)
        with pytest.raises(ValueError, match="already captured"):
            capture_encoded_frames(receiver, lambda codec, frame: None)
    finally:
        await receiver_pc.close()


def test_capture_names_the_missing_aiortc_internals() -> None:
    with pytest.raises(CaptureUnsupportedError, match="_RTCRtpReceiver__decoder_queue.*1.16"):
        capture_encoded_frames(object(), lambda codec, frame: None)  # type: ignore[arg-type]


# --- the muxer on its own ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def vp8_frames() -> list[bytes]:
    """40 VP8 frames of the moving pattern (5 fps), the first one the only key frame."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, 5)
    encoder.gop_size = 1000
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    luma = MovingPattern()._luma
    out = []
    for n in range(40):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane, fill in zip(frame.planes, (luma[n * 3:], b"\x60" * 99999, b"\xa0" * 99999)):
            plane.update(fill[:plane.buffer_size])
        frame.pts = n
        out += [bytes(p) for p in encoder.encode(frame)]
    return out + [bytes(p) for p in encoder.encode(None)]


def _silent_opus(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "mono", "s16"
    encoder.time_base = Fraction(1, 48_000)
    packets = []
    for n in range(count):
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(bytes(1920))
        frame.sample_rate, frame.pts = 48_000, n * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def test_muxer_unwraps_rtp_timestamps_and_drops_video_before_the_key_frame(vp8_frames: list[bytes]) -> None:
    muxer = WebmMuxer({"video"}, session_start=100.0)
    start = 2**32 - 90_000  # 5 fps, wraps one second in
    # Two inter frames before the key frame are dropped, as if joined mid-stream.
    for n, data in [(1, vp8_frames[1]), (2, vp8_frames[2])] + list(enumerate(vp8_frames)):
        muxer.write("video", data, (start + 18_000 * n) % 2**32, vp8_keyframe_size(data) is not None,
                    arrival=100.0 + 3 + n / 5)
    data = muxer.cut() + muxer.close()
    times = _packet_times(data)["video"]
    assert len(times) == 40 and muxer.packets_dropped == 2
    assert times[0] == pytest.approx(3.0, abs=0.002)
    assert times[-1] - times[0] == pytest.approx(39 / 5, abs=0.002)
    assert _decode_all(data)[0] == 40


def test_muxer_keeps_the_rtp_timing_of_frames_released_late(vp8_frames: list[bytes]) -> None:
    # aiortc's video jitter buffer holds every frame behind a lost, never retransmitted packet
    # until 512 packets have queued, then releases them at once: here 6 s late.
    audio = _silent_opus(400)
    arrivals = [(n / 5 if not 3 <= n < 35 else 7.0, "video", data, 18_000 * n)
                for n, data in enumerate(vp8_frames)]
    arrivals += [(n / 50, "audio", data, 960 * n) for n, data in enumerate(audio)]
    muxer = WebmMuxer({"video", "audio"}, session_start=0.0)
    cuts, last_cut = [], 0.0
    for arrival, kind, data, rtp in sorted(arrivals, key=lambda a: a[0]):
        if arrival - last_cut >= 2.0:
            cuts.append(muxer.cut())
            last_cut = arrival
        muxer.write(kind, data, rtp, kind == "audio" or vp8_keyframe_size(data) is not None, arrival=arrival)
    data = b"".join(cuts) + muxer.close()
    times = _packet_times(data)
    assert times["video"] == pytest.approx([n / 5 for n in range(40)], abs=0.002)
    assert times["audio"][-1] == pytest.approx(399 / 50, abs=0.01)
    assert _decode_all(data) == (40, 400)


# --- offers the recorder refuses -----------------------------------------------------------------


async def test_recorder_refuses_a_second_offer_under_the_same_id() -> None:
    delivered: list[int] = []

    async def on_segment(participant_id: str, index: int, data: bytes, started_at: float, ended_at: float,
                         final: bool) -> None:
        delivered.append(index)

    recorder = RecorderPeer(on_segment)
    sender = Sender()
    try:
        offer = await sender.offer()
        await recorder.handle_offer("p", offer)
        with pytest.raises(ValueError, match='participant "p" already has a recording'):
            await recorder.handle_offer("p", offer)
        await recorder.close_participant("p")
        with pytest.raises(ValueError, match='participant "p" already has a recording'):
            await recorder.handle_offer("p", offer)
    finally:
        await recorder.close()
        await sender.close()
    assert delivered == []  # no media ever flowed: no file, no segment
    with pytest.raises(RuntimeError, match='recorder state "closed"'):
        await recorder.handle_offer("q", offer)


async def test_recorder_refuses_an_offer_without_vp8() -> None:
    async def on_segment(*args) -> None:
        raise AssertionError("nothing should be recorded")

    recorder = RecorderPeer(on_segment)
    sender = Sender()
    try:
        for transceiver in sender.pc.getTransceivers():
            if transceiver.kind == "video":
                transceiver.setCodecPreferences([c for c in RTCRtpReceiver.getCapabilities("video").codecs
                                                 if c.mimeType == "video/H264"])
        with pytest.raises(Exception, match="video"):
            await recorder.handle_offer("p", await sender.offer())
        assert recorder.participant_ids == []
    finally:
        await recorder.close()
        await sender.close()


def test_coverage_piece_cut_anywhere_reads_or_is_refused_with_value_error(session: Session) -> None:
    data = session.segments["early"][0].data
    assert block_times(data)  # the whole piece reads
    refused = 0
    for cut in range(1, len(data), max(1, len(data) // 300)):
        try:
            block_times(data[:cut])  # anything but ValueError (an IndexError, say) fails the test
        except ValueError as exc:
            assert "EBML" in str(exc)
            refused += 1
    assert refused  # some cuts fall inside an element's header
