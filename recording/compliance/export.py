"""Exporting a session for reviewers: one composed file, every participant side by side on the session clock.

Spec: docs/records.md ("Review player and export"). Run by the officer's command line:

    mediation-compliance export --identity KEYFILE --bundle DIR --out FILE.webm|FILE.mp4 [--session ses_…]
                                [--incomplete] [--audit-public-key PEM] [--pin FILE] [--witness-key VKEY]…

The bundle is verified and opened exactly as `open` does (into a private temporary directory,
removed afterwards), then the system's ffmpeg composes one file: a tile per participant, labelled
with their role, each of their recording parts placed at its time on the session clock (a file's
time zero is its recording's `clock_zero_ms`, from the verified audit entries), black where nothing
of them was recorded or the transcript names a gap, their audio mixed (silence likewise). The file
runs from the session's start to its end. A bundle that did not verify is refused
(`export_refused_incomplete`) unless `--incomplete` is given; the file then says INCOMPLETE on
every frame and in its metadata, and the tool says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyrage

from recording.compliance.open import Report, open_bundle
from recording.records.checkpoint import Witness
from recording.records.gaps import FiledSegment

__all__ = ["ExportError", "Exported", "Tile", "check_output", "export_session", "parse_tile"]

FPS = 15
DEFAULT_TILE = (480, 360)
# Containers by the output's suffix, and what is encoded into them.
_FORMATS = {
    ".webm": ("webm", ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "900k",
                       "-c:a", "libopus", "-b:a", "64k"]),
    ".mp4": ("mp4", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p",
                     "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart"]),
}
_ROLES = {"borrower": "Borrower", "lender": "Lender", "mediator": "Mediator",
          "bank_representative": "Bank representative", "case_officer": "Case officer"}
_SAFE_PATH = re.compile(r"^[A-Za-z0-9/._+-]+$")
FFMPEG_TIMEOUT = 1800


class ExportError(Exception):
    """The export cannot be made; `code` names why (docs/records.md lists the codes)."""

    def __init__(self, code: str, message: str, *, status: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclasses.dataclass(frozen=True)
class Source:
    """One recording file on the session clock."""

    path: Path
    part: int
    shift: float  # session time (s) of the file's first packet, where ffmpeg starts it
    video: bool
    audio: bool
    gaps: tuple[tuple[float, float], ...]  # session-time ranges the transcript names as lost


@dataclasses.dataclass(frozen=True)
class Tile:
    participant_id: str
    label: str
    sources: tuple[Source, ...]


@dataclasses.dataclass(frozen=True)
class Exported:
    """What was written: the file, its session, its length, its tiles and whether it is complete."""

    path: Path
    session_id: str
    duration: float
    tiles: tuple[Tile, ...]
    complete: bool
    report: Report


def parse_tile(text: str) -> tuple[int, int]:
    """'480x360' -> (480, 360); each side even, from 64 to 1920."""
    match = re.fullmatch(r"(\d{2,4})x(\d{2,4})", text)
    if not match:
        raise ValueError(f"a tile size is WIDTHxHEIGHT, e.g. 480x360, not {text!r}")
    width, height = int(match[1]), int(match[2])
    if not (64 <= width <= 1920 and 64 <= height <= 1920) or width % 2 or height % 2:
        raise ValueError(f"tile {text!r}: each side must be even and from 64 to 1920 pixels")
    return width, height


def _ms(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return round(parsed.timestamp() * 1000) if parsed.tzinfo is not None else None


def _probe(path: Path) -> tuple[float, bool, bool]:
    """(start time in s, has video, has audio) as ffmpeg will read the file."""
    result = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=start_time:stream=codec_type",
                             "-of", "json", str(path)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ExportError("ffmpeg_failed", f"ffprobe cannot read {path.name}: {result.stderr.strip()[-400:]}")
    info = json.loads(result.stdout)
    kinds = {stream.get("codec_type") for stream in info.get("streams", [])}
    try:
        start = float(info.get("format", {}).get("start_time", 0.0))
    except (TypeError, ValueError):
        start = 0.0
    return start, "video" in kinds, "audio" in kinds


def _session_span(doc: dict[str, Any] | None, filed: Sequence[FiledSegment]) -> tuple[int, int]:
    """(origin, end) in epoch ms: as the page's player (web_client/src/lib/compliance/player.js) reckons it."""
    starts: list[int] = []
    ends: list[int] = []
    if doc is not None:
        if (started := _ms(doc.get("started_at"))) is not None:
            starts.append(started)
        if (ended := _ms(doc.get("ended_at"))) is not None:
            ends.append(ended)
        for event in doc.get("events", []):
            if (at := _ms(event.get("at"))) is not None:
                ends.append(at)
            if event.get("type") == "recording_gap" and (to := _ms(event.get("to"))) is not None:
                ends.append(to)
    for segment in filed:
        for first, last in segment.media:
            starts.append(segment.clock_zero_ms + first)
            ends.append(segment.clock_zero_ms + last)
    if not starts and not ends:
        raise ExportError("export_no_recordings", "nothing places the session on a clock: no transcript times "
                                                   "and no verified recording segment with media times")
    origin = min(starts) if starts else min(ends)
    return origin, max(origin, *ends)


