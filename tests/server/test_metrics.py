"""/metrics tells an operator about rooms, participants, recordings, sealed records, errors and the event loop."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from tests.conftest import Api, walk_to_scheduled
from tests.recording.agekeys import generate
from tests.signaling.conftest import issue_link
from tests.signaling.peer import Participant


async def _scrape(api: Api) -> dict[str, float]:
    status, text = await api.call("GET", "/metrics")
    assert status == 200
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^(mediation_[a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


async def test_metrics_room_activity_sealing_errors_and_loop_lag_are_exposed(api: Api, tmp_path: Path) -> None:
    key = generate(tmp_path / "officer")
    _, compliance = await api.staff("compliance_officer")
    await api.approve_key(compliance, key.recipient)
    journey = await walk_to_scheduled(api)
    mediator = Participant(api.base, {"token": journey.mediator, "session_id": journey.session_id})
    borrower = Participant(api.base, {"token": await issue_link(api, journey, journey.borrower_id)})
    try:
        await mediator.join()
        await borrower.join()
        assert (await mediator.request("send_chat", {"text": "sealed, then counted"}))["ok"]
        assert (await borrower.request("send_chat", {"text": "from the lobby"}))["error"] == "not_admitted"
        assert (await api.call("GET", "/api/cases", token="stf_" + "x" * 43))[0] == 401

        samples = await _scrape(api)
        assert samples["mediation_rooms"] == 1
        assert samples["mediation_room_participants"] == 2
        assert samples["mediation_recordings"] == 0
        assert samples['mediation_sealed_records_total{kind="chat_message"}'] == 1
        assert samples['mediation_sealed_bytes_total{kind="chat_message"}'] > len("sealed, then counted")
        assert samples['mediation_errors_total{kind="room_not_admitted"}'] == 1
        assert samples['mediation_errors_total{kind="http_401"}'] >= 1

        deadline = time.monotonic() + 10
        while (await _scrape(api)).get("mediation_event_loop_lag_sample_seconds_count", 0) < 2:
            assert time.monotonic() < deadline, "the event-loop lag sampler never ran"
            await asyncio.sleep(0.1)
        assert 0 <= (await _scrape(api))["mediation_event_loop_lag_seconds"] < 1
    finally:
        await borrower.close()
        await mediator.close()

    deadline = time.monotonic() + 10
    while (await _scrape(api))["mediation_room_participants"] != 0:
        assert time.monotonic() < deadline, "participants still counted after they left"
        await asyncio.sleep(0.05)
    assert (await _scrape(api))["mediation_rooms"] == 0
