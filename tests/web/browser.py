"""What the browser tests share: Chromium, pages, screenshots, sign-in, and the steps people take.

Every browser test drives Debian's Chromium (/usr/bin/chromium) headless through Playwright, with a
fake camera and microphone. The `browser` and `api` fixtures live in tests/web/conftest.py; this
module holds plain functions, grouped by page:

- pages and pictures: `open_page`, `Pages` (a test's pages, failing on page errors and console
  errors), `shot` / `shots` / `phone_shots` (under test-artifacts/<area>/), `set_language`;
- staff sign-in: `sign_in` (every page's `signin-*` form), `sign_in_desk`;
- apply / case / desk steps: `fill_application`, `submit_application`, `open_case`, `verify_parties`,
  `accept_case`, `assign_staff`, `propose_session`, `confirm_session`, `issue_join_link`,
  `split_instalments`, `save_agreement`, `sign_agreement`, `close_case`, `fill_feedback`,
  `submit_feedback`, `refresh`, `toast`;
- possession: `enrol_device` (the code dialog, the code read from the party's mail)
- room steps: `join_room`, `admit`, `confirm_dialog`, `send_chat`, `give_consent`,
  `start_recording`, `end_session`, and decoded-frame sampling (`frames`, `rising`, `wait_rising`);
- compliance page steps: `generate_key`, `save_and_register_key`, `load_identity_file`,
  `open_session`, `recording_videos`, `overflowing`;
- accessibility: `Audit` runs axe-core (web_client/node_modules) and the touch-target check on a page
  as it stands, on a phone and a desktop screen, in both languages, photographing each into
  test-artifacts/<area>/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.conftest import STAFF_PASSWORD
from tests.support.mailbox import Mailbox

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DIST = ROOT / "web_client" / "dist"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this closed
# network refuses; fake media stands in for a camera and a microphone and needs no permission prompt.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
]
WAIT_MS = 30_000
ZONE = "Asia/Shanghai"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
AXE = ROOT / "web_client" / "node_modules" / "axe-core" / "axe.min.js"
# Pages bundled by esbuild (scripts/setup.sh builds them).
BUNDLED = {"/": "index", "/apply": "apply", "/case": "case", "/desk": "desk", "/compliance": "compliance", "/room": "room"}

expect.set_options(timeout=15_000)


# --- pages and pictures ------------------------------------------------------------------------------

def with_lang(url: str, lang: str) -> str:
    """`url` asking for `lang` (`?lang=en`); Chinese is every page's default and needs nothing."""
    parts = urlsplit(url)
    if lang == "zh-CN" or any(key == "lang" for key, _ in parse_qsl(parts.query)):
        return url
    query = f"{parts.query}&lang={lang}" if parts.query else f"lang={lang}"
    return parts._replace(query=query).geturl()


def _require_bundle(url: str) -> None:
    name = BUNDLED.get(urlsplit(url).path.rstrip("/") or "/")
    if name and not (DIST / f"{name}.js").is_file():
        raise RuntimeError(f"{DIST / name}.js is missing: run scripts/setup.sh (it runs npm run build in web_client)")


async def open_page(browser: Browser, url: str, lang: str = "zh-CN", *, width: int = 1280, height: int = 800,
                    **context_options) -> Page:
    """A new page in a context of its own (own cookies and storage: one person), opened at `url`."""
    url = with_lang(url, lang)
    _require_bundle(url)
    context = await browser.new_context(viewport={"width": width, "height": height}, locale=lang, **context_options)
    page = await context.new_page()
    await page.goto(url)
    return page


