"""The whole case journey through the real pages in headless Chromium: apply, case view, desk.

A borrower applies through /apply and follows the case in /case with the receipt; the case officer,
mediator, bank representative, administrator and compliance officer work in /desk. The agreement
is signed in two browsers with WebCrypto Ed25519 and the server's countersignature is checked
offline. Every page is photographed in both languages into test-artifacts/pages/.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from server.agreements import verify_signed_agreement
from server.audit import key_id
from tests.conftest import STAFF_PASSWORD, Api, _serve, application, make_settings

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
ZONE = "Asia/Shanghai"
XSS_IMG = "<img src=x onerror=window.__xss=1>"
XSS_SCRIPT = "<script>window.__xss=1</script>"

expect.set_options(timeout=15_000)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The embedded server; a dozen browser sign-ins from 127.0.0.1 stay under the login rate limit."""
    async for client in _serve(make_settings(tmp_path, login_attempts_per_minute=200, applications_per_minute=200)):
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Debian's chromium is not installed: run scripts/setup.sh")
    dist = Path(__file__).resolve().parents[2] / "web_client" / "dist" / "desk.js"
    if not dist.exists():
        raise RuntimeError("the web client is not built: run scripts/setup.sh (npm run build in web_client)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


class Pages:
    """Browser pages of one test, each in its own context; page errors and CSP reports fail the test."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.browser, self.base = browser, base
        self.contexts: list[BrowserContext] = []
        self.problems: list[str] = []

    async def open(self, path: str, lang: str = "zh-CN") -> Page:
        context = await self.browser.new_context(viewport={"width": 1280, "height": 900}, locale=lang,
                                                 timezone_id=ZONE, accept_downloads=True)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))

        def console(message) -> None:
            # A 4xx answer is logged by Chromium as "Failed to load resource"; that is the API working.
            if message.type == "error" and "Failed to load resource" not in message.text:
                self.problems.append(f"{page.url}: console: {message.text}")

        page.on("console", console)
        await page.goto(self.base + path + ("?lang=en" if lang == "en" else ""))
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


async def _shots(page: Page, name: str) -> None:
    """Full-page screenshots in the page's language and in the other one (switched in the page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    switch = page.get_by_test_id("lang-select")
    first = await switch.input_value()
    other = "en" if first == "zh-CN" else "zh-CN"
    # Notices float over the page (position: fixed) wherever a full-page capture puts them.
    await page.evaluate("() => document.getElementById('toasts')?.replaceChildren()")
    await page.screenshot(path=str(ARTIFACTS / f"{name}-{first}.png"), full_page=True)
    await switch.select_option(other)
    await expect(page.locator("html")).to_have_attribute("lang", other)
    await page.screenshot(path=str(ARTIFACTS / f"{name}-{other}.png"), full_page=True)
    await switch.select_option(first)
    await expect(page.locator("html")).to_have_attribute("lang", first)


async def _phone_shots(page: Page, name: str) -> None:
    """The same page on a phone-sized screen."""
    await page.set_viewport_size({"width": 390, "height": 844})
    try:
        await _shots(page, f"{name}-phone")
        overflow = await page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{page.url} is {overflow}px wider than a phone screen"
    finally:
        await page.set_viewport_size({"width": 1280, "height": 900})


async def _sign_in(page: Page, username: str) -> None:
    await page.get_by_test_id("signin-username").fill(username)
    await page.get_by_test_id("signin-password").fill(STAFF_PASSWORD)
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("who-name")).to_be_visible()


async def _open_case(page: Page, case_number: str) -> None:
    await page.get_by_test_id("case-link").filter(has_text=case_number).click()
    await expect(page.get_by_test_id("case-number")).to_have_text(case_number)


async def _refresh(page: Page) -> None:
    await page.get_by_test_id("refresh").click()
    await expect(page.get_by_test_id("refresh")).to_be_enabled()


async def _toast(page: Page, tone: str) -> str:
    toast = page.locator(f"[data-testid=toast][data-tone={tone}]").last
    await expect(toast).to_be_visible()
    return await toast.inner_text()


