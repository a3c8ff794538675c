"""Finalising a participant's joined recording: the same packets in a file players can seek by its header.

The recorder writes a streaming WebM (a Segment of unknown size, no Cues, no Duration) so that
a crash leaves a playable prefix. Once the officer's tool has joined a part's verified segments,
it copies every packet, untouched and at its own timestamp (so all participants stay on the
session clock), into a file written with seeking: the Segment gets its size, the Info its
Duration, and Cues index the key frames. Nothing is decoded or encoded.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import av

__all__ = ["NotSeekableError", "PacketRewrite", "copy_packets", "write_seekable"]

# (kind, packet bytes) -> new bytes, or None to drop the packet; kind is "audio" or "video".
PacketRewrite = Callable[[str, bytes], "bytes | None"]


class NotSeekableError(Exception):
    """The joined file could not be read back or rewritten; the streaming join is kept instead."""


def write_seekable(source: Path, target: BinaryIO) -> None:
    """Write the WebM at `source` into `target` (a seekable file) with Cues and Duration.

    A file that already states its duration (written seekable in the first place) is copied byte
    for byte; a streaming one has its packets copied into a new container.
    """
    try:
        with av.open(str(source), "r", format="matroska") as joined:
            indexed = joined.duration is not None
    except (av.FFmpegError, ValueError) as exc:
        raise NotSeekableError(f"cannot read {source.name} back: {exc}") from None
    if indexed:
        with source.open("rb") as joined_file:
            shutil.copyfileobj(joined_file, target)
        return
    try:
        copy_packets(source, target)
    except (av.FFmpegError, ValueError) as exc:
        raise NotSeekableError(f"cannot rewrite {source.name} with an index: {exc}") from None


def copy_packets(source: Path, target: BinaryIO, rewrite: PacketRewrite | None = None) -> int:
    """Copy every audio and video packet of the Matroska/WebM at `source` into a new WebM in `target`.

    Each packet keeps its stream, timestamps and key-frame flag; ``rewrite(kind, data)`` (kind
    "audio" or "video"), when given, replaces its bytes, or drops it by returning None. Returns how
    many packets were dropped. Raises av.FFmpegError or ValueError when the file cannot be read
    or written.
    """
    dropped = 0
    with av.open(str(source), "r", format="matroska") as joined, \
            av.open(target, "w", format="webm") as finished:
        streams = {}
        for stream in joined.streams:
            if stream.type in ("video", "audio"):
                streams[stream.index] = finished.add_stream_from_template(stream)
        if not streams:
            raise NotSeekableError(f"{source.name} holds no audio or video stream")
        for packet in joined.demux(*[joined.streams[index] for index in streams]):
            if packet.dts is None:
                continue  # the flush packet demux() ends each stream with
            target_stream = streams[packet.stream.index]
            if rewrite is not None:
                data = rewrite(packet.stream.type, bytes(packet))
                if data is None:
                    dropped += 1
                    continue
                replaced = av.Packet(data)
                replaced.pts, replaced.dts, replaced.duration = packet.pts, packet.dts, packet.duration
                replaced.time_base = packet.time_base
                replaced.is_keyframe = packet.is_keyframe
                packet = replaced
            packet.stream = target_stream
            finished.mux(packet)
    return dropped