class Pages:
    """The pages of one test, each person in their own context; page errors and console errors
    (a CSP violation among them) are collected in `problems`, on popups too."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.browser, self.base = browser, base
        self.contexts: list[BrowserContext] = []
        self.problems: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))

        def console(message: ConsoleMessage) -> None:
            # A 4xx answer is logged by Chromium as "Failed to load resource"; that is the API working.
            if message.type == "error" and "Failed to load resource" not in message.text:
                self.problems.append(f"{page.url}: console: {message.text}")

        page.on("console", console)

    async def open(self, path: str, lang: str = "zh-CN", *, width: int = 1280, height: int = 900,
                   init_script: str | None = None) -> Page:
        """`path` on this server (or a whole URL), in `lang`, in a new context (running `init_script`
        in each of its documents before the page's own scripts)."""
        url = with_lang(path if "://" in path else self.base + path, lang)
        _require_bundle(url)
        context = await self.browser.new_context(viewport={"width": width, "height": height}, locale=lang,
                                                 timezone_id=ZONE, accept_downloads=True)
        self.contexts.append(context)
        context.on("page", self.watch)  # the first page and any popup (target=_blank) it opens
        if init_script:
            await context.add_init_script(init_script)
        page = await context.new_page()
        await page.goto(url)
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


def artifacts(area: str) -> Path:
    folder = ARTIFACTS / area
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def shot(page: Page, area: str, name: str, *, full_page: bool = True) -> None:
    """test-artifacts/<area>/<name>.png"""
    await page.screenshot(path=str(artifacts(area) / f"{name}.png"), full_page=full_page, timeout=WAIT_MS * 2)


async def set_language(page: Page, lang: str) -> None:
    """Switch the page's language with its own switch, and wait until it has redrawn."""
    await page.get_by_test_id("lang-select").select_option(lang)
    await page.wait_for_function("lang => document.documentElement.lang === lang", arg=lang)


async def shots(page: Page, area: str, name: str) -> None:
    """Full-page screenshots in the page's language and in the other one (switched in the page):
    <name>-zh-CN.png and <name>-en.png."""
    switch = page.get_by_test_id("lang-select")
    first = await switch.input_value()
    other = "en" if first == "zh-CN" else "zh-CN"
    # Notices float over the page (position: fixed) wherever a full-page capture puts them.
    await page.evaluate("() => document.getElementById('toasts')?.replaceChildren()")
    await shot(page, area, f"{name}-{first}")
    await switch.select_option(other)
    await expect(page.locator("html")).to_have_attribute("lang", other)
    await shot(page, area, f"{name}-{other}")
    await switch.select_option(first)
    await expect(page.locator("html")).to_have_attribute("lang", first)


async def phone_shots(page: Page, area: str, name: str) -> None:
    """`shots` on a phone-sized screen; the page must not be wider than the phone."""
    viewport = page.viewport_size
    await page.set_viewport_size({"width": 390, "height": 844})
    try:
        await shots(page, area, f"{name}-phone")
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{page.url} is {overflow}px wider than a phone screen"
    finally:
        if viewport:
            await page.set_viewport_size(viewport)


async def overflowing(page: Page) -> list[str]:
    """Elements that stick out to the right of the viewport (a horizontal scroll bar on a phone)."""
    return await page.evaluate("""() => {
        if (document.documentElement.scrollWidth <= innerWidth) return [];
        return [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > innerWidth + 1)
            .map(e => `${e.tagName.toLowerCase()}.${e.className}[${e.dataset.testid || ''}]`)
            .slice(0, 15); }""")


# --- staff sign-in -----------------------------------------------------------------------------------

async def sign_in(page: Page, username: str, password: str = STAFF_PASSWORD) -> None:
    """Fill and send the `signin-*` form (room, desk and compliance pages share its hooks)."""
    await page.get_by_test_id("signin-username").fill(username)
    await page.get_by_test_id("signin-password").fill(password)
    await page.get_by_test_id("signin-submit").click()


async def sign_in_desk(page: Page, username: str) -> None:
    await sign_in(page, username)
    await expect(page.get_by_test_id("who-name")).to_be_visible()


# --- application, case view and desk -----------------------------------------------------------------

async def refresh(page: Page) -> None:
    await page.get_by_test_id("refresh").click()
    await expect(page.get_by_test_id("refresh")).to_be_enabled()


async def toast(page: Page, tone: str) -> str:
    notice = page.locator(f"[data-testid=toast][data-tone={tone}]").last
    await expect(notice).to_be_visible()
    return await notice.inner_text()


def local_start(days: int = 2, hour: int = 10) -> str:
    """A `datetime-local` value `days` from now at `hour`:00 in the pages' time zone (Shanghai)."""
    start = (dt.datetime.now(ZoneInfo(ZONE)) + dt.timedelta(days=days)).replace(hour=hour, minute=0)
    return start.strftime("%Y-%m-%dT%H:%M")


async def fill_application(page: Page, fields: dict[str, str]) -> None:
    """Type into the application form: keys are the `apply-<field>` hooks (name, email, phone,
    lender, loan-reference, principal, overdue, days, proposal), values as a borrower types them."""
    for field, value in fields.items():
        await page.get_by_test_id(f"apply-{field}").fill(value)


async def submit_application(page: Page) -> tuple[str, str]:
    """Send the form; returns the receipt's case number and private link."""
    await page.get_by_test_id("apply-submit").click()
    await expect(page.get_by_test_id("receipt")).to_be_visible()
    number = (await page.get_by_test_id("receipt-number").inner_text()).strip()
    return number, await page.get_by_test_id("receipt-link").input_value()


async def open_case(desk: Page, case_number: str) -> None:
    await desk.get_by_test_id("case-link").filter(has_text=case_number).click()
    await expect(desk.get_by_test_id("case-number")).to_have_text(case_number)


def case_id_of(desk: Page) -> str:
    """The case open in the desk (its address is /desk#/case/<case id>)."""
    fragment = urlsplit(desk.url).fragment
    assert fragment.startswith("/case/"), desk.url
    return fragment.removeprefix("/case/")


LENDER_EMAIL = "mediation@bank.example"


async def verify_parties(desk: Page, reference: str = "原件已核对") -> None:
    """The case officer records each party's identity check (ID card; the bank's authorization, with the
    bank's mediation mailbox, where the lender's session links go)."""
    for role in ("borrower", "lender"):
        await desk.get_by_test_id(f"verify-method-{role}").select_option(
            "id_card" if role == "borrower" else "bank_authorization")
        await desk.get_by_test_id(f"verify-reference-{role}").fill(reference)
        if role == "lender":
            await desk.get_by_test_id("verify-email-lender").fill(LENDER_EMAIL)
        await desk.get_by_test_id(f"verify-{role}").click()
        await expect(desk.get_by_test_id(f"party-{role}")).to_have_attribute("data-verified", "true")


async def accept_case(desk: Page) -> None:
    await desk.get_by_test_id("accept").click()
    await expect(desk.get_by_test_id("case-state")).to_have_attribute("data-state", "accepted")


async def assign_staff(desk: Page, mediator_id: str, bank_id: str, mediator_name: str, bank_name: str) -> None:
    await desk.get_by_test_id("assign-mediator").select_option(mediator_id)
    await desk.get_by_test_id("assign-bank_representative").select_option(bank_id)
    await desk.get_by_test_id("assign-save").click()
    await expect(desk.get_by_test_id("detail-mediator")).to_have_text(mediator_name)
    await expect(desk.get_by_test_id("detail-bank")).to_have_text(bank_name)


async def propose_session(desk: Page, start: str, minutes: int = 60) -> None:
    """The mediator (or case officer) proposes a session time; `start` is a `datetime-local` value."""
    sessions = desk.get_by_test_id("session")
    before = await sessions.count()
    await desk.get_by_test_id("propose-start").fill(start)
    await desk.get_by_test_id("propose-duration").fill(str(minutes))
    await desk.get_by_test_id("propose-submit").click()
    await expect(sessions).to_have_count(before + 1)


async def enrol_device(page: Page, mailbox: Mailbox, address: str) -> None:
    """The code dialog is open: send a code, read it in the party's mail as a person does, type it in; the
    device is enrolled (its non-extractable key kept in the browser) and the dialog closes."""
    dialog = page.get_by_test_id("possession-dialog")
    await dialog.wait_for(state="visible", timeout=WAIT_MS)
    before = len(mailbox.messages)
    await page.get_by_test_id("possession-send").click()
    mail = await mailbox.wait_for(address, "enrolling this device", after=before)
    match = re.search(r"\b([0-9]{8})\b", mail.text)
    assert match is not None, mail.text
    await page.get_by_test_id("possession-code").fill(match.group(1))
    await page.get_by_test_id("possession-confirm").click()
    await expect(dialog).to_have_count(0, timeout=WAIT_MS)  # enrolment, then the act it was asked for


async def confirm_session(page: Page, mailbox: Mailbox | None = None, address: str = "") -> None:
    """A party confirms the proposed time: the borrower in /case, the bank representative in /desk. With
    ``mailbox``, this device is not enrolled yet: the code dialog asks for the code sent to ``address``."""
    button = page.get_by_test_id("confirm-session")
    await button.click()
    if mailbox is not None:
        await enrol_device(page, mailbox, address)
    await expect(button).to_have_count(0)


async def issue_join_link(desk: Page, role: str) -> str:
    """The mediator issues a party's join link; returns its link_id. The desk shows where it was delivered,
    never the link: the party reads it in its case page or its mail."""
    await desk.get_by_test_id(f"issue-link-{role}").click()
    issued = desk.get_by_test_id("issued-link")
    await expect(issued).to_have_attribute("data-role", role)
    await expect(issued.locator("[data-testid=delivery][data-channel=email]")).to_have_attribute("data-status", "sent")
    assert "jln_" not in await desk.content()
    link_id = await issued.get_attribute("data-link-id")
    assert link_id is not None
    return link_id


async def split_instalments(desk: Page, count: int, first_due: str) -> None:
    """Split the settled amount into `count` monthly instalments from `first_due` (YYYY-MM-DD)."""
    await desk.get_by_test_id("split-count").fill(str(count))
    await desk.get_by_test_id("split-first").fill(first_due)
    await desk.get_by_test_id("split-apply").click()
    await expect(desk.get_by_test_id("agreement-editor").get_by_test_id("instalment-row")).to_have_count(count)
    await expect(desk.get_by_test_id("sum-check")).to_have_attribute("data-tone", "ok")


async def save_agreement(desk: Page, *, waived: str | None = None, terms: str | None = None) -> None:
    """Fill the waived penalties and free-text terms, save the draft, and wait until it is a draft."""
    if waived is not None:
        await desk.get_by_test_id("agreement-waived-input").fill(waived)
    if terms is not None:
        await desk.get_by_test_id("agreement-terms-input").fill(terms)
    await desk.get_by_test_id("agreement-save").click()
    await expect(desk.get_by_test_id("agreement-state")).to_have_attribute("data-state", "draft")


async def sign_agreement(page: Page, signer: str) -> None:
    """Tick "I have read it" and sign with this device's enrolled key (WebCrypto Ed25519, enrolled when the
    party confirmed): no code is asked for; `signer` is borrower | lender."""
    await page.get_by_test_id("agreement-consent").check()
    await page.get_by_test_id("agreement-sign").click()
    await expect(page.get_by_test_id(f"signature-{signer}")).to_have_attribute("data-signed", "true")
    await expect(page.get_by_test_id("possession-dialog")).to_have_count(0)


async def close_case(desk: Page, note: str, outcome: str = "settled") -> None:
    await desk.get_by_test_id("close-outcome").select_option(outcome)
    await desk.get_by_test_id("close-note").fill(note)
    await desk.get_by_test_id("close-submit").click()
    await desk.get_by_test_id("close-confirm").click()
    await expect(desk.get_by_test_id("case-state")).to_have_attribute("data-state", "closed")


async def fill_feedback(page: Page, rating: int, comment: str) -> None:
    await page.get_by_test_id(f"rating-{rating}").check(force=True)  # the radio is styled away
    await page.get_by_test_id("feedback-comment").fill(comment)


async def submit_feedback(page: Page) -> None:
    await page.get_by_test_id("feedback-submit").click()
    await expect(page.get_by_test_id("feedback-thanks")).to_be_visible()


# --- the room ----------------------------------------------------------------------------------------

async def join_room(page: Page) -> None:
    """Press "join" on the pre-join screen once the page has its media and the join result."""
    button = page.get_by_test_id("join-button")
    await button.wait_for(state="visible", timeout=WAIT_MS)
    await page.wait_for_function("() => !document.querySelector('[data-testid=join-button]').disabled",
                                 timeout=WAIT_MS)
    await button.click()


async def admit(mediator: Page, *participants: str) -> None:
    """The mediator admits lobby members, in this order."""
    for participant in participants:
        button = mediator.get_by_test_id(f"admit-{participant}")
        await button.wait_for(state="visible", timeout=WAIT_MS)
        await button.click()


async def confirm_dialog(page: Page) -> None:
    """Confirm the room's dialog if the action opened one."""
    confirm = page.get_by_test_id("dialog-confirm")
    if await confirm.is_visible():
        await confirm.click()


async def send_chat(page: Page, text: str) -> int:
    """Send a chat message and wait until the page shows it as its own; returns its sequence number."""
    own = page.locator("[data-testid=chat-message][data-own=true]")
    before = await own.count()
    await page.get_by_test_id("chat-input").fill(text)
    await page.get_by_test_id("chat-send").click()
    await expect(own).to_have_count(before + 1, timeout=WAIT_MS)
    return int(await own.nth(before).get_attribute("data-seq") or -1)


async def give_consent(page: Page) -> None:
    """A party consents to the recording in the room's consent panel, proved silently by the device enrolled
    when it confirmed the session (no code dialog)."""
    await page.get_by_test_id("consent-accept").click()
    await page.get_by_test_id("consent-withdraw").wait_for(state="visible", timeout=WAIT_MS)
    await expect(page.get_by_test_id("possession-dialog")).to_have_count(0)


async def start_recording(mediator: Page, *others: Page) -> None:
    """The mediator starts recording once every party has consented; every page shows the indicator."""
    await mediator.wait_for_function("""() => {
        const button = document.querySelector('[data-testid=start-recording]');
        return button && !button.hidden && !button.disabled; }""", timeout=WAIT_MS)
    await mediator.get_by_test_id("start-recording").click()
    for page in (mediator, *others):
        await page.get_by_test_id("recording-indicator").wait_for(state="visible", timeout=WAIT_MS)


async def end_session(mediator: Page, *others: Page) -> None:
    """The mediator ends the session (with the confirmation); every page says it has ended."""
    await mediator.get_by_test_id("end-session").click()
    await confirm_dialog(mediator)
    for page in (mediator, *others):
        await page.locator("[data-testid=status][data-state=ended]").wait_for(timeout=WAIT_MS)


async def frames(page: Page) -> dict[str, int]:
    """Decoded frames so far of each remote video on the page, by participant."""
    return await page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('[data-testid=remote-video]')].map(v => [
            v.closest('[data-participant-id]')?.dataset.participantId || v.dataset.participantId,
            v.getVideoPlaybackQuality().totalVideoFrames]))""")


async def rising(page: Page, participants: set[str], seconds: float = 3.0) -> dict[str, bool]:
    before = await frames(page)
    await asyncio.sleep(seconds)
    after = await frames(page)
    return {p: after.get(p, 0) > before.get(p, 0) for p in participants}


async def wait_rising(page: Page, participants: set[str]) -> None:
    """Wait until the page decodes a rising number of frames from each of `participants`."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        now = await rising(page, participants, 1.5)
        if all(now.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"remote video not flowing on {page.url}: {now}, {await frames(page)}")