def _local_start(days: int = 2, hour: int = 10) -> str:
    start = (dt.datetime.now(ZoneInfo(ZONE)) + dt.timedelta(days=days)).replace(hour=hour, minute=0)
    return start.strftime("%Y-%m-%dT%H:%M")


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_pages_whole_journey_apply_review_schedule_sign_close_feedback(api: Api, browser: Browser) -> None:
    officer_id, officer_token = await api.staff("case_officer", "officer.lin")
    mediator_id, _ = await api.staff("mediator", "mediator.wang")
    await api.staff("mediator", "mediator.zhou")
    bank_id, _ = await api.staff("bank_representative", "bank.chen")
    await api.staff("compliance_officer", "compliance.he")
    await api.staff("administrator", "admin.root")
    # Ten earlier applications, so the officer's list has a second page.
    for n in range(10):
        status, _ = await api.call("POST", "/api/applications", json=application(loan_reference=f"LN-OLD-{n}"))
        assert status == 201
    pages = Pages(browser, api.base)
    try:
        # --- the borrower applies ------------------------------------------------------------
        borrower = await pages.open("/")
        await _shots(borrower, "home")
        await borrower.get_by_test_id("home-apply").click()
        await expect(borrower.get_by_test_id("apply-form")).to_be_visible()
        await _shots(borrower, "apply")
        await borrower.get_by_test_id("apply-submit").click()
        await expect(borrower.get_by_test_id("error-borrower.name")).to_be_visible()
        await expect(borrower.get_by_test_id("error-borrower.email")).to_be_visible()
        await expect(borrower.get_by_test_id("apply-error")).to_be_visible()
        await borrower.get_by_test_id("apply-name").fill("李伟")
        await borrower.get_by_test_id("apply-email").fill("not-an-email")
        await borrower.get_by_test_id("apply-principal").fill("12.345")
        await borrower.get_by_test_id("apply-days").fill("75")
        await expect(borrower.get_by_test_id("apply-bucket")).to_have_attribute("data-bucket", "medium")
        await borrower.get_by_test_id("apply-submit").click()
        await expect(borrower.get_by_test_id("error-borrower.email")).to_contain_text("name@example.cn")
        await expect(borrower.get_by_test_id("error-principal_minor")).to_be_visible()
        await _shots(borrower, "apply-errors")
        await _phone_shots(borrower, "apply-errors")
        await borrower.get_by_test_id("apply-email").fill("li.wei@example.cn")
        await borrower.get_by_test_id("apply-phone").fill("+86 138 0013 8000")
        await borrower.get_by_test_id("apply-lender").fill("示例商业银行")
        await borrower.get_by_test_id("apply-loan-reference").fill("LN-2026-0042")
        await borrower.get_by_test_id("apply-principal").fill("120,000")
        await borrower.get_by_test_id("apply-overdue").fill("14,500.29")
        await expect(borrower.get_by_test_id("preview-overdue")).to_contain_text("¥14,500.29")
        await borrower.get_by_test_id("apply-days").fill("120")
        await expect(borrower.get_by_test_id("apply-bucket")).to_have_attribute("data-bucket", "long")
        await borrower.get_by_test_id("apply-proposal").fill("从下个月起每月还款 5,000 元。\n希望减免部分罚息。")
        await borrower.get_by_test_id("apply-submit").click()
        await expect(borrower.get_by_test_id("receipt")).to_be_visible()
        case_number = (await borrower.get_by_test_id("receipt-number").inner_text()).strip()
        receipt_link = await borrower.get_by_test_id("receipt-link").input_value()
        assert re.fullmatch(re.escape(api.base) + r"/case#rcp_[A-Za-z0-9_-]{43}", receipt_link), receipt_link
        await _shots(borrower, "apply-receipt")

        status, listing = await api.call("GET", "/api/cases?per_page=100", token=officer_token)
        case_id = next(c["case_id"] for c in listing["cases"] if c["case_number"] == case_number)
        status, case = await api.call("GET", f"/api/cases/{case_id}", token=officer_token)
        # Typed in major units, filed in exact integer minor units.
        assert (case["principal_minor"], case["overdue_minor"], case["days_overdue"]) == (12_000_000, 1_450_029, 120)
        assert case["overdue_bucket"] == "long" and case["proposal"].startswith("从下个月起")

        await borrower.get_by_test_id("receipt-open").click()
        await expect(borrower.get_by_test_id("case-number")).to_have_text(case_number)
        assert "#" not in borrower.url  # the receipt left the address bar at once
        await expect(borrower.get_by_test_id("case-state")).to_have_attribute("data-state", "submitted")
        await _shots(borrower, "case-submitted")

        # --- the case officer reviews, verifies, accepts and assigns -------------------------------
        officer = await pages.open("/desk")
        await expect(officer.get_by_test_id("signin-form")).to_be_visible()
        await _shots(officer, "desk-signin")
        await officer.get_by_test_id("signin-username").fill("officer.lin")
        await officer.get_by_test_id("signin-password").fill("wrong password")
        await officer.get_by_test_id("signin-submit").click()
        await expect(officer.get_by_test_id("signin-error")).to_have_text("用户名或密码不正确。")
        await _sign_in(officer, "officer.lin")
        await expect(officer.get_by_test_id("pager-text")).to_contain_text("共 11 条")
        await _shots(officer, "desk-officer-list")
        await officer.get_by_test_id("pager-next").click()
        await expect(officer.get_by_test_id("case-row")).to_have_count(1)
        await officer.get_by_test_id("state-filter").select_option("submitted")
        await expect(officer.get_by_test_id("pager-text")).to_contain_text("第 1 / 2 页")
        await _open_case(officer, case_number)
        await expect(officer.get_by_test_id("detail-overdue")).to_have_text("¥14,500.29")
        await officer.get_by_test_id("accept").click()  # both parties still unverified: refused
        await expect(officer.get_by_test_id("review-error")).to_contain_text("须先核验双方当事人的身份")
        await _shots(officer, "desk-officer-review")
        for role in ("borrower", "lender"):
            await officer.get_by_test_id(f"verify-method-{role}").select_option(
                "id_card" if role == "borrower" else "bank_authorization")
            await officer.get_by_test_id(f"verify-reference-{role}").fill("原件已核对")
            await officer.get_by_test_id(f"verify-{role}").click()
            await expect(officer.get_by_test_id(f"party-{role}")).to_have_attribute("data-verified", "true")
        await officer.get_by_test_id("accept").click()
        await expect(officer.get_by_test_id("case-state")).to_have_attribute("data-state", "accepted")
        assert "已受理" in await _toast(officer, "ok")
        await officer.get_by_test_id("assign-mediator").select_option(mediator_id)
        await officer.get_by_test_id("assign-bank_representative").select_option(bank_id)
        await officer.get_by_test_id("assign-save").click()
        await expect(officer.get_by_test_id("detail-mediator")).to_have_text("Mediator.Wang")
        await expect(officer.get_by_test_id("detail-bank")).to_have_text("Bank.Chen")
        await _shots(officer, "desk-officer-accepted")

        # --- the mediator proposes a time; both sides confirm in their own pages ---------------------
        mediator = await pages.open("/desk", lang="en")
        await _sign_in(mediator, "mediator.wang")
        await expect(mediator.get_by_test_id("case-row")).to_have_count(1)
        await _open_case(mediator, case_number)
        await mediator.get_by_test_id("propose-start").fill(_local_start())
        await mediator.get_by_test_id("propose-duration").fill("90")
        await mediator.get_by_test_id("propose-submit").click()
        await expect(mediator.get_by_test_id("session")).to_have_count(1)
        await expect(mediator.get_by_test_id("session-state")).to_have_text("Proposed")
        _, case = await api.call("GET", f"/api/cases/{case_id}", token=officer_token)
        session = case["sessions"][0]
        assert session["duration_minutes"] == 90
        # 10:00 in Shanghai, sent with its offset.
        assert dt.datetime.fromisoformat(session["starts_at"]).astimezone(ZoneInfo(ZONE)).hour == 10
        await _shots(mediator, "desk-mediator-schedule")

        await _refresh(borrower)
        await borrower.get_by_test_id("confirm-session").click()
        await expect(borrower.get_by_test_id("party-session")).to_contain_text("您已确认此时间")
        await _shots(borrower, "case-accepted")

        bank = await pages.open("/desk")
        await _sign_in(bank, "bank.chen")
        await _open_case(bank, case_number)
        await bank.get_by_test_id("confirm-session").click()
        await expect(bank.get_by_test_id("case-state")).to_have_attribute("data-state", "scheduled")
        await expect(bank.get_by_test_id("open-room")).to_have_attribute(
            "href", re.compile(rf"/room\?session={session['session_id']}$"))

        # --- join links: issued once, listed, revoked -------------------------------------------------
        await _refresh(mediator)
        await expect(mediator.get_by_test_id("confirmations").locator("[data-confirmed=true]")).to_have_count(2)
        await mediator.get_by_test_id("issue-link-borrower").click()
        await expect(mediator.get_by_test_id("issued-link-url")).to_have_value(
            re.compile(re.escape(api.base) + r"/room#jln_[A-Za-z0-9_-]{43}$"))
        await mediator.get_by_test_id("issue-link-lender").click()
        await expect(mediator.get_by_test_id("issued-link")).to_have_attribute("data-role", "lender")
        await expect(mediator.get_by_test_id("link-row")).to_have_count(2)
        await mediator.locator("[data-testid=link-row][data-role=lender] [data-testid=revoke-link]").click()
        await expect(mediator.locator("[data-testid=link-row][data-status=revoked]")).to_have_count(1)
        await mediator.get_by_test_id("issue-link-lender").click()
        await expect(mediator.locator("[data-testid=link-row][data-status=active]")).to_have_count(2)
        await expect(mediator.get_by_test_id("open-room")).to_be_visible()

        # --- the mediator drafts the agreement ---------------------------------------------------------
        editor = mediator.get_by_test_id("agreement-editor")
        await expect(mediator.get_by_test_id("agreement-settled-input")).to_have_value("14500.29")
        first_due = (dt.date.today() + dt.timedelta(days=31)).isoformat()
        await mediator.get_by_test_id("split-count").fill("3")
        await mediator.get_by_test_id("split-first").fill(first_due)
        await mediator.get_by_test_id("split-apply").click()
        await expect(editor.get_by_test_id("instalment-row")).to_have_count(3)
        await expect(mediator.get_by_test_id("sum-check")).to_have_attribute("data-tone", "ok")
        await mediator.get_by_test_id("instalment-amount-2").fill("4000")
        await expect(mediator.get_by_test_id("sum-check")).to_have_attribute("data-tone", "bad")
        await expect(mediator.get_by_test_id("sum-check")).to_contain_text("short")
        await mediator.get_by_test_id("agreement-save").click()
        await expect(mediator.get_by_test_id("agreement-save-error")).to_be_visible()
        await mediator.get_by_test_id("instalment-add").click()
        await mediator.get_by_test_id("instalment-amount-3").fill("833.43")
        await expect(mediator.get_by_test_id("sum-check")).to_have_attribute("data-tone", "ok")
        await mediator.get_by_test_id("agreement-waived-input").fill("1,200")
        await mediator.get_by_test_id("agreement-terms-input").fill("借款人按期还款后，银行不再追收剩余罚息。")
        await mediator.get_by_test_id("agreement-save").click()
        await expect(mediator.get_by_test_id("agreement-state")).to_have_attribute("data-state", "draft")
        await expect(mediator.get_by_test_id("agreement-instalment")).to_have_count(4)
        await _shots(mediator, "desk-mediator-agreement")
        await _phone_shots(mediator, "desk-mediator-agreement")

        # --- the borrower signs in /case, the bank representative in /desk ------------------------------
        await _refresh(borrower)
        join = borrower.get_by_test_id("notice-join")
        await expect(join).to_have_count(1)
        await expect(join).to_have_attribute("href", re.compile(r"^/room#jln_[A-Za-z0-9_-]{43}$"))
        await expect(borrower.get_by_test_id("agreement-instalment")).to_have_count(4)
        await expect(borrower.get_by_test_id("agreement-settled")).to_have_text("¥14,500.29")
        await expect(borrower.get_by_test_id("agreement-waived")).to_have_text("¥1,200.00")
        await expect(borrower.get_by_test_id("agreement-sign")).to_be_disabled()
        await borrower.get_by_test_id("agreement-consent").check()
        await _shots(borrower, "case-agreement")
        await _phone_shots(borrower, "case-agreement")
        await borrower.get_by_test_id("agreement-sign").click()
        await expect(borrower.get_by_test_id("signed-by-me")).to_be_visible()
        await expect(borrower.get_by_test_id("signature-borrower")).to_have_attribute("data-signed", "true")

        await _refresh(bank)
        await bank.get_by_test_id("agreement-consent").check()
        await bank.get_by_test_id("agreement-sign").click()
        await expect(bank.get_by_test_id("agreement-state")).to_have_attribute("data-state", "signed")
        await expect(bank.get_by_test_id("countersigned")).to_have_attribute("data-signed", "true")
        async with bank.expect_download() as info:
            await bank.get_by_test_id("agreement-download").click()
        download = await info.value
        downloaded = json.loads(Path(await download.path()).read_text())
        await _shots(bank, "desk-bank-signed")

        status, signed = await api.call("GET", f"/api/cases/{case_id}/agreement/signed", token=officer_token)
        assert status == 200 and signed == downloaded
        public = api.services.audit.public_key
        assert verify_signed_agreement(signed, {key_id(public): public}) == []
        assert [s["signer"] for s in signed["signatures"]] == ["borrower", "lender"]
        document = signed["document"]
        assert document["settled_amount_minor"] == 1_450_029 and document["waived_penalties_minor"] == 120_000
        assert [i["amount_minor"] for i in document["instalments"]] == [483_343, 483_343, 400_000, 83_343]
        tampered = json.loads(json.dumps(signed))
        tampered["document"]["instalments"][0]["amount_minor"] += 1
        assert verify_signed_agreement(tampered, {key_id(public): public})

        # --- the mediator closes; a stale page is told the state ------------------------------------------
        await _refresh(mediator)
        await mediator.get_by_test_id("close-note").fill("双方达成分期还款协议。")
        await mediator.get_by_test_id("close-submit").click()
        await mediator.get_by_test_id("close-confirm").click()
        await expect(mediator.get_by_test_id("case-state")).to_have_attribute("data-state", "closed")
        await expect(mediator.get_by_test_id("detail-outcome")).to_contain_text("Settled")
        await _shots(mediator, "desk-mediator-closed")

        await officer.get_by_test_id("close-submit").click()  # the officer's page still shows "scheduled"
        await officer.get_by_test_id("close-confirm").click()
        await expect(officer.get_by_test_id("close-error")).to_contain_text("案件当前处于“已结案”状态")

        # --- the borrower rates the mediation; the officer sees the aggregate ------------------------------
        await _refresh(borrower)
        await expect(borrower.get_by_test_id("outcome")).to_contain_text("达成和解")
        await borrower.get_by_test_id("feedback-submit").click()
        await expect(borrower.get_by_test_id("feedback-error")).to_be_visible()
        await borrower.get_by_test_id("rating-4").check(force=True)
        await borrower.get_by_test_id("feedback-comment").fill("调解员很耐心，流程清楚。")
        await _shots(borrower, "case-closed")
        await borrower.get_by_test_id("feedback-submit").click()
        await expect(borrower.get_by_test_id("feedback-thanks")).to_be_visible()

        await officer.get_by_test_id("nav-feedback").click()
        await expect(officer.get_by_test_id("feedback-count")).to_have_text("1")
        await expect(officer.get_by_test_id("feedback-average")).to_have_text("4.0")
        await expect(officer.get_by_test_id("distribution-4")).to_have_text("1")
        await expect(officer.get_by_test_id("feedback-comment-text")).to_have_text("调解员很耐心，流程清楚。")
        await _shots(officer, "desk-feedback")

        # --- the administrator and the compliance officer ------------------------------------------------
        admin = await pages.open("/desk")
        await _sign_in(admin, "admin.root")
        await expect(admin.get_by_test_id("staff-row")).to_have_count(6)
        await admin.get_by_test_id("staff-username").fill("Bad Name")
        await admin.get_by_test_id("staff-create").click()
        await expect(admin.get_by_test_id("error-staff-username")).to_be_visible()
        await admin.get_by_test_id("staff-username").fill("mediator.sun")
        await admin.get_by_test_id("staff-display-name").fill("孙调解员")
        await admin.get_by_test_id("staff-role").select_option("mediator")
        await admin.get_by_test_id("staff-password").fill("another long password")
        await admin.get_by_test_id("staff-create").click()
        await expect(admin.get_by_test_id("staff-row")).to_have_count(7)
        await expect(admin.get_by_test_id("nav-compliance")).to_have_attribute("href", "/compliance")
        await _shots(admin, "desk-admin")

        compliance = await pages.open("/desk")
        await _sign_in(compliance, "compliance.he")
        await expect(compliance.get_by_test_id("nav-compliance")).to_be_visible()
        await expect(compliance.get_by_test_id("case-row").first).to_be_visible()
        await _shots(compliance, "desk-compliance")

        assert pages.problems == []
    finally:
        await pages.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_pages_markup_in_every_text_field_is_shown_as_text(api: Api, browser: Browser) -> None:
    _, officer = await api.staff("case_officer", "officer.xss")
    mediator_id, mediator = await api.staff("mediator", "mediator.xss")
    bank_id, bank = await api.staff("bank_representative", "bank.xss")
    name = f"王{XSS_IMG}"
    lender = f"{XSS_SCRIPT}银行"
    proposal = f"{XSS_SCRIPT}\n{XSS_IMG}"
    terms = f"条款 {XSS_IMG} {XSS_SCRIPT}"
    comment = f"{XSS_IMG}{XSS_SCRIPT}"
    pages = Pages(browser, api.base)

    async def clean(page: Page) -> None:
        assert await page.evaluate("() => window.__xss") is None, page.url
        assert await page.locator("img").count() == 0, page.url  # no page shows an image of its own
        assert await page.locator("main script").count() == 0, page.url

    try:
        borrower = await pages.open("/apply")
        await borrower.get_by_test_id("apply-name").fill(name)
        await borrower.get_by_test_id("apply-email").fill("wang@example.cn")
        await borrower.get_by_test_id("apply-lender").fill(lender)
        await borrower.get_by_test_id("apply-loan-reference").fill("LN-XSS-1")
        await borrower.get_by_test_id("apply-principal").fill("5000")
        await borrower.get_by_test_id("apply-overdue").fill("800")
        await borrower.get_by_test_id("apply-days").fill("12")
        await borrower.get_by_test_id("apply-proposal").fill(proposal)
        await borrower.get_by_test_id("apply-submit").click()
        await expect(borrower.get_by_test_id("receipt")).to_be_visible()
        receipt = (await borrower.get_by_test_id("receipt-link").input_value()).split("#", 1)[1]
        await borrower.get_by_test_id("receipt-open").click()
        await expect(borrower.get_by_test_id("party-name")).to_have_text(name)
        await expect(borrower.get_by_test_id("case-lender")).to_have_text(lender)
        await clean(borrower)

        # Walk the case to "scheduled" through the API; the agreement's terms carry markup too.
        _, me = await api.call("GET", "/api/party/case", token=receipt)
        case_id = me["case_id"]
        _, case = await api.call("GET", f"/api/cases/{case_id}", token=officer)
        for party in case["parties"]:
            await api.call("POST", f"/api/cases/{case_id}/parties/{party['party_id']}/verify", token=officer,
                           json={"method": "other", "reference": XSS_IMG})
        assert (await api.call("POST", f"/api/cases/{case_id}/accept", token=officer))[0] == 200
        await api.call("PUT", f"/api/cases/{case_id}/assignments", token=officer,
                       json={"mediator_id": mediator_id, "bank_representative_id": bank_id})
        starts = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()
        _, case = await api.call("POST", f"/api/cases/{case_id}/sessions", token=mediator, json={"starts_at": starts})
        session_id = case["sessions"][0]["session_id"]
        await api.call("POST", f"/api/cases/{case_id}/sessions/{session_id}/confirm", token=receipt, json={})
        await api.call("POST", f"/api/cases/{case_id}/sessions/{session_id}/confirm", token=bank, json={})
        due = (dt.date.today() + dt.timedelta(days=30)).isoformat()
        status, body = await api.call("PUT", f"/api/cases/{case_id}/agreement", token=mediator, json={
            "currency": "CNY", "settled_amount_minor": 80_000, "instalments": [{"due_date": due, "amount_minor": 80_000}],
            "terms": terms})
        assert status == 200, body

        await _refresh(borrower)
        await expect(borrower.get_by_test_id("agreement-terms-text")).to_have_text(terms)
        await expect(borrower.get_by_test_id("agreement-borrower")).to_have_text(name)
        await expect(borrower.get_by_test_id("agreement-lender")).to_have_text(lender)
        await clean(borrower)

        # A document that is not what the canonical text says is shown, flagged, and cannot be signed.
        async def tamper(route) -> None:
            response = await route.fetch()
            agreement = await response.json()
            agreement["document"]["instalments"][0]["amount_minor"] = 1
            await route.fulfill(response=response, json=agreement)

        await borrower.route(re.compile(r".*/api/cases/cas_[0-9a-f]{32}/agreement$"), tamper)
        await _refresh(borrower)
        await expect(borrower.get_by_test_id("agreement-mismatch")).to_be_visible()
        await borrower.get_by_test_id("agreement-consent").check()
        await expect(borrower.get_by_test_id("agreement-sign")).to_be_disabled()
        await borrower.unroute_all()
        await _refresh(borrower)
        await expect(borrower.get_by_test_id("agreement-mismatch")).to_have_count(0)

        desk = await pages.open("/desk")
        await _sign_in(desk, "mediator.xss")
        await expect(desk.get_by_test_id("case-row").locator("td").nth(2)).to_have_text(lender)
        await desk.get_by_test_id("case-link").click()
        await expect(desk.get_by_test_id("detail-proposal")).to_have_text(proposal)
        await expect(desk.get_by_test_id("party-borrower").get_by_test_id("party-name")).to_have_text(name)
        await expect(desk.get_by_test_id("agreement-terms-text")).to_have_text(terms)
        await expect(desk.get_by_test_id("agreement-terms-input")).to_have_value(terms)
        await clean(desk)
        await _shots(desk, "xss-desk")

        assert (await api.call("POST", f"/api/cases/{case_id}/close", token=mediator,
                               json={"outcome": "not_settled", "note": XSS_SCRIPT}))[0] == 200
        await _refresh(borrower)
        await borrower.get_by_test_id("rating-2").check(force=True)
        await borrower.get_by_test_id("feedback-comment").fill(comment)
        await borrower.get_by_test_id("feedback-submit").click()
        await expect(borrower.get_by_test_id("feedback-thanks")).to_be_visible()
        await clean(borrower)
        await _shots(borrower, "xss-case")

        await desk.get_by_test_id("signout").click()
        await _sign_in(desk, "officer.xss")
        await desk.get_by_test_id("nav-feedback").click()
        await expect(desk.get_by_test_id("feedback-comment-text")).to_have_text(comment)
        await clean(desk)
        await desk.goto(f"{api.base}/desk#/case/{case_id}")
        await expect(desk.get_by_test_id("detail-outcome")).to_contain_text(XSS_SCRIPT)
        await clean(desk)
        assert pages.problems == []
    finally:
        await pages.close()
