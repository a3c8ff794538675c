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
import time
from collections.abc import Iterator
from fractions import Fraction

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

from recording.capture import CaptureUnsupportedError, EncodedFrameTap, capture_encoded_frames, request_keyframe
from recording.peer import RecorderPeer
from recording.webm import WebmMuxer, vp8_keyframe_size

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


@dataclasses.dataclass
class Session:
    segments: dict[str, list[Segment]]
    joined: dict[str, float]  # seconds after session start, when the offer was answered
    answers: dict[str, str]
    closed_at: float  # seconds after session start
    decoder_calls: int
    taps: list[EncodedFrameTap]
    decoded_frames_queued: int
    decoder_threads_left: int


async def record_session() -> Session:
    segments: dict[str, list[Segment]] = {}
    first_segment = {pid: asyncio.Event() for pid in ("early", "late")}

    async def on_segment(participant_id: str, index: int, data: bytes, started_at: float, ended_at: float) -> None:
        segments.setdefault(participant_id, []).append(Segment(index, data, started_at, ended_at))
        first_segment[participant_id].set()

    started = time.time()
    recorder = RecorderPeer(on_segment, session_started_at=started, segment_seconds=SEGMENT_SECONDS)
    senders = {"early": Sender(), "late": Sender()}
    joined: dict[str, float] = {}
    answers: dict[str, str] = {}
    receivers: list[RTCRtpReceiver] = []
    try:
        answers["early"] = await recorder.handle_offer("early", await senders["early"].offer())
        joined["early"] = time.time() - started
        await senders["early"].accept(answers["early"])
        await asyncio.sleep(started + LATE_JOIN - time.time())
        # The late participant trickles its candidates, as browsers do.
        offer, candidates = await senders["late"].offer_trickled()
        answers["late"] = await recorder.handle_offer("late", offer)
        joined["late"] = time.time() - started
        await senders["late"].accept(answers["late"])
        for candidate in candidates:
            await recorder.add_ice_candidate("late", candidate)
        await recorder.add_ice_candidate("late", None)
        receivers = [t.receiver for r in recorder._recordings.values() for t in r.pc.getTransceivers()]
        await asyncio.wait_for(first_segment["early"].wait(), WAIT)
        await asyncio.sleep(started + RECORD_FOR - time.time())  # the recording itself
        closed_at = time.time() - started
        await recorder.close()
    finally:
        await recorder.close()
        for sender in senders.values():
            await sender.close()
    return Session(
        segments=segments,
        joined=joined,
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
    recorded = session.closed_at - session.joined[pid]
    for kind in ("video", "audio"):
        span = max(times[kind]) - min(times[kind])
        assert abs(span - recorded) < 1.0, (kind, span, recorded)


@pytest.mark.parametrize("pid", ["early", "late"])
def test_recorder_participant_file_decodes_every_frame(session: Session, pid: str) -> None:
    data = _file(session, pid)
    times = _packet_times(data)
    video, audio = _decode_all(data)
    assert video == len(times["video"]) and audio == len(times["audio"])
    recorded = session.closed_at - session.joined[pid]
    assert video > 20 * (recorded - 1)  # ~30 fps sent
    assert audio > 45 * (recorded - 1)  # 50 Opus packets a second


def test_recorder_late_participant_starts_at_its_join_time(session: Session) -> None:
    early, late = (_packet_times(_file(session, pid)) for pid in ("early", "late"))
    assert min(early["audio"]) < 0.7
    assert abs(min(late["audio"]) - LATE_JOIN) < 0.7
    assert abs(min(late["video"]) - LATE_JOIN) < 0.7
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
    # An Opus packet per frame: TOC config of a 20 ms SILK/CELT/hybrid frame (RFC 6716 3.1).
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


def _encoded_vp8(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.gop_size = 1000
    encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    track = MovingPattern()
    out = []
    for n in range(count):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane, fill in zip(frame.planes, (track._luma[n * 3:], b"\x60" * 99999, b"\xa0" * 99999)):
            plane.update(fill[:plane.buffer_size])
        frame.pts = n
        out += [bytes(p) for p in encoder.encode(frame)]
    return out + [bytes(p) for p in encoder.encode(None)]


def test_muxer_unwraps_rtp_timestamps_and_drops_video_before_the_key_frame() -> None:
    frames = _encoded_vp8(60)
    muxer = WebmMuxer({"video"}, session_start=100.0)
    start = 2**32 - 90_000  # wraps one second in
    # Two inter frames before the key frame are dropped, as if joined mid-stream.
    for n, data in [(1, frames[1]), (2, frames[2])] + list(enumerate(frames)):
        muxer.write("video", data, (start + 3000 * n) % 2**32, vp8_keyframe_size(data) is not None,
                    arrival=100.0 + 3 + n / 30)
    data = muxer.cut() + muxer.close()
    times = _packet_times(data)["video"]
    assert len(times) == 60 and muxer.packets_dropped == 2
    assert times[0] == pytest.approx(3.0, abs=0.002)
    assert times[-1] - times[0] == pytest.approx(59 / 30, abs=0.002)
    assert _decode_all(data)[0] == 60
