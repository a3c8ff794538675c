"""What the pages say as people correct themselves, change their minds, and come back, in headless Chromium.

The borrower on a phone in Chinese, staff on a desktop in English. Errors go once they are fixed; acts
that cannot be undone ask first; a failure is said once; expected states ("not signed in", "no
agreement yet") are not errors in the browser's console; a rescheduled case offers one way into
the room.
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import Api, application, walk_to_scheduled
from tests.signaling.conftest import issue_link
from tests.support import walk
from tests.web.browser import DESKTOP, PHONE, Pages, fill_application, fill_feedback, sign_in_desk

VALID = {"name": "李伟", "email": "li.wei@example.cn", "phone": "+86 138 0013 8000", "lender": "示例商业银行",
         "loan-reference": "LN-STATE-1", "principal": "120,000", "overdue": "14,500.29", "days": "120",
         "proposal": "每月还款 5,000 元。"}


def _console_errors(page: Page, into: list[str]) -> None:
    """Every console error, a failed request's ("Failed to load resource: 401") included."""
    page.on("console", lambda m: into.append(f"{page.url}: {m.text}") if m.type == "error" else None)


async def _open(pages: Pages, path: str, lang: str, size: dict[str, int], errors: list[str]) -> Page:
    context = await pages.browser.new_context(viewport=size, locale=lang, timezone_id="Asia/Shanghai")
    pages.contexts.append(context)
    context.on("page", pages.watch)
    page = await context.new_page()
    _console_errors(page, errors)
    await page.goto(pages.base + path + ("" if lang == "zh-CN" else ("&" if "?" in path else "?") + "lang=en"))
    return page


