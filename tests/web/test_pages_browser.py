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
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from server.agreements import verify_signed_agreement
from server.audit import key_id
from tests.conftest import Api, application
from tests.recording.agekeys import generate
from tests.support.mailbox import link_token
from tests.support import walk
from tests.support.walk import BORROWER_EMAIL
from tests.web.browser import (
    LENDER_EMAIL, ZONE, Pages, accept_case, assign_staff, close_case, confirm_session, fill_application, fill_feedback,
    issue_join_link, local_start, open_case, phone_shots, propose_session, refresh, save_agreement, shots,
    sign_agreement, sign_in_desk, split_instalments, submit_application, submit_feedback, toast, verify_parties,
)

AREA = "pages"
XSS_IMG = "<img src=x onerror=window.__xss=1>"
XSS_SCRIPT = "<script>window.__xss=1</script>"


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_pages_whole_journey_apply_review_schedule_sign_close_feedback(api: Api, browser: Browser,
                                                                            tmp_path: Path) -> None:
    officer_id, officer_token = await api.staff("case_officer", "officer.lin")
    mediator_id, _ = await api.staff("mediator", "mediator.wang")
    await api.staff("mediator", "mediator.zhou")
    bank_id, _ = await api.staff("bank_representative", "bank.chen")
    _, compliance_token = await api.staff("compliance_officer", "compliance.he")
    await api.staff("administrator", "admin.root")
    # Ten earlier applications, so the officer's list has a second page.
    for n in range(10):
        status, _ = await api.call("POST", "/api/applications", json=application(loan_reference=f"LN-OLD-{n}"))
        assert status == 201
    pages = Pages(browser, api.base)
    try:
        # --- the borrower applies ------------------------------------------------------------
        borrower = await pages.open("/")
        await shots(borrower, AREA, "home")
        await borrower.get_by_test_id("home-apply").click()
        await expect(borrower.get_by_test_id("apply-form")).to_be_visible()
        await shots(borrower, AREA, "apply")
        await borrower.get_by_test_id("apply-submit").click()
        await expect(borrower.get_by_test_id("error-borrower.name")).to_be_visible()
        await expect(borrower.get_by_test_id("error-borrower.email")).to_be_visible()
        await expect(borrower.get_by_test_id("apply-error")).to_be_visible()
        await fill_application(borrower, {"name": "李伟", "email": "not-an-email", "principal": "12.345", "days": "75"})
        await expect(borrower.get_by_test_id("apply-bucket")).to_have_attribute("data-bucket", "medium")
        await borrower.get_by_test_id("apply-submit").click()
        await expect(borrower.get_by_test_id("error-borrower.email")).to_contain_text("name@example.cn")
        await expect(borrower.get_by_test_id("error-principal_minor")).to_be_visible()
        await shots(borrower, AREA, "apply-errors")
        await phone_shots(borrower, AREA, "apply-errors")
        await fill_application(borrower, {
            "email": "li.wei@example.cn", "phone": "+86 138 0013 8000", "lender": "示例商业银行",
            "loan-reference": "LN-2026-0042", "principal": "120,000", "overdue": "14,500.29"})
        await expect(borrower.get_by_test_id("preview-overdue")).to_contain_text("¥14,500.29")
        await fill_application(borrower, {"days": "120"})
        await expect(borrower.get_by_test_id("apply-bucket")).to_have_attribute("data-bucket", "long")
        await fill_application(borrower, {"proposal": "从下个月起每月还款 5,000 元。\n希望减免部分罚息。"})
        case_number, receipt_link = await submit_application(borrower)
        assert re.fullmatch(re.escape(api.base) + r"/case#rcp_[A-Za-z0-9_-]{43}", receipt_link), receipt_link
        await shots(borrower, AREA, "apply-receipt")

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
        await shots(borrower, AREA, "case-submitted")

        # --- the case officer reviews, verifies, accepts and assigns -------------------------------
        officer = await pages.open("/desk")
        await expect(officer.get_by_test_id("signin-form")).to_be_visible()
        await shots(officer, AREA, "desk-signin")
        await officer.get_by_test_id("signin-username").fill("officer.lin")
        await officer.get_by_test_id("signin-password").fill("wrong password")
        await officer.get_by_test_id("signin-submit").click()
        await expect(officer.get_by_test_id("signin-error")).to_have_text("用户名或密码不正确。")
        await sign_in_desk(officer, "officer.lin")
        await expect(officer.get_by_test_id("pager-text")).to_contain_text("共 11 条")
        await shots(officer, AREA, "desk-officer-list")
        await officer.get_by_test_id("pager-next").click()
        await expect(officer.get_by_test_id("case-row")).to_have_count(1)
        await officer.get_by_test_id("state-filter").select_option("submitted")
        await expect(officer.get_by_test_id("pager-text")).to_contain_text("第 1 / 2 页")
        await open_case(officer, case_number)
        await expect(officer.get_by_test_id("detail-overdue")).to_have_text("¥14,500.29")
        await officer.get_by_test_id("accept").click()  # both parties still unverified: refused
        await expect(officer.get_by_test_id("review-error")).to_contain_text("须先核验双方当事人的身份")
        await shots(officer, AREA, "desk-officer-review")
        await verify_parties(officer)
        await accept_case(officer)
        assert "已受理" in await toast(officer, "ok")
        await assign_staff(officer, mediator_id, bank_id, "Mediator.Wang", "Bank.Chen")
        await shots(officer, AREA, "desk-officer-accepted")

        # --- the mediator proposes a time; both sides confirm in their own pages ---------------------
        mediator = await pages.open("/desk", lang="en")
        await sign_in_desk(mediator, "mediator.wang")
        await expect(mediator.get_by_test_id("case-row")).to_have_count(1)
        await open_case(mediator, case_number)
        await propose_session(mediator, local_start(), 90)  # the case's first session
        await expect(mediator.get_by_test_id("session-state")).to_have_text("Proposed")
        _, case = await api.call("GET", f"/api/cases/{case_id}", token=officer_token)
        session = case["sessions"][0]
        assert session["duration_minutes"] == 90
        # 10:00 in Shanghai, sent with its offset.
        assert dt.datetime.fromisoformat(session["starts_at"]).astimezone(ZoneInfo(ZONE)).hour == 10
        await shots(mediator, AREA, "desk-mediator-schedule")

        await refresh(borrower)
        assert api.mailbox is not None
        await confirm_session(borrower, api.mailbox, BORROWER_EMAIL)  # first use: a code from the borrower's mail
        await expect(borrower.get_by_test_id("party-session")).to_contain_text("您已确认此时间")
        await shots(borrower, AREA, "case-accepted")

        bank = await pages.open("/desk")
        await sign_in_desk(bank, "bank.chen")
        await open_case(bank, case_number)
        await confirm_session(bank, api.mailbox, LENDER_EMAIL)  # the lender's code, to the bank's mediation mailbox
        await expect(bank.get_by_test_id("case-state")).to_have_attribute("data-state", "scheduled")
        await expect(bank.get_by_test_id("open-room")).to_have_attribute(
            "href", re.compile(rf"/room\?session={session['session_id']}$"))

        # --- join links: issued once, listed, revoked -------------------------------------------------
        await refresh(mediator)
        await expect(mediator.get_by_test_id("confirmations").locator("[data-confirmed=true]")).to_have_count(2)
        borrower_link_id = await issue_join_link(mediator, "borrower")
        assert api.mailbox is not None
        mail = await api.mailbox.wait_for("li.wei@example.cn", borrower_link_id)  # the party's mail, not the desk
        borrower_link = re.search(r"\S+/room#jln_[A-Za-z0-9_-]{43}", mail.text)
        assert borrower_link is not None, mail.text
        assert (await api.call("GET", "/api/party/case", token=link_token(mail.text)))[0] == 200
        lender_link_id = await issue_join_link(mediator, "lender")
        await api.mailbox.wait_for(LENDER_EMAIL, lender_link_id)
        await expect(mediator.get_by_test_id("link-row")).to_have_count(2)
        await mediator.locator("[data-testid=link-row][data-role=lender] [data-testid=revoke-link]").click()
        await expect(mediator.locator("[data-testid=link-row][data-status=revoked]")).to_have_count(1)
        await mediator.get_by_test_id("issue-link-lender").click()
        await expect(mediator.locator("[data-testid=link-row][data-status=active]")).to_have_count(2)
        await expect(mediator.get_by_test_id("open-room")).to_be_visible()

        # --- the mediator drafts the agreement ---------------------------------------------------------
        await expect(mediator.get_by_test_id("agreement-settled-input")).to_have_value("14500.29")
        first_due = (dt.date.today() + dt.timedelta(days=31)).isoformat()
        await split_instalments(mediator, 3, first_due)
        await mediator.get_by_test_id("instalment-amount-2").fill("4000")
        await expect(mediator.get_by_test_id("sum-check")).to_have_attribute("data-tone", "bad")
        await expect(mediator.get_by_test_id("sum-check")).to_contain_text("short")
        await mediator.get_by_test_id("agreement-save").click()
        await expect(mediator.get_by_test_id("agreement-save-error")).to_be_visible()
        await mediator.get_by_test_id("instalment-add").click()
        await mediator.get_by_test_id("instalment-amount-3").fill("833.43")
        await expect(mediator.get_by_test_id("sum-check")).to_have_attribute("data-tone", "ok")
        await save_agreement(mediator, waived="1,200", terms="借款人按期还款后，银行不再追收剩余罚息。")
        await expect(mediator.get_by_test_id("agreement-instalment")).to_have_count(4)
        await shots(mediator, AREA, "desk-mediator-agreement")
        await phone_shots(mediator, AREA, "desk-mediator-agreement")

        # --- the borrower signs in /case, the bank representative in /desk ------------------------------
        await refresh(borrower)
        join = borrower.get_by_test_id("notice-join")
        await expect(join).to_have_count(1)
        await expect(join).to_have_attribute("href", re.compile(r"^/room#jln_[A-Za-z0-9_-]{43}$"))
        await expect(borrower.get_by_test_id("agreement-instalment")).to_have_count(4)
        await expect(borrower.get_by_test_id("agreement-settled")).to_have_text("¥14,500.29")
        await expect(borrower.get_by_test_id("agreement-waived")).to_have_text("¥1,200.00")
        await expect(borrower.get_by_test_id("agreement-sign")).to_be_disabled()
        await borrower.get_by_test_id("agreement-consent").check()
        await shots(borrower, AREA, "case-agreement")
        await phone_shots(borrower, AREA, "case-agreement")
        await sign_agreement(borrower, "borrower")
        await expect(borrower.get_by_test_id("signed-by-me")).to_be_visible()

        await refresh(bank)
        await sign_agreement(bank, "lender")
        await expect(bank.get_by_test_id("agreement-state")).to_have_attribute("data-state", "signed")
        await expect(bank.get_by_test_id("countersigned")).to_have_attribute("data-signed", "true")
        async with bank.expect_download() as info:
            await bank.get_by_test_id("agreement-download").click()
        download = await info.value
        downloaded = json.loads(Path(await download.path()).read_text())
        await shots(bank, AREA, "desk-bank-signed")

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

        # --- the mediator closes; the officer's open page follows --------------------------------------------
        await refresh(mediator)
        await close_case(mediator, "双方达成分期还款协议。")
        await expect(mediator.get_by_test_id("detail-outcome")).to_contain_text("Settled")
        await shots(mediator, AREA, "desk-mediator-closed")

        # The officer's page, open on the case all along, shows it closed without a reload.
        await expect(officer.get_by_test_id("case-state")).to_have_attribute("data-state", "closed", timeout=2000)
        await expect(officer.get_by_test_id("close-submit")).to_have_count(0)

        # --- the borrower rates the mediation; the officer sees the aggregate ------------------------------
        await refresh(borrower)
        await expect(borrower.get_by_test_id("outcome")).to_contain_text("达成和解")
        await borrower.get_by_test_id("feedback-submit").click()
        await expect(borrower.get_by_test_id("feedback-error")).to_be_visible()
        await fill_feedback(borrower, 4, "调解员很耐心，流程清楚。")
        await shots(borrower, AREA, "case-closed")
        await submit_feedback(borrower)

        await officer.get_by_test_id("nav-feedback").click()
        await expect(officer.get_by_test_id("feedback-count")).to_have_text("1")
        await expect(officer.get_by_test_id("feedback-average")).to_have_text("4.0")
        await expect(officer.get_by_test_id("distribution-4")).to_have_text("1")
        await expect(officer.get_by_test_id("feedback-comment-text")).to_have_text("调解员很耐心，流程清楚。")
        await shots(officer, AREA, "desk-feedback")

        # --- the administrator and the compliance officer ------------------------------------------------
        admin = await pages.open("/desk")
        await sign_in_desk(admin, "admin.root")
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
        # A mediator's account waits for a second administrator: its creator sees no way to approve it.
        created = admin.get_by_test_id("staff-row").filter(has_text="mediator.sun")
        await expect(created.get_by_test_id("staff-status")).to_have_text("待批准")
        await expect(created.get_by_test_id("staff-awaiting-other")).to_be_visible()
        await expect(created.get_by_test_id("staff-approve")).to_have_count(0)
        await api.staff("administrator", "admin.two")
        second = await pages.open("/desk")
        await sign_in_desk(second, "admin.two")
        approving = second.get_by_test_id("staff-row").filter(has_text="mediator.sun")
        await approving.get_by_test_id("staff-approve").click()
        await expect(approving.get_by_test_id("staff-status")).to_have_text("启用")
        await expect(second.get_by_test_id("staff-row")).to_have_count(8)
        await expect(admin.get_by_test_id("nav-compliance")).to_have_attribute("href", "/compliance")
        await shots(admin, AREA, "desk-admin")

        # Two-person control: the officer reaches cases once a key of theirs is approved by two others.
        await api.approve_key(compliance_token, generate(tmp_path / "officer").recipient)
        compliance = await pages.open("/desk")
        await sign_in_desk(compliance, "compliance.he")
        await expect(compliance.get_by_test_id("nav-compliance")).to_be_visible()
        await expect(compliance.get_by_test_id("case-row").first).to_be_visible()
        await shots(compliance, AREA, "desk-compliance")

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
        # Every user-entered text (each carries markup here) is shown isolated: in a <bdi> or under dir="auto".
        exposed = await page.evaluate("""() => {
            const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            const found = [];
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                if (!/<img src=x|<script>window/.test(node.data)) continue;
                const holder = node.parentElement;
                if (!holder.closest("bdi, [dir=auto]")) found.push(holder.outerHTML.slice(0, 200));
            }
            return found;
        }""")
        assert exposed == [], (page.url, exposed)

    try:
        borrower = await pages.open("/apply")
        await fill_application(borrower, {
            "name": name, "email": "wang@example.cn", "lender": lender, "loan-reference": "LN-XSS-1",
            "principal": "5000", "overdue": "800", "days": "12", "proposal": proposal})
        _, receipt_link = await submit_application(borrower)
        receipt = receipt_link.split("#", 1)[1]
        await borrower.get_by_test_id("receipt-open").click()
        await expect(borrower.get_by_test_id("party-name")).to_have_text(name)
        await expect(borrower.get_by_test_id("case-lender")).to_have_text(lender)
        await clean(borrower)

        # Walk the case to "scheduled" through the API; the agreement's terms carry markup too.
        _, me = await api.call("GET", "/api/party/case", token=receipt)
        case_id = me["case_id"]
        _, case = await api.call("GET", f"/api/cases/{case_id}", token=officer)
        for party in case["parties"]:
            contact = {"email": LENDER_EMAIL} if party["role"] == "lender" else {}  # where the lender's codes go
            await api.call("POST", f"/api/cases/{case_id}/parties/{party['party_id']}/verify", token=officer,
                           json={"method": "other", "reference": XSS_IMG, **contact})
        assert (await api.call("POST", f"/api/cases/{case_id}/accept", token=officer))[0] == 200
        await api.call("PUT", f"/api/cases/{case_id}/assignments", token=officer,
                       json={"mediator_id": mediator_id, "bank_representative_id": bank_id})
        starts = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()
        _, case = await api.call("POST", f"/api/cases/{case_id}/sessions", token=mediator, json={"starts_at": starts})
        session_id = case["sessions"][0]["session_id"]
        assert api.mailbox is not None
        for token, address in ((receipt, "wang@example.cn"), (bank, LENDER_EMAIL)):
            device = await walk.enrol_device(api.http, f"/api/cases/{case_id}", token, api.mailbox, address)
            await walk.confirm(api.http, f"/api/cases/{case_id}", token, device, session_id)
        due = (dt.date.today() + dt.timedelta(days=30)).isoformat()
        status, body = await api.call("PUT", f"/api/cases/{case_id}/agreement", token=mediator, json={
            "currency": "CNY", "settled_amount_minor": 80_000, "instalments": [{"due_date": due, "amount_minor": 80_000}],
            "terms": terms})
        assert status == 200, body

        await refresh(borrower)
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
        await refresh(borrower)
        await expect(borrower.get_by_test_id("agreement-mismatch")).to_be_visible()
        await borrower.get_by_test_id("agreement-consent").check()
        await expect(borrower.get_by_test_id("agreement-sign")).to_be_disabled()
        await borrower.unroute_all()
        await refresh(borrower)
        await expect(borrower.get_by_test_id("agreement-mismatch")).to_have_count(0)

        desk = await pages.open("/desk")
        await sign_in_desk(desk, "mediator.xss")
        await expect(desk.get_by_test_id("case-row").locator("td").nth(2)).to_have_text(lender)
        await desk.get_by_test_id("case-link").click()
        await expect(desk.get_by_test_id("detail-proposal")).to_have_text(proposal)
        await expect(desk.get_by_test_id("party-borrower").get_by_test_id("party-name")).to_have_text(name)
        await expect(desk.get_by_test_id("agreement-terms-text")).to_have_text(terms)
        await expect(desk.get_by_test_id("agreement-terms-input")).to_have_value(terms)
        await clean(desk)
        await shots(desk, AREA, "xss-desk")

        assert (await api.call("POST", f"/api/cases/{case_id}/close", token=mediator,
                               json={"outcome": "not_settled", "note": XSS_SCRIPT}))[0] == 200
        await refresh(borrower)
        await fill_feedback(borrower, 2, comment)
        await submit_feedback(borrower)
        await clean(borrower)
        await shots(borrower, AREA, "xss-case")

        await desk.get_by_test_id("signout").click()
        await sign_in_desk(desk, "officer.xss")
        await desk.get_by_test_id("nav-feedback").click()
        await expect(desk.get_by_test_id("feedback-comment-text")).to_have_text(comment)
        await clean(desk)
        await desk.goto(f"{api.base}/desk#/case/{case_id}")
        await expect(desk.get_by_test_id("detail-outcome")).to_contain_text(XSS_SCRIPT)
        await clean(desk)
        assert pages.problems == []
    finally:
        await pages.close()
