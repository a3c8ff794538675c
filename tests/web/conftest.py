"""Fixtures of the browser tests: headless Chromium with fake media, and the server they talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.conftest import Api, _serve, make_settings
from tests.support.mailbox import Mailbox
from tests.web.browser import CHROMIUM, FLAGS


@pytest.fixture
async def api(tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[Api]:
    """The embedded server mailing parties at ``mailbox``; a dozen browser sign-ins stay under the login limit."""
    settings = make_settings(tmp_path, login_attempts_per_minute=200, applications_per_minute=200,
                             **mailbox.settings())
    async for client in _serve(settings, mailbox):
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, with a fake camera and microphone granted without a prompt."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Debian's chromium is not installed: run scripts/setup.sh")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()
