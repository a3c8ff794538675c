"""Encoded-frame capture: takes what an aiortc ``RTCRtpReceiver`` would decode and hands it over as is.

aiortc (tested: 1.16, pinned in pyproject.toml) has no public API for encoded frames. Its
receiver reassembles each frame in a jitter buffer, inside ``_handle_rtp_packet``, and puts
``(codec, JitterFrame)`` on a private ``queue.Queue`` (``self.__decoder_queue``, mangled to
``_RTCRtpReceiver__decoder_queue``) read by a decoder thread that ``receive()`` starts. We put a
queue of our own in its place before ``receive()`` runs: frames go to a callback on the event loop,
and only the stop sentinel (``None``, put by ``stop()``, an RTCP BYE or a DTLS disconnect) reaches
the thread, which then exits without ever having decoded anything.

What arrives (checked against aiortc 1.16's ``jitterbuffer.py``, ``codecs/__init__.py`` and
``codecs/vpx.py``): ``frame.data`` is the concatenation of the depayloaded RTP payloads of one
RTP timestamp, in sequence order -- for VP8 the complete compressed frame with the RFC 7741
payload descriptors stripped, for Opus the single Opus packet of the RTP payload. ``frame.timestamp``
is in RTP clock units (90 kHz VP8, 48 kHz Opus), rebased by aiortc's ``TimestampMapper`` to start at
0 for the receiver's first frame and unwrapped by it.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

logger = logging.getLogger(__name__)

_QUEUE = "_RTCRtpReceiver__decoder_queue"
_THREAD = "_RTCRtpReceiver__decoder_thread"
_SEND_PLI = "_send_rtcp_pli"

FrameCallback = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class CaptureUnsupportedError(RuntimeError):
    """The installed aiortc does not have the internals this capture relies on."""


class EncodedFrameTap(queue.Queue):
    """Stands in for a receiver's decoder queue: frames go to a callback, only ``None`` is queued.

    ``put`` is called by ``RTCRtpReceiver._handle_rtp_packet`` on the event loop, so the callback
    runs there too and must be quick.
    """

    def __init__(self, on_frame: FrameCallback) -> None:
        super().__init__()
        self._on_frame = on_frame
        self.frames = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)  # lets the (idle) decoder thread end, and with it the track
            return
        codec, frame = item
        self.frames += 1
        try:
            self._on_frame(codec, frame)
        except Exception:
            # Raising here would unwind into aiortc's packet handling and stall the transport.
            logger.exception("encoded %s frame callback failed", codec.mimeType)


def capture_encoded_frames(receiver: RTCRtpReceiver, on_frame: FrameCallback) -> EncodedFrameTap:
    """Route ``receiver``'s encoded frames to ``on_frame`` instead of its decoder.

    Call it before the receiver starts (before ``RTCPeerConnection`` connects), e.g. right after
    creating the transceiver or from the ``track`` event.
    """
    missing = [name for name in (_QUEUE, _THREAD, _SEND_PLI) if not hasattr(receiver, name)]
    if missing:
        raise CaptureUnsupportedError(
            f"RTCRtpReceiver has no {', '.join(missing)}: this aiortc's internals differ from the "
            "1.16 series the encoded-frame capture was written for")
    current = getattr(receiver, _QUEUE)
    if isinstance(current, EncodedFrameTap):
        raise ValueError("this receiver's encoded frames are already captured")
    if not isinstance(current, queue.Queue):
        raise CaptureUnsupportedError(
            f"RTCRtpReceiver's decoder queue is a {type(current).__name__}, not a queue.Queue")
    if getattr(receiver, _THREAD) is not None:
        raise ValueError('Cannot capture encoded frames in receiver state "started": '
                         "the decoder thread already holds the original queue")
    tap = EncodedFrameTap(on_frame)
    setattr(receiver, _QUEUE, tap)
    return tap


async def request_keyframe(receiver: RTCRtpReceiver) -> int:
    """Send an RTCP PLI for each SSRC heard recently; returns how many were sent.

    A PLI (RFC 4585 section 6.3.1) asks the sender for a key frame. Before the first RTP packet
    the sender's SSRC is unknown and nothing is sent.
    """
    send_pli = getattr(receiver, _SEND_PLI)
    sources = receiver.getSynchronizationSources()
    for source in sources:
        await send_pli(source.source)
    return len(sources)
