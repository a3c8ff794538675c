"""The recorder's receiving side of Janus's RTP forwarders (recording/recorder/forwarded.py), over real UDP sockets.

A stand-in for Janus sends real VP8 and Opus RTP (aiortc's encoders and packetizers) from 127.0.0.1; the
recording must decode. A forger elsewhere on the host (127.0.0.2), a wrong SSRC, a wrong payload type and
garbage are dropped and counted, never recorded, never raised. A key frame request reaches Janus's RTCP port
as a PLI.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Iterator

import av
import pytest
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RTCP_PSFB, RTCP_PSFB_PLI, RtcpPacket, RtpPacket

from recording.recorder.forwarded import CODECS, ForwardedMedia
from recording.recorder.peer import RecorderPeer
from tests.recording.recorder.test_peer import MovingPattern, Tone

JANUS = "127.0.0.1"
FORGER = "127.0.0.2"  # another address of this host: Linux routes all of 127/8 to the loopback
VIDEO_SSRC, AUDIO_SSRC = 0x1111_2222, 0x3333_4444
FRAMES = 45  # 1.5 s of 30 fps video


def _udp(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


async def _rtp_packets(kind: str, ssrc: int, count: int) -> Iterator[bytes]:
    """``count`` frames of ``kind`` as RTP datagrams, with the payload type the recorder expects."""
    track = MovingPattern(160, 120) if kind == "video" else Tone()
    encoder = Vp8Encoder() if kind == "video" else OpusEncoder()
    sequence = 1000
    datagrams: list[bytes] = []
    for _ in range(count):
        frame = await track.recv()
        payloads, timestamp = encoder.encode(frame)
        for index, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=CODECS[kind].payloadType, sequence_number=sequence & 0xFFFF,
                               timestamp=timestamp & 0xFFFFFFFF, ssrc=ssrc, payload=payload,
                               marker=int(index == len(payloads) - 1))
            datagrams.append(packet.serialize())
            sequence += 1
    track.stop()
    return iter(datagrams)


class Recorded:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def on_segment(self, pid: str, index: int, data: bytes, started: float, ended: float, final: bool) -> None:
        self.files[pid] = self.files.get(pid, b"") + data


def _decoded(data: bytes) -> dict[str, int]:
    counts = {}
    for kind in ("video", "audio"):
        with av.open(io.BytesIO(data), "r") as container:
            streams = getattr(container.streams, kind)
            counts[kind] = sum(1 for _ in container.decode(streams[0])) if streams else 0
    return counts


async def _send(sock: socket.socket, datagrams, port: int) -> None:
    loop = asyncio.get_running_loop()
    for datagram in datagrams:
        await loop.sock_sendto(sock, datagram, (JANUS, port))
        await asyncio.sleep(0.002)


@pytest.mark.timeout(60)
async def test_forwarded_rtp_from_janus_is_recorded_and_decodes_and_forgeries_are_dropped() -> None:
    recorded = Recorded()
    peer = RecorderPeer(recorded.on_segment, segment_seconds=1.0)
    media = ForwardedMedia(JANUS)
    rtp_port, rtcp_port = await media.open()
    janus, janus_rtcp, forger = _udp(JANUS), _udp(JANUS), _udp(FORGER)
    try:
        media.expect_source(JANUS)
        sink = peer.open_forwarded("alice#0", {"audio", "video"})
        media.add("alice#0", "video", VIDEO_SSRC, sink("video"), janus_rtcp.getsockname()[1])
        media.add("alice#0", "audio", AUDIO_SSRC, sink("audio"))
        # Nobody else's packets: not even the right SSRCs from another address, before or after Janus's.
        forged_video = list(await _rtp_packets("video", VIDEO_SSRC, 10))
        await _send(forger, forged_video, rtp_port)
        video = list(await _rtp_packets("video", VIDEO_SSRC, FRAMES))
        audio = list(await _rtp_packets("audio", AUDIO_SSRC, 75))
        await asyncio.gather(_send(janus, video, rtp_port), _send(janus, audio, rtp_port))
        await _send(forger, forged_video, rtp_port)
        # From Janus's address but another port than its stream's: a forger on the Janus host.
        other_port = _udp(JANUS)
        await _send(other_port, forged_video[:3], rtp_port)
        other_port.close()
        # Wrong SSRC, wrong payload type, garbage, an RTCP packet on the RTP port, an empty datagram.
        stray = RtpPacket(payload_type=96, sequence_number=1, timestamp=1, ssrc=0x5555_5555, payload=b"\x10\x00")
        wrong_pt = RtpPacket(payload_type=100, sequence_number=1, timestamp=1, ssrc=VIDEO_SSRC, payload=b"\x10\x00")
        rtcp = bytes([0x80, 200, 0, 1, 0, 0, 0, 1])
        await _send(janus, [stray.serialize(), wrong_pt.serialize(), b"\x00" * 40, rtcp, b"", b"\x80\x60"],
                    rtp_port)
        await asyncio.sleep(0.3)

        # A key frame request reaches the forwarder's RTCP port at Janus as a PLI for the stream.
        assert media.request_keyframe(VIDEO_SSRC)
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(janus_rtcp, 1500), 5)
        (pli,) = RtcpPacket.parse(data)
        assert (pli.fmt, pli.media_ssrc) == (RTCP_PSFB_PLI, VIDEO_SSRC) and data[1] == RTCP_PSFB
        assert not media.request_keyframe(AUDIO_SSRC)

        media.remove(VIDEO_SSRC)
        media.remove(AUDIO_SSRC)
        await peer.close_participant("alice#0")
    finally:
        media.close()
        await peer.close()
        for sock in (janus, janus_rtcp, forger):
            sock.close()

    assert media.drops["foreign_source"] == 2 * len(forged_video) + 3, media.drops
    assert media.drops["unknown_ssrc"] == 1 and media.drops["wrong_payload_type"] == 1, media.drops
    assert media.drops["malformed"] == 4, media.drops  # garbage, RTCP, empty, truncated header
    assert media.drops["failed"] == 0 and media.drops["too_early"] == 0
    assert media.taken == len(video) + len(audio)
    counts = _decoded(recorded.files["alice#0"])
    # Every frame but the last of each stream (the reorder buffer hands a frame over when the next one starts).
    assert counts["video"] >= FRAMES - 2 and counts["audio"] >= 70, counts


@pytest.mark.timeout(30)
async def test_forwarded_media_takes_nothing_before_the_server_names_janus() -> None:
    recorded = Recorded()
    peer = RecorderPeer(recorded.on_segment, segment_seconds=1.0)
    media = ForwardedMedia(JANUS)
    rtp_port, _ = await media.open()
    janus = _udp(JANUS)
    try:
        sink = peer.open_forwarded("bob#0", {"video"})
        media.add("bob#0", "video", VIDEO_SSRC, sink("video"))
        video = list(await _rtp_packets("video", VIDEO_SSRC, 10))
        await _send(janus, video, rtp_port)
        await asyncio.sleep(0.2)
        media.remove(VIDEO_SSRC)
        await peer.close_participant("bob#0")
    finally:
        media.close()
        await peer.close()
        janus.close()
    assert media.drops["too_early"] == len(video) and media.taken == 0
    assert not recorded.files.get("bob#0")
