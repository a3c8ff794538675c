"""Three real Chromium pages through Janus with the recording on: still one uplink each, and every page recorded.

The recorder is fed by Janus's RTP forwarders, so starting the recording adds no connection to any page: each
page's getStats still shows exactly one outbound video stream, on its two connections (up and down, both with
Janus). After the recording each participant's sealed segments, downloaded as a compliance officer gets them
and decrypted with the officer's age key, join into a WebM whose VP8 video and Opus audio decode.
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import av
import pytest
from playwright.async_api import Browser

from tests.conftest import Api, walk_to_scheduled
from tests.recording.agekeys import generate
from tests.recording.test_session_recording import _decrypt
from tests.signaling.conftest import issue_link
from tests.support.walk import BORROWER_EMAIL
from tests.web.browser import WAIT_MS, admit, enrol_device, join_room, sign_in, wait_rising
from tests.web.test_room_sfu_browser import api_sfu, open_watched, stats, wait_one_uplink  # noqa: F401 - fixture

RECORD_SECONDS = 8.0
SEGMENTS_WAIT = 60.0


def _decoded(data: bytes) -> dict[str, int]:
    """How many frames of each kind decode from a participant's joined file, and the widest video frame."""
    counts = {"width": 0}
    for kind in ("video", "audio"):
        with av.open(io.BytesIO(data), format="webm") as container:
            streams = getattr(container.streams, kind)
            counts[kind] = 0
            for frame in container.decode(streams[0]) if streams else ():
                counts[kind] += 1
                if kind == "video":
                    counts["width"] = max(counts["width"], frame.width)
    return counts


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_room_sfu_recording_keeps_one_uplink_per_page_and_records_every_page(
        api_sfu: Api, browser: Browser, tmp_path: Path) -> None:  # noqa: F811 - the imported fixture
    api = api_sfu
    key = generate(tmp_path / "keys")
    _, compliance = await api.staff("compliance_officer")
    await api.approve_key(compliance, key.recipient)
    journey = await walk_to_scheduled(api)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    room_url = f"{api.base}/room?session={journey.session_id}"
    mediator = await open_watched(browser, room_url)
    await sign_in(mediator, users[journey.mediator_id])
    await join_room(mediator)
    bank = await open_watched(browser, room_url)
    await sign_in(bank, users[journey.bank_id])
    await join_room(bank)
    borrower = await open_watched(browser, f"{api.base}/room#{await issue_link(api, journey, journey.borrower_id)}")
    await join_room(borrower)
    pages = {journey.mediator_id: mediator, journey.bank_id: bank, journey.borrower_id: borrower}
    await admit(mediator, journey.bank_id, journey.borrower_id)
    for pid, page in pages.items():
        await wait_rising(page, set(pages) - {pid})

    assert api.mailbox is not None
    for page, address in ((bank, journey.lender_email), (borrower, BORROWER_EMAIL)):
        await page.get_by_test_id("consent-accept").click()
        await enrol_device(page, api.mailbox, address)
        await page.get_by_test_id("consent-withdraw").wait_for(state="visible", timeout=WAIT_MS)
    await mediator.wait_for_function(
        "() => !document.querySelector('[data-testid=start-recording]').disabled", timeout=WAIT_MS)
    await mediator.get_by_test_id("start-recording").click()
    for page in pages.values():
        await page.get_by_test_id("recording-indicator").wait_for(state="visible", timeout=WAIT_MS)
    await mediator.locator("[data-testid=roster-entry][data-role=recorder]").wait_for(timeout=WAIT_MS)
    await asyncio.sleep(RECORD_SECONDS)

    # While recording: one outbound video stream per page, on its two connections with Janus, none to the recorder.
    for pid, page in pages.items():
        counts = await wait_one_uplink(page)
        print(f"\nrecording on: {pid[:8]} sends {counts['outbound']} video stream(s) on "
              f"{counts['connections']} connection(s)")
        assert counts["outbound"] == 1 and counts["sending"] == 1, counts
        assert counts["connections"] == 2, counts

    await mediator.get_by_test_id("stop-recording").click()
    for page in pages.values():
        await page.get_by_test_id("recording-indicator").wait_for(state="hidden", timeout=WAIT_MS)
    assert (await stats(bank))["connections"] == 2

    # Every page's media was recorded: once the worker has filed its last segments and exited, each page's
    # segments decrypt and join into a WebM that decodes.
    deadline = time.monotonic() + SEGMENTS_WAIT
    while api.services.recorders.running():
        assert time.monotonic() < deadline, "the recorder worker did not exit"
        await asyncio.sleep(0.5)
    status, manifest = await api.call("GET", f"/api/cases/{journey.case_id}/records/manifest", token=compliance)
    assert status == 200, manifest
    _, listed = await api.call("GET", f"/api/cases/{journey.case_id}/records", token=compliance)
    ids = {r["key"]: r["record_id"] for r in listed["records"]}
    files: dict[str, bytes] = {}
    items = sorted((i for i in manifest["objects"] if i["kind"] == "recording_segment"),
                   key=lambda i: (i["participant_id"], i["part"], i["index"]))
    for item in items:
        if item["part"] != 0:
            continue
        status, ciphertext = await api.call("GET", f"/api/cases/{journey.case_id}/records/{ids[item['key']]}",
                                            token=compliance)
        assert status == 200
        files[item["participant_id"]] = files.get(item["participant_id"], b"") + _decrypt(key, ciphertext)
    assert set(files) == set(pages), set(files)
    for pid, data in files.items():
        counts = _decoded(data)
        print(f"{pid[:8]}: {counts['video']} video and {counts['audio']} audio frames decode from its recording")
        assert counts["video"] > 0 and counts["audio"] > 0, (pid, counts)
