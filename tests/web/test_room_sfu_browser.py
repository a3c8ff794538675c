"""Three and four real Chromium pages meet through Janus: one uplink each, isolation held at the SFU.

What each page sends and receives is read from its own RTCPeerConnections' getStats: exactly one outbound
video stream per page whatever the room's size; remote videos decode; while a caucus runs, the page left
out receives no byte of a caucus member's video; a removed participant's video stops reaching the others
within a second (the figure is printed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.conftest import Api, _serve, janus_settings, make_settings, walk_to_scheduled
from tests.signaling.conftest import issue_link
from tests.support.janus import JanusServer
from tests.support.mailbox import Mailbox
from tests.web.browser import WAIT_MS, _require_bundle, admit, join_room, sign_in, wait_rising, with_lang

# Every RTCPeerConnection the page makes is kept where the test can ask it for its statistics.
KEEP_CONNECTIONS = """(() => {
  const Original = window.RTCPeerConnection;
  if (!Original) return;
  window.__connections = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__connections.push(this); }
  };
})();"""

# Over the open connections: outbound video streams (a camera's simulcast layers count once), and inbound video bytes by the participant whose tile shows
# the track (tracks no tile shows, e.g. an m-line the server made inactive, under "").
STATS = """async () => {
  const owners = {};
  for (const video of document.querySelectorAll('[data-testid=remote-video]')) {
    const id = video.closest('[data-participant-id]')?.dataset.participantId || video.dataset.participantId;
    for (const track of (video.srcObject ? video.srcObject.getVideoTracks() : [])) owners[track.id] = id;
  }
  // A camera sent in simulcast layers is one outbound stream per layer, all from one media source.
  const sources = new Set(), sent = new Set();
  const inbound = {};
  for (const [index, pc] of (window.__connections || []).entries()) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        sources.add(`${index}:${s.mediaSourceId}`);
        if (s.bytesSent > 0) sent.add(`${index}:${s.mediaSourceId}`);
      }
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        const who = owners[s.trackIdentifier] || '';
        inbound[who] = (inbound[who] || 0) + (s.bytesReceived || 0);
      }
    });
  }
  return {outbound: sources.size, sending: sent.size, inbound, connections: (window.__connections || []).filter(
    (pc) => pc.connectionState !== 'closed').length};
}"""


@pytest.fixture
async def api_sfu(tmp_path: Path, mailbox: Mailbox, janus: JanusServer) -> AsyncIterator[Api]:
    settings = make_settings(tmp_path, login_attempts_per_minute=200, applications_per_minute=200,
                             **mailbox.settings(), **janus_settings(janus))
    async for client in _serve(settings, mailbox):
        yield client


async def open_watched(browser: Browser, url: str, lang: str = "en") -> Page:
    url = with_lang(url, lang)
    _require_bundle(url)
    context = await browser.new_context(viewport={"width": 1024, "height": 700}, locale=lang)
    await context.add_init_script(KEEP_CONNECTIONS)
    page = await context.new_page()
    await page.goto(url)
    return page


async def confirm(page: Page) -> None:
    """Confirm the dialog the action opens, once it shows."""
    button = page.get_by_test_id("dialog-confirm")
    await button.wait_for(state="visible", timeout=WAIT_MS)
    await button.click()


async def open_caucus(mediator: Page, participant_id: str) -> None:
    """The mediator opens a caucus (the click dispatched: the roster is redrawn as media change), once."""
    for _attempt in range(3):
        await mediator.get_by_test_id(f"caucus-{participant_id}").dispatch_event("click")
        try:
            await mediator.get_by_test_id("close-caucus").wait_for(state="visible", timeout=5000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError("the caucus did not open")


async def stats(page: Page) -> dict:
    return await page.evaluate(STATS)


async def received(page: Page, seconds: float = 2.0) -> dict[str, int]:
    """Inbound video bytes each participant's tracks brought in over ``seconds``."""
    before = (await stats(page))["inbound"]
    await asyncio.sleep(seconds)
    after = (await stats(page))["inbound"]
    return {who: after.get(who, 0) - before.get(who, 0) for who in set(before) | set(after)}


