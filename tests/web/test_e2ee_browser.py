"""End-to-end encrypted chat between three real Chromium pages, on PostgreSQL and Redis, chat sealed to an officer.

A hook on the node's room namespace records everything the node received and sent (every request's payload,
every notice and every acknowledgement). A canary phrase typed in the pages is read by the other members'
pages, and appears in nothing the node relayed or kept: not in those messages, not in the database, the
records directory, Redis's values or files. The caucus key never reaches the page left out, which cannot
decrypt caucus ciphertext a hook relays to it; a public key the node substitutes for one page makes that
page's security code differ from the others'. The officer's key opens the stored message, and the compliance
tool and page show both phrases in the chat and the transcript.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from recording.compliance.e2eekeys import decrypt_chat, parse_key_record
from recording.compliance.fetch import fetch_bundle
from recording.compliance.open import load_identities, open_bundle
from server.app import ROOM_STORE, ROOMS
from tests.conftest import Api, _serve, make_settings, walk_to_scheduled
from tests.recording.agekeys import age_binary, generate
from tests.recording.test_session_recording import _transcript_sealed
from tests.recording.test_canary import _redis_files_containing, _redis_values_containing, _rows_containing
from tests.signaling.conftest import issue_link
from tests.support.e2ee import DeviceKeys
from tests.support.services import RedisServer
from tests.web.browser import (
    WAIT_MS, Pages, admit, confirm_dialog, join_room, load_identity_file, open_page, open_session, send_chat, sign_in,
)

CANARY = "CANARY-e2ee-金丝雀-5521"
CAUCUS_CANARY = "CAUCUS-e2ee-私密-8830"


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer(appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()


class Wiretap:
    """Everything the node's room namespace received and sent, as JSON text; and a way to alter notices."""

    def __init__(self, namespace: Any) -> None:
        self.seen: list[tuple[str, Any, str]] = []  # (what, sid or target, JSON)
        self.alter: Callable[[str, Any, Any], Any] | None = None
        self._namespace = namespace
        self._emit, self._trigger = namespace.emit, namespace.trigger_event
        namespace.emit, namespace.trigger_event = self.emit, self.trigger_event

    async def emit(self, event: str, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        if self.alter is not None:
            data = self.alter(event, kwargs.get("to"), data)
        self.seen.append((f"emit:{event}", kwargs.get("to"), json.dumps(data, ensure_ascii=False, default=str)))
        return await self._emit(event, data, *args, **kwargs)

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        self.seen.append((f"in:{event}", args[0] if args else None, json.dumps(args[1:], ensure_ascii=False,
                                                                                default=str)))
        result = await self._trigger(event, *args)
        self.seen.append((f"ack:{event}", args[0] if args else None, json.dumps(result, ensure_ascii=False,
                                                                                 default=str)))
        return result

    def text(self) -> str:
        return "\n".join(f"{what} {target} {body}" for what, target, body in self.seen)

    def notices(self, event: str, to: str | None = None) -> list[Any]:
        return [json.loads(body) for what, target, body in self.seen
                if what == f"emit:{event}" and (to is None or target == to)]


async def _code(page: Page) -> str:
    code = page.get_by_test_id("security-code")
    await expect(code).to_have_text(re.compile(r"^\d{5}( \d{5}){4}$"), timeout=WAIT_MS)
    return await code.inner_text()


async def _codes_agree(pages: list[Page]) -> str:
    """Wait until every page shows the same security code; return it."""
    for _ in range(3):
        codes = [await _code(page) for page in pages]
        if len(set(codes)) == 1:
            return codes[0]
        await pages[0].wait_for_timeout(500)
    raise AssertionError(f"the pages show different security codes: {codes}")


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_e2ee_three_pages_node_relays_and_keeps_only_ciphertext(
        tmp_path: Path, postgres_url: str, redis_server: RedisServer, browser: Browser) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url, redis_url=redis_server.url,
                             login_attempts_per_minute=200, applications_per_minute=200)
    async for api in _serve(settings):
        officer = generate(tmp_path / "officer")
        _, compliance = await api.staff("compliance_officer", username="officer-e2ee")
        await api.approve_key(compliance, officer.recipient)
        case_id, session_id = await _session(api, browser, redis_server, officer)
        await _compliance_opens(api, browser, officer, compliance, case_id, session_id, tmp_path)
    needle = CANARY.encode()
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path
    assert await _rows_containing(postgres_url, CANARY) == []
    assert await _rows_containing(postgres_url, CAUCUS_CANARY) == []
    assert _redis_files_containing(redis_server, needle) == []


