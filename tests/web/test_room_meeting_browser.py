"""The room's meeting basics in real Chromium pages, in the mesh with the recorder: screen sharing (fake screen
capture), raised hands, the active speaker and the network-quality indicator.

The borrower joins on a 390×844 phone in zh-CN; the mediator and the bank representative on 1440×900 desktops,
both in English. A compliance key is registered, both parties consent, the recording runs. The borrower
shares a screen: the other two pages decode it in the large view; the mediator stops it; the borrower shares
again and ends it with the browser's own "stop sharing". Hands: the bank and the borrower raise theirs, the
mediator sees them in order and lowers the bank's. Speaker: only the mediator's microphone is on, then only the
bank's; the highlight follows. Every tile shows a measured network quality. At the end the compliance page opens
the session and lists the shared screen as a recording of its own, "<borrower> (screen)".
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import Api, walk_to_scheduled
from tests.recording.agekeys import generate
from tests.recording.test_session_recording import _recorder_gone, _transcript_sealed
from tests.signaling.conftest import issue_link
from tests.support.walk import BORROWER_EMAIL
from tests.web.browser import (
    DESKTOP, PHONE, WAIT_MS, admit, enrol_device, join_room, load_identity_file, open_page, open_session,
    recording_videos, shot, sign_in, with_lang,
)

AREA = "room-meeting"
LEVELS = {"good", "fair", "poor"}

# The browser's own "stop sharing" ends the captured track; a page cannot press Chrome's bar, so the test keeps
# each captured stream and ends its track the way the browser does: the track stops and fires "ended".
KEEP_CAPTURES = """(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getDisplayMedia) return;
  const original = devices.getDisplayMedia.bind(devices);
  window.__captures = [];
  devices.getDisplayMedia = async (...args) => {
    const stream = await original(...args);
    window.__captures.push(stream);
    return stream;
  };
})();"""
BROWSER_STOPS_SHARING = """() => {
  const track = window.__captures[window.__captures.length - 1].getVideoTracks()[0];
  track.stop();
  track.dispatchEvent(new Event("ended"));
}"""


async def _screen_frames(page: Page) -> int:
    return await page.evaluate("""() => {
        const video = document.querySelector('[data-testid=screen-video]');
        return video && video.srcObject ? video.getVideoPlaybackQuality().totalVideoFrames : 0; }""")


async def _screen_decoded(page: Page) -> None:
    """Wait until the page's large view decodes a rising number of frames of the shared screen."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        before = await _screen_frames(page)
        await asyncio.sleep(1.0)
        after = await _screen_frames(page)
        if before > 0 and after > before:
            size = await page.evaluate("""() => { const v = document.querySelector('[data-testid=screen-video]');
                                                    return [v.videoWidth, v.videoHeight]; }""")
            assert size[0] > 0 and size[1] > 0, size
            return
        assert time.monotonic() < deadline, f"the shared screen is not decoded on {page.url}: {before} -> {after}"


async def _speaking(page: Page) -> list[str]:
    return await page.evaluate("""() => [...document.querySelectorAll('[data-testid=remote-tile][data-speaking=true]')]
        .map(t => t.dataset.participantId)""")


async def _wait_speaker(page: Page, participant_id: str) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while (now := await _speaking(page)) != [participant_id]:
        assert time.monotonic() < deadline, f"speaker on {page.url} is {now}, not {participant_id}"
        await asyncio.sleep(0.3)