# --- the compliance page -----------------------------------------------------------------------------

async def generate_key(page: Page) -> str:
    """Make an age key pair in the page; returns the secret key it shows (once)."""
    await page.get_by_test_id("generate-key").click()
    secret = (await page.get_by_test_id("secret-key").inner_text()).strip()
    assert secret.startswith("AGE-SECRET-KEY-1"), secret
    return secret


async def save_and_register_key(page: Page, identity_file: Path,
                                approve: Callable[[str], Awaitable[object]]) -> str:
    """Download the generated secret key file to `identity_file`, tick "saved", propose the public
    key, have `approve` approve it (as second persons), reload; returns the recipient (age1…) the page
    shows as registered, in force."""
    async with page.expect_download() as download_info:
        await page.get_by_test_id("download-secret").click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".txt"), download.suggested_filename
    await download.save_as(identity_file)
    shown = (await page.get_by_test_id("secret-recipient").inner_text()).strip()
    await page.get_by_test_id("secret-saved").check()
    await page.get_by_test_id("register-generated").click()
    await page.get_by_test_id("key-pending").filter(has_text=shown).wait_for(timeout=WAIT_MS)
    assert await page.get_by_test_id("secret-key-panel").is_hidden()
    await approve(shown)
    await page.reload()
    await page.get_by_test_id("statement-recipient").filter(has_text=shown).wait_for(timeout=WAIT_MS)
    await page.get_by_test_id("registered-recipient").filter(has_text=shown).wait_for(timeout=WAIT_MS)
    return (await page.get_by_test_id("registered-recipient").inner_text()).strip()


