"""Finalising a participant's joined recording: the same packets in a file players can seek by its header.

The recorder writes a streaming WebM (a Segment of unknown size, no Cues, no Duration) so that
a crash leaves a playable prefix. Once the officer's tool has joined a part's verified segments,
it copies every packet, untouched and at its own timestamp (so all participants stay on the
session clock), into a file written with seeking: the Segment gets its size, the Info its
Duration, and Cues index the key frames. Nothing is decoded or encoded.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

import av

__all__ = ["NotSeekableError", "write_seekable"]


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
                packet.stream = streams[packet.stream.index]
                finished.mux(packet)
    except (av.FFmpegError, ValueError) as exc:
        raise NotSeekableError(f"cannot rewrite {source.name} with an index: {exc}") from None
