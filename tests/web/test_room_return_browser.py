"""The room's way in and out on a phone: the schedule first in the lobby, Back asks, every end leads back."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import Api, walk_to_scheduled
from tests.signaling.conftest import issue_link
from tests.web.browser import WAIT_MS, ZONE, Pages, admit, confirm_dialog, join_room, shot, sign_in

PHONE = {"width": 390, "height": 844}


async def _case_number(api: Api, receipt: str) -> str:
    _, view = await api.call("GET", "/api/party/case", token=receipt)
    return view["case_number"]


async def _not_cut_off(page: Page, testid: str) -> bool:
    return await page.get_by_test_id(testid).evaluate("node => node.scrollWidth <= node.clientWidth + 1")


@pytest.mark.timeout(180)
async def test_room_phone_lobby_shows_schedule_first_and_back_asks_before_leaving(api: Api, browser: Browser) -> None:
    journey = await walk_to_scheduled(api)  # the session starts in two days
    link = await issue_link(api, journey, journey.borrower_id)
    case_number = await _case_number(api, journey.receipt)
    _, view = await api.call("GET", "/api/party/case", token=journey.receipt)
    starts_at = dt.datetime.fromisoformat(view["sessions"][0]["starts_at"]).astimezone(ZoneInfo(ZONE))
    pages = Pages(browser, api.base)
    try:
        # The borrower comes from its case page, as a party does.
        phone = await pages.open(f"/case#{journey.receipt}", **PHONE)
        await expect(phone.get_by_test_id("case-number")).to_have_text(case_number)
        await phone.goto(f"{api.base}/room#{link}")
        schedule = phone.get_by_test_id("lobby-schedule")
        await expect(schedule).to_be_visible(timeout=WAIT_MS)
        # The time in the phone's language and time zone, a countdown, and that it is early.
        start = phone.get_by_test_id("schedule-start")
        await expect(start).to_contain_text(f"{starts_at.hour:02d}:{starts_at.minute:02d}")
        await expect(start).to_contain_text(f"{starts_at.month}月{starts_at.day}日")
        await expect(phone.get_by_test_id("schedule-countdown")).to_contain_text("天")
        await expect(phone.get_by_test_id("schedule-early")).to_be_visible()
        # The whole case number, never cut off; and the schedule comes before the camera preview.
        await expect(phone.get_by_test_id("schedule-case")).to_have_text(case_number)
        assert await _not_cut_off(phone, "schedule-case")
        schedule_box = await schedule.bounding_box()
        preview_box = await phone.locator("#preview-pane").bounding_box()
        assert schedule_box and preview_box and schedule_box["y"] < preview_box["y"]
        assert schedule_box["x"] >= 0 and schedule_box["x"] + schedule_box["width"] <= PHONE["width"]

        await shot(phone, "room", "prejoin-schedule-phone-zh-CN", full_page=False)
        await join_room(phone)
        await expect(phone.get_by_test_id("lobby-banner")).to_be_visible(timeout=WAIT_MS)
        await expect(phone.get_by_test_id("lobby-schedule")).to_be_visible()
        await shot(phone, "room", "lobby-schedule-phone-zh-CN", full_page=False)
        # Back asks first; staying keeps the lobby.
        await phone.go_back()
        await expect(phone.get_by_test_id("dialog-confirm")).to_be_visible()
        await phone.get_by_test_id("dialog-cancel").click()
        await expect(phone.get_by_test_id("lobby-banner")).to_be_visible()
        # Staying stands the guard entry up again (after the answer); Back before that would leave unasked.
        await phone.wait_for_function("() => history.state?.roomGuard === true")
        assert phone.url.startswith(f"{api.base}/room")
        # Back again, confirmed: the borrower leaves the lobby and lands where it came from.
        await phone.go_back()
        await phone.get_by_test_id("dialog-confirm").click()
        await expect(phone.get_by_test_id("case-number")).to_have_text(case_number, timeout=WAIT_MS)
        assert not pages.problems, pages.problems
    finally:
        await pages.close()


@pytest.mark.timeout(180)
async def test_room_every_end_leads_back_to_the_case_or_the_desk(api: Api, browser: Browser) -> None:
    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.borrower_id)
    case_number = await _case_number(api, journey.receipt)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    pages = Pages(browser, api.base)
    try:
        mediator = await pages.open(f"/room?session={journey.session_id}")
        await sign_in(mediator, users[journey.mediator_id])
        await join_room(mediator)
        borrower = await pages.open(f"/room#{link}", **PHONE)
        await join_room(borrower)
        await admit(mediator, journey.borrower_id)
        await expect(borrower.get_by_test_id("leave")).to_be_visible(timeout=WAIT_MS)

        # Leaving by the button: the left screen offers the way back to the case.
        await borrower.get_by_test_id("leave").click()
        await confirm_dialog(borrower)
        await expect(borrower.locator("[data-testid=status][data-state=left]")).to_be_visible(timeout=WAIT_MS)
        await borrower.get_by_test_id("back-to-case").click()
        await expect(borrower.get_by_test_id("case-number")).to_have_text(case_number, timeout=WAIT_MS)

        # Back in, then the mediator ends the session: both ends lead back, the mediator's to the desk.
        await borrower.goto(f"{api.base}/room#{link}")
        await join_room(borrower)
        await admit(mediator, journey.borrower_id)
        await expect(borrower.get_by_test_id("leave")).to_be_visible(timeout=WAIT_MS)
        await mediator.get_by_test_id("end-session").click()
        await confirm_dialog(mediator)
        for page in (mediator, borrower):
            await expect(page.locator("[data-testid=status][data-state=ended]")).to_be_visible(timeout=WAIT_MS)
        await borrower.get_by_test_id("back-to-case").click()
        await expect(borrower.get_by_test_id("case-number")).to_have_text(case_number, timeout=WAIT_MS)
        await mediator.get_by_test_id("back-to-case").click()
        await expect(mediator.get_by_test_id("case-number")).to_have_text(case_number, timeout=WAIT_MS)
        assert mediator.url.endswith(f"/desk#/case/{journey.case_id}")
        assert not pages.problems, pages.problems
    finally:
        await pages.close()