def _label(participant_id: str, doc: dict[str, Any] | None) -> str:
    for person in (doc or {}).get("participants", []):
        if isinstance(person, dict) and person.get("participant_id") == participant_id:
            return _ROLES.get(person.get("role"), "Participant")
    return "Participant"


def plan_tiles(report: Report, session_id: str, root: Path) -> tuple[int, float, tuple[Tile, ...]]:
    """The session's tiles from what `open` wrote to `root`: (origin epoch ms, duration s, tiles)."""
    doc = report.transcripts.get(session_id)
    recordings = {group: value for group, value in report.recordings.items() if group[1] == session_id}
    if not recordings:
        raise ExportError("export_no_recordings", f"session {session_id} has no verified recording to export")
    origin, end = _session_span(doc, [s for _, filed in recordings.values() for s in filed])
    gaps: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for event in (doc or {}).get("events", []):
        start, stop = _ms(event.get("from")), _ms(event.get("to"))
        if event.get("type") == "recording_gap" and start is not None and stop is not None \
                and isinstance(event.get("participant_id"), str) and isinstance(event.get("part"), int):
            gaps.setdefault((event["participant_id"], event["part"]), []).append(
                ((start - origin) / 1000, (stop - origin) / 1000))
    by_participant: dict[str, list[Source]] = {}
    for group, (name, filed) in sorted(recordings.items()):
        participant_id, part = group[2], int(group[3])
        path = root / name
        start, video, audio = _probe(path)
        if filed:
            zero = filed[0].clock_zero_ms
        else:  # an entry that predates media times: put the file at the session's start
            zero = origin
        by_participant.setdefault(participant_id, []).append(Source(
            path=path, part=part, shift=(zero - origin) / 1000 + start, video=video, audio=audio,
            gaps=tuple(gaps.get((participant_id, part), ()))))
    tiles = tuple(Tile(participant_id, _label(participant_id, doc), tuple(sources))
                  for participant_id, sources in by_participant.items())
    return origin, (end - origin) / 1000, tiles


def _graph(tiles: Sequence[Tile], inputs: dict[Path, int], duration: float, tile: tuple[int, int],
           labels: dict[str, Path], banner: Path | None) -> str:
    """The ffmpeg filter graph: a black base per tile with its files overlaid in time, labelled, stacked; audio mixed."""
    width, height = tile
    lines: list[str] = []
    stacked: list[str] = []
    mixed: list[str] = []
    text = "fontcolor=white:fontsize={size}:box=1:boxcolor=black@0.6:boxborderw=6:expansion=none:textfile={file}"
    for k, tile_ in enumerate(tiles):
        base = f"b{k}_0"
        lines.append(f"color=c=black:s={width}x{height}:r={FPS}:d={duration:.3f},format=yuv420p[{base}]")
        for j, source in enumerate(tile_.sources):
            n = inputs[source.path]
            if source.video:
                lines.append(f"[{n}:v]scale={width}:{height}:force_original_aspect_ratio=decrease,"
                             f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,"
                             f"setpts=PTS+{source.shift:.3f}/TB[s{k}_{j}]")
                # Black where the transcript names a gap (the file may freeze on its last frame there).
                hidden = "+".join(f"between(t\\,{a:.3f}\\,{b:.3f})" for a, b in source.gaps)
                enable = f":enable='not({hidden})'" if hidden else ""
                lines.append(f"[{base}][s{k}_{j}]overlay=eof_action=pass{enable}[b{k}_{j + 1}]")
                base = f"b{k}_{j + 1}"
            if source.audio:
                lines.append(f"[{n}:a]asetpts=PTS+{source.shift:.3f}/TB,"
                             f"aresample=48000:async=1:first_pts=0,aformat=channel_layouts=stereo[a{k}_{j}]")
                mixed.append(f"[a{k}_{j}]")
        lines.append(f"[{base}]drawtext=x=8:y=8:{text.format(size=max(14, height // 18), file=labels[tile_.participant_id])}"
                     f"[t{k}]")
        stacked.append(f"[t{k}]")
    if len(stacked) > 1:
        lines.append(f"{''.join(stacked)}hstack=inputs={len(stacked)}[stack]")
    else:
        lines.append(f"{stacked[0]}null[stack]")
    if banner is not None:
        lines.append(f"[stack]drawtext=x=(w-text_w)/2:y=h-text_h-10:fontcolor=white:fontsize={max(16, height // 14)}:"
                     f"box=1:boxcolor=red@0.8:boxborderw=8:expansion=none:textfile={banner}[v]")
    else:
        lines.append("[stack]null[v]")
    if mixed:
        lines.append(f"{''.join(mixed)}amix=inputs={len(mixed)}:duration=longest:dropout_transition=0:normalize=0,"
                     f"apad,atrim=0:{duration:.3f}[a]")
    else:
        lines.append(f"anullsrc=r=48000:cl=stereo,atrim=0:{duration:.3f}[a]")
    return ";\n".join(lines) + "\n"


