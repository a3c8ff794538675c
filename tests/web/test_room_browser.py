"""Three real headless Chromium pages with fake camera and microphone meet in one room.

Borrower (join link), bank representative and mediator (staff sign-in) join through the real room
page; media flows in the full mesh between the browsers; chat, caucus isolation and removal are
checked on what each page actually shows and decodes.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser

from tests.conftest import Api, walk_to_scheduled
from tests.signaling.conftest import issue_link
from tests.web.browser import WAIT_MS, admit, confirm_dialog, join_room, open_page, rising, shot, sign_in, wait_rising

AREA = "room"


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_room_three_browsers_mesh_chat_caucus_and_removal(api: Api, browser: Browser) -> None:
    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.borrower_id)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    mediator_name, bank_name = users[journey.mediator_id], users[journey.bank_id]
    borrower_id, bank_id, mediator_id = journey.borrower_id, journey.bank_id, journey.mediator_id

    room_url = f"{api.base}/room?session={journey.session_id}"
    mediator = await open_page(browser, room_url)
    await sign_in(mediator, mediator_name)
    await join_room(mediator)
    bank = await open_page(browser, room_url, lang="en")
    await sign_in(bank, bank_name)
    await join_room(bank)
    borrower = await open_page(browser, f"{api.base}/room#{link}")
    await join_room(borrower)

    await borrower.get_by_test_id("lobby-banner").wait_for(state="visible", timeout=WAIT_MS)
    await shot(borrower, AREA, "lobby-zh-CN")
    await admit(mediator, bank_id, borrower_id)

    # Every page decodes a rising number of frames from each of the two others.
    await wait_rising(mediator, {bank_id, borrower_id})
    await wait_rising(bank, {mediator_id, borrower_id})
    await wait_rising(borrower, {mediator_id, bank_id})
    await shot(mediator, AREA, "room-mediator-zh-CN")
    await shot(bank, AREA, "room-bank-en")

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
    await confirm_dialog(mediator)
    await bank.get_by_test_id("caucus-banner").wait_for(state="visible", timeout=WAIT_MS)
    await asyncio.sleep(2)  # let connections across the caucus close before sampling frames
    isolated = await rising(bank, {mediator_id, borrower_id}, 3.0)
    assert not any(isolated.values()), isolated
    await wait_rising(borrower, {mediator_id})
    secret = "caucus only: my real limit is 3000"
    await borrower.get_by_test_id("chat-input").fill(secret)
    await borrower.get_by_test_id("chat-send").click()
    await mediator.get_by_test_id("chat-message").filter(has_text=secret).wait_for(timeout=WAIT_MS)
    await shot(bank, AREA, "caucus-excluded-en")
    await mediator.get_by_test_id("close-caucus").click()
    await bank.get_by_test_id("caucus-banner").wait_for(state="hidden", timeout=WAIT_MS)
    assert await bank.get_by_test_id("chat-message").filter(has_text=secret).count() == 0

    # The mediator removes the bank representative, whose page says so.
    await mediator.get_by_test_id(f"remove-{bank_id}").click()
    await confirm_dialog(mediator)
    await bank.locator("[data-testid=status][data-state=removed]").wait_for(timeout=WAIT_MS)
    await shot(bank, AREA, "removed-en")

