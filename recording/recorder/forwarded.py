"""Media forwarded by the selective forwarding unit: plain RTP from Janus's VideoRoom ``rtp_forward``, no ICE or DTLS.

In a room on Janus the recorder is no peer of the browsers: the signaling server asks Janus to copy each
recorded publisher's audio and video, as plain RTP, to two UDP sockets the recorder binds on the address Janus
reaches it at (``ForwardedMedia``): one for RTP, one for RTCP feedback. Every forwarded stream carries an SSRC
the server chose and told the recorder (``media_forwards``), so one RTP socket serves the whole room.

Nothing from the network is trusted. A datagram is taken only if it comes from the Janus address the server
named, from the one source port its stream was first heard from, with an SSRC the recorder expects, the payload
type the server asked Janus to use, and a payload that parses (VP8 as in RFC 7741, Opus as is). Everything else
is dropped and counted by reason (``drops``); handling a datagram never raises. Taken packets go through a small
reorder buffer (aiortc's ``JitterBuffer``, the one its own receiver uses), and each completed frame goes to the
same frame callback the mesh capture feeds (``recording.recorder.capture``), so muxing, segments, sealing and
coverage stay where they are.

Key frames: a video stream's loss (a gap the reorder buffer gave up on) or the recorder's own request
(``request_keyframe``) sends an RTCP PLI (RFC 4585 section 6.3.1) from the RTCP socket to the forwarder's RTCP
port at Janus, which passes it on to the publisher.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiortc.codecs import depayload
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import TimestampMapper
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

logger = logging.getLogger(__name__)

FrameCallback = Callable[[RTCRtpCodecParameters, JitterFrame], None]

# What the server asks Janus to stamp on forwarded packets (signaling/sfurecorder.py sends the same numbers).
CODECS = {
    "audio": RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111),
    "video": RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
}
# The reorder buffers aiortc's own receiver uses: audio frames are one packet, video frames several.
BUFFERS = {"audio": {"capacity": 16, "prefetch": 4}, "video": {"capacity": 512, "is_video": True}}
MAX_DATAGRAM = 2048
# The RTCP sender SSRC of the recorder's PLIs (any value: Janus only looks for the PLI itself).
FEEDBACK_SSRC = 0x5245_4344
# At most one PLI per stream in this many seconds, whatever asks for it.
PLI_INTERVAL_SECONDS = 0.5

# too_early: before the server named Janus's address (Janus's first packets can precede media_forwards).
DROP_REASONS = ("too_early", "foreign_source", "unknown_ssrc", "malformed", "wrong_payload_type", "failed")


def _address(host: str) -> str:
    """``host`` as the canonical text of its IP address (an IPv4-mapped IPv6 address as IPv4)."""
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


@dataclasses.dataclass
class _Stream:
    """One forwarded stream: whose file it feeds, its reorder buffer, and where its feedback goes."""

    file_id: str
    kind: str
    ssrc: int
    sink: FrameCallback
    feedback_port: int | None
    jitter: JitterBuffer
    mapper: TimestampMapper = dataclasses.field(default_factory=TimestampMapper)
    source_port: int | None = None  # latched from the first packet taken
    packets: int = 0
    frames: int = 0
    last_pli: float = float("-inf")


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Any], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("forwarded media socket error: %s", exc)


class ForwardedMedia:
    """The recorder's two UDP sockets for one room, and the streams the server told it to expect there.

    ``open()`` binds them on ``host`` (port 0: the kernel picks; or the ports given) and returns
    ``(rtp_port, rtcp_port)``. ``expect_source`` names the one address Janus sends from; until it is
    named, nothing is taken. ``add``/``remove`` follow the server's ``media_forwards``.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.drops: Counter[str] = Counter()
        self.taken = 0
        self._source: str | None = None
        self._accepted: set[str] = set()  # source addresses as the socket reports them, once found to be Janus's
        self._streams: dict[int, _Stream] = {}
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None

    async def open(self, rtp_port: int = 0, rtcp_port: int = 0) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._rtp, _ = await loop.create_datagram_endpoint(
            lambda: _Socket(self._on_rtp), local_addr=(self.host, rtp_port), family=family)
        self._rtcp, _ = await loop.create_datagram_endpoint(
            lambda: _Socket(self._on_rtcp), local_addr=(self.host, rtcp_port), family=family)
        return self._rtp.get_extra_info("sockname")[1], self._rtcp.get_extra_info("sockname")[1]

    def close(self) -> None:
        for transport in (self._rtp, self._rtcp):
            if transport is not None:
                transport.close()
        self._rtp = self._rtcp = None
        self._streams.clear()

    def expect_source(self, host: str) -> None:
        """Take datagrams from ``host`` (Janus's address as the server resolved it) and no other."""
        self._source = _address(host)
        self._accepted = set()

    @property
    def ssrcs(self) -> set[int]:
        return set(self._streams)

    def add(self, file_id: str, kind: str, ssrc: int, sink: FrameCallback, feedback_port: int | None = None) -> None:
        """Expect ``kind`` media of SSRC ``ssrc`` for ``file_id``; its frames go to ``sink``."""
        if kind not in CODECS:
            raise ValueError(f"no forwarded {kind!r} media is recorded")
        if ssrc in self._streams:
            raise ValueError(f"SSRC {ssrc} is already expected")
        self._streams[ssrc] = _Stream(file_id, kind, ssrc, sink, feedback_port, JitterBuffer(**BUFFERS[kind]))

    def remove(self, ssrc: int) -> None:
        """Stop taking SSRC ``ssrc``: no frame of it reaches its sink after this returns."""
        self._streams.pop(ssrc, None)

    def stream_stats(self, ssrc: int) -> tuple[int, int]:
        """(packets, frames) taken for SSRC ``ssrc`` so far."""
        stream = self._streams.get(ssrc)
        return (stream.packets, stream.frames) if stream is not None else (0, 0)

    def request_keyframe(self, ssrc: int) -> bool:
        """Send a PLI for video SSRC ``ssrc`` to its forwarder at Janus; False if it cannot be sent yet."""
        stream = self._streams.get(ssrc)
        if stream is None or stream.kind != "video":
            return False
        return self._send_pli(stream, force=True)

    # --- the network --------------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, addr: Any) -> None:
        try:
            self._take(data, addr)
        except Exception:  # noqa: BLE001 - a datagram must never break the socket's loop
            self.drops["failed"] += 1
            logger.exception("a forwarded RTP datagram could not be handled")

    def _from_janus(self, host: str) -> bool:
        if host in self._accepted:
            return True
        if self._source is None or _address(host) != self._source:
            return False
        self._accepted.add(host)  # one spelling of Janus's address: the next packets skip parsing it
        return True

    def _take(self, data: bytes, addr: Any) -> None:
        if self._source is None:
            self.drops["too_early"] += 1
            return
        if not self._from_janus(addr[0]):
            self.drops["foreign_source"] += 1
            return
        if not 12 <= len(data) <= MAX_DATAGRAM or data[0] >> 6 != 2 or 72 <= data[1] & 0x7F <= 76:
            self.drops["malformed"] += 1  # not RTP version 2, or an RTCP packet type (RFC 5761 section 4)
            return
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            self.drops["malformed"] += 1
            return
        stream = self._streams.get(packet.ssrc)
        if stream is None:
            self.drops["unknown_ssrc"] += 1
            return
        if stream.source_port is not None and addr[1] != stream.source_port:
            self.drops["foreign_source"] += 1
            return
        codec = CODECS[stream.kind]
        if packet.payload_type != codec.payloadType:
            self.drops["wrong_payload_type"] += 1
            return
        try:
            packet._data = depayload(codec, packet.payload) if packet.payload else b""  # type: ignore[attr-defined]
        except ValueError:
            self.drops["malformed"] += 1
            return
        if stream.source_port is None:
            stream.source_port = addr[1]
        stream.packets += 1
        self.taken += 1
        lost, frame = stream.jitter.add(packet)
        if lost:
            self._send_pli(stream)
        if frame is not None:
            frame.timestamp = stream.mapper.map(frame.timestamp)
            stream.frames += 1
            stream.sink(codec, frame)  # the tap's callbacks log their own failures

    def _on_rtcp(self, data: bytes, addr: Any) -> None:
        # Janus opens each forwarder's feedback path with two empty packets; nothing else is expected here.
        try:
            if self._source is not None and not self._from_janus(addr[0]):
                self.drops["foreign_source"] += 1
        except ValueError:
            self.drops["malformed"] += 1

    def _send_pli(self, stream: _Stream, *, force: bool = False) -> bool:
        if stream.kind != "video" or stream.feedback_port is None or self._source is None or self._rtcp is None:
            return False
        now = asyncio.get_running_loop().time()
        if not force and now - stream.last_pli < PLI_INTERVAL_SECONDS:
            return False
        stream.last_pli = now
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=FEEDBACK_SSRC, media_ssrc=stream.ssrc)
        self._rtcp.sendto(bytes(pli), (self._source, stream.feedback_port))
        return True