def compose(tiles: Sequence[Tile], duration: float, out: Path, work: Path, *, tile: tuple[int, int],
            session_id: str, incomplete: str | None) -> None:
    """Run ffmpeg: write the composed file to `out` (created 0600, must not exist)."""
    container, codecs = _FORMATS[out.suffix.lower()]
    inputs: dict[Path, int] = {}
    for tile_ in tiles:
        for source in tile_.sources:
            inputs.setdefault(source.path, len(inputs))
    if not _SAFE_PATH.match(str(work)):  # the label files are named in the filter graph, unquoted
        raise ExportError("export_bad_path", f"cannot name {str(work)!r} in an ffmpeg filter graph; "
                                             "set TMPDIR to a plain path", status=2)
    labels = {}
    for k, tile_ in enumerate(tiles):
        labels[tile_.participant_id] = work / f"label-{k}.txt"
        labels[tile_.participant_id].write_text(tile_.label, encoding="utf-8")
    banner = None
    if incomplete is not None:
        banner = work / "incomplete.txt"
        banner.write_text("INCOMPLETE - verification found problems; see the export's report", encoding="utf-8")
    script = work / "graph.txt"
    script.write_text(_graph(tiles, inputs, duration, tile, labels, banner), encoding="utf-8")
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    for path in inputs:
        command += ["-i", str(path)]
    command += ["-filter_complex_script", str(script), "-map", "[v]", "-map", "[a]", "-r", str(FPS),
                "-t", f"{duration:.3f}", *codecs,
                "-metadata", f"title=Mediation session {session_id}",
                "-metadata", "comment=" + (f"INCOMPLETE: {incomplete}" if incomplete else "COMPLETE: every object verified"),
                "-f", container, str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT)
    if result.returncode != 0:
        raise ExportError("ffmpeg_failed", f"ffmpeg failed (exit {result.returncode}): {result.stderr.strip()[-800:]}")


def check_output(out: Path) -> None:
    """Refuse, before anything is verified, an output that cannot be written: its kind, an existing file, no ffmpeg."""
    if out.suffix.lower() not in _FORMATS:
        raise ExportError("export_bad_format", f"the output must end in .webm or .mp4, not {out.name!r}", status=2)
    if out.exists():
        raise ExportError("export_out_exists", f"{str(out)!r} exists; the export never overwrites", status=2)
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise ExportError("ffmpeg_missing", "ffmpeg and ffprobe are needed to compose the export "
                                            "(Debian: apt-get install ffmpeg)", status=2)


def export_session(bundle: Path, identities: list[pyrage.x25519.Identity], pinned: Sequence[Path], out: Path, *,
                   session_id: str | None = None, allow_incomplete: bool = False, pin: Path | None = None,
                   witnesses: Sequence[Witness] = (), quorum: int = 0,
                   tile: tuple[int, int] = DEFAULT_TILE) -> Exported:
    """Verify the bundle, then compose the session into `out`; raise ExportError when it cannot or may not."""
    check_output(out)
    work = Path(tempfile.mkdtemp(prefix="mediation-export-"))  # 0700: decrypted media is written here
    try:
        report = open_bundle(bundle, identities, pinned, work / "opened", pin=pin, witnesses=witnesses,
                             quorum=quorum)
        sessions = sorted({group[1] for group in report.recordings} | set(report.transcripts))
        if session_id is None:
            recorded = sorted({group[1] for group in report.recordings})
            if len(recorded) != 1:
                raise ExportError("export_no_session" if not recorded else "export_which_session",
                                  "the bundle has no verified recording" if not recorded else
                                  f"the bundle has recordings of {len(recorded)} sessions; name one with "
                                  f"--session ({', '.join(recorded)})")
            session_id = recorded[0]
        elif session_id not in sessions:
            raise ExportError("export_no_session", f"session {session_id!r} has nothing verified in this bundle"
                                                   + (f" (it holds {', '.join(sessions)})" if sessions else ""))
        incomplete = None
        if not report.complete:
            codes = ", ".join(report.codes)
            if not allow_incomplete:
                raise ExportError("export_refused_incomplete",
                                  f"verification found {len(report.problems)} problem(s) ({codes}); nothing was "
                                  "exported. Read REPORT.txt from `mediation-compliance open`, or export the "
                                  "incomplete bundle knowingly with --incomplete")
            incomplete = f"{len(report.problems)} problem(s): {codes}"
        _, duration, tiles = plan_tiles(report, session_id, work / "opened")
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(descriptor)
        try:
            compose(tiles, duration, out, work, tile=tile, session_id=session_id, incomplete=incomplete)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return Exported(path=out, session_id=session_id, duration=duration, tiles=tiles,
                        complete=incomplete is None, report=report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