async def _session(api: Api, browser: Browser, redis_server: RedisServer, officer: Any) -> tuple[str, str]:
    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.borrower_id)
    users = {u.user_id: u.username for u in await api.services.accounts.list_staff()}
    borrower_id, bank_id, mediator_id = journey.borrower_id, journey.bank_id, journey.mediator_id
    tap = Wiretap(api.app[ROOMS])

    room_url = f"{api.base}/room?session={journey.session_id}"
    mediator = await open_page(browser, room_url, lang="en")
    await sign_in(mediator, users[mediator_id])
    await join_room(mediator)
    bank = await open_page(browser, room_url, lang="en")
    await sign_in(bank, users[bank_id])
    await join_room(bank)
    borrower = await open_page(browser, f"{api.base}/room#{link}", lang="en")
    await join_room(borrower)
    await admit(mediator, bank_id, borrower_id)
    pages = [mediator, bank, borrower]
    for page in pages:
        await expect(page.get_by_test_id("e2ee-status")).to_have_attribute("data-encrypted", "true",
                                                                              timeout=WAIT_MS)
    await _codes_agree(pages)

    # The borrower's phrase reaches the others' pages; the node carried only ciphertext.
    seq = await send_chat(borrower, CANARY)
    for page in (mediator, bank):
        await page.get_by_test_id("chat-message").filter(has_text=CANARY).wait_for(timeout=WAIT_MS)
    delivered = [m for m in tap.notices("chat_message") if m["seq"] == seq]
    assert delivered and all("text" not in m and m["ciphertext"] for m in delivered)
    assert tap.notices("keys_shared") and tap.notices("chat_message")  # the tap saw the traffic it vets
    assert CANARY not in tap.text()
    assert await _redis_values_containing(redis_server.url, CANARY.encode()) == []

    # Each page filed its key sealed to the officer, who opens the stored message with it.
    records = api.services.records
    listed = [record for record, _ in await records.list(journey.case_id)]
    stored = next(r for r in listed if r.kind == "chat_message" and r.index == seq)
    message = json.loads(_open(officer, await records._storage.get(stored.storage_key)))  # noqa: SLF001
    keys = [parse_key_record(_open(officer, await records._storage.get(r.storage_key)),  # noqa: SLF001
                             session_id=journey.session_id, participant_id=r.participant_id)
            for r in listed if r.kind == "e2ee_key" and r.participant_id == borrower_id]
    key = next(k for k in keys if k.kid == message["kid"])
    assert decrypt_chat(key, journey.session_id, message["ciphertext"]) == CANARY

    # A caucus with the borrower: the bank's page never gets a caucus key, and cannot read caucus
    # ciphertext even when a hook relays it to its socket.
    room = await api.app[ROOM_STORE].get(journey.session_id)
    assert room is not None
    bank_sid = room.members[bank_id].sid
    await mediator.get_by_test_id(f"caucus-{borrower_id}").click()
    await confirm_dialog(mediator)
    await bank.get_by_test_id("caucus-banner").wait_for(state="visible", timeout=WAIT_MS)
    secret_seq = await send_chat(borrower, CAUCUS_CANARY)
    await mediator.get_by_test_id("chat-message").filter(has_text=CAUCUS_CANARY).wait_for(timeout=WAIT_MS)
    caucus_message = next(m for m in tap.notices("chat_message") if m["seq"] == secret_seq)
    assert caucus_message["channel"] == "caucus"
    assert not [n for n in tap.notices("keys_shared", to=bank_sid) if n["channel"] == "caucus"]
    await api.app[ROOMS].emit("chat_message", caucus_message, to=bank_sid, namespace="/room")
    relayed = bank.locator(f"[data-testid=chat-message][data-seq='{secret_seq}']")
    await expect(relayed.get_by_test_id("undecryptable")).to_have_count(1, timeout=WAIT_MS)
    assert await bank.get_by_test_id("chat-message").filter(has_text=CAUCUS_CANARY).count() == 0
    await mediator.get_by_test_id("close-caucus").click()
    await bank.get_by_test_id("caucus-banner").wait_for(state="hidden", timeout=WAIT_MS)
    await _codes_agree(pages)
    assert CAUCUS_CANARY not in tap.text()

    # The node shows the mediator another key for the borrower: the mediator's code no longer matches.
    mediator_sid = room.members[mediator_id].sid
    forged = DeviceKeys(journey.session_id).public_key

    def substitute(event: str, to: Any, data: Any) -> Any:
        if event != "room_state" or to != mediator_sid:
            return data
        return {**data, "participants": [{**p, "public_key": forged} if p["participant_id"] == borrower_id else p
                                         for p in data["participants"]]}

    honest = await _code(bank)
    tap.alter = substitute
    await mediator.get_by_test_id(f"mute-chat-{bank_id}").dispatch_event("click")  # a roster change: room_state
    await expect(mediator.get_by_test_id("security-code")).not_to_have_text(honest, timeout=WAIT_MS)
    assert await _code(borrower) == honest == await _code(bank)
    tap.alter = None

    await mediator.get_by_test_id("end-session").click()
    await confirm_dialog(mediator)
    await _transcript_sealed(api, journey.case_id)
    assert CANARY not in tap.text() and CAUCUS_CANARY not in tap.text()
    return journey.case_id, journey.session_id


async def _compliance_opens(api: Api, browser: Browser, officer: Any, token: str, case_id: str, session_id: str,
                            tmp_path: Path) -> None:
    """The officer's tool and page decrypt the chat and the transcript with the keys the pages filed."""
    await api.services.audit.checkpoint()
    pin = tmp_path / "pin"
    _, problems = await asyncio.to_thread(fetch_bundle, api.base, case_id, token, tmp_path / "bundle", pin)
    assert problems == []
    report = open_bundle(tmp_path / "bundle", load_identities(officer.identity_file), [], tmp_path / "out", pin=pin)
    assert "undecryptable_chat" not in report.codes, report.render()
    for name in ("chat.txt", "transcript.txt"):
        shown = (tmp_path / "out" / session_id / name).read_text()
        assert CANARY in shown and CAUCUS_CANARY in shown, name
    pages = Pages(browser, api.base)
    page = await pages.open("/compliance?lang=en", width=1360)
    await page.get_by_test_id("signin-form").wait_for(timeout=WAIT_MS)
    await sign_in(page, "officer-e2ee")
    await load_identity_file(page, officer.identity_file)
    await page.locator(f"[data-testid=case-open][data-case-id={case_id}]").click()
    verdict = await open_session(page, session_id)
    opened = await page.get_by_test_id("opened").inner_text()
    assert CANARY in opened and CAUCUS_CANARY in opened, (verdict, opened[:2000])


def _open(officer: Any, data: bytes) -> bytes:
    return subprocess.run([age_binary("age"), "-d", "-i", str(officer.identity_file)], input=data, check=True,
                          capture_output=True, timeout=30).stdout
