"""CPU cost of recording a participant: our passthrough recorder against aiortc's stock MediaRecorder.

    .venv/bin/python bench/recording.py [--participants 3] [--seconds 20] [--repeat 3]
                                        [--segment-seconds 0.6[,5]] [--recorders ours,stock]

N synthetic participants (aiortc peers in this process) each send 640x480 30 fps VP8 and 20 ms
Opus to a recorder running in a child process; the child's CPU time (user + system, all its
threads, read from os.times() in the child) over the recording window, divided by participants
x seconds, is the cost in cores per participant. The senders replay media encoded once before
the runs, so this process does no encoding and the two recorders get the same input.

- ours:  what the recording worker does per participant: recording.recorder.peer.RecorderPeer
         passing VP8/Opus through into WebM segments of ``--segment-seconds`` (the server's default,
         0.6 s), each segment's media times read back from its blocks and the segment sealed with
         age to one X25519 recipient before it is written to disk (the worker uploads it instead).
- stock: aiortc's RTCPeerConnection decoding as usual, aiortc.contrib.media.MediaRecorder
         re-encoding to WebM (libvpx + libopus), one file per participant.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 800_000
AUDIO_RATE, AUDIO_SAMPLES = 48_000, 960
LOOP_SECONDS = 2  # the input is encoded once and looped


# --- input: encoded once, replayed by every sender ------------------------------------------------


def encode_input(seconds: float) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """VP8 frames (pts in 1/FPS, data) of sliding stripes and Opus packets (pts in 1/48000) of a tone.

    One group of pictures: it starts with the only key frame, so replaying it in a loop is a
    valid VP8 stream with a key frame every ``seconds``.
    """
    video = av.CodecContext.create("libvpx", "w")
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.time_base = Fraction(1, FPS)
    video.bit_rate = VIDEO_BITRATE
    video.gop_size = 1000
    video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    luma = bytes(range(256)) * (WIDTH * HEIGHT // 256 + 64)
    frames = []
    for n in range(int(seconds * FPS)):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        y, u, v = frame.planes
        shift = (n * 3) % 256
        y.update(luma[shift:shift + y.buffer_size])
        u.update(bytes([96 + n % 64]) * u.buffer_size)
        v.update(b"\xa0" * v.buffer_size)
        frame.pts = n
        frames += [(p.pts, bytes(p)) for p in video.encode(frame)]
    frames += [(p.pts, bytes(p)) for p in video.encode(None)]

    audio = av.CodecContext.create("libopus", "w")
    audio.sample_rate, audio.layout, audio.format = AUDIO_RATE, "mono", "s16"
    audio.time_base = Fraction(1, AUDIO_RATE)
    tone = array.array("h", (int(8000 * math.sin(2 * math.pi * 1000 * n / AUDIO_RATE))
                             for n in range(AUDIO_SAMPLES))).tobytes()
    packets = []
    for n in range(int(seconds * AUDIO_RATE / AUDIO_SAMPLES)):
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.planes[0].update(tone)
        frame.sample_rate, frame.pts = AUDIO_RATE, n * AUDIO_SAMPLES
        packets += [(p.pts, bytes(p)) for p in audio.encode(frame)]
    return frames, packets


class ReplayTrack(MediaStreamTrack):
    """Hands pre-encoded packets, looped, to aiortc's sender at their real-time pace (it packetizes only)."""

    def __init__(self, kind: str, packets: list[tuple[int, bytes]], time_base: Fraction, loop_length: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._time_base = time_base
        self._loop_length = loop_length  # in time_base units
        self._next = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        loops, index = divmod(self._next, len(self._packets))
        pts, data = self._packets[index]
        pts += loops * self._loop_length
        self._next += 1
        if self._start is None:
            self._start = time.monotonic() - float(pts * self._time_base)
        await asyncio.sleep(self._start + float(pts * self._time_base) - time.monotonic())
        packet = av.Packet(data)
        packet.pts, packet.time_base = pts, self._time_base
        return packet


# --- the recorder side, in a child process ----------------------------------------------------------


async def run_child(kind: str, out_dir: str, segment_seconds: float) -> None:
    """Answer offers from stdin (one JSON object a line), report CPU times on stdout."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    def cpu() -> float:
        times = os.times()
        return times.user + times.system

    if kind == "ours":
        import pyrage

        from recording.recorder.coverage import block_times, media_ranges
        from recording.recorder.peer import RecorderPeer
        from recording.records.sealing import seal

        recipients = [str(pyrage.x25519.Identity.generate().to_public())]
        written = {"bytes": 0, "segments": 0}

        async def on_segment(pid: str, index: int, data: bytes, started_at: float, ended_at: float,
                             final: bool) -> None:
            media_ranges(block_times(data))  # the worker files these with each segment
            sealed = seal(data, recipients)
            with open(os.path.join(out_dir, f"{pid}.webm"), "ab") as file:
                file.write(data)
            with open(os.path.join(out_dir, f"{pid}.sealed"), "ab") as file:
                file.write(sealed)
            written["bytes"] += len(sealed)
            written["segments"] += 1

        recorder = RecorderPeer(on_segment, segment_seconds=segment_seconds)

        async def answer(pid: str, sdp: str) -> str:
            return await recorder.handle_offer(pid, sdp)

        async def close() -> None:
            await recorder.close()
    else:
        from aiortc.contrib.media import MediaRecorder

        peers: dict[str, tuple[RTCPeerConnection, MediaRecorder]] = {}

        async def answer(pid: str, sdp: str) -> str:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            media = MediaRecorder(os.path.join(out_dir, f"{pid}.webm"))
            pc.on("track", media.addTrack)
            peers[pid] = (pc, media)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await media.start()
            return pc.localDescription.sdp

        async def close() -> None:
            for pc, media in peers.values():
                await media.stop()
                await pc.close()

    reply({"ready": True})
    while line := await reader.readline():
        request = json.loads(line)
        if request["op"] == "offer":
            reply({"answer": await answer(request["pid"], request["sdp"])})
        elif request["op"] == "mark":
            reply({"cpu": cpu()})
        elif request["op"] == "close":
            await close()
            reply({"cpu": cpu()})
            return


def count_video_frames(out_dir: str) -> int:
    total = 0
    for path in Path(out_dir).glob("*.webm"):
        with av.open(str(path)) as container:
            if container.streams.video:
                total += sum(1 for p in container.demux(video=0) if p.size)
    return total


# --- the sending side, in this process ---------------------------------------------------------------


async def run_once(kind: str, participants: int, seconds: float, media: tuple[list, list],
                   segment_seconds: float) -> dict:
    video, audio = media
    with tempfile.TemporaryDirectory(prefix=f"bench-recording-{kind}-") as out_dir:
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", kind, "--out", out_dir, "--segment-seconds", str(segment_seconds),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

        async def call(request: dict | None) -> dict:
            if request is not None:
                child.stdin.write((json.dumps(request) + "\n").encode())
                await child.stdin.drain()
            return json.loads(await asyncio.wait_for(child.stdout.readline(), 60))

        await call(None)  # ready: imports done
        senders = []
        sending_since = time.monotonic()
        try:
            for n in range(participants):
                pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                pc.addTrack(ReplayTrack("video", video, Fraction(1, FPS), LOOP_SECONDS * FPS))
                pc.addTrack(ReplayTrack("audio", audio, Fraction(1, AUDIO_RATE), LOOP_SECONDS * AUDIO_RATE))
                await pc.setLocalDescription(await pc.createOffer())
                answer = await call({"op": "offer", "pid": f"p{n}", "sdp": pc.localDescription.sdp})
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["answer"], type="answer"))
                senders.append(pc)
            start_cpu = (await call({"op": "mark"}))["cpu"]
            start, parent_cpu = time.monotonic(), sum(os.times()[:2])
            await asyncio.sleep(seconds)
            end_cpu = (await call({"op": "mark"}))["cpu"]
            recorded = time.monotonic() - start
            parent_cpu = sum(os.times()[:2]) - parent_cpu
            closed_cpu = (await call({"op": "close"}))["cpu"]
            sent_frames = participants * (time.monotonic() - sending_since) * FPS
        finally:
            for pc in senders:
                await pc.close()
            if child.returncode is None:
                child.stdin.close()
                await child.wait()
        kept = count_video_frames(out_dir) / sent_frames
    return {
        "cores_per_participant": (end_cpu - start_cpu) / (participants * recorded),
        "sender_cores": parent_cpu / recorded,
        "close_cpu_seconds": closed_cpu - end_cpu,
        "frames_kept": kept,
        "cores_to_keep_up": (end_cpu - start_cpu) / (participants * recorded * max(kept, 1e-3)),
    }


async def run_bench(participants: int, seconds: float, repeat: int, segment_lengths: list[float],
                    recorders: list[str]) -> None:
    print(f"encoding {LOOP_SECONDS} s of {WIDTH}x{HEIGHT} {FPS} fps VP8 + Opus input to loop ...", flush=True)
    media = encode_input(LOOP_SECONDS)
    # "ours" once per segment length, interleaved within each repetition so that they share the host's load.
    variants = [(kind, length) for kind in recorders for length in (segment_lengths if kind == "ours" else [0.0])]
    results: dict[tuple[str, float], list[dict]] = {variant: [] for variant in variants}
    for run in range(repeat):
        for kind, length in variants:
            result = await run_once(kind, participants, seconds, media, length or segment_lengths[0])
            results[(kind, length)].append(result)
            what = f"{kind} {length} s" if kind == "ours" else kind
            print(f"run {run + 1}/{repeat} {what:10}: {result['cores_per_participant']:.3f} cores/participant, "
                  f"video frames in files {result['frames_kept']:.0%} of sent, "
                  f"closing took {result['close_cpu_seconds']:.2f} CPU s, "
                  f"senders used {result['sender_cores']:.2f} cores, load {os.getloadavg()[0]:.1f}", flush=True)

    def median(variant: tuple[str, float], key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    print()
    print(f"{participants} participants x {seconds:.0f} s, {WIDTH}x{HEIGHT} {FPS} fps, {os.cpu_count()} CPUs, "
          f"median of {repeat}; cores per participant (CPU s per s of recorded participant):")
    for variant in variants:
        kind, length = variant
        label = f"ours  (passthrough WebM, sealed, {length} s segments)" if kind == "ours" else "stock (MediaRecorder)"
        print(f"  {label}: {median(variant, 'cores_per_participant'):.3f} used, "
              f"{median(variant, 'cores_to_keep_up'):.3f} per second of video actually kept "
              f"({median(variant, 'frames_kept'):.0%} of frames kept)")
    if "stock" not in recorders or "ours" not in recorders:
        return
    ours, stock = ("ours", segment_lengths[0]), ("stock", 0.0)
    used = median(stock, "cores_per_participant") / median(ours, "cores_per_participant")
    needed = median(stock, "cores_to_keep_up") / median(ours, "cores_to_keep_up")
    print(f"  stock / ours ({segment_lengths[0]} s segments): {used:.1f}x on CPU used, {needed:.1f}x per second "
          "of video kept   (targets: ours <= 0.06, >= 5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--segment-seconds", default="0.6",
                        help="segment length(s) for ours, comma-separated (default 0.6, the server's)")
    parser.add_argument("--recorders", default="ours,stock", help="which to run: ours, stock or both")
    parser.add_argument("--child", choices=["ours", "stock"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    recorders = [kind for kind in args.recorders.split(",") if kind]
    if not recorders or set(recorders) - {"ours", "stock"}:
        parser.error(f"--recorders takes ours, stock or both, not {args.recorders!r}")
    try:
        lengths = [float(value) for value in args.segment_seconds.split(",") if value]
    except ValueError:
        lengths = []
    if not lengths or any(not 0.2 <= value <= 60 for value in lengths):
        parser.error(f"--segment-seconds takes lengths from 0.2 to 60, comma-separated, not {args.segment_seconds!r}")
    if args.child:
        asyncio.run(run_child(args.child, args.out, lengths[0]))
    else:
        asyncio.run(run_bench(args.participants, args.seconds, args.repeat, lengths, recorders))


if __name__ == "__main__":
    main()
