"""Three real headless Chromium pages with fake camera and microphone meet in one room.

Borrower (join link), bank representative and mediator (staff sign-in) join through the real room
page; media flows in the full mesh between the browsers; chat, caucus isolation and removal are
checked on what each page actually shows and decodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import STAFF_PASSWORD, Api, walk_to_scheduled
from tests.signaling.conftest import issue_link

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "room"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
]
WAIT_MS = 30_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Debian's chromium is not installed: run scripts/setup.sh")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def _open(browser: Browser, url: str, lang: str = "zh-CN") -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale=lang)
    page = await context.new_page()
    await page.goto(url)
    return page


async def _sign_in(page: Page, username: str) -> None:
    await page.get_by_test_id("signin-username").fill(username)
    await page.get_by_test_id("signin-password").fill(STAFF_PASSWORD)
    await page.get_by_test_id("signin-submit").click()


async def _join(page: Page) -> None:
    button = page.get_by_test_id("join-button")
    await button.wait_for(state="visible", timeout=WAIT_MS)
    await page.wait_for_function("() => !document.querySelector('[data-testid=join-button]').disabled",
                                 timeout=WAIT_MS)
    await button.click()


async def _frames(page: Page) -> dict[str, int]:
    """Decoded frames so far of each remote video on the page, by participant."""
    return await page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('[data-testid=remote-video]')].map(v => [
            v.closest('[data-participant-id]')?.dataset.participantId || v.dataset.participantId,
            v.getVideoPlaybackQuality().totalVideoFrames]))""")


async def _rising(page: Page, participants: set[str], seconds: float = 3.0) -> dict[str, bool]:
    before = await _frames(page)
    await asyncio.sleep(seconds)
    after = await _frames(page)
    return {p: after.get(p, 0) > before.get(p, 0) for p in participants}


async def _wait_rising(page: Page, participants: set[str]) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        rising = await _rising(page, participants, 1.5)
        if all(rising.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"remote video not flowing on {page.url}: {rising}, {await _frames(page)}")


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_room_three_browsers_mesh_chat_caucus_and_removal(api: Api, browser: Browser) -> None:
    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.borrower_id)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    mediator_name, bank_name = users[journey.mediator_id], users[journey.bank_id]
    borrower_id, bank_id, mediator_id = journey.borrower_id, journey.bank_id, journey.mediator_id

    room_url = f"{api.base}/room?session={journey.session_id}"
    mediator = await _open(browser, room_url)
    await _sign_in(mediator, mediator_name)
    await _join(mediator)
    bank = await _open(browser, room_url + "&lang=en", lang="en")
    await _sign_in(bank, bank_name)
    await _join(bank)
    borrower = await _open(browser, f"{api.base}/room#{link}")
    await _join(borrower)

    await borrower.get_by_test_id("lobby-banner").wait_for(state="visible", timeout=WAIT_MS)
    await _shot(borrower, "lobby-zh-CN")
    for participant in (bank_id, borrower_id):
        admit = mediator.get_by_test_id(f"admit-{participant}")
        await admit.wait_for(state="visible", timeout=WAIT_MS)
        await admit.click()

    # Every page decodes a rising number of frames from each of the two others.
    await _wait_rising(mediator, {bank_id, borrower_id})
    await _wait_rising(bank, {mediator_id, borrower_id})
    await _wait_rising(borrower, {mediator_id, bank_id})
    await _shot(mediator, "room-mediator-zh-CN")
    await _shot(bank, "room-bank-en")

    text = "我们可以分三期还款 <b>not bold</b>"
    await borrower.get_by_test_id("chat-input").fill(text)
    await borrower.get_by_test_id("chat-send").click()
    for page in (mediator, bank):
        message = page.get_by_test_id("chat-message").filter(has_text="我们可以分三期还款")
        await message.wait_for(state="visible", timeout=WAIT_MS)
        assert text in await message.inner_text()  # shown as text, not markup
        assert await page.locator("[data-testid=chat-list] b").count() == 0

    # Caucus with the borrower: the bank's page receives nothing of it.
    await mediator.get_by_test_id(f"caucus-{borrower_id}").click()
    confirm = mediator.get_by_test_id("dialog-confirm")
    if await confirm.is_visible():
        await confirm.click()
    await bank.get_by_test_id("caucus-banner").wait_for(state="visible", timeout=WAIT_MS)
    await asyncio.sleep(2)  # let connections across the caucus close before sampling frames
    isolated = await _rising(bank, {mediator_id, borrower_id}, 3.0)
    assert not any(isolated.values()), isolated
    await _wait_rising(borrower, {mediator_id})
    secret = "caucus only: my real limit is 3000"
    await borrower.get_by_test_id("chat-input").fill(secret)
    await borrower.get_by_test_id("chat-send").click()
    await mediator.get_by_test_id("chat-message").filter(has_text=secret).wait_for(timeout=WAIT_MS)
    await _shot(bank, "caucus-excluded-en")
    await mediator.get_by_test_id("close-caucus").click()
    await bank.get_by_test_id("caucus-banner").wait_for(state="hidden", timeout=WAIT_MS)
    assert await bank.get_by_test_id("chat-message").filter(has_text=secret).count() == 0

    # The mediator removes the bank representative, whose page says so.
    await mediator.get_by_test_id(f"remove-{bank_id}").click()
    confirm = mediator.get_by_test_id("dialog-confirm")
    if await confirm.is_visible():
        await confirm.click()
    await bank.locator("[data-testid=status][data-state=removed]").wait_for(timeout=WAIT_MS)
    await _shot(bank, "removed-en")