async def load_identity_file(page: Page, identity_file: Path) -> None:
    """Read the officer's age identity from a local file, in the page (never uploaded)."""
    await page.get_by_test_id("identity-file").set_input_files(str(identity_file))
    await page.locator("[data-testid=identity-panel][data-state=loaded]").wait_for(timeout=WAIT_MS)


async def open_session(page: Page, session_id: str) -> str:
    """Click "verify and open" for the session; return the verification state the page settles on."""
    await page.locator(f"[data-testid=open-session][data-session-id={session_id}]").click()
    verdict = page.locator("[data-testid=verification]:not([data-state=working])")
    await verdict.wait_for(timeout=WAIT_MS)
    return await verdict.get_attribute("data-state") or ""


async def recording_videos(page: Page) -> list[dict]:
    """Every recording video on the page, once each has a finite duration (or an error)."""
    await page.wait_for_function(
        """() => { const v = [...document.querySelectorAll('[data-testid=recording-video]')];
                   return v.length > 0
                       && v.every(e => e.error || (Number.isFinite(e.duration) && e.readyState >= 1)); }""",
        timeout=WAIT_MS)
    return await page.evaluate("""() => [...document.querySelectorAll('[data-testid=recording-video]')]
      .map(v => ({
        participant: v.dataset.participantId, part: v.dataset.part, complete: v.dataset.complete,
        duration: v.duration, readyState: v.readyState, error: v.error ? v.error.code : null,
        width: v.videoWidth}))""")


