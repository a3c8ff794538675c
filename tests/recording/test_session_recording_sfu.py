"""The recorded session and the killed recorder in a room on Janus: the recorder is fed by Janus's RTP forwarders.

The participants' aiortc stand-ins publish once, to Janus (``publish_media``), and never connect to the recorder;
the recorder worker (its own process, as in production) receives each one's RTP from a VideoRoom forwarder and
files the same sealed, playable WebM as in the mesh (tests/recording/test_session_recording.py holds the checks
both share). The forwarders stop at Janus when the recorder goes.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from server.app import ROOMS
from signaling.sfu import janus_room_id
from tests.conftest import Api
from tests.recording.test_session_recording import (
    RecordedRoom,
    Sender,
    _recorder_gone,
    open_recorded_room,
    recorded_session_files_playable_sealed_media_and_transcript,
    recorder_killed_keeps_sealed_segments_playable_and_room_alive,
)

WAIT = 30.0


class JanusSender(Sender):
    """A page on the SFU: its camera and microphone go up to Janus once; the recorder gets them from Janus."""

    async def send_to(self, recorder_id: str) -> None:
        if self.connection is not None:
            return  # published already: nothing goes to the recorder from here
        connection = RTCPeerConnection()
        self.connection = connection
        for track in self.tracks():
            connection.addTrack(track)
        await connection.setLocalDescription(await connection.createOffer())
        result = await self.peer.request("publish_media", {"offer": {
            "type": "offer", "sdp": connection.localDescription.sdp}})
        assert result["ok"], result
        await connection.setRemoteDescription(RTCSessionDescription(**result["answer"]))
        assert not any(name == "signal" for name, _ in self.peer.events), "the recorder offered nothing"


async def janus_forwarders(api: Api, session_id: str) -> list[dict[str, Any]]:
    """The RTP forwarders Janus runs in the session's room, as its ``listforwarders`` gives them."""
    sfu = api.app[ROOMS].engine.sfu
    assert sfu is not None
    (url,) = sfu.settings.urls
    instance = await sfu.instance(url)
    assert instance.session is not None and instance.control is not None
    data, _ = await instance.session.request(instance.control, {
        "request": "listforwarders", "room": janus_room_id(session_id), "secret": sfu.room_secret(session_id)})
    return [forwarder for publisher in data.get("publishers", []) for forwarder in publisher.get("forwarders", [])]


async def _until(predicate, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_sfu_recorded_session_files_playable_sealed_media_and_transcript(api_sfu: Api, tmp_path: Path) -> None:
    await recorded_session_files_playable_sealed_media_and_transcript(api_sfu, tmp_path, JanusSender)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_sfu_recorder_killed_forwarders_stop_segments_playable_room_alive(api_sfu: Api, tmp_path: Path) -> None:
    async def all_forwarded(room: RecordedRoom) -> None:
        # Each of the three published feeds is forwarded to the recorder, audio and video...
        session_id = room.mediator.auth["session_id"]

        async def six() -> bool:
            return len(await janus_forwarders(api_sfu, session_id)) == 6
        await _until(six)

    async def none_left(room: RecordedRoom) -> None:
        # ...and the node stops every one of them at Janus once the recorder's socket is gone.
        session_id = room.mediator.auth["session_id"]

        async def zero() -> bool:
            return await janus_forwarders(api_sfu, session_id) == []
        await _until(zero)

    await recorder_killed_keeps_sealed_segments_playable_and_room_alive(
        api_sfu, tmp_path, JanusSender, after_start=all_forwarded, after_kill=none_left)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_sfu_caucus_stops_its_members_forwarders_and_they_resume_in_a_new_part(api_sfu: Api,
                                                                                     tmp_path: Path) -> None:
    room = await open_recorded_room(api_sfu, tmp_path, JanusSender)
    mediator, bank, borrower = room.peers
    session_id = mediator.auth["session_id"]

    async def forwarded(count: int) -> None:
        async def reached() -> bool:
            return len(await janus_forwarders(api_sfu, session_id)) == count
        await _until(reached)

    try:
        await room.start_recording()
        await forwarded(6)
        await asyncio.sleep(3)
        # The recorder is outside every caucus: the caucus members' media stop reaching it at Janus.
        assert (await mediator.request("open_caucus", {"participant_id": borrower.participant_id}))["ok"]
        await forwarded(2)
        await asyncio.sleep(2)
        assert (await mediator.request("close_caucus", {}))["ok"]
        await forwarded(6)
        await asyncio.sleep(3)
        assert (await mediator.request("end_session", {}))["ok"]
        await _recorder_gone(api_sfu)
    finally:
        await room.close()

    _, manifest = await api_sfu.call("GET", f"/api/cases/{room.case_id}/records/manifest", token=room.compliance)
    parts: dict[str, set[int]] = {}
    for item in manifest["objects"]:
        if item["kind"] == "recording_segment":
            parts.setdefault(item["participant_id"], set()).add(item["part"])
    # The bank was recorded throughout, in one part; each caucus member's file ended at the caucus, and a
    # new part began when it closed.
    assert parts[bank.participant_id] == {0}, parts
    assert parts[mediator.participant_id] == {0, 1} and parts[borrower.participant_id] == {0, 1}, parts
    files = await room.segments()
    assert set(files) == {mediator.participant_id, bank.participant_id, borrower.participant_id}
