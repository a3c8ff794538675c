"""A shared screen is recorded as a file of its own: the video m-line whose msid names the screen's stream."""

from __future__ import annotations

import asyncio
import io

import av

from recording.recorder.peer import RecorderPeer
from tests.recording.recorder.test_peer import MovingPattern, Sender


def _streams(data: bytes) -> list[str]:
    with av.open(io.BytesIO(data), "r") as container:
        return sorted(stream.type for stream in container.streams)


def _video_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data), "r") as container:
        return sum(1 for _ in container.decode(video=0))


async def test_recorder_records_the_screen_apart_and_closes_it_with_its_connection() -> None:
    files: dict[str, list[tuple[int, bytes, bool]]] = {}
    screen_flowing = asyncio.Event()

    async def on_segment(file_id: str, index: int, data: bytes, started_at: float, ended_at: float,
                         final: bool) -> None:
        files.setdefault(file_id, []).append((index, data, final))
        if file_id == "p-screen#0" and data:
            screen_flowing.set()

    recorder = RecorderPeer(on_segment, segment_seconds=0.6)
    sender = Sender()
    screen = MovingPattern(width=320, height=180)
    sender.tracks.append(screen)
    screen_sender = sender.pc.addTrack(screen)  # aiortc gives each sender a stream id of its own
    try:
        offer = await sender.offer()
        stream_id = screen_sender._stream_id
        assert f"a=msid:{stream_id} " in offer
        answer = await recorder.handle_offer("p#0", offer, screen_stream=stream_id, screen_id="p-screen#0")
        await sender.accept(answer)
        assert sorted(recorder.participant_ids) == ["p#0", "p-screen#0"]
        await asyncio.wait_for(screen_flowing.wait(), 15)
        await asyncio.sleep(1.5)
        await recorder.close_participant("p#0")  # the connection ends: so does the screen's file
        assert recorder.participant_ids == []
    finally:
        await recorder.close()
        await sender.close()
    camera = b"".join(data for _, data, _ in files["p#0"])
    shared = b"".join(data for _, data, _ in files["p-screen#0"])
    assert _streams(camera) == ["audio", "video"]
    assert _streams(shared) == ["video"]
    assert _video_frames(shared) > 10
    for file_id in ("p#0", "p-screen#0"):
        indexes = [index for index, _, _ in files[file_id]]
        assert indexes == list(range(len(indexes))), file_id
        assert [final for _, _, final in files[file_id]] == [False] * (len(indexes) - 1) + [True], file_id
    with av.open(io.BytesIO(shared), "r") as container:
        assert container.streams.video[0].width == 320


async def test_recorder_without_the_screens_stream_records_the_camera_only() -> None:
    files: dict[str, int] = {}

    async def on_segment(file_id: str, index: int, data: bytes, started_at: float, ended_at: float,
                         final: bool) -> None:
        files[file_id] = files.get(file_id, 0) + len(data)

    recorder = RecorderPeer(on_segment, segment_seconds=0.6)
    sender = Sender()
    try:
        answer = await recorder.handle_offer("p#0", await sender.offer(), screen_stream="not-in-the-offer",
                                             screen_id="p-screen#0")
        await sender.accept(answer)
        assert recorder.participant_ids == ["p#0"]
    finally:
        await recorder.close()
        await sender.close()
    assert "p-screen#0" not in files
