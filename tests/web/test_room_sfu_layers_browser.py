"""Real Chromium pages through Janus: each video comes in the simulcast layer its tile needs, and a Janus
killed mid-session (SIGKILL) and started again brings every page's remote video back by itself.

Read from the pages' own getStats: a page on a phone-sized screen, whose tiles are small, decodes its remote
videos at most 640 pixels wide (the low or middle layer); a page on a large screen, whose tiles are wide,
decodes them wider than 640 (the top layer) - from the same publishers at the same time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import Api, _serve, janus_settings, make_settings, walk_to_scheduled
from tests.signaling.conftest import issue_link
from tests.support.janus import JanusServer
from tests.support.mailbox import Mailbox
from tests.web.browser import WAIT_MS, _require_bundle, admit, join_room, send_chat, sign_in, wait_rising, with_lang
from tests.web.test_room_sfu_browser import KEEP_CONNECTIONS

# Per remote participant, the width of the frames the page decodes from it; per simulcast layer this page
# sends (rid), the width it encodes.
LAYERS = """async () => {
  const owners = {};
  for (const video of document.querySelectorAll('[data-testid=remote-video]')) {
    const id = video.closest('[data-participant-id]')?.dataset.participantId || video.dataset.participantId;
    for (const track of (video.srcObject ? video.srcObject.getVideoTracks() : [])) owners[track.id] = id;
  }
  const widths = {}, sent = {};
  for (const pc of window.__connections || []) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && owners[s.trackIdentifier] && s.frameWidth) {
        widths[owners[s.trackIdentifier]] = s.frameWidth;
      }
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid) sent[s.rid] = s.frameWidth || 0;
    });
  }
  return {widths, sent};
}"""

# On failure: each connection's state and its video RTP in and out.
DIAGNOSIS = """async () => Promise.all((window.__connections || []).map(async (pc) => {
  const rtp = [];
  (await pc.getStats()).forEach((s) => {
    if ((s.type === 'inbound-rtp' || s.type === 'outbound-rtp') && s.kind === 'video') {
      rtp.push([s.type, s.rid || '', s.bytesReceived ?? s.bytesSent, s.framesDecoded ?? s.framesEncoded,
                s.frameWidth || 0, s.pliCount ?? 0, s.qualityLimitationReason || '']);
    }
  });
  return {state: pc.connectionState, rtp};
}))"""

PHONE = {"width": 390, "height": 844}
LARGE = {"width": 2000, "height": 1200}


@pytest.fixture
async def api_sfu(tmp_path: Path, mailbox: Mailbox, janus: JanusServer) -> AsyncIterator[Api]:
    settings = make_settings(tmp_path, login_attempts_per_minute=200, applications_per_minute=200,
                             **mailbox.settings(), **janus_settings(janus))
    async for client in _serve(settings, mailbox):
        yield client


@pytest.fixture
async def api_own_janus(tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[tuple[Api, JanusServer]]:
    """A server with a Janus of its own, which the test kills."""
    server = JanusServer().start()
    try:
        settings = make_settings(tmp_path, login_attempts_per_minute=200, applications_per_minute=200,
                                 **mailbox.settings(), **janus_settings(server))
        async for client in _serve(settings, mailbox):
            yield client, server
    finally:
        server.stop()


async def open_sized(browser: Browser, url: str, viewport: dict[str, int]) -> Page:
    url = with_lang(url, "en")
    _require_bundle(url)
    context = await browser.new_context(viewport=viewport, locale="en")
    await context.add_init_script(KEEP_CONNECTIONS)
    page = await context.new_page()
    await page.goto(url)
    return page


async def tile_widths(page: Page) -> dict[str, int]:
    return await page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        '[data-testid=remote-tile]')].map((t) => [t.dataset.participantId, Math.round(t.getBoundingClientRect().width)]))""")


