"""A whole recorded session: consent, the recorder worker, sealed segments, chat and transcript.

Three participants join a real room through socket.io and send synthetic VP8/Opus media from aiortc
peers to the recorder, which runs as its own process like in production. After the session the test
opens every record the way a compliance officer would: downloaded ciphertext, the Debian `age` tool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.conftest import Api, walk_to_scheduled
from tests.recording.agekeys import AgeKey, age_binary, generate
from tests.recording.test_peer import MovingPattern, Tone
from tests.signaling.conftest import issue_link
from tests.signaling.peer import Participant

RECORD_SECONDS = 21.0
CANARY = "CANARY-紫色大象-7731"
WAIT = 30.0


@dataclasses.dataclass
class Sender:
    """A participant's browser stand-in: its socket and an aiortc connection sending to the recorder."""

    peer: Participant
    connection: RTCPeerConnection | None = None

    async def send_to(self, recorder_id: str) -> None:
        connection = RTCPeerConnection()
        self.connection = connection
        connection.addTrack(MovingPattern())
        connection.addTrack(Tone())
        await connection.setLocalDescription(await connection.createOffer())
        mark = len(self.peer.events)
        sent = await self.peer.request("signal", {"to": recorder_id, "kind": "offer", "payload": {
            "type": "offer", "sdp": connection.localDescription.sdp}})
        assert sent["ok"], sent
        answer = await self.peer.wait_for("signal", lambda d: d["kind"] == "answer", after=mark)
        await connection.setRemoteDescription(RTCSessionDescription(**answer["payload"]))

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


def _decrypt(key: AgeKey, ciphertext: bytes) -> bytes:
    result = subprocess.run([age_binary("age"), "-d", "-i", str(key.identity_file)], input=ciphertext,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def _streams(data: bytes) -> tuple[set[str], float]:
    with av.open(io.BytesIO(data), format="webm") as container:
        codecs = {stream.codec_context.name for stream in container.streams}
        last = 0.0
        for packet in container.demux():
            if packet.pts is not None and packet.time_base is not None:
                last = max(last, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return codecs, last


async def _wait_until(predicate, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_recorded_session_files_playable_sealed_media_and_transcript(api: Api, tmp_path: Path) -> None:
    officer_key = generate(tmp_path / "officer")
    _, compliance = await api.staff("compliance_officer")
    assert (await api.call("PUT", "/api/staff/me/recipient", token=compliance,
                           json={"recipient": officer_key.recipient}))[0] == 200
    journey = await walk_to_scheduled(api)
    borrower_link = await issue_link(api, journey, journey.borrower_id)
    mediator = Participant(api.base, {"token": journey.mediator, "session_id": journey.session_id})
    bank = Participant(api.base, {"token": journey.bank, "session_id": journey.session_id})
    borrower = Participant(api.base, {"token": borrower_link})
    senders = [Sender(p) for p in (mediator, bank, borrower)]
    try:
        joined = await mediator.join()
        assert joined["records_sealed"] is True
        notice = joined["recording_notice"][0]["sha256"]
        for party in (bank, borrower):
            await party.join()
            await mediator.request("admit", {"participant_id": party.participant_id})
            await party.wait_for("admitted")
        refused = await mediator.request("start_recording", {})
        assert refused["error"] == "consent_missing"
        for party in (bank, borrower):
            assert (await party.request("give_consent", {"notice_sha256": notice}))["ok"]
        assert (await mediator.request("start_recording", {}))["ok"]
        started = time.monotonic()
        for peer in (mediator, bank, borrower):
            await peer.wait_for("recording_started")
        state = await mediator.wait_for("room_state", lambda s: any(
            p["role"] == "recorder" for p in s["participants"]))
        recorder_id = next(p["participant_id"] for p in state["participants"] if p["role"] == "recorder")
        await asyncio.gather(*(sender.send_to(recorder_id) for sender in senders))
        said = []
        for round_ in range(4):
            for peer in (borrower, bank, mediator):
                text = f"{CANARY} round {round_} from {peer.participant_id[:8]}"
                result = await peer.request("send_chat", {"text": text})
                assert result["ok"], result
                said.append((result["seq"], text))
            await asyncio.sleep(RECORD_SECONDS / 4)
        assert (await mediator.request("end_session", {}))["ok"]
        recorded_for = time.monotonic() - started

        async def recorder_gone() -> bool:
            return not api.services.recorders._running
        await _wait_until(recorder_gone)
    finally:
        for sender in senders:
            await sender.close()
        for peer in (mediator, bank, borrower):
            await peer.close()

    status, manifest = await api.call("GET", f"/api/cases/{journey.case_id}/records/manifest", token=compliance)
    assert status == 200
    objects = manifest["objects"]
    segments: dict[str, list[dict[str, Any]]] = {}
    for item in objects:
        if item["kind"] == "recording":
            segments.setdefault(item["participant_id"], []).append(item)
    assert set(segments) == {mediator.participant_id, bank.participant_id, borrower.participant_id}
    for participant_id, items in segments.items():
        items.sort(key=lambda i: (i["part"], i["index"]))
        assert [i["index"] for i in items] == list(range(len(items))) and len(items) >= 4
        data = b""
        for item in items:
            status, ciphertext = await api.call("GET", f"/api/cases/{journey.case_id}/records/{item['record_id']}",
                                                token=compliance)
            assert status == 200 and ciphertext.startswith(b"age-encryption.org/v1\n")
            data += _decrypt(officer_key, ciphertext)
        codecs, duration = _streams(data)
        assert codecs == {"vp8", "opus"}, (participant_id, codecs)
        assert abs(duration - recorded_for) <= 1.0, (participant_id, duration, recorded_for)

    transcripts = [i for i in objects if i["kind"] == "transcript"]
    assert len(transcripts) == 1
    _, ciphertext = await api.call("GET", f"/api/cases/{journey.case_id}/records/{transcripts[0]['record_id']}",
                                   token=compliance)
    transcript = json.loads(_decrypt(officer_key, ciphertext))
    assert [(m["seq"], m["text"]) for m in transcript["messages"]] == said
    actions = [e["action"] for e in transcript["events"]]
    for expected in ("room_participant_admitted", "room_consent_given", "room_recording_started"):
        assert expected in actions
    chat_records = [i for i in objects if i["kind"] == "chat"]
    assert len(chat_records) == len(said)

    # The canary never lies in plaintext anywhere the server keeps things.
    data_dir = api.services.settings.data_dir
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
