"""Recording gaps are measured from what each filed segment holds, and named with their range and reason."""

from __future__ import annotations

import datetime as dt

from recording.records.gaps import FiledSegment, recording_gaps
from recording.records.transcript import RoomEntry, build_transcript, render_transcript

ZERO = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)
ZERO_MS = round(ZERO.timestamp() * 1000)
ENDED = "2026-03-01T10:10:00+00:00"


def _at(seconds: float) -> str:
    return (ZERO + dt.timedelta(seconds=seconds)).isoformat()


def _file(*media: list[tuple[int, int]], pid: str = "pty_b", final: bool = True,
          skip: frozenset[int] = frozenset()) -> list[FiledSegment]:
    """One segment per `media` item, numbered from 0, the indices in `skip` never filed."""
    return [FiledSegment(participant_id=pid, part=0, index=index, media=tuple(ranges), clock_zero_ms=ZERO_MS,
                         final=final and index == len(media) - 1)
            for index, ranges in enumerate(media) if index not in skip]


def _spans(gaps: list[dict]) -> list[tuple[str, float, float, str]]:
    return [(g["participant_id"], g["file_from"], g["file_to"], g["reason"]) for g in gaps]


def test_gaps_steady_file_closed_normally_has_none() -> None:
    segments = _file([(2000, 2580)], [(2600, 3180)], [(3200, 3300)], [])
    assert recording_gaps(segments, [], ENDED) == []


def test_gaps_segment_never_filed_runs_from_the_block_before_to_the_block_after() -> None:
    segments = _file([(0, 580)], [(600, 1180)], [(1200, 1780)], [(1800, 2000)], skip=frozenset({1, 2}))
    assert _spans(recording_gaps(segments, [], ENDED)) == [("pty_b", 0.58, 1.8, "segment_not_filed")]


def test_gaps_silence_over_half_a_second_is_media_stopped_shorter_is_not() -> None:
    segments = _file([(0, 500), (1400, 1580)], [(1600, 2000)], [(2450, 2500)])
    assert _spans(recording_gaps(segments, [], ENDED)) == [("pty_b", 0.5, 1.4, "media_stopped")]


def test_gaps_file_without_its_final_segment_ends_at_the_recorder_lost_stop() -> None:
    segments = _file([(0, 580)], [(600, 9550)], final=False)
    stops = [(_at(13.08), "recorder_lost")]
    (gap,) = recording_gaps(segments, stops, ENDED)
    assert _spans([gap]) == [("pty_b", 0.0 + 9.55, 13.08, "recorder_lost")]
    assert (gap["from"], gap["to"]) == ("2026-03-01T10:00:09.550+00:00", "2026-03-01T10:00:13.080+00:00")


def test_gaps_file_cut_off_without_a_word_runs_to_the_end_of_the_session() -> None:
    segments = _file([(0, 580)], final=False)
    assert _spans(recording_gaps(segments, [(_at(0.2), "mediator")], ENDED)) == [("pty_b", 0.58, 600.0, "cut_off")]


def test_gaps_file_cut_off_ends_where_the_participants_media_resumes_in_a_later_part() -> None:
    # The node died 9.55 s into part 0; it came back and a new recording (time zero 20 s later)
    # received this participant's media again 1.2 s into part 1.
    cut = _file([(0, 580)], [(600, 9550)], final=False)
    later = [FiledSegment(participant_id="pty_b", part=1, index=0, media=((1200, 1780),), clock_zero_ms=ZERO_MS + 20_000,
                          final=False),
             FiledSegment(participant_id="pty_b", part=1, index=1, media=((1800, 2000),), clock_zero_ms=ZERO_MS + 20_000,
                          final=True)]
    other = [FiledSegment(participant_id="pty_c", part=1, index=0, media=((100, 2000),), clock_zero_ms=ZERO_MS + 20_000,
                          final=True)]
    stops = [(_at(40), "mediator")]
    gaps = recording_gaps([*cut, *later, *other], stops, ENDED)
    assert _spans(gaps) == [("pty_b", 9.55, 21.2, "cut_off")]
    assert gaps[0]["to"] == "2026-03-01T10:00:21.200+00:00"
    # Without media in a later part, the gap still runs to the next stop.
    silent = [FiledSegment(participant_id="pty_b", part=1, index=0, media=(), clock_zero_ms=ZERO_MS + 20_000,
                           final=True)]
    assert _spans(recording_gaps([*cut, *silent], stops, ENDED)) == [("pty_b", 9.55, 40.0, "cut_off")]
    # A stop before the media resumed still ends it first.
    assert _spans(recording_gaps([*cut, *later], [(_at(13.08), "recorder_lost")], ENDED)) == [
        ("pty_b", 9.55, 13.08, "recorder_lost")]


def test_gaps_in_the_transcript_as_events_in_time_order_and_rendered() -> None:
    stopped = {"reason": "recorder_lost"}
    entries = [RoomEntry(at=_at(0), actor="mediator:usr_m", action="recording_started", detail={}),
               RoomEntry(at=_at(13.08), actor="system", action="recording_stopped", detail=stopped)]
    doc = build_transcript(case_id="cas_1", session_id="ses_1", ended_at=ENDED, entries=entries, messages=[],
                           names={"pty_b": ("Li Wei", "borrower")}, recordings={"pty_b": [2]},
                           segments=_file([(0, 580)], [(600, 9550)], final=False))
    assert [e["type"] for e in doc["events"]] == ["recording_started", "recording_gap", "recording_stopped"]
    assert "[10:00:09] GAP in the recording of Li Wei (borrower): part 0 misses 10:00:09.550-10:00:13.080 UTC (3.5 s; " \
           "9.6 s to 13.1 s into the file): recorder_lost: the recorder stopped unexpectedly" \
           in render_transcript(doc)


def test_gaps_segment_entry_without_media_times_or_damaged_is_not_read() -> None:
    detail = {"kind": "recording_segment", "participant_id": "pty_b", "part": 1, "index": 4,
              "media": [[10, 20]], "clock_zero_ms": ZERO_MS, "final": True}
    assert FiledSegment.from_detail(detail) == FiledSegment("pty_b", 1, 4, ((10, 20),), ZERO_MS, True)
    for damaged in ({"media": None}, {"media": [[1]]}, {"clock_zero_ms": "0"}, {"index": None},
                    {"kind": "chat_message"}):
        assert FiledSegment.from_detail({**detail, **damaged}) is None, damaged
