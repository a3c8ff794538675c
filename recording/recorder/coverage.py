"""What media time a piece of a streaming WebM file holds, read back from its Matroska blocks.

The recorder states what it received by the timestamps it actually wrote, not by the wall clock
of its cuts: each piece handed out by ``WebmMuxer.cut()`` is walked (EBML, RFC 8794; Matroska,
RFC 9559) for its clusters' blocks, and their timestamps (milliseconds on the session clock, the
muxer's scale) are folded into ranges. A silence longer than ``MEDIA_HOLE_MS``
(recording.records.gaps) between two blocks, across all tracks, splits a range: media that never came.
"""

from __future__ import annotations

from collections.abc import Iterator

from recording.records.gaps import MEDIA_HOLE_MS

__all__ = ["block_times", "media_ranges"]

_SEGMENT = 0x18538067
_CLUSTER = 0x1F43B675
_BLOCK_GROUP = 0xA0
_BLOCK = 0xA1
_SIMPLE_BLOCK = 0xA3
_CLUSTER_TIMESTAMP = 0xE7
_CONTAINERS = {_SEGMENT, _CLUSTER, _BLOCK_GROUP}


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, next position, all value bits set) of the variable-length integer at ``pos``."""
    if pos >= len(data):
        raise ValueError(f"EBML element cut short at byte {pos}")
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        raise ValueError(f"bad EBML variable-length integer at byte {pos}")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, pos + length, unknown


def _elements(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of each element between ``pos`` and ``end``, descending into containers."""
    while pos < end:
        element_id, pos, _ = _vint(data, pos, keep_marker=True)
        size, pos, unknown = _vint(data, pos, keep_marker=False)
        stop = end if unknown else min(pos + size, end)
        yield element_id, pos, stop
        # A live file's Segment has an unknown size; a piece may end inside any container.
        pos = pos if element_id in _CONTAINERS else stop


def block_times(data: bytes) -> list[int]:
    """Timestamps (ms) of every block in ``data``: pieces of one Matroska file, each starting at an element."""
    times: list[int] = []
    cluster = 0
    for element_id, start, stop in _elements(data, 0, len(data)):
        if element_id == _CLUSTER_TIMESTAMP:
            cluster = int.from_bytes(data[start:stop], "big")
        elif element_id in (_SIMPLE_BLOCK, _BLOCK) and stop - start >= 4:
            _, after_track, _ = _vint(data, start, keep_marker=False)
            times.append(cluster + int.from_bytes(data[after_track:after_track + 2], "big", signed=True))
    return times


def media_ranges(times: list[int], hole_ms: int = MEDIA_HOLE_MS) -> list[tuple[int, int]]:
    """Fold block timestamps into [(first, last), …] ranges, split where no block came for over ``hole_ms``."""
    ranges: list[tuple[int, int]] = []
    for time in sorted(times):
        if ranges and time - ranges[-1][1] <= hole_ms:
            ranges[-1] = (ranges[-1][0], time)
        else:
            ranges.append((time, time))
    return ranges
