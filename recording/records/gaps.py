"""Recording gaps: where a participant's file misses media, measured from what the recorder filed.

Spec: docs/records.md ("Recording gaps"). Every recording segment's audit entry carries the media
time its blocks hold (``media``: [[first, last], …] milliseconds on the recording's clock, whose
time zero is ``clock_zero_ms``, epoch milliseconds) and whether it ends the file (``final``). From
those alone, never from what happened to be expected, the transcript names each gap:

- ``segment_not_filed``: indices missing between filed segments (an upload that failed for good);
  the gap runs from the last block before them to the first block after them;
- ``media_stopped``: no block in any track for over ``MEDIA_HOLE_MS`` inside the file;
- ``recorder_lost`` / ``cut_off``: the file has no final segment, so its end was never filed: the
  gap runs from its last filed block to the room's ``recording_stopped`` after it (reason
  ``recorder_lost`` if the room lost the recorder: it was killed or crashed) or, with none, to the
  end of the session (``cut_off``: the recorder or its node stopped without a word) -- or, sooner,
  to the participant's first block in a later file (a new recording after a node restarted):
  from there on the media is on the record again.

What a participant did not send before their first block or after their last one in a file they
left normally is not a gap: the file starts when their media reaches the recorder and ends when
they leave.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["GAP_REASONS", "MEDIA_HOLE_MS", "FiledSegment", "recording_gaps"]

# Opus sends a packet every 20 ms (DTX, which browsers leave off, every 400 ms): a silence in
# every track longer than this is media that did not arrive. The recorder splits a segment's
# ranges at the same length.
MEDIA_HOLE_MS = 500

GAP_REASONS = {
    "recorder_lost": "the recorder stopped unexpectedly (killed or crashed); what it had received but not "
                     "yet filed is lost, and nothing was recorded until a new recording started",
    "cut_off": "the end of the file was never filed: the recorder or its node stopped without closing it",
    "segment_not_filed": "segments were never filed (their upload failed)",
    "media_stopped": "no media arrived from the participant",
}


@dataclasses.dataclass(frozen=True)
class FiledSegment:
    """What the audit entry of one filed recording segment says about its media."""

    participant_id: str
    part: int
    index: int
    media: tuple[tuple[int, int], ...]
    clock_zero_ms: int
    final: bool

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> FiledSegment | None:
        """Read a `record_sealed` entry's detail; None if it is no segment or predates media times."""
        media, zero = detail.get("media"), detail.get("clock_zero_ms")
        participant_id, part, index = detail.get("participant_id"), detail.get("part") or 0, detail.get("index")
        if detail.get("kind") != "recording_segment" or not isinstance(media, list) or not isinstance(zero, int) \
                or not isinstance(participant_id, str) or not isinstance(part, int) or not isinstance(index, int):
            return None
        try:
            ranges = tuple((int(first), int(last)) for first, last in media)
        except (TypeError, ValueError):
            return None  # a damaged entry: its segment's place is still checked by its index
        return cls(participant_id=participant_id, part=part, index=index, media=ranges, clock_zero_ms=zero,
                   final=bool(detail.get("final")))


def _ms(at: str) -> int:
    return round(dt.datetime.fromisoformat(at).timestamp() * 1000)


def _iso(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds")


def _gap(participant_id: str, part: int, zero: int, first: int, last: int, reason: str) -> dict[str, Any]:
    return {"at": _iso(zero + first), "type": "recording_gap", "participant_id": participant_id, "part": part,
            "from": _iso(zero + first), "to": _iso(zero + last),
            "file_from": round(first / 1000, 3), "file_to": round(last / 1000, 3), "reason": reason}


def recording_gaps(segments: Sequence[FiledSegment], stops: Sequence[tuple[str, str | None]],
                   ended_at: str) -> list[dict[str, Any]]:
    """Return the `recording_gap` events of a session's files.

    `stops` are the room's `recording_stopped` entries as (time, reason) in time order; `ended_at`
    is when the session ended.
    """
    files: dict[tuple[str, int], list[FiledSegment]] = defaultdict(list)
    for segment in segments:
        files[(segment.participant_id, segment.part)].append(segment)
    gaps: list[dict[str, Any]] = []
    for (participant_id, part), filed in sorted(files.items()):
        filed.sort(key=lambda s: s.index)
        zero = filed[0].clock_zero_ms
        last_end: int | None = None  # the last block before the segment in hand
        expected, missing = 0, False
        for segment in filed:
            missing = missing or segment.index > expected
            expected = segment.index + 1
            for first, last in segment.media:
                if missing:
                    # Segments missing before this block: from the last block before them (or the
                    # clock's start) to this one.
                    gaps.append(_gap(participant_id, part, zero, last_end or 0, first, "segment_not_filed"))
                    missing = False
                elif last_end is not None and first - last_end > MEDIA_HOLE_MS:
                    gaps.append(_gap(participant_id, part, zero, last_end, first, "media_stopped"))
                last_end = last
        if not missing and any(segment.final for segment in filed):
            continue
        end = last_end if last_end is not None else 0
        stop = next(((at, reason) for at, reason in stops if _ms(at) >= zero + end), None)
        until, reason = (stop[0], "recorder_lost" if stop[1] == "recorder_lost" else "cut_off") if stop \
            else (ended_at, "cut_off")
        until_ms = _ms(until)
        resumed = _resumed(files, participant_id, part, zero + end)
        if resumed is not None and resumed < until_ms:
            until_ms = resumed
        gaps.append(_gap(participant_id, part, zero, end, max(end, until_ms - zero),
                         "segment_not_filed" if missing else reason))
    return gaps


def _resumed(files: Mapping[tuple[str, int], Sequence[FiledSegment]], participant_id: str, part: int,
             after_ms: int) -> int | None:
    """Epoch ms of the participant's first block, at or after `after_ms`, in a later part; None if none."""
    firsts = [segment.clock_zero_ms + first for (pid, later), filed in files.items()
              if pid == participant_id and later > part for segment in filed for first, _ in segment.media]
    return min((at for at in firsts if at >= after_ms), default=None)
