"""Consent and recording through the real room page, in three headless Chromium pages.

A compliance officer registers an age key, so the session's records are sealed. Borrower (join
link), bank representative and mediator (staff sign-in) join; the mediator cannot start recording
until both parties have clicked consent; the recording runs with the browsers sending their fake
camera and microphone to the server's recorder worker; the borrower withdraws consent and the
recording stops on every page with the reason shown. Finally the compliance API lists sealed
recording segments for each of the three participants: the recorder received every browser's media.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import Api, walk_to_scheduled
from tests.support.walk import BORROWER_EMAIL
from tests.recording.agekeys import generate
from tests.signaling.conftest import issue_link
from tests.web.browser import WAIT_MS, admit, enrol_device, join_room, open_page, shot, sign_in

AREA = "room"
RECORD_SECONDS = 8.0
SEGMENTS_WAIT = 45.0


async def _visible(page: Page, testid: str) -> None:
    await page.get_by_test_id(testid).wait_for(state="visible", timeout=WAIT_MS)


async def _blocked_reason(page: Page) -> str:
    reason = page.get_by_test_id("recording-blocked-reason")
    if not await reason.is_visible():
        return ""
    return await reason.inner_text()


async def _wait_for(check, what: str, timeout: float = WAIT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_room_consent_recording_and_withdrawal(api: Api, browser: Browser, tmp_path: Path) -> None:
    began = time.monotonic()
    # A compliance key first: the room seals its records (and may record) only if one exists when it opens.
    key = generate(tmp_path / "keys")
    _, compliance = await api.staff("compliance_officer")
    await api.approve_key(compliance, key.recipient)

    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.borrower_id)
    users = {u.user_id: u for u in await api.services.accounts.list_staff()}
    mediator_name, bank_user = users[journey.mediator_id].username, users[journey.bank_id]
    borrower_id, bank_id, mediator_id = journey.borrower_id, journey.bank_id, journey.mediator_id
    status, case = await api.call("GET", f"/api/cases/{journey.case_id}", token=journey.officer)
    assert status == 200, case

    room_url = f"{api.base}/room?session={journey.session_id}"
    mediator = await open_page(browser, room_url)
    await sign_in(mediator, mediator_name)
    await join_room(mediator)
    bank = await open_page(browser, room_url, lang="en")
    await sign_in(bank, bank_user.username)
    await join_room(bank)
    borrower = await open_page(browser, f"{api.base}/room#{link}")
    await join_room(borrower)

    # The header carries the schedule of the join result.
    await _visible(mediator, "meta-case")
    assert await mediator.get_by_test_id("meta-case").inner_text() == case["case_number"]
    assert (await mediator.get_by_test_id("meta-duration").inner_text()).strip() == "60 分钟"
    assert (await bank.get_by_test_id("meta-duration").inner_text()).strip() == "60 min"
    assert await mediator.get_by_test_id("meta-scheduled").inner_text()

    # Parties see the notice in their page's language, also while still in the lobby.
    await _visible(borrower, "consent-notice")
    await _visible(bank, "consent-notice")
    assert "录音录像" in await borrower.get_by_test_id("consent-notice").inner_text()
    assert "will be recorded" in await bank.get_by_test_id("consent-notice").inner_text()
    await shot(borrower, AREA, "consent-lobby-zh-CN")
    await shot(bank, AREA, "consent-lobby-en")
    # The mediator gives no consent and sees no notice.
    assert not await mediator.get_by_test_id("consent-panel").is_visible()

    await admit(mediator, bank_id, borrower_id)

    # Blocked until both parties consent: the reason names who is missing.
    start = mediator.get_by_test_id("start-recording")
    await start.wait_for(state="visible", timeout=WAIT_MS)
    await _wait_for(lambda: _has_both(mediator, bank_user.display_name), "both parties in the blocked reason")
    assert await start.is_disabled()
    await _visible(borrower, "consent-panel")  # in the room now, over the stage
    await shot(mediator, AREA, "recording-blocked-zh-CN")
    await shot(borrower, AREA, "consent-room-zh-CN")
    await _phone_shot(borrower, "consent-room-phone-zh-CN")

    # Consent has legal weight: this browser is not enrolled yet, so it asks for the code sent to the
    # party's verified contact (the bank's mediation mailbox for the lender), read here from the mail.
    assert api.mailbox is not None
    await bank.get_by_test_id("consent-accept").click()
    await enrol_device(bank, api.mailbox, journey.lender_email)
    await _visible(bank, "consent-withdraw")
    await _wait_for(lambda: _blocked_is(mediator, lambda text: "Li Wei" in text and bank_user.display_name not in text),
                    "only the borrower left in the blocked reason")
    assert await start.is_disabled()
    roster_bank = mediator.locator(f"[data-testid=roster-entry][data-participant-id='{bank_id}']")
    assert await roster_bank.get_attribute("data-consented") == "true"

    # The borrower first declines, then reviews the notice and consents.
    await borrower.get_by_test_id("consent-decline").click()
    await _visible(borrower, "consent-review")
    assert not await borrower.get_by_test_id("consent-panel").is_visible()
    assert await start.is_disabled()
    await borrower.get_by_test_id("consent-review").click()
    await borrower.get_by_test_id("consent-accept").click()
    await enrol_device(borrower, api.mailbox, BORROWER_EMAIL)
    await _visible(borrower, "consent-withdraw")
    await mediator.wait_for_function(
        "() => !document.querySelector('[data-testid=start-recording]').disabled", timeout=WAIT_MS)
    assert not await mediator.get_by_test_id("recording-blocked-reason").is_visible()

    await start.click()
    for page in (mediator, bank, borrower):
        await _visible(page, "recording-indicator")
    await _visible(mediator, "stop-recording")
    # The recorder shows on the roster; no tile for it.
    await mediator.locator("[data-testid=roster-entry][data-role=recorder]").wait_for(timeout=WAIT_MS)
    assert await mediator.locator("[data-testid=remote-tile][data-participant-id^=rcd_]").count() == 0
    await asyncio.sleep(RECORD_SECONDS)
    await shot(mediator, AREA, "recording-mediator-zh-CN")
    await shot(bank, AREA, "recording-bank-en")
    await shot(borrower, AREA, "recording-borrower-zh-CN")
    await _phone_shot(bank, "recording-phone-en")

    # The borrower withdraws (a confirmation first): the recording stops everywhere, reason shown.
    await borrower.get_by_test_id("consent-withdraw").click()
    await _visible(borrower, "dialog")
    await shot(borrower, AREA, "consent-withdraw-dialog-zh-CN")
    await borrower.get_by_test_id("dialog-confirm").click()
    expected = {mediator: "撤回了录制同意", bank: "withdrew consent", borrower: "撤回了录制同意"}
    for page, text in expected.items():
        await page.get_by_test_id("recording-indicator").wait_for(state="hidden", timeout=WAIT_MS)
        toast = page.locator("[data-testid=notice][data-reason=consent_withdrawn]")
        await toast.wait_for(state="visible", timeout=WAIT_MS)
        assert text in await toast.inner_text()
    await shot(bank, AREA, "recording-stopped-en")
    await _visible(mediator, "start-recording")
    await _wait_for(lambda: _blocked_is(mediator, lambda text: "Li Wei" in text), "the borrower blocks recording again")
    await _visible(borrower, "consent-review")
    # The borrower who withdrew is told once (the recording's notice says it), not twice.
    assert await borrower.get_by_test_id("notice").filter(has_text="撤回了").count() == 1
    assert await borrower.get_by_test_id("notice").filter(has_text="您已撤回").count() == 0

    # The recorder worker filed sealed segments of each browser's media.
    records: list[dict] = []

    async def segments() -> set[str]:
        nonlocal records
        status, listed = await api.call("GET", f"/api/cases/{journey.case_id}/records", token=compliance)
        assert status == 200, listed
        records = [r for r in listed["records"] if r["kind"] == "recording_segment"]
        return {r["participant_id"] for r in records}

    wanted = {mediator_id, bank_id, borrower_id}
    deadline = time.monotonic() + SEGMENTS_WAIT
    while not wanted <= (found := await segments()):
        assert time.monotonic() < deadline, f"segments only for {found}, wanted {wanted}"
        await asyncio.sleep(0.5)
    assert all(r["size"] > 0 and key.recipient in r["recipients"] for r in records), records
    # One connection per browser for the whole recording: no needless renegotiation (each new offer
    # to the recorder would start a new file part).
    assert {r["part"] for r in records} == {0}, [(r["participant_id"], r["part"], r["index"]) for r in records]
    print(f"recording browser test took {time.monotonic() - began:.1f} s")


async def _phone_shot(page: Page, name: str) -> None:
    """The same page at a phone's size for a moment."""
    size = page.viewport_size
    await page.set_viewport_size({"width": 390, "height": 844})
    await asyncio.sleep(0.3)
    await shot(page, AREA, name)
    await page.set_viewport_size(size)


async def _blocked_is(page: Page, predicate) -> bool:
    return predicate(await _blocked_reason(page))


async def _has_both(page: Page, bank_name: str) -> bool:
    text = await _blocked_reason(page)
    return "Li Wei" in text and bank_name in text
