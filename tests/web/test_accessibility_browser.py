"""Accessibility of every page and room state, checked with axe-core in headless Chromium.

Each state is checked as people meet it, on a phone (390x844) and a desktop (1440x900), in zh-CN and
English: no critical or serious axe-core violation (WCAG 2.2 A/AA and axe's best practices: names of
controls, text contrast of 4.5:1, ...) and, on the phone, no control smaller than 44x44 px. Every view
is photographed to test-artifacts/a11y/ (docs/screenshots/ keeps three of them for the README).
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import Api, walk_to_scheduled
from tests.recording.agekeys import generate
from tests.web.browser import (
    Audit, Pages, fill_application, refresh, sign_in, sign_in_desk,
)

AREA = "a11y"


async def _agreement_signed_and_closed(api: Api, case_id: str, mediator: str) -> None:
    due = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    status, body = await api.call("PUT", f"/api/cases/{case_id}/agreement", token=mediator, json={
        "currency": "CNY", "settled_amount_minor": 80_000, "instalments": [{"due_date": due, "amount_minor": 80_000}],
        "terms": "按期还款。"})
    assert status == 200, body


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_accessibility_pages_have_no_serious_violations(api: Api, browser: Browser, tmp_path) -> None:
    audit = Audit(AREA)
    await api.staff("administrator", "admin.a11y")
    _, compliance_token = await api.staff("compliance_officer", "compliance.a11y")
    journey = await walk_to_scheduled(api)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    pages = Pages(browser, api.base)
    try:
        home = await pages.open("/")
        await audit.check(home, "home")

        apply = await pages.open("/apply")
        await audit.check(apply, "apply")
        await apply.get_by_test_id("apply-submit").click()
        await expect(apply.get_by_test_id("apply-error")).to_be_visible()
        await audit.check(apply, "apply-errors")
        await fill_application(apply, {
            "name": "李伟", "email": "li.wei@example.cn", "phone": "+86 138 0013 8000", "lender": "示例商业银行",
            "loan-reference": "LN-A11Y-1", "principal": "120,000", "overdue": "14,500.29", "days": "120",
            "proposal": "每月还款 5,000 元。"})
        await apply.get_by_test_id("apply-submit").click()
        await expect(apply.get_by_test_id("receipt")).to_be_visible()
        await audit.check(apply, "apply-receipt")
        await apply.get_by_test_id("receipt-open").click()
        await expect(apply.get_by_test_id("case-state")).to_have_attribute("data-state", "submitted")
        await audit.check(apply, "case-submitted")

        party = await pages.open("/case")
        await audit.check(party, "case-open-form")
        party = await pages.open(f"/case#{journey.receipt}")
        await expect(party.get_by_test_id("case-state")).to_have_attribute("data-state", "scheduled")
        await _agreement_signed_and_closed(api, journey.case_id, journey.mediator)
        await refresh(party)
        await expect(party.get_by_test_id("agreement-sign")).to_be_visible()
        await audit.check(party, "case-scheduled-agreement")

        desk = await pages.open("/desk")
        await expect(desk.get_by_test_id("signin-form")).to_be_visible()
        await audit.check(desk, "desk-signin")
        await sign_in_desk(desk, users[journey.mediator_id])
        await audit.check(desk, "desk-list")
        await desk.get_by_test_id("case-link").first.click()
        await expect(desk.get_by_test_id("case-number")).to_be_visible()
        await audit.check(desk, "desk-case-mediator")

        officer = await pages.open("/desk")
        status, officer_login = await api.call("GET", "/api/auth/me", token=journey.officer)
        assert status == 200, officer_login
        await sign_in_desk(officer, officer_login["user"]["username"])
        await officer.get_by_test_id("case-link").first.click()
        await expect(officer.get_by_test_id("case-number")).to_be_visible()
        await audit.check(officer, "desk-case-officer")
        await officer.get_by_test_id("nav-feedback").click()
        await expect(officer.get_by_test_id("feedback-count")).to_be_visible()
        await audit.check(officer, "desk-feedback")

        admin = await pages.open("/desk")
        await sign_in_desk(admin, "admin.a11y")
        await expect(admin.get_by_test_id("staff-row").first).to_be_visible()
        await audit.check(admin, "desk-staff")

        await api.approve_key(compliance_token, generate(tmp_path / "officer").recipient)
        compliance = await pages.open("/compliance")
        await expect(compliance.get_by_test_id("signin-form")).to_be_visible()
        await audit.check(compliance, "compliance-signin")
        await sign_in(compliance, "compliance.a11y")
        await expect(compliance.get_by_test_id("case-row").first).to_be_visible()
        await audit.check(compliance, "compliance-cases")
        await compliance.get_by_test_id("case-open").first.click()
        await expect(compliance.get_by_test_id("case-detail")).to_be_visible()
        await audit.check(compliance, "compliance-case")

        assert pages.problems == []
    finally:
        await pages.close()
    audit.assert_clean()