async def wait_layers(page: Page, senders: set[str], fits: Any) -> dict[str, Any]:
    """Poll the page's statistics until every sender's decoded width ``fits``; the last reading either way."""
    deadline = time.monotonic() + 2 * WAIT_MS / 1000
    while True:
        now = await page.evaluate(LAYERS)
        if all(fits(now["widths"].get(pid, 0)) for pid in senders) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_room_sfu_small_tiles_receive_a_low_layer_large_tiles_the_top_one(api_sfu: Api,
                                                                                browser: Browser) -> None:
    api = api_sfu
    journey = await walk_to_scheduled(api)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    room_url = f"{api.base}/room?session={journey.session_id}"
    mediator = await open_sized(browser, room_url, LARGE)
    await sign_in(mediator, users[journey.mediator_id])
    await join_room(mediator)
    bank = await open_sized(browser, room_url, PHONE)
    await sign_in(bank, users[journey.bank_id])
    await join_room(bank)
    borrower_link = await issue_link(api, journey, journey.borrower_id)
    borrower = await open_sized(browser, f"{api.base}/room#{borrower_link}", {"width": 1024, "height": 700})
    await join_room(borrower)
    pages = {journey.mediator_id: mediator, journey.bank_id: bank, journey.borrower_id: borrower}
    await admit(mediator, journey.bank_id, journey.borrower_id)
    try:
        for pid, page in pages.items():
            await wait_rising(page, set(pages) - {pid})
    except AssertionError:
        for pid, page in pages.items():
            print(pid, page.viewport_size, await page.evaluate(DIAGNOSIS))
        raise

    large = await wait_layers(mediator, {journey.bank_id, journey.borrower_id}, lambda width: width > 640)
    small = await wait_layers(bank, {journey.mediator_id, journey.borrower_id}, lambda width: 0 < width <= 640)
    print(f"\nlarge screen: tiles {await tile_widths(mediator)} px, decoded widths {large['widths']}"
          f"\nphone screen: tiles {await tile_widths(bank)} px, decoded widths {small['widths']}"
          f"\nlayers sent (rid: width): mediator {large['sent']}, bank {small['sent']}")
    # Each page sends its camera in three layers, the top one wider than 640.
    for reading in (large, small):
        assert set(reading["sent"]) == {"h", "m", "l"}, reading
    assert all(large["widths"].get(pid, 0) > 640 for pid in (journey.bank_id, journey.borrower_id)), large
    assert all(0 < small["widths"].get(pid, 0) <= 640 for pid in (journey.mediator_id, journey.borrower_id)), small

    # The phone turns sideways and its tiles widen past 640 device pixels: the top layer follows.
    await bank.set_viewport_size({"width": 1800, "height": 1000})
    wide = await wait_layers(bank, {journey.mediator_id, journey.borrower_id}, lambda width: width > 640)
    print(f"phone widened: tiles {await tile_widths(bank)} px, decoded widths {wide['widths']}")
    assert all(wide["widths"].get(pid, 0) > 640 for pid in (journey.mediator_id, journey.borrower_id)), wide


CONNECTIONS = "() => (window.__connections || []).length"


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_room_sfu_janus_killed_and_restarted_every_page_publishes_again(
        api_own_janus: tuple[Api, JanusServer], browser: Browser, caplog: pytest.LogCaptureFixture) -> None:
    api, janus = api_own_janus
    caplog.set_level(logging.WARNING, logger="mediation.signaling.sfu")
    journey = await walk_to_scheduled(api)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    mediator = await open_sized(browser, f"{api.base}/room?session={journey.session_id}",
                                {"width": 1024, "height": 700})
    await sign_in(mediator, users[journey.mediator_id])
    await join_room(mediator)
    borrower_link = await issue_link(api, journey, journey.borrower_id)
    borrower = await open_sized(browser, f"{api.base}/room#{borrower_link}", {"width": 1024, "height": 700})
    await join_room(borrower)
    await admit(mediator, journey.borrower_id)
    pages = {journey.mediator_id: mediator, journey.borrower_id: borrower}
    for pid, page in pages.items():
        await wait_rising(page, set(pages) - {pid})
    before = await send_chat(mediator, "before the media server stops")
    made = {pid: await page.evaluate(CONNECTIONS) for pid, page in pages.items()}

    killed = time.monotonic()
    janus.kill()
    janus.start()
    for pid, page in pages.items():
        await wait_rising(page, set(pages) - {pid})
    print(f"\nJanus killed and restarted: remote video decoding again on both pages "
          f"{time.monotonic() - killed:.1f} s after the kill")
    # The server saw the session go (its long poll) and told both members to publish again (media_reset),
    # rather than the pages finding out by their connections failing.
    lost = [r for r in caplog.records if r.getMessage() == "Janus session lost; members publish again"]
    assert [getattr(r, "members", None) for r in lost] == [2], lost
    # Each page made new connections: its media went up again to the new Janus, not an old flow resuming.
    for pid, page in pages.items():
        assert await page.evaluate(CONNECTIONS) >= made[pid] + 2, pid
    # The room itself never went through Janus: nobody was sent back to the lobby, the chat goes on in order.
    after = await send_chat(borrower, "after the media server came back")
    assert after > before
    for page in pages.values():
        texts = await page.locator("[data-testid=chat-message]").all_inner_texts()
        assert any("before the media server stops" in t for t in texts), texts
        assert any("after the media server came back" in t for t in texts), texts