async def wait_one_uplink(page: Page) -> dict:
    """Wait until the page sends its video (bytes out); then its counts."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        now = await stats(page)
        if now["sending"] >= 1 or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize("count", [3, 4])
async def test_room_sfu_browsers_one_uplink_caucus_isolation_and_removal(api_sfu: Api, browser: Browser,
                                                                         count: int) -> None:
    api = api_sfu
    journey = await walk_to_scheduled(api)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    room_url = f"{api.base}/room?session={journey.session_id}"
    mediator = await open_watched(browser, room_url)
    await sign_in(mediator, users[journey.mediator_id])
    await join_room(mediator)
    bank = await open_watched(browser, room_url)
    await sign_in(bank, users[journey.bank_id])
    await join_room(bank)
    borrower = await open_watched(browser, f"{api.base}/room#{await issue_link(api, journey, journey.borrower_id)}")
    await join_room(borrower)
    pages = {journey.mediator_id: mediator, journey.bank_id: bank, journey.borrower_id: borrower}
    if count == 4:
        lender = await open_watched(browser, f"{api.base}/room#{await issue_link(api, journey, journey.lender_id)}")
        await join_room(lender)
        pages[journey.lender_id] = lender
    await admit(mediator, *[pid for pid in pages if pid != journey.mediator_id])

    for pid, page in pages.items():
        await wait_rising(page, set(pages) - {pid})
    for pid, page in pages.items():
        counts = await wait_one_uplink(page)
        print(f"\n{count} pages: {pid[:8]} sends {counts['outbound']} video stream(s) on "
              f"{counts['connections']} connection(s)")
        assert counts["outbound"] == 1, counts
        assert counts["sending"] == 1, counts
        assert counts["connections"] == 2, counts  # one up, one down

    # A caucus with the borrower: the bank's page receives no byte of the mediator's or borrower's video.
    caucus = {journey.mediator_id, journey.borrower_id}
    await open_caucus(mediator, journey.borrower_id)
    await bank.get_by_test_id("caucus-banner").wait_for(state="visible", timeout=WAIT_MS)
    await asyncio.sleep(1.0)
    flows = await received(bank, 3.0)
    print(f"{count} pages: the excluded bank's inbound video bytes over 3 s during the caucus: {flows}")
    assert all(flows.get(pid, 0) == 0 for pid in caucus), flows
    assert flows.get("", 0) == 0, flows  # nor on an m-line no tile shows
    if count == 4:
        assert flows.get(journey.lender_id, 0) > 0, flows  # the other party left out still reaches the bank
    await wait_rising(borrower, {journey.mediator_id})
    # Dispatched: the mediator's bar is redrawn while the room changes; what matters here is the media.
    await mediator.get_by_test_id("close-caucus").dispatch_event("click")
    await bank.get_by_test_id("caucus-banner").wait_for(state="hidden", timeout=WAIT_MS)
    await wait_rising(bank, caucus)

    # Removal: the bank's video stops reaching the borrower within a second. The borrower, in the caucus,
    # receives the bank again once it closed: its tile shows the bank's new track.
    await wait_rising(borrower, {journey.bank_id})
    track = await borrower.evaluate("""(id) => {
        const tile = document.querySelector(`[data-participant-id="${id}"] [data-testid=remote-video]`)
            || document.querySelector(`[data-testid=remote-video][data-participant-id="${id}"]`);
        return tile && tile.srcObject ? tile.srcObject.getVideoTracks()[0].id : null; }""", journey.bank_id)
    assert track is not None
    bytes_of = """async (track) => {
        let total = 0;
        for (const pc of window.__connections || []) {
          if (pc.connectionState === 'closed') continue;
          (await pc.getStats()).forEach((s) => {
            if (s.type === 'inbound-rtp' && s.kind === 'video' && s.trackIdentifier === track) total += s.bytesReceived;
          });
        }
        return total; }"""
    await wait_rising(borrower, {journey.bank_id})
    await mediator.get_by_test_id(f"remove-{journey.bank_id}").dispatch_event("click")
    await mediator.get_by_test_id("dialog-confirm").wait_for(state="visible", timeout=WAIT_MS)
    # The measure is live: the bank's bytes are seen growing on the borrower's page just before the click.
    first = last = await borrower.evaluate(bytes_of, track)
    watched = time.monotonic()
    while time.monotonic() - watched < 1.0:
        await asyncio.sleep(0.05)
        last = await borrower.evaluate(bytes_of, track)
    assert last > first > 0, ("the bank's video is not seen arriving at the borrower", first, last)
    growth: list[float] = []

    async def watch_bank(until: float) -> None:
        # Samples the borrower's statistics while the click is under way, not only after it returned.
        seen = last
        while time.monotonic() < until:
            await asyncio.sleep(0.05)
            now = await borrower.evaluate(bytes_of, track)
            if now > seen:
                seen = now
                growth.append(time.monotonic())

    clicked = time.monotonic()
    watching = asyncio.create_task(watch_bank(clicked + 4.0))
    await mediator.get_by_test_id("dialog-confirm").dispatch_event("click")
    click_seconds = time.monotonic() - clicked
    await watching
    stopped = max(growth, default=clicked) - clicked
    print(f"{count} pages: the removed bank's video last reached the borrower {stopped:.3f} s after the click "
          f"(sampled every 0.05 s from the click on; the click call itself took {click_seconds:.3f} s)")
    assert stopped < 1.5
    await bank.locator("[data-testid=status][data-state=removed]").wait_for(timeout=WAIT_MS)