async def _no_error_toast(page: Page) -> None:
    assert await page.locator("[data-testid=toast][data-tone=error]").count() == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_page_states_errors_clear_confirmations_and_quiet_console(api: Api, browser: Browser) -> None:
    errors: list[str] = []
    _, officer_token = await api.staff("case_officer", "officer.states")
    pages = Pages(browser, api.base)
    try:
        # The apply form's summary goes once every field is right (zh-CN, phone).
        borrower = await _open(pages, "/apply", "zh-CN", PHONE, errors)
        await borrower.get_by_test_id("apply-submit").click()
        await expect(borrower.get_by_test_id("apply-error")).to_be_visible()
        await fill_application(borrower, VALID)
        await borrower.get_by_test_id("apply-proposal").blur()
        await expect(borrower.get_by_test_id("apply-error")).to_be_hidden()

        # Staff sign-in: "not signed in" is not a console error (en, desktop).
        officer = await _open(pages, "/desk", "en", DESKTOP, errors)
        await expect(officer.get_by_test_id("signin-form")).to_be_visible()
        assert errors == [], errors
        await sign_in_desk(officer, "officer.states")
        status, filed = await api.call("POST", "/api/applications", json=application(loan_reference="LN-STATE-2"))
        assert status == 201, filed
        await officer.goto(f"{api.base}/desk?lang=en#/case/{filed['case_id']}")
        await expect(officer.get_by_test_id("case-number")).to_be_visible()

        # Accepting an unverified case fails: said once, in the card, not in a toast as well.
        await officer.get_by_test_id("accept").click()
        await expect(officer.get_by_test_id("review-error")).to_be_visible()
        await _no_error_toast(officer)
        assert [e for e in errors if "409" not in e] == [], errors
        errors.clear()  # that 409 was the point; the rest of the walk is quiet

        # Rejecting asks first, as closing does; cancelling leaves the case as it was.
        await officer.get_by_test_id("reject-reason").fill("The loan is not overdue.")
        await officer.get_by_test_id("reject").click()
        await expect(officer.get_by_test_id("reject-confirm")).to_be_visible()
        await officer.get_by_test_id("reject-cancel").click()
        await expect(officer.get_by_test_id("case-state")).to_have_attribute("data-state", "submitted")
        await officer.get_by_test_id("reject").click()
        await officer.get_by_test_id("reject-confirm").click()
        await expect(officer.get_by_test_id("case-state")).to_have_attribute("data-state", "rejected")

        # A rescheduled case: three confirmed sessions, three links; one way into the room on each side.
        journey = await walk_to_scheduled(api, officer=officer_token)
        for days in (3, 4):
            starts = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).isoformat()
            status, case = await api.call("POST", f"/api/cases/{journey.case_id}/sessions", token=journey.mediator,
                                          json={"starts_at": starts, "duration_minutes": 60})
            assert status == 201, case
            session_id = next(s["session_id"] for s in case["sessions"] if s["state"] == "proposed")
            for who, token in (("borrower", journey.receipt), ("bank", journey.bank)):
                await walk.confirm(api.http, f"/api/cases/{journey.case_id}", token, journey.devices[who], session_id)
        status, case = await api.call("GET", f"/api/cases/{journey.case_id}", token=officer_token)
        sessions = [s for s in case["sessions"] if s["state"] == "confirmed"]
        assert len(sessions) == 3, case["sessions"]
        for session in sessions:
            status, issued = await api.call("POST", f"/api/cases/{journey.case_id}/join-links", token=journey.mediator,
                                            json={"party_id": journey.borrower_id, "session_id": session["session_id"]})
            assert status == 201, issued

        party = await _open(pages, f"/case#{journey.receipt}", "zh-CN", PHONE, errors)
        await expect(party.get_by_test_id("case-state")).to_have_attribute("data-state", "scheduled")
        await expect(party.get_by_test_id("notice-join")).to_have_count(1)
        await expect(party.get_by_test_id("agreement-none")).to_be_visible()  # asked for without a 404

        status, me = await api.call("GET", "/api/auth/me", token=journey.mediator)
        mediator = await _open(pages, "/desk", "en", DESKTOP, errors)
        await sign_in_desk(mediator, me["user"]["username"])
        await mediator.goto(f"{api.base}/desk?lang=en#/case/{journey.case_id}")
        await expect(mediator.get_by_test_id("session")).to_have_count(3)
        await expect(mediator.get_by_test_id("open-room")).to_have_count(1)

        # "Forget this link" asks first.
        await party.get_by_test_id("forget").click()
        await expect(party.get_by_test_id("forget-confirm")).to_be_visible()
        await party.get_by_test_id("forget-cancel").click()
        await expect(party.get_by_test_id("case-state")).to_be_visible()
        await party.get_by_test_id("forget").click()
        await party.get_by_test_id("forget-confirm").click()
        await expect(party.locator("#no-token")).to_be_visible()

        # Feedback: "pick a rating first" goes when a rating is picked.
        status, body = await api.call("POST", f"/api/cases/{journey.case_id}/close", token=journey.mediator,
                                      json={"outcome": "settled"})
        assert status == 200, body
        rater = await _open(pages, f"/case#{journey.receipt}", "zh-CN", PHONE, errors)
        await rater.get_by_test_id("feedback-submit").click()
        await expect(rater.get_by_test_id("feedback-error")).to_have_text("请先选择一个评分。")
        await fill_feedback(rater, 4, "")
        await expect(rater.get_by_test_id("feedback-error")).to_be_hidden()

        assert errors == [], errors
        assert pages.problems == []
    finally:
        await pages.close()


@pytest.mark.slow
@pytest.mark.timeout(200)
async def test_page_states_room_sign_in_check_logs_no_error(api: Api, browser: Browser) -> None:
    errors: list[str] = []
    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.borrower_id)
    pages = Pages(browser, api.base)
    try:
        staff = await _open(pages, f"/room?session={journey.session_id}", "en", DESKTOP, errors)
        await expect(staff.get_by_test_id("signin-form")).to_be_visible()
        compliance = await _open(pages, "/compliance", "en", DESKTOP, errors)
        await expect(compliance.get_by_test_id("signin-form")).to_be_visible()
        party = await _open(pages, f"/room#{link}", "zh-CN", PHONE, errors)
        await expect(party.get_by_test_id("join-button")).to_be_enabled()
        assert errors == [], errors
        assert pages.problems == []
    finally:
        await pages.close()