async def _mic(page: Page, on: bool) -> None:
    button = page.get_by_test_id("toggle-audio")
    if (await button.get_attribute("data-on")) != str(on).lower():
        await button.click()
    await expect(button).to_have_attribute("data-on", str(on).lower(), timeout=WAIT_MS)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_room_meeting_share_hands_speaker_network_and_the_recorded_screen(api: Api, browser: Browser,
                                                                              tmp_path: Path) -> None:
    began = time.monotonic()
    key = generate(tmp_path / "keys")
    officer_name = f"compliance-meeting-{int(time.time() * 1000) % 10**8}"
    _, compliance_token = await api.staff("compliance_officer", officer_name)
    await api.approve_key(compliance_token, key.recipient)
    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.borrower_id)
    users = {u.user_id: u for u in await api.services.accounts.list_staff()}
    borrower_id, bank_id, mediator_id = journey.borrower_id, journey.bank_id, journey.mediator_id
    room_url = f"{api.base}/room?session={journey.session_id}"

    mediator = await open_page(browser, room_url, "en", **DESKTOP)
    bank = await open_page(browser, room_url, "en", **DESKTOP)
    phone = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    await phone.add_init_script(KEEP_CAPTURES)
    borrower = await phone.new_page()
    await borrower.goto(with_lang(f"{api.base}/room#{link}", "zh-CN"))
    pages = (mediator, bank, borrower)
    errors: list[str] = []
    for page in pages:
        page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await sign_in(mediator, users[mediator_id].username)
        await sign_in(bank, users[bank_id].username)
        # Cameras off: three browsers encoding and decoding cameras starve this shared machine, and the
        # screen is the video that matters here.
        for page in pages:
            await expect(page.get_by_test_id("toggle-video")).to_be_enabled(timeout=WAIT_MS)
            await page.get_by_test_id("toggle-video").click()
            await expect(page.get_by_test_id("toggle-video")).to_have_attribute("data-on", "false", timeout=WAIT_MS)
        await join_room(mediator)
        await join_room(bank)
        await join_room(borrower)
        await admit(mediator, bank_id, borrower_id)
        assert api.mailbox is not None
        await bank.get_by_test_id("consent-accept").click()
        await enrol_device(bank, api.mailbox, journey.lender_email)
        await borrower.get_by_test_id("consent-accept").click()
        await enrol_device(borrower, api.mailbox, BORROWER_EMAIL)
        await borrower.get_by_test_id("consent-withdraw").wait_for(state="visible", timeout=WAIT_MS)
        await borrower.set_viewport_size(PHONE)  # the borrower's phone from here on (consented on a desktop)
        await mediator.wait_for_function(
            "() => !document.querySelector('[data-testid=start-recording]').disabled", timeout=WAIT_MS)
        await mediator.get_by_test_id("start-recording").click()
        for page in pages:  # the recorder is a process of its own: slow to start on a loaded machine
            await page.get_by_test_id("recording-indicator").wait_for(state="visible", timeout=3 * WAIT_MS)

        # --- network quality: every tile measured, with an accessible name ------------------------------
        for page in pages:
            await page.wait_for_function("""() => {
                const marks = [...document.querySelectorAll('#tiles [data-testid=net-quality]')];
                return marks.length === 3 && marks.every(m => m.dataset.level !== 'unknown'); }""", timeout=WAIT_MS)
            marks = await page.locator("#tiles [data-testid=net-quality]").evaluate_all(
                "(marks) => marks.map(m => [m.dataset.level, m.getAttribute('aria-label')])")
            assert all(level in LEVELS and label for level, label in marks), marks
        assert (await mediator.locator("[data-testid=local-tile] [data-testid=net-quality]").get_attribute(
            "aria-label") or "").startswith("Network: ")
        assert (await borrower.locator("[data-testid=local-tile] [data-testid=net-quality]").get_attribute(
            "aria-label") or "").startswith("网络：")

        # --- the borrower (phone, zh-CN) shares a screen: decoded large on the other two pages -----------
        share = borrower.get_by_test_id("toggle-share")
        await expect(share).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
        await share.click()
        await expect(share).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        assert await borrower.locator("#toggle-share-label").inner_text() == "停止共享"
        await expect(borrower.get_by_test_id("screen-caption")).to_have_text("您正在共享屏幕", timeout=WAIT_MS)
        for page in (mediator, bank):
            stage = page.get_by_test_id("screen-stage")
            await expect(stage).to_have_attribute("data-sharer", borrower_id, timeout=WAIT_MS)
            await _screen_decoded(page)
        caption = "is sharing their screen"
        await expect(mediator.get_by_test_id("screen-caption")).to_contain_text(caption, timeout=WAIT_MS)
        await expect(bank.get_by_test_id("screen-caption")).to_contain_text(caption, timeout=WAIT_MS)
        # One share at a time: the others' control waits.
        await expect(bank.get_by_test_id("toggle-share")).to_be_disabled(timeout=WAIT_MS)
        await asyncio.sleep(3)  # some seconds of the screen in the recording
        await shot(mediator, AREA, "screen-share-mediator-en", full_page=False)
        await shot(borrower, AREA, "screen-share-borrower-phone-zh-CN", full_page=False)
        await shot(bank, AREA, "screen-share-bank-en", full_page=False)

        # The mediator stops it; the borrower is told.
        await mediator.get_by_test_id("screen-stop").click()
        await borrower.get_by_test_id("share-stopped").wait_for(timeout=WAIT_MS)
        await expect(share).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
        for page in pages:
            await expect(page.get_by_test_id("screen-stage")).to_be_hidden(timeout=WAIT_MS)
        # Shared again, then ended with the browser's own "stop sharing".
        await share.click()
        stage = mediator.get_by_test_id("screen-stage")
        await expect(stage).to_have_attribute("data-sharer", borrower_id, timeout=WAIT_MS)
        await _screen_decoded(mediator)
        await borrower.evaluate(BROWSER_STOPS_SHARING)
        for page in pages:
            await expect(page.get_by_test_id("screen-stage")).to_be_hidden(timeout=WAIT_MS)
        await expect(share).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
        await expect(bank.get_by_test_id("toggle-share")).to_be_enabled(timeout=WAIT_MS)

        # --- hands: raised in order, seen by the mediator, lowered by the mediator -----------------------
        # The mediator calls on people; it raises no hand.
        await expect(mediator.get_by_test_id("raise-hand")).to_be_hidden(timeout=WAIT_MS)
        await bank.get_by_test_id("raise-hand").click()
        await expect(bank.get_by_test_id("raise-hand")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        await borrower.get_by_test_id("raise-hand").click()
        queue = mediator.get_by_test_id("hand-item")
        await expect(queue).to_have_count(2, timeout=WAIT_MS)
        assert await queue.evaluate_all("(items) => items.map(i => i.dataset.participantId)") == [bank_id, borrower_id]
        bank_tile = mediator.locator(f"[data-testid=remote-tile][data-participant-id='{bank_id}']")
        await expect(bank_tile).to_have_attribute("data-hand", "1", timeout=WAIT_MS)
        await expect(mediator.get_by_test_id("hand-queue")).to_be_visible(timeout=WAIT_MS)
        await shot(mediator, AREA, "hands-mediator-en", full_page=False)
        await shot(borrower, AREA, "hands-borrower-phone-zh-CN", full_page=False)
        await mediator.locator(f"[data-testid=lower-hand][data-participant-id='{bank_id}']").click()
        await expect(queue).to_have_count(1, timeout=WAIT_MS)
        await bank.get_by_test_id("hand-lowered").wait_for(timeout=WAIT_MS)
        await expect(bank.get_by_test_id("raise-hand")).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
        await borrower.get_by_test_id("raise-hand").click()  # the borrower lowers its own
        await expect(mediator.get_by_test_id("hand-queue")).to_be_hidden(timeout=WAIT_MS)

        # --- the active speaker: only the mediator's microphone on, then only the bank's -----------------
        await _mic(bank, False)
        await _mic(borrower, False)
        await _mic(mediator, True)
        await _wait_speaker(bank, mediator_id)
        await _wait_speaker(borrower, mediator_id)
        await _mic(mediator, False)
        await _mic(bank, True)
        await _wait_speaker(borrower, bank_id)
        await _wait_speaker(mediator, bank_id)
        await shot(mediator, AREA, "speaker-mediator-en", full_page=False)

        # --- the recording keeps the screen as a source of its own ---------------------------------------
        await mediator.get_by_test_id("end-session").click()
        confirm = mediator.get_by_test_id("dialog-confirm")
        if await confirm.is_visible():
            await confirm.click()
        await _recorder_gone(api)
        await _transcript_sealed(api, journey.case_id)
        status, listed = await api.call("GET", f"/api/cases/{journey.case_id}/records", token=compliance_token)
        assert status == 200, listed
        screen_parts = sorted({r["part"] for r in listed["records"]
                               if r["kind"] == "recording_segment" and r["participant_id"] == f"{borrower_id}-screen"})
        assert screen_parts == [0, 1], screen_parts  # the two shares, each a part

        compliance = await open_page(browser, f"{api.base}/compliance", "en", **DESKTOP)
        await sign_in(compliance, officer_name)
        await load_identity_file(compliance, key.identity_file)
        await compliance.locator(f"[data-testid=case-row][data-case-id={journey.case_id}]").get_by_test_id(
            "case-open").click()
        verdict = await open_session(compliance, journey.session_id)
        opened = await compliance.get_by_test_id("opened").inner_text()
        # The transcript names every source; without it the player could only show ids.
        assert verdict in ("complete", "incomplete"), (verdict, opened)
        videos = await recording_videos(compliance)
        participants = {v["participant"] for v in videos}
        assert {mediator_id, bank_id, borrower_id, f"{borrower_id}-screen"} <= participants, videos
        screens = [v for v in videos if v["participant"] == f"{borrower_id}-screen"]
        for video in screens:
            assert video["error"] is None and math.isfinite(video["duration"]) and video["width"] > 0, video
        # The review player names the source after its sharer.
        tile = compliance.locator(f"[data-testid=player-tile][data-participant-id='{borrower_id}-screen']")
        await expect(tile.locator(".player-name")).to_contain_text("Li Wei (screen)", timeout=WAIT_MS)
        await shot(compliance, AREA, "compliance-screen-recording-en", full_page=False)
        await compliance.context.close()
        assert errors == [], errors
    finally:
        for page in pages:
            await page.context.close()
    print(f"meeting browser test took {time.monotonic() - began:.1f} s")
