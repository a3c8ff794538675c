"""CPU cost of recording a participant fed by Janus's RTP forwarders, against the mesh recorder, in one run.

    .venv/bin/python bench/forwarded.py [--participants 3,4] [--seconds 20] [--repeat 3]

The same input as bench/recording.py (640x480 30 fps VP8 and 20 ms Opus, encoded once and looped). For each
participant count and repetition, two recorders run in a child process, one after the other, so they share
the host's load:

- mesh:      bench/recording.py's "ours": an aiortc peer per participant (ICE, DTLS-SRTP, jitter buffer), the
             encoded frames passed through into 0.6 s WebM segments, read back and sealed with age.
- forwarded: what the worker does in a room on Janus: recording.recorder.forwarded.ForwardedMedia takes plain
             RTP on one UDP socket (this process sends it from 127.0.0.1 at real-time pace, as Janus's
             forwarders would: one SSRC per stream, VP8 packetized as RFC 7741), validates, reorders and hands
             the frames to the same RecorderPeer segments, read back and sealed the same way.

The child's CPU time (user + system, all threads) over the window, divided by participants x seconds, is the
worker's cost in cores per participant. Prints every run and the medians; docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc.codecs.opus import OpusEncoder  # noqa: E402
from aiortc.codecs.vpx import Vp8Encoder  # noqa: E402
from aiortc.rtp import RtpPacket  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_recording", Path(__file__).with_name("recording.py"))
assert _spec is not None and _spec.loader is not None
mesh_bench = importlib.util.module_from_spec(_spec)  # bench/recording.py: the mesh recorder's run and the input
_spec.loader.exec_module(mesh_bench)

FPS, AUDIO_RATE = mesh_bench.FPS, mesh_bench.AUDIO_RATE
LOOP_SECONDS = mesh_bench.LOOP_SECONDS
VIDEO_PT, AUDIO_PT = 96, 111


def datagrams(media: tuple[list, list], seconds: float, ssrcs: tuple[int, int]) -> list[tuple[float, bytes]]:
    """(send time from the start, RTP datagram) of one participant's looped video and audio for ``seconds``."""
    video, audio = media
    out: list[tuple[float, bytes]] = []
    for kind, packets, rate, encoder, pt, ssrc in (
            ("video", video, FPS, Vp8Encoder(), VIDEO_PT, ssrcs[0]),
            ("audio", audio, AUDIO_RATE, OpusEncoder(), AUDIO_PT, ssrcs[1])):
        loop_length = LOOP_SECONDS * rate
        sequence, n = 0, 0
        while True:
            loops, index = divmod(n, len(packets))
            pts, data = packets[index]
            pts += loops * loop_length
            at = pts / rate
            if at >= seconds:
                break
            packet = av.Packet(data)
            packet.pts, packet.time_base = pts, Fraction(1, rate)
            payloads, timestamp = encoder.pack(packet)
            for i, payload in enumerate(payloads):
                rtp = RtpPacket(payload_type=pt, sequence_number=sequence & 0xFFFF, timestamp=timestamp & 0xFFFFFFFF,
                                ssrc=ssrc, payload=payload, marker=int(i == len(payloads) - 1))
                out.append((at, rtp.serialize()))
                sequence += 1
            n += 1
    return out


