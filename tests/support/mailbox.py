"""A party's inboxes for tests: a real SMTP server (aiosmtpd) and an SMS gateway (aiohttp) on 127.0.0.1, port 0.

Both run on the test's event loop and keep what they receive, so a test reads a join link the way
a party does: from its mail or its phone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import logging
import re
import threading
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

ROOM_URL = re.compile(r"https?://\S+/room#(jln_[A-Za-z0-9_-]{43})")


@dataclasses.dataclass
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    text: str


class Mailbox:
    """An SMTP server that accepts every message (or refuses every recipient) and keeps them."""

    def __init__(self) -> None:
        self.messages: list[Mail] = []
        self.refuse_recipients = False
        self._arrived = asyncio.Condition()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if self.refuse_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        async with self._arrived:
            self.messages.append(Mail(sender=envelope.mail_from or "", recipients=list(envelope.rcpt_tos),
                                      subject=str(parsed["Subject"]), text=text))
            self._arrived.notify_all()
        return "250 OK"

    async def start(self) -> Mailbox:
        # aiosmtpd logs each DATA line at DEBUG: that is the party's inbox speaking, not our server, and what
        # it would write (one-time codes) is checked never to reach our server's logs (tests/server/test_logging.py).
        logging.getLogger("mail.log").setLevel(logging.INFO)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self, hostname="mailbox.test"), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def settings(self) -> dict[str, Any]:
        """Settings that send the server's mail here (a local relay: no STARTTLS, no sign-in)."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_starttls": False,
                "smtp_from": "mediation@mediation.test"}

    def environment(self) -> dict[str, str]:
        """The same for a server run as its own process (tests/support/nodes.py), with no per-address limit
        on one-time codes: every test client there shares 127.0.0.1."""
        return {"MEDIATION_SMTP_HOST": "127.0.0.1", "MEDIATION_SMTP_PORT": str(self.port),
                "MEDIATION_SMTP_STARTTLS": "false", "MEDIATION_SMTP_FROM": "mediation@mediation.test",
                "MEDIATION_POSSESSION_CODES_PER_ADDRESS": "100000"}

    async def wait_for(self, recipient: str, containing: str, timeout: float = 10.0, after: int = 0) -> Mail:
        """The first message to ``recipient`` whose text contains ``containing`` (of those from number ``after`` on)."""

        def found() -> Mail | None:
            return next((m for m in self.messages[after:] if recipient in m.recipients and containing in m.text), None)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(found), timeout)
        mail = found()
        assert mail is not None
        return mail


class MailboxThread:
    """A Mailbox on its own event loop in a thread, for servers and fixtures that outlive one test's loop
    (module-scoped nodes, synchronous fixtures); ``wait_for`` is awaited from any loop."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mailbox", daemon=True)
        self.box = Mailbox()

    def start(self) -> MailboxThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.box.start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.box.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def messages(self) -> list[Mail]:
        return self.box.messages

    def environment(self) -> dict[str, str]:
        return self.box.environment()

    async def wait_for(self, recipient: str, containing: str, timeout: float = 10.0) -> Mail:
        waiting = asyncio.run_coroutine_threadsafe(self.box.wait_for(recipient, containing, timeout), self._loop)
        return await asyncio.wrap_future(waiting)


class SmsGateway:
    """An HTTP SMS gateway keeping the contract of docs/deploy.md; answers ``status`` to every request."""

    def __init__(self, token: str = "gateway-secret-for-tests") -> None:
        self.token = token
        self.status = 202
        self.received: list[dict[str, Any]] = []
        self.refused: list[str] = []  # why requests were refused (bad secret, bad body)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _send(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.refused.append("bad secret")
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.json()
        if set(body) != {"to", "text"} or not re.fullmatch(r"\+[0-9]{6,20}", body["to"]):
            self.refused.append(f"bad body {sorted(body)}")
            return web.json_response({"error": "bad_request"}, status=400)
        if 200 <= self.status < 300:
            self.received.append(body)
        return web.json_response({"accepted": 200 <= self.status < 300}, status=self.status)

    async def start(self) -> SmsGateway:
        app = web.Application()
        app.router.add_post("/messages", self._send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/messages"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def settings(self) -> dict[str, Any]:
        from server.settings import Secret

        return {"sms_url": self.url, "sms_token": Secret(self.token)}


def link_token(text: str) -> str:
    """The join link token in a message's text."""
    match = ROOM_URL.search(text)
    assert match is not None, f"no join link in {text!r}"
    return match.group(1)
