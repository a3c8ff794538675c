"""The whole journey in one test, through the real pages in headless Chromium (fake camera and mic).

Five people, each in their own browser context, do what they do in the product:

1. the compliance officer makes an age key pair in /compliance and registers its public key (first,
   so the session's records are sealed to it), keeping the key file the page downloads;
2. the borrower applies in /apply (Chinese) and follows the case in /case with the receipt;
3. the case officer verifies both parties, accepts and assigns in /desk;
4. the mediator proposes a time in /desk; the borrower confirms in /case, the bank representative in
   /desk (English);
5. the mediator issues the borrower's join link; the borrower opens the room from the notice in
   their case page, mediator and bank representative from their desks; the mediator admits both,
   both consent, the mediator records ~10 s while the three chat, then ends the session;
6. the mediator drafts the agreement in /desk; the borrower signs it in /case, the bank
   representative in /desk (WebCrypto Ed25519 on each device); the server countersigns;
7. the mediator closes the case; the borrower rates the mediation; the case officer sees it;
8. the compliance officer opens the case in /compliance with the key file: every object verified
   against the signed audit log and decrypted in the page, each participant's recording plays (its
   video element reports a duration) and the transcript's timeline shows the chat in order.

Screenshots of every step, in both languages where the page has a switch, go to
test-artifacts/journey/ (numbered in journey order).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import Api
from tests.recording.test_session_recording import _recorder_gone, _transcript_sealed
from tests.support.mailbox import link_token
from tests.support.walk import BORROWER_EMAIL
from tests.web.browser import (
    LENDER_EMAIL, Pages, accept_case, admit, assign_staff, case_id_of, close_case, confirm_session, end_session,
    fill_application, fill_feedback, generate_key, give_consent, issue_join_link, join_room, load_identity_file, local_start, open_case,
    open_session, propose_session, recording_videos, refresh, save_agreement, save_and_register_key, send_chat, shot,
    shots, sign_agreement, sign_in, sign_in_desk, split_instalments, start_recording, submit_application,
    submit_feedback, verify_parties, wait_rising,
)

AREA = "journey"
RECORD_SECONDS = 10.0
APPLICATION = {
    "name": "李伟", "email": "li.wei@example.cn", "phone": "+86 138 0013 8000", "lender": "示例商业银行",
    "loan-reference": "LN-2026-0042", "principal": "120,000", "overdue": "14,500.29", "days": "120",
    "proposal": "从下个月起每月还款 5,000 元。\n希望减免部分罚息。",
}
TERMS = "借款人按期还款后，银行不再追收剩余罚息。"


async def _open_room_from_desk(desk: Page) -> Page:
    """Staff open the room from the case in their desk: a new tab, already signed in (same cookie)."""
    async with desk.context.expect_page() as opened:
        await desk.get_by_test_id("open-room").click()
    room = await opened.value
    await room.wait_for_load_state()
    return room


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_journey_apply_to_compliance_playback(api: Api, browser: Browser, tmp_path: Path) -> None:
    began = time.monotonic()
    # The staff accounts an administrator made (/desk's staff view is covered by test_pages_browser.py).
    _, officer_token = await api.staff("case_officer", "officer.lin")
    mediator_id, _ = await api.staff("mediator", "mediator.wang")
    bank_id, _ = await api.staff("bank_representative", "bank.chen")
    await api.staff("compliance_officer", "compliance.he")
    pages = Pages(browser, api.base)
    try:
        # --- 1. the compliance officer's key, made in the page, registered before any session -------
        compliance = await pages.open("/compliance", "en", width=1360)
        await sign_in(compliance, "compliance.he")
        await compliance.get_by_test_id("no-recipient").wait_for()
        await generate_key(compliance)
        await shots(compliance, AREA, "01-compliance-key-generated")
        identity_file = tmp_path / "compliance.he-age-identity.txt"
        recipient = await save_and_register_key(compliance, identity_file, api.approve_proposed)
        assert recipient.startswith("age1"), recipient
        await shots(compliance, AREA, "01-compliance-key-registered")

        # --- 2. the borrower applies and opens the case with the receipt ------------------------------
        borrower = await pages.open("/apply")
        await fill_application(borrower, APPLICATION)
        await expect(borrower.get_by_test_id("apply-bucket")).to_have_attribute("data-bucket", "long")
        await shots(borrower, AREA, "02-apply-filled")
        case_number, _ = await submit_application(borrower)
        await shots(borrower, AREA, "02-apply-receipt")
        await borrower.get_by_test_id("receipt-open").click()
        await expect(borrower.get_by_test_id("case-number")).to_have_text(case_number)
        await expect(borrower.get_by_test_id("case-state")).to_have_attribute("data-state", "submitted")
        await shots(borrower, AREA, "03-case-submitted")

        # --- 3. the case officer verifies both parties, accepts and assigns -----------------------------
        officer = await pages.open("/desk")
        await sign_in_desk(officer, "officer.lin")
        await open_case(officer, case_number)
        case_id = case_id_of(officer)
        await shots(officer, AREA, "04-desk-officer-review")
        await verify_parties(officer)
        await accept_case(officer)
        await assign_staff(officer, mediator_id, bank_id, "Mediator.Wang", "Bank.Chen")
        await shots(officer, AREA, "04-desk-officer-assigned")
        _, case = await api.call("GET", f"/api/cases/{case_id}", token=officer_token)
        borrower_id = next(p["party_id"] for p in case["parties"] if p["role"] == "borrower")

        # --- 4. the mediator proposes a time; the borrower (/case) and the bank (/desk) confirm ------
        mediator = await pages.open("/desk")
        await sign_in_desk(mediator, "mediator.wang")
        await open_case(mediator, case_number)
        await propose_session(mediator, local_start(days=1, hour=15), 60)
        await shots(mediator, AREA, "05-desk-mediator-proposed")
        await refresh(borrower)
        assert api.mailbox is not None
        await confirm_session(borrower, api.mailbox, BORROWER_EMAIL)  # first use: a code from the borrower's mail
        await expect(borrower.get_by_test_id("party-session")).to_contain_text("您已确认此时间")
        await shots(borrower, AREA, "06-case-confirmed")
        bank = await pages.open("/desk", "en")
        await sign_in_desk(bank, "bank.chen")
        await open_case(bank, case_number)
        await confirm_session(bank, api.mailbox, LENDER_EMAIL)  # the lender's code, to the bank's mediation mailbox
        await expect(bank.get_by_test_id("case-state")).to_have_attribute("data-state", "scheduled")
        await shots(bank, AREA, "07-desk-bank-confirmed")

        # --- 5. the mediator issues the borrower's link; the three meet in the room -----------------------
        await refresh(mediator)
        await expect(mediator.get_by_test_id("confirmations").locator("[data-confirmed=true]")).to_have_count(2)
        issued = await issue_join_link(mediator, "borrower")
        await shots(mediator, AREA, "08-desk-mediator-link-issued")
        assert api.mailbox is not None
        mail = await api.mailbox.wait_for("li.wei@example.cn", issued)  # the borrower's mail has it too
        await refresh(borrower)
        join = borrower.get_by_test_id("notice-join")
        await expect(join).to_have_count(1)
        assert await join.get_attribute("href") == "/room#" + link_token(mail.text)  # the link just issued
        await shots(borrower, AREA, "09-case-join-notice")

        mediator_room = await _open_room_from_desk(mediator)
        session_id = parse_qs(urlsplit(mediator_room.url).query)["session"][0]
        await join_room(mediator_room)
        bank_room = await _open_room_from_desk(bank)
        assert "lang=en" in bank_room.url  # the desk keeps its language
        await join_room(bank_room)
        await join.click()  # the borrower's own tab goes to the room
        borrower_room = borrower
        await join_room(borrower_room)
        await borrower_room.get_by_test_id("lobby-banner").wait_for(state="visible")
        await shot(borrower_room, AREA, "10-room-borrower-lobby-zh-CN")
        await admit(mediator_room, bank_id, borrower_id)
        await wait_rising(mediator_room, {bank_id, borrower_id})
        await wait_rising(borrower_room, {mediator_id, bank_id})

        # Both parties consent; the mediator records while the three talk and chat.
        await borrower_room.get_by_test_id("consent-accept").wait_for(state="visible")
        await shot(borrower_room, AREA, "10-room-borrower-consent-zh-CN")
        await give_consent(bank_room)
        await give_consent(borrower_room)
        await start_recording(mediator_room, bank_room, borrower_room)
        recording_began = time.monotonic()
        said: list[tuple[int, str]] = []
        lines = [(borrower_room, "我每月可以还 5,000 元，从下个月开始。"),
                 (bank_room, "We can accept three instalments if the penalties are settled."),
                 (mediator_room, "好的，我来拟定分三期的还款协议。"),
                 (borrower_room, "谢谢 / thank you")]
        for n, (page, text) in enumerate(lines):
            await asyncio.sleep(max(0.0, recording_began + n * 2.0 - time.monotonic()))  # one every 2 s
            said.append((await send_chat(page, text), text))
        await shot(mediator_room, AREA, "11-room-mediator-recording-zh-CN")
        await shot(bank_room, AREA, "11-room-bank-recording-en")
        await shot(borrower_room, AREA, "11-room-borrower-recording-zh-CN")
        await asyncio.sleep(max(0.0, recording_began + RECORD_SECONDS - time.monotonic()))
        recorded_for = time.monotonic() - recording_began
        await end_session(mediator_room, bank_room, borrower_room)
        await shot(bank_room, AREA, "12-room-bank-ended-en")
        await mediator_room.close()
        await bank_room.close()

        # --- 6. the agreement: drafted in /desk, signed in /case and in /desk ---------------------------
        await refresh(mediator)
        await split_instalments(mediator, 3, (dt.date.today() + dt.timedelta(days=31)).isoformat())
        await save_agreement(mediator, waived="1,200", terms=TERMS)
        await shots(mediator, AREA, "13-desk-mediator-agreement")
        await borrower.goto(f"{api.base}/case")  # the receipt stayed with this tab
        await expect(borrower.get_by_test_id("case-number")).to_have_text(case_number)
        await expect(borrower.get_by_test_id("agreement-instalment")).to_have_count(3)
        await expect(borrower.get_by_test_id("agreement-terms-text")).to_have_text(TERMS)
        await sign_agreement(borrower, "borrower")
        await expect(borrower.get_by_test_id("signed-by-me")).to_be_visible()
        await shots(borrower, AREA, "14-case-borrower-signed")
        await refresh(bank)
        await sign_agreement(bank, "lender")
        await expect(bank.get_by_test_id("agreement-state")).to_have_attribute("data-state", "signed")
        await expect(bank.get_by_test_id("countersigned")).to_have_attribute("data-signed", "true")
        await shots(bank, AREA, "15-desk-bank-signed")

        # --- 7. closed; the borrower rates the mediation; the case officer sees the aggregate -----------
        await refresh(mediator)
        await close_case(mediator, "双方达成分期还款协议。")
        await shots(mediator, AREA, "16-desk-mediator-closed")
        await refresh(borrower)
        await expect(borrower.get_by_test_id("outcome")).to_contain_text("达成和解")
        await fill_feedback(borrower, 5, "调解员很耐心，流程清楚。")
        await submit_feedback(borrower)
        await shots(borrower, AREA, "17-case-feedback")
        await officer.get_by_test_id("nav-feedback").click()
        await expect(officer.get_by_test_id("feedback-count")).to_have_text("1")
        await expect(officer.get_by_test_id("feedback-average")).to_have_text("5.0")
        await expect(officer.get_by_test_id("feedback-comment-text")).to_have_text("调解员很耐心，流程清楚。")
        await shots(officer, AREA, "18-desk-officer-feedback")

        # --- 8. the compliance officer opens the records in the page with the key file --------------------
        await _recorder_gone(api)  # the recorder has filed its last segments
        await _transcript_sealed(api, case_id)
        await compliance.reload()
        await load_identity_file(compliance, identity_file)
        assert await compliance.get_by_test_id("identity-recipient").inner_text() == recipient
        row = compliance.locator(f"[data-testid=case-row][data-case-id={case_id}]")
        await expect(row).to_have_attribute("data-state", "closed")
        await shots(compliance, AREA, "19-compliance-cases")
        await row.get_by_test_id("case-open").click()
        group = compliance.get_by_test_id("session-group")
        await expect(group).to_have_count(1)
        await expect(group).to_have_attribute("data-session-id", session_id)
        await shots(compliance, AREA, "20-compliance-case-records")
        verdict = await open_session(compliance, session_id)
        assert verdict == "complete", await compliance.get_by_test_id("opened").inner_text()
        videos = await recording_videos(compliance)
        assert {v["participant"] for v in videos} == {mediator_id, bank_id, borrower_id}, videos
        for video in videos:
            assert video["error"] is None and math.isfinite(video["duration"]) and video["duration"] > 0, video
            assert video["duration"] < recorded_for + 30, (video, recorded_for)
            assert video["complete"] == "true" and video["width"] > 0, video
        # Each really plays, not only reports a duration: the review player runs every participant on the
        # session clock, so it is started from the middle of the recording, where all three have media.
        seek = compliance.get_by_test_id("player-seek")
        middle = float(await seek.get_attribute("max") or 0) / 2
        await seek.fill(f"{middle:.1f}")
        times = """() => [...document.querySelectorAll('[data-testid=recording-video]')].map(v => v.currentTime)"""
        before = await compliance.evaluate(times)
        await compliance.get_by_test_id("player-toggle").click()
        await compliance.locator("[data-testid=player-toggle][data-state=playing]").wait_for()
        await compliance.wait_for_timeout(1500)
        await compliance.get_by_test_id("player-toggle").click()
        played = [after - was for after, was in zip(await compliance.evaluate(times), before)]
        assert len(played) == 3 and all(advanced > 0.2 for advanced in played), played
        chat = compliance.locator("[data-testid=timeline] [data-testid=timeline-entry][data-type=chat_message]")
        await expect(chat).to_have_count(len(said))
        shown = [(int(await chat.nth(i).get_attribute("data-seq") or -1),
                  await chat.nth(i).get_by_test_id("chat-text").inner_text()) for i in range(len(said))]
        assert shown == said
        types = await compliance.locator("[data-testid=timeline-entry]").evaluate_all(
            "(entries) => entries.map(e => e.dataset.type)")
        for expected in ("participant_joined", "admitted", "consent_given", "recording_started", "chat_message",
                         "recording_stopped"):
            assert expected in types, (expected, types)
        await shots(compliance, AREA, "21-compliance-session-opened")
        await compliance.get_by_test_id("open-agreements").click()
        await compliance.locator("[data-testid=verification][data-state=complete]").wait_for()
        agreement = compliance.locator("[data-testid=agreement][data-version='1']")
        assert TERMS in await agreement.inner_text()
        await expect(agreement.get_by_test_id("countersigned")).to_have_count(1)
        await shots(compliance, AREA, "22-compliance-agreement-opened")

        assert pages.problems == []
    finally:
        await pages.close()
    print(f"journey browser test took {time.monotonic() - began:.1f} s")