async def run_child(out_dir: str) -> None:
    """Receive forwarded RTP for the participants named on stdin; report CPU times on stdout."""
    import pyrage

    from recording.recorder.coverage import block_times, media_ranges
    from recording.recorder.forwarded import ForwardedMedia
    from recording.recorder.peer import RecorderPeer
    from recording.records.sealing import seal

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    recipients = [str(pyrage.x25519.Identity.generate().to_public())]

    def reply(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def on_segment(pid: str, index: int, data: bytes, started_at: float, ended_at: float, final: bool) -> None:
        media_ranges(block_times(data))
        sealed = seal(data, recipients)
        with open(os.path.join(out_dir, f"{pid}.webm"), "ab") as file:
            file.write(data)
        with open(os.path.join(out_dir, f"{pid}.sealed"), "ab") as file:
            file.write(sealed)

    recorder = RecorderPeer(on_segment, segment_seconds=0.6)
    media = ForwardedMedia("127.0.0.1")
    rtp_port, _ = await media.open()
    media.expect_source("127.0.0.1")
    reply({"port": rtp_port})
    while line := await reader.readline():
        request = json.loads(line)
        if request["op"] == "add":
            sink = recorder.open_forwarded(request["pid"], {"audio", "video"})
            media.add(request["pid"], "video", request["video_ssrc"], sink("video"))
            media.add(request["pid"], "audio", request["audio_ssrc"], sink("audio"))
            reply({"ok": True})
        elif request["op"] == "mark":
            times = os.times()
            reply({"cpu": times.user + times.system, "drops": sum(media.drops.values())})
        elif request["op"] == "close":
            media.close()
            await recorder.close()
            reply({"ok": True})
            return


async def run_forwarded(participants: int, seconds: float, media: tuple[list, list]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-forwarded-") as out_dir:
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", "--out", out_dir,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

        async def call(request: dict | None) -> dict:
            if request is not None:
                child.stdin.write((json.dumps(request) + "\n").encode())
                await child.stdin.drain()
            return json.loads(await asyncio.wait_for(child.stdout.readline(), 60))

        port = (await call(None))["port"]
        schedule: list[tuple[float, bytes]] = []
        for n in range(participants):
            ssrcs = (0x1000_0000 + 2 * n, 0x1000_0001 + 2 * n)
            await call({"op": "add", "pid": f"p{n}", "video_ssrc": ssrcs[0], "audio_ssrc": ssrcs[1]})
            schedule += datagrams(media, seconds + 1.0, ssrcs)
        schedule.sort(key=lambda item: item[0])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        marks: dict[str, dict] = {}

        async def measure() -> None:
            await asyncio.sleep(0.5)  # past the first key frame and the files' start
            marks["start"], marks["t0"] = await call({"op": "mark"}), {"t": time.monotonic()}
            await asyncio.sleep(seconds)
            marks["end"], marks["t1"] = await call({"op": "mark"}), {"t": time.monotonic()}

        measuring = asyncio.create_task(measure())
        began, parent_cpu = time.monotonic(), sum(os.times()[:2])
        for at, datagram in schedule:
            delay = began + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await loop.sock_sendto(sock, datagram, ("127.0.0.1", port))
        sent_for = time.monotonic() - began
        await measuring
        parent_cpu = sum(os.times()[:2]) - parent_cpu
        await call({"op": "close"})
        await child.wait()
        sock.close()
        kept = mesh_bench.count_video_frames(out_dir) / (participants * (seconds + 1.0) * FPS)
    window = marks["t1"]["t"] - marks["t0"]["t"]
    return {"cores_per_participant": (marks["end"]["cpu"] - marks["start"]["cpu"]) / (participants * window),
            "sender_cores": parent_cpu / sent_for, "frames_kept": kept, "drops": marks["end"]["drops"]}


async def run_bench(counts: list[int], seconds: float, repeat: int) -> None:
    print(f"encoding {LOOP_SECONDS} s of {mesh_bench.WIDTH}x{mesh_bench.HEIGHT} {FPS} fps VP8 + Opus ...", flush=True)
    media = mesh_bench.encode_input(LOOP_SECONDS)
    results: dict[tuple[str, int], list[dict]] = {}
    for run in range(repeat):
        for participants in counts:
            for kind in ("mesh", "forwarded"):
                if kind == "mesh":
                    result = await mesh_bench.run_once("ours", participants, seconds, media, 0.6)
                else:
                    result = await run_forwarded(participants, seconds, media)
                results.setdefault((kind, participants), []).append(result)
                print(f"run {run + 1}/{repeat} {participants} participants {kind:9}: "
                      f"{result['cores_per_participant']:.4f} cores/participant, "
                      f"video frames in files {result['frames_kept']:.0%} of sent, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    print()
    print(f"{seconds:.0f} s windows, {os.cpu_count()} CPUs, median of {repeat}; the recorder worker's cores per "
          f"participant (target fed by forwarders: <= 0.005):")
    for (kind, participants), runs in results.items():
        print(f"  {participants} participants, {kind:9}: "
              f"{statistics.median(r['cores_per_participant'] for r in runs):.4f} "
              f"({statistics.median(r['frames_kept'] for r in runs):.0%} of frames kept)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", default="3,4", help="participant counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(run_child(args.out))
        return
    try:
        counts = [int(value) for value in args.participants.split(",") if value]
    except ValueError:
        counts = []
    if not counts or any(not 1 <= n <= 16 for n in counts):
        parser.error(f"--participants takes counts from 1 to 16, comma-separated, not {args.participants!r}")
    asyncio.run(run_bench(counts, args.seconds, args.repeat))


if __name__ == "__main__":
    main()
