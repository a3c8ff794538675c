"""The compliance page in headless Chromium: a key made in the page opens a real recorded session.

The officer signs in, generates an age key pair in the page (the secret key file comes down as a
download; only the public key reaches the server) and registers it. Three scripted participants
then hold a short recorded session (aiortc media to the recorder process, chat, consent). The
officer opens the case in the page with the downloaded key file: every object is verified against
the signed audit log and decrypted in the page, the recordings play, the transcript reads as a
timeline. Then stored ciphertext is tampered with, and the page says so and calls the result
INCOMPLETE.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from aiortc import MediaStreamTrack
from playwright.async_api import Browser, Page
from sqlalchemy import func, select, update

from server.models import AuditEntry, SealedRecord
from tests.conftest import Api
from tests.recording.agekeys import age_binary, generate
from tests.recording.test_session_recording import Sender, _recorder_gone, _transcript_sealed, open_recorded_room
from tests.server.test_agreements import sign, terms
from tests.web.browser import (
    WAIT_MS, Pages, generate_key, load_identity_file, open_session, overflowing, recording_videos,
    save_and_register_key, set_language, shot, sign_in,
)

AREA = "compliance"
RECORD_SECONDS = 9.0
XSS = '<img src=x onerror="document.body.dataset.pwned=1">'


async def _shot(page: Page, name: str, *, full_page: bool = True) -> None:
    await shot(page, AREA, name, full_page=full_page)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_compliance_page_key_made_in_page_opens_recorded_session_and_reports_tampering(
        api: Api, browser: Browser, tmp_path: Path) -> None:
    officer_id, _ = await api.staff("compliance_officer", username="compliance-officer-page")
    # Console errors (a CSP violation among them) fail the test; refused requests are expected here.
    pages = Pages(browser, api.base)
    page = await pages.open("/compliance", width=1360)

    # Sign in; generate the key pair in the page; the secret comes down as a file, once.
    await page.get_by_test_id("signin-form").wait_for(timeout=WAIT_MS)
    await _shot(page, "signin-zh-CN")
    await set_language(page, "en")
    await _shot(page, "signin-en")
    await set_language(page, "zh-CN")
    await sign_in(page, "compliance-officer-page")
    await page.get_by_test_id("no-recipient").wait_for(timeout=WAIT_MS)
    secret_shown = await generate_key(page)
    assert await page.get_by_test_id("register-generated").is_disabled()
    await _shot(page, "key-generated-zh-CN")
    await set_language(page, "en")
    await _shot(page, "key-generated-en")
    await set_language(page, "zh-CN")
    identity_file = tmp_path / "officer-from-page.txt"
    registered = await save_and_register_key(page, identity_file, api.approve_proposed)
    assert secret_shown in identity_file.read_text().splitlines()
    recipient = subprocess.run([age_binary("age-keygen"), "-y", str(identity_file)], check=True, capture_output=True,
                               text=True, timeout=30).stdout.strip()  # the real age tool reads the file
    assert registered == recipient
    assert await page.get_by_test_id("secret-key").inner_text() == ""  # shown once, then gone from the page
    assert (await api.services.accounts.user(officer_id)).age_recipient == recipient
    await _shot(page, "key-registered-zh-CN")

    # A recorded session, sealed to every compliance officer (this one included).
    room = await open_recorded_room(api, tmp_path)
    mediator, bank, borrower = room.peers
    said = []
    try:
        await room.start_recording()
        lines = [(borrower, "我每月可以还 2000 元，从三月开始。"), (bank, f"We can consider it. {XSS}"),
                 (mediator, "好的，我们来拟定分期方案。\n第二行"), (borrower, "谢谢 / thank you")]
        for peer, text in lines:
            result = await peer.request("send_chat", {"text": text})
            assert result["ok"], result
            said.append((result["seq"], text))
            await asyncio.sleep(RECORD_SECONDS / len(lines))
        assert (await mediator.request("end_session", {}))["ok"]
        await _recorder_gone(api)
        await _transcript_sealed(api, room.case_id)
    finally:
        await room.close()
    recorded = {mediator.participant_id, bank.participant_id, borrower.participant_id}

    # The repayment agreement, drafted and signed by both parties: the server seals it to the case.
    status, agreement = await api.call("PUT", f"/api/cases/{room.case_id}/agreement", token=mediator.auth["token"],
                                       json=terms(terms=f"分三期还款。{XSS}"))
    assert status == 200, agreement
    for who, token in (("borrower", borrower.auth["token"]), ("bank", bank.auth["token"])):
        status, body = await api.call("POST", f"/api/cases/{room.case_id}/agreement/signatures", token=token,
                                      json=sign(agreement["document"], room.devices[who], 1))
        assert status == 201, body

    # The key typed or pasted (a password field) loads; leaving the page forgets it.
    await page.get_by_test_id("identity-text").fill(secret_shown)
    await page.get_by_test_id("identity-use").click()
    await page.locator("[data-testid=identity-panel][data-state=loaded]").wait_for(timeout=WAIT_MS)
    assert await page.get_by_test_id("identity-text").input_value() == ""
    assert await page.get_by_test_id("identity-recipient").inner_text() == recipient
    await page.reload()  # also brings the case list up to date
    await page.locator("[data-testid=identity-panel][data-state=empty]").wait_for(timeout=WAIT_MS)

    # Open the case with the key file the page downloaded: read in the page, never uploaded.
    await load_identity_file(page, identity_file)
    assert await page.get_by_test_id("identity-recipient").inner_text() == recipient
    await page.locator(f"[data-testid=case-row][data-case-id={room.case_id}]").wait_for(timeout=WAIT_MS)
    await page.get_by_test_id("state-filter").select_option("closed")  # the case is still "scheduled"
    await page.get_by_test_id("cases-empty").wait_for(timeout=WAIT_MS)
    await page.get_by_test_id("state-filter").select_option("scheduled")
    await page.locator(f"[data-testid=case-row][data-case-id={room.case_id}]").wait_for(timeout=WAIT_MS)
    await _shot(page, "cases-zh-CN")
    await set_language(page, "en")
    await _shot(page, "cases-en")
    await set_language(page, "zh-CN")
    await page.locator(f"[data-testid=case-open][data-case-id={room.case_id}]").click()
    session_id = await page.locator("[data-testid=session-group]").first.get_attribute("data-session-id")
    # A session is named by when it was scheduled and its state, not by its raw id.
    title = await page.locator("[data-testid=session-group]").first.get_by_test_id("session-title").inner_text()
    assert "ses_" not in title and "已确认" in title and re.search(r"20\d\d", title), title
    assert session_id
    await _shot(page, "case-records-zh-CN")

    await page.get_by_test_id("open-agreements").click()
    await page.locator("[data-testid=verification][data-state=complete]").wait_for(timeout=WAIT_MS)
    shown_agreement = page.locator("[data-testid=agreement][data-version='1']")
    assert f"分三期还款。{XSS}" in await shown_agreement.inner_text()
    assert await shown_agreement.locator("img").count() == 0
    assert await shown_agreement.locator("[data-testid=countersigned]").count() == 1
    await _shot(page, "agreements-zh-CN")

    downloads_before = await _record_downloads(api, room.case_id)
    started = time.monotonic()
    assert await open_session(page, session_id) == "complete", await page.get_by_test_id("opened").inner_text()
    opened_in = time.monotonic() - started
    videos = await recording_videos(page)
    assert {v["participant"] for v in videos} == recorded, videos
    for video in videos:
        assert video["error"] is None and video["readyState"] >= 1 and 0 < video["duration"] < 600, video
        assert video["complete"] == "true" and video["width"] > 0, video
    chat = page.locator("[data-testid=timeline] [data-testid=timeline-entry][data-type=chat_message]")
    assert await chat.count() == len(said)
    shown = [(int(await chat.nth(i).get_attribute("data-seq") or -1),
              await chat.nth(i).get_by_test_id("chat-text").inner_text()) for i in range(len(said))]
    assert shown == said  # in order, as typed: markup in a message is text
    assert await page.locator("[data-testid=opened] img").count() == 0
    assert await page.evaluate("document.body.dataset.pwned") is None
    types = await page.locator("[data-testid=timeline-entry]").evaluate_all("(es) => es.map(e => e.dataset.type)")
    for expected in ("participant_joined", "admitted", "consent_given", "recording_started", "chat_message",
                     "recording_stopped"):
        assert expected in types, (expected, types)
    assert await page.locator("[data-testid=chat-log] [data-testid=chat-entry]").count() == len(said)
    # The server audited every download the page made.
    assert await _record_downloads(api, room.case_id) - downloads_before >= len(videos) + len(said) + 1
    await _shot(page, "opened-complete-zh-CN")
    await set_language(page, "en")
    assert "COMPLETE" in await page.get_by_test_id("verification").inner_text()
    await _shot(page, "opened-complete-en")
    await page.set_viewport_size({"width": 390, "height": 844})
    assert await overflowing(page) == [], "the page is wider than a phone"
    await page.get_by_test_id("recordings").scroll_into_view_if_needed()
    await _shot(page, "opened-complete-phone-en", full_page=False)
    await page.get_by_test_id("timeline").scroll_into_view_if_needed()
    await _shot(page, "timeline-phone-en", full_page=False)
    await page.set_viewport_size({"width": 1360, "height": 900})

    # Tampering 1: one byte of a stored segment flipped. The server refuses to serve it.
    session_dir = api.services.settings.records_dir / "cases" / room.case_id / "sessions" / session_id
    segments = sorted((session_dir / "recordings" / borrower.participant_id).rglob("*.webm.age"))
    _flip_byte(segments[1])
    assert await open_session(page, session_id) == "incomplete"
    problems = page.get_by_test_id("problem")
    await problems.first.wait_for(timeout=WAIT_MS)
    texts = await problems.all_inner_texts()
    assert any(segments[1].name in text and "SHA-256" in text for text in texts), texts
    await recording_videos(page)
    damaged = page.locator(f"[data-testid=recording][data-participant-id={borrower.participant_id}]")
    assert await damaged.get_attribute("data-complete") == "false"
    assert await damaged.get_by_test_id("incomplete-badge").is_visible()
    assert "INCOMPLETE" in await page.get_by_test_id("verification").inner_text()
    await _shot(page, "opened-tampered-en")

    # Tampering 2: an insider also rewrites the hash on the case record, so the server serves the
    # altered chat message; the signed audit log and age's authentication still refuse it.
    chat_file = session_dir / "chat" / "00000002.json.age"
    _flip_byte(chat_file)
    async with api.services.db.write() as db_session:
        await db_session.execute(update(SealedRecord).where(SealedRecord.storage_key == str(
            chat_file.relative_to(api.services.settings.records_dir))).values(
            sha256=hashlib.sha256(chat_file.read_bytes()).hexdigest()))
    await set_language(page, "zh-CN")
    assert await open_session(page, session_id) == "incomplete"
    texts = await page.get_by_test_id("problem").all_inner_texts()
    assert any("00000002.json.age" in text and "sha256" in text for text in texts), texts
    assert any("00000002.json.age" in text and "解密认证失败" in text for text in texts), "\n".join(texts)
    await page.locator("[data-testid=chat-missing][data-seq='2']").wait_for(timeout=WAIT_MS)
    await _shot(page, "opened-tampered-zh-CN")

    # Signing out forgets the key: nothing of it was stored in the browser or sent to the server. The one
    # thing stored is public: the audit checkpoint this browser accepted, pinned per log origin.
    assert await page.evaluate("() => sessionStorage.length") == 0
    stored = await page.evaluate("() => Object.fromEntries(Object.entries(localStorage))")
    origin = api.services.audit.origin
    assert list(stored) == [f"mediation-compliance-pin:{origin}"], stored
    pinned = json.loads(stored[f"mediation-compliance-pin:{origin}"])
    assert pinned["note"].startswith(f"{origin}\n") and "AGE-SECRET-KEY" not in json.dumps(stored).upper()
    await page.get_by_test_id("signout").click()
    await page.get_by_test_id("signin-form").wait_for(timeout=WAIT_MS)
    assert await page.locator("[data-testid=identity-panel][data-state=empty]").count() == 1
    for path in api.services.settings.data_dir.rglob("*"):
        if path.is_file():
            assert secret_shown.encode() not in path.read_bytes(), path
    assert not pages.problems, pages.problems
    assert opened_in < 60, opened_in


async def _record_downloads(api: Api, case_id: str) -> int:
    async with api.services.db.read() as session:
        return (await session.execute(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.case_id == case_id, AuditEntry.action == "record_downloaded"))).scalar_one()


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))


class Pausable(MediaStreamTrack):
    """A synthetic track that can stop sending for a while: frames made meanwhile are dropped, so the
    recorder receives nothing (a real hole in the media, which the transcript names as a gap)."""

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = inner.kind
        self.inner = inner
        self.paused = False

    async def recv(self):  # noqa: ANN201 (a frame of the inner track's kind)
        while True:
            frame = await self.inner.recv()
            if not self.paused:
                return frame


class PausingSender(Sender):
    """A participant whose camera and microphone go silent between pause(True) and pause(False)."""

    paused: list[Pausable] = []

    def tracks(self) -> list[MediaStreamTrack]:
        self.paused = [Pausable(track) for track in super().tracks()]
        return list(self.paused)

    def pause(self, paused: bool) -> None:
        for track in self.paused:
            track.paused = paused


PLAYER_TIMES = """() => [...document.querySelectorAll('[data-testid=player-tile]')].map(tile => {
  const video = [...tile.querySelectorAll('video')].find(v => !v.hidden);
  return {participant: tile.dataset.participantId, state: tile.dataset.state,
          session: video ? video.currentTime + Number(video.dataset.offset) : null,
          paused: video ? video.paused : null};
})"""


async def _player_times(page: Page) -> list[dict]:
    return await page.evaluate(PLAYER_TIMES)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_compliance_player_plays_two_participants_in_sync_and_seeks_from_a_transcript_line(
        api: Api, browser: Browser, tmp_path: Path) -> None:
    # This officer's key is in force before the session, so everything is sealed to it too.
    username = "compliance-officer-player"
    _, officer = await api.staff("compliance_officer", username=username)
    key = generate(tmp_path / "player-officer")
    await api.approve_key(officer, key.recipient)

    # Two participants send media (the bank's representative is present without any); the borrower's
    # media stops for two seconds in the middle: a gap the transcript names.
    room = await open_recorded_room(api, tmp_path)
    mediator, bank, borrower = room.peers
    pausing = PausingSender(borrower)
    room.senders = [Sender(mediator), pausing]
    said: list[tuple[int, str]] = []
    try:
        await room.start_recording()
        await asyncio.sleep(3)
        pausing.pause(True)
        await asyncio.sleep(2)
        pausing.pause(False)
        await asyncio.sleep(2)
        for peer, text in ((borrower, "我可以每月还 2000 元。"), (mediator, "Noted: 2,000 a month.")):
            result = await peer.request("send_chat", {"text": text})
            assert result["ok"], result
            said.append((result["seq"], text))
            await asyncio.sleep(1.5)
        await asyncio.sleep(1.5)
        assert (await mediator.request("end_session", {}))["ok"]
        await _recorder_gone(api)
        await _transcript_sealed(api, room.case_id)
    finally:
        await room.close()
    recorded = {mediator.participant_id, borrower.participant_id}

    pages = Pages(browser, api.base)
    page = await pages.open("/compliance?lang=en", width=1360)
    await page.get_by_test_id("signin-form").wait_for(timeout=WAIT_MS)
    await sign_in(page, username)
    await load_identity_file(page, key.identity_file)
    await page.locator(f"[data-testid=case-open][data-case-id={room.case_id}]").click()
    session_id = await page.locator("[data-testid=session-group]").first.get_attribute("data-session-id")
    assert session_id
    verdict = await open_session(page, session_id)
    videos = await recording_videos(page)
    assert {v["participant"] for v in videos} == recorded, videos
    tiles = page.get_by_test_id("player-tile")
    assert {await tiles.nth(i).get_attribute("data-participant-id") for i in range(await tiles.count())} == recorded

    # The borrower's gap is drawn on its lane, and the result says the recording is incomplete.
    gaps = page.locator(f"[data-testid=player-lane][data-participant-id={borrower.participant_id}] "
                        "[data-testid=player-gap]")
    await gaps.first.wait_for(timeout=WAIT_MS)
    gap_from = float(await gaps.first.get_attribute("data-from") or "nan")
    gap_to = float(await gaps.first.get_attribute("data-to") or "nan")
    print(f"gap drawn for the borrower: {gap_from:.2f}-{gap_to:.2f} s "
          f"({await gaps.first.get_attribute('data-reason')}); verdict {verdict}")
    # About the 2 s pause: the gap ends at the first key frame after the media resumes, which the recorder
    # asks for and a loaded host can delay by a couple of seconds; it never spans the rest of the session.
    assert 1.0 <= gap_to - gap_from <= 5.0, (gap_from, gap_to)
    assert verdict == "incomplete"
    assert await page.locator(f"[data-testid=player-lane][data-participant-id={mediator.participant_id}] "
                              "[data-testid=player-presence]").count() >= 1
    await shot(page, AREA, "player-en")

    # Inside the gap the borrower's tile shows the placeholder; the mediator's plays on.
    await page.get_by_test_id("player-seek").fill(f"{(gap_from + gap_to) / 2:.1f}")
    borrower_tile = page.locator(f"[data-testid=player-tile][data-participant-id={borrower.participant_id}]")
    await page.wait_for_function(
        f"() => document.querySelector('[data-testid=player-tile][data-participant-id={borrower.participant_id}]')"
        ".dataset.state === 'gap'", timeout=WAIT_MS)
    assert await borrower_tile.get_by_test_id("player-placeholder").is_visible()

    # Play from a moment both were recorded: both videos advance together on the session clock.
    line = page.locator(f"[data-testid=timeline] [data-testid=timeline-entry][data-seq='{said[0][0]}']")
    start = float(await line.get_attribute("data-session-time") or "nan")
    await page.get_by_test_id("player-seek").fill(f"{start - 3:.1f}")
    await page.get_by_test_id("player-toggle").click()
    await page.locator("[data-testid=player-toggle][data-state=playing]").wait_for(timeout=WAIT_MS)
    await page.wait_for_function("""() => [...document.querySelectorAll('[data-testid=player-tile] video')]
        .filter(v => !v.hidden).every(v => !v.paused && v.readyState >= 3)""", timeout=WAIT_MS)
    samples = []
    for _ in range(6):
        await asyncio.sleep(0.5)
        times = await _player_times(page)
        assert all(t["session"] is not None and t["paused"] is False for t in times), times
        samples.append([t["session"] for t in times])
    spreads = [max(s) - min(s) for s in samples]
    advanced = [samples[-1][i] - samples[0][i] for i in range(len(samples[0]))]
    print(f"playing: spread between the two videos on the session clock {['%.3f' % d for d in spreads]} s; "
          f"each advanced {['%.2f' % a for a in advanced]} s in 2.5 s")
    assert max(spreads[1:]) <= 0.25, spreads  # after the first correction, in step
    assert all(a >= 1.5 for a in advanced), advanced

    # A transcript line seeks both videos to its time (while playing), and is the highlighted line.
    await page.get_by_test_id("player-toggle").click()
    await page.locator("[data-testid=player-toggle][data-state=paused]").wait_for(timeout=WAIT_MS)
    second = page.locator(f"[data-testid=timeline] [data-testid=timeline-entry][data-seq='{said[1][0]}']")
    target = float(await second.get_attribute("data-session-time") or "nan")
    await second.get_by_test_id("seek-line").focus()
    await page.keyboard.press("Enter")  # the keyboard reaches it as a button
    await page.wait_for_function(
        """(target) => [...document.querySelectorAll('[data-testid=player-tile] video')].filter(v => !v.hidden)
             .every(v => !v.seeking && Math.abs(v.currentTime + Number(v.dataset.offset) - target) < 0.1)""",
        arg=target, timeout=WAIT_MS)
    seeked = await _player_times(page)
    print(f"seek to line #{said[1][0]} at {target:.2f} s: videos at "
          f"{['%.3f' % t['session'] for t in seeked]} s on the session clock")
    assert len(seeked) == 2 and all(abs(t["session"] - target) < 0.1 for t in seeked), seeked
    assert await second.get_attribute("aria-current") == "time"
    assert "is-current" in (await second.get_attribute("class") or "")
    # Clicking the line itself does the same, and playing from there keeps the line current.
    await line.click()
    await page.wait_for_function(
        """(target) => [...document.querySelectorAll('[data-testid=player-tile] video')].filter(v => !v.hidden)
             .every(v => !v.seeking && Math.abs(v.currentTime + Number(v.dataset.offset) - target) < 0.1)""",
        arg=start, timeout=WAIT_MS)
    assert await line.get_attribute("aria-current") == "time"
    await shot(page, AREA, "player-seeked-en")
    await set_language(page, "zh-CN")
    assert await page.get_by_test_id("player-toggle").inner_text() == "播放"
    assert not pages.problems, pages.problems
