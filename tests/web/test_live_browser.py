"""Live pages in headless Chromium: /case and /desk change without a reload when the other side acts."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import Api, future, walk_to_scheduled
from tests.support.walk import BORROWER_EMAIL
from tests.web.browser import Pages, confirm_session, sign_in_desk

LIVE_WAIT_MS = 2000  # the promise: a change shows within 2 s


@pytest.mark.timeout(120)
async def test_live_borrower_sees_a_proposed_time_and_the_desk_sees_the_confirmation(api: Api,
                                                                                    browser: Browser) -> None:
    journey = await walk_to_scheduled(api)
    mediator = await api.services.accounts.user(journey.mediator_id)
    pages = Pages(browser, api.base)
    try:
        borrower = await pages.open(f"/case#{journey.receipt}")
        desk = await pages.open(f"/desk#/case/{journey.case_id}")
        await sign_in_desk(desk, mediator.username)
        for page in (borrower, desk):
            state = page.get_by_test_id("live-state")
            await expect(state).to_have_attribute("data-state", "live")
            await expect(state).to_have_attribute("role", "status")
            await expect(state).to_have_attribute("aria-label", "连接状态：实时更新")
        sessions = borrower.get_by_test_id("party-session")
        before = await sessions.count()

        # The mediator proposes a second time (through the API, as another tab would): the borrower's page shows it.
        status, body = await api.call("POST", f"/api/cases/{journey.case_id}/sessions", token=journey.mediator,
                                      json={"starts_at": future(72), "duration_minutes": 30, "mode": "video"})
        assert status == 201, body
        await expect(sessions).to_have_count(before + 1, timeout=LIVE_WAIT_MS)
        await expect(desk.get_by_test_id("session")).to_have_count(before + 1, timeout=LIVE_WAIT_MS)
        proposed = desk.locator("[data-testid=session][data-state=proposed]")
        borrower_tick = proposed.locator("[data-testid=confirmations] li[data-role=borrower]")
        await expect(borrower_tick).to_have_attribute("data-confirmed", "false")

        # The borrower confirms in its page (this device enrols with the code from its mail first): the
        # mediator's desk says so, with no reload.
        await confirm_session(borrower, api.mailbox, BORROWER_EMAIL)
        await expect(borrower_tick).to_have_attribute("data-confirmed", "true", timeout=LIVE_WAIT_MS)
        assert desk.url.endswith(f"#/case/{journey.case_id}")
        assert not pages.problems, pages.problems
    finally:
        await pages.close()


@pytest.mark.timeout(120)
async def test_live_disabled_account_desk_shows_sign_in_and_revoked_receipt_page_says_so(api: Api,
                                                                                  browser: Browser) -> None:
    journey = await walk_to_scheduled(api)
    mediator = await api.services.accounts.user(journey.mediator_id)
    pages = Pages(browser, api.base)
    try:
        borrower = await pages.open(f"/case#{journey.receipt}", lang="en")
        await expect(borrower.get_by_test_id("live-state")).to_have_attribute("data-state", "live")
        status, _ = await api.call("POST", f"/api/cases/{journey.case_id}/receipt/revoke", token=journey.officer)
        assert status == 200
        # The page learns at once that its link no longer opens the case.
        await expect(borrower.get_by_test_id("case-error")).to_be_visible(timeout=LIVE_WAIT_MS)

        desk = await pages.open("/desk")
        await sign_in_desk(desk, mediator.username)
        await expect(desk.get_by_test_id("live-state")).to_have_attribute("data-state", "live")
        # The account is disabled by an administrator: this desk returns to the sign-in form by itself.
        _, admin = await api.staff("administrator")
        status, _ = await api.call("POST", f"/api/staff/{journey.mediator_id}/disable", token=admin)
        assert status == 200
        await expect(desk.get_by_test_id("signin-username")).to_be_visible(timeout=LIVE_WAIT_MS)
        await expect(desk.get_by_test_id("who-name")).to_be_hidden()
    finally:
        await pages.close()
