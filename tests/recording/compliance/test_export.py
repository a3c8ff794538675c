"""`mediation-compliance export`: a recorded session as one side-by-side file on the session clock.

A real session is recorded (three aiortc participants sending to the recorder process), fetched
with the tool, then exported: ffprobe must read a finite duration equal to the session's length,
one VP8 video of three tiles side by side and one Opus audio; the tiles are black before the
recording and show each participant's picture during it. A bundle that fails verification is
refused unless --incomplete is given, and then the file says INCOMPLETE.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import shutil
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import av
import pytest

from recording.compliance.cli import main
from recording.compliance.export import compose, plan_tiles
from recording.compliance.open import Report
from recording.records.gaps import FiledSegment
from tests.conftest import Api
from tests.recording.test_session_recording import _recorder_gone, _run, _transcript_sealed, open_recorded_room

TILE = (480, 360)


def _export(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["export", *args])
    return code, out.getvalue() + err.getvalue()


def _probe(path: Path) -> dict:
    result = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                             "format=duration:format_tags=comment:stream=codec_type,codec_name,width,height",
                             "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def _start_time(path: Path) -> float:
    result = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "csv=p=0",
                             str(path)], capture_output=True, text=True, timeout=60, check=True)
    return float(result.stdout.strip())


def _tile_brightness(path: Path, at: float, tiles: int) -> list[float]:
    """Mean luma of the lower half of each tile of the frame shown at `at` seconds."""
    width, height = TILE[0] * tiles, TILE[1]
    frame = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{at:.2f}", "-i", str(path), "-frames:v", "1",
                            "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, timeout=60,
                           check=True).stdout
    assert len(frame) == width * height, len(frame)
    means = []
    for k in range(tiles):
        values = [frame[row * width + col] for row in range(height // 2, height, 4)
                  for col in range(k * TILE[0], (k + 1) * TILE[0], 4)]
        means.append(sum(values) / len(values))
    return means


def _webm(path: Path, first: float, last: float, luma: int) -> None:
    """A small VP8 + Opus WebM whose packets run from `first` to `last` seconds on its clock."""
    with av.open(str(path), mode="w", format="webm") as container:
        video = container.add_stream("libvpx", rate=15)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("libopus", rate=48000)
        audio.layout = "mono"
        for n in range(round(first * 15), round(last * 15)):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane, value in zip(frame.planes, (luma, 128, 128)):
                plane.update(bytes([value]) * plane.buffer_size)
            frame.pts = n
            for packet in video.encode(frame):
                container.mux(packet)
        for n in range(round(first * 50), round(last * 50)):
            sound = av.AudioFrame(format="s16", layout="mono", samples=960)
            sound.planes[0].update(bytes(1920))
            sound.sample_rate, sound.pts = 48000, n * 960
            for packet in audio.encode(sound):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)


def test_export_places_each_part_on_the_session_clock_and_blacks_out_gaps_and_absence(tmp_path: Path) -> None:
    """Two participants: A in two parts with nothing between them, B throughout but for a named gap."""
    session, origin = "ses_1", dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)
    zero = round(origin.timestamp() * 1000)
    iso = lambda seconds: (origin + dt.timedelta(seconds=seconds)).isoformat()  # noqa: E731
    root = tmp_path / "opened"
    (root / session).mkdir(parents=True)
    _webm(root / session / "pty_a-0000.webm", 1.0, 4.0, 220)
    _webm(root / session / "pty_a-0001.webm", 0.5, 3.0, 220)  # its recording started 6 s into the session
    _webm(root / session / "usr_b-0000.webm", 0.0, 10.0, 220)

    def filed(pid: str, part: int, clock_zero: int, first: int, last: int) -> list[FiledSegment]:
        return [FiledSegment(pid, part, 0, ((first, last),), clock_zero, True)]

    report = Report()
    report.transcripts[session] = {
        "format": "mediation-transcript/v1", "started_at": iso(0), "ended_at": iso(10),
        "participants": [{"participant_id": "pty_a", "name": "A", "role": "borrower"},
                         {"participant_id": "usr_b", "name": "B", "role": "mediator"}],
        "events": [{"at": iso(4), "type": "recording_gap", "participant_id": "usr_b", "part": 0, "from": iso(4),
                    "to": iso(6), "file_from": 4.0, "file_to": 6.0, "reason": "media_stopped"}]}
    report.recordings[("recording", session, "pty_a", "0000")] = (f"{session}/pty_a-0000.webm",
                                                                  filed("pty_a", 0, zero, 1000, 3930))
    report.recordings[("recording", session, "pty_a", "0001")] = (f"{session}/pty_a-0001.webm",
                                                                  filed("pty_a", 1, zero + 6000, 500, 2930))
    report.recordings[("recording", session, "usr_b", "0000")] = (f"{session}/usr_b-0000.webm",
                                                                  filed("usr_b", 0, zero, 0, 9930))
    _, duration, tiles = plan_tiles(report, session, root)
    assert duration == 10.0
    # Each file starts where its first packet is on the session clock (Opus's pre-skip aside).
    assert [(t.participant_id, t.label) for t in tiles] == [("pty_a", "Borrower"), ("usr_b", "Mediator")]
    shifts = [source.shift for tile in tiles for source in tile.sources]
    assert all(abs(found - expected) <= 0.02 for found, expected in zip(shifts, [1.0, 6.5, 0.0])), shifts
    assert tiles[1].sources[0].gaps == ((4.0, 6.0),)
    out = tmp_path / "review.webm"
    work = tmp_path / "work"
    work.mkdir()
    compose(tiles, duration, out, work, tile=TILE, session_id=session, incomplete=None)
    assert abs(float(_probe(out)["format"]["duration"]) - 10.0) <= 0.2
    shown = {at: _tile_brightness(out, at, 2) for at in (0.5, 2.5, 5.0, 7.5, 9.5)}
    print(shown)
    lit = {at: [value > 100 for value in means] for at, means in shown.items()}
    assert lit == {0.5: [False, True],   # A's media starts at 1 s
                   2.5: [True, True],
                   5.0: [False, False],  # A between its parts; B in its gap
                   7.5: [True, True],    # A's second part
                   9.5: [False, True]}, shown


def test_export_refuses_an_output_it_cannot_write(tmp_path: Path) -> None:
    identity = tmp_path / "key.txt"
    identity.write_text("")
    code, output = _export("--identity", str(identity), "--bundle", str(tmp_path), "--out", str(tmp_path / "x.avi"))
    assert code == 2 and "[export_bad_format]" in output, output
    (tmp_path / "taken.webm").write_bytes(b"mine")
    code, output = _export("--identity", str(identity), "--bundle", str(tmp_path), "--out",
                           str(tmp_path / "taken.webm"))
    assert code == 2 and "[export_out_exists]" in output, output
    assert (tmp_path / "taken.webm").read_bytes() == b"mine"


def test_export_refuses_a_malformed_tile(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited, redirect_stderr(io.StringIO()):
        main(["export", "--identity", "k", "--bundle", str(tmp_path), "--out", "x.webm", "--tile", "481x360"])
    assert exited.value.code == 2


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_export_of_a_recorded_session_is_one_side_by_side_file_on_the_session_clock(
        api: Api, tmp_path: Path) -> None:
    room = await open_recorded_room(api, tmp_path)
    mediator, bank, borrower = room.peers
    try:
        await room.start_recording()
        for peer in (borrower, bank, mediator):
            assert (await peer.request("send_chat", {"text": f"hello from {peer.participant_id[:8]}"}))["ok"]
            await asyncio.sleep(2.5)
        assert (await mediator.request("end_session", {}))["ok"]
        await _recorder_gone(api)
        await _transcript_sealed(api, room.case_id)
    finally:
        await room.close()

    env = {**os.environ, "MEDIATION_TOKEN": room.compliance}
    bundle = tmp_path / "bundle"
    code, output = await _run("-m", "recording.compliance", "fetch", "--server", api.base, "--case", room.case_id,
                              "--bundle", str(bundle), env=env)
    assert code == 0, output
    pem = tmp_path / "audit.pem"
    pem.write_text(json.loads((bundle / "manifest.json").read_text())["audit_public_key_pem"])
    verifying = ["--identity", str(room.key.identity_file), "--bundle", str(bundle), "--audit-public-key", str(pem)]
    out = tmp_path / "review.webm"
    code, output = await asyncio.to_thread(_export, *verifying, "--out", str(out))
    print(output)

    # The session's clock, from its transcript (the tool's own opening of the bundle).
    code_open = await asyncio.to_thread(main, ["open", *verifying, "--out", str(tmp_path / "opened")])
    transcript = json.loads(next((tmp_path / "opened").rglob("transcript.json")).read_text())
    gaps = [e for e in transcript["events"] if e["type"] == "recording_gap"]
    if gaps:  # a host so starved that the recorder missed media: the export must refuse, then export knowingly
        assert code == 1 and code_open == 1 and "[export_refused_incomplete]" in output and not out.exists(), output
        code, output = await asyncio.to_thread(_export, *verifying, "--out", str(out), "--incomplete")
        assert code == 1 and "RESULT: INCOMPLETE" in output, output
    else:
        assert code == 0 and code_open == 0 and "RESULT: COMPLETE" in output, output
    start = dt.datetime.fromisoformat(transcript["started_at"])
    length = (dt.datetime.fromisoformat(transcript["ended_at"]) - start).total_seconds()
    recording_started = next(dt.datetime.fromisoformat(e["at"]) for e in transcript["events"]
                             if e["type"] == "recording_started")

    probed = _probe(out)
    duration = float(probed["format"]["duration"])
    print(f"exported {duration:.2f} s for a session of {length:.2f} s")
    assert abs(duration - length) <= 0.5, (duration, length)
    streams = sorted((s["codec_type"], s["codec_name"]) for s in probed["streams"])
    assert streams == [("audio", "opus"), ("video", "vp8")], streams
    video = next(s for s in probed["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (3 * TILE[0], TILE[1]), video
    assert probed["format"]["tags"]["COMMENT"].startswith("INCOMPLETE" if gaps else "COMPLETE"), probed
    assert os.stat(out).st_mode & 0o077 == 0  # decrypted content: the officer's alone

    # Aligned on the session clock: black before the first media reached the recorder, every tile lit
    # during the recording. A file's time zero is when the recording started; its first packet later.
    first_media = min(_start_time(path) for path in (tmp_path / "opened").rglob("*.webm"))
    before = ((recording_started - start).total_seconds() + first_media) / 2
    dark = _tile_brightness(out, before, 3)
    lit = _tile_brightness(out, length - 2.0, 3)
    print(f"tile brightness at {before:.2f} s: {dark}; at {length - 2.0:.2f} s: {lit}")
    assert all(value < 20 for value in dark), dark
    assert all(value > 40 for value in lit), lit

    # A bundle that fails verification is refused; exported knowingly, the file says INCOMPLETE.
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    segment = sorted(tampered.rglob("*.webm.age"))[2]
    data = bytearray(segment.read_bytes())
    data[-20] ^= 0x01
    segment.write_bytes(bytes(data))
    again = ["--identity", str(room.key.identity_file), "--bundle", str(tampered), "--audit-public-key", str(pem)]
    refused = tmp_path / "refused.webm"
    code, output = await asyncio.to_thread(_export, *again, "--out", str(refused))
    assert code == 1 and "[export_refused_incomplete]" in output and "sha256_mismatch" in output, output
    assert not refused.exists()
    code, output = await asyncio.to_thread(_export, *again, "--out", str(refused), "--incomplete")
    assert code == 1 and "RESULT: INCOMPLETE" in output and "[sha256_mismatch]" in output, output
    assert _probe(refused)["format"]["tags"]["COMMENT"].startswith("INCOMPLETE"), _probe(refused)