# --- accessibility -----------------------------------------------------------------------------------

# WCAG 2.2 A and AA plus axe's best practices; only critical and serious findings fail a test.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
TOUCH_MIN = 44  # px, each side of anything a finger presses on a phone


async def axe_violations(page: Page) -> list[str]:
    """axe-core's critical and serious violations on the page as it is now, one line per element.
    axe is evaluated through the DevTools protocol, which the pages' CSP does not govern."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        if not AXE.is_file():
            raise RuntimeError(f"{AXE} is missing: run scripts/setup.sh (npm ci in web_client)")
        await page.evaluate(AXE.read_text())
    return await page.evaluate("""async (tags) => {
        const result = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
        return result.violations.filter(v => v.impact === "critical" || v.impact === "serious")
          .flatMap(v => v.nodes.map(n => `${v.impact} ${v.id}: ${n.target.join(" ")}: ${n.failureSummary.replace(/\\s+/g, " ")}`));
    }""", AXE_TAGS)


async def small_targets(page: Page) -> list[str]:
    """Visible controls smaller than TOUCH_MIN either way (links inside running text are exempt, as WCAG
    2.5.8 allows; a control drawn over a visually hidden input is measured by its label)."""
    return await page.evaluate("""(min) => {
        const found = [];
        const controls = document.querySelectorAll(
            "button, select, textarea, input:not([type=hidden]), summary, a[href], [role=tab], label:has(> input.visually-hidden, > input[type=radio], > input[type=checkbox])");
        for (const el of controls) {
            const box = el.getBoundingClientRect();
            if (box.width <= 1 || box.height <= 1 || el.closest("[hidden], [inert], .visually-hidden")) continue;
            const style = getComputedStyle(el);
            if (style.visibility === "hidden" || Number(style.opacity) === 0) continue;
            if (el.matches("input[type=radio], input[type=checkbox]") && el.closest("label")) continue;
            if (el.matches("a") && style.display === "inline" && el.closest("p, li, dd, td")) continue;
            if (box.width < min - 0.5 || box.height < min - 0.5) {
                const name = (el.getAttribute("aria-label") || el.textContent || "").trim().slice(0, 30);
                found.push(`${el.tagName.toLowerCase()}[${el.dataset.testid || el.id || el.className}] "${name}" is ${Math.round(box.width)}x${Math.round(box.height)}`);
            }
        }
        return found;
    }""", TOUCH_MIN)


class Audit:
    """Every page and room state checked as it stands: axe-core (critical and serious), touch targets
    on the phone, on a phone (390x844) and a desktop (1440x900) screen, in zh-CN and English, each
    photographed to test-artifacts/<area>/<name>-<phone|desktop>-<lang>.png. Findings are collected;
    `assert_clean` fails with all of them printed."""

    def __init__(self, area: str) -> None:
        self.area = area
        self.findings: list[str] = []
        self.checked: list[str] = []

    async def check(self, page: Page, name: str, *, viewports: tuple[str, ...] = ("phone", "desktop"),
                    full_page: bool = True) -> None:
        before_size = page.viewport_size
        switch = page.get_by_test_id("lang-select")
        first = await switch.input_value()
        try:
            for viewport in viewports:
                await page.set_viewport_size(PHONE if viewport == "phone" else DESKTOP)
                for lang in (first, "en" if first == "zh-CN" else "zh-CN"):
                    if await page.evaluate("() => document.documentElement.lang") != lang:
                        await set_language(page, lang)
                    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                    # A notice still fading in has its colours blended with what is under it: check what a
                    # person reads once it has settled (endless animations, such as spinners, are left running).
                    await page.evaluate("""() => Promise.all(document.getAnimations()
                        .filter(a => a.effect?.getComputedTiming().iterations !== Infinity)
                        .map(a => a.finished.catch(() => null)))""")
                    label = f"{name}-{viewport}-{lang}"
                    found = await axe_violations(page)
                    if viewport == "phone":
                        found += [f"touch target {t}" for t in await small_targets(page)]
                    self.findings += [f"{label}: {f}" for f in found]
                    self.checked.append(label)
                    await shot(page, self.area, label, full_page=full_page)
        finally:
            if await page.evaluate("() => document.documentElement.lang") != first:
                await set_language(page, first)
            if before_size:
                await page.set_viewport_size(before_size)

    def assert_clean(self, *, known: tuple[str, ...] = ()) -> None:
        """Fail on every finding but those naming one of ``known``: defects on record as open (each named with
        its reason where it is passed), printed on every run so they stay in sight until fixed."""
        print(f"accessibility: {len(self.checked)} views checked, {len(self.findings)} findings")
        for finding in self.findings:
            print(finding)
        open_ones = [f for f in self.findings if not any(k in f for k in known)]
        assert open_ones == [], "\n".join(open_ones[:80])
