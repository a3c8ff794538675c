"""Shared fixtures: real PostgreSQL, a running server on 127.0.0.1:0, and a client that speaks its API.

The case walk, the node launcher and the service launcher live in tests/support/.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.app import OWN_URL, create_app
from server.services import SERVICES, Services
from server.settings import Secret, Settings
from tests.support import walk
from tests.support.mailbox import Mailbox
from tests.support.janus import JanusServer
from tests.support.services import PostgresServer
from tests.support.walk import STAFF_PASSWORD, Journey, application, future

__all__ = ["FAST_PASSWORDS", "STAFF_PASSWORD", "Api", "Journey", "application", "future", "make_settings",
           "walk_to_scheduled"]

_database_names = itertools.count()

# Cheap Argon2 parameters: the cost is a production setting, not behaviour under test.
FAST_PASSWORDS = {"password_memory_kib": 1024, "password_time_cost": 1}
# Every test client shares 127.0.0.1: the per-address limit on one-time codes would count all of a test's
# cases as one caller's (tests/server/test_possession.py checks the limit with its own low setting).
MANY_CODES = {"possession_codes_per_address": 10_000}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    name = f"test_{next(_database_names)}"
    postgres.psql(f"CREATE DATABASE {name} OWNER mediation")
    return postgres.dsn.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'case-record.db'}"
    return request.getfixturevalue("postgres_url")


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / "data", **FAST_PASSWORDS, **MANY_CODES}
    values.update(overrides)
    return Settings(**values)


@dataclasses.dataclass
class Api:
    """A thin client of a running server; every call returns (status, parsed JSON or text)."""

    session: aiohttp.ClientSession
    base: str
    app: web.Application
    mailbox: Mailbox | None = None  # the SMTP server this server sends party mail to, if any

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    @property
    def http(self) -> walk.Http:
        return walk.Http(self.session, self.base)

    async def call(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                   data: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return await self.http.request(method, path, token=token, json_body=json, data=data, headers=headers)

    async def staff(self, role: str, username: str | None = None) -> tuple[str, str]:
        """Create a staff user of ``role`` and sign in; returns (user_id, token)."""
        username = username or f"{role.replace('_', '-')}-{next(_database_names)}"
        user = await self.services.accounts.create_staff(
            username=username, display_name=username.title(), role=role, password=STAFF_PASSWORD,
            actor="test:setup",
        )
        status, body = await self.call("POST", "/api/auth/login",
                                       json={"username": username, "password": STAFF_PASSWORD})
        assert status == 200, body
        return user.user_id, body["token"]

    async def approve_proposed(self, recipient: str) -> dict:
        """Approve a key an officer proposed (in a page), by two administrators the operator created, made here."""
        pending = [p for p, _, _ in await self.services.recipient_keys.proposals()
                   if p.recipient == recipient and p.state == "pending"]
        assert len(pending) == 1, f"no single pending proposal of {recipient}"
        proposal: dict = {}
        for _ in range(2):
            _, admin = await self.staff("administrator")
            status, proposal = await self.call("POST", f"/api/compliance/keys/{pending[0].proposal_id}/approve",
                                               token=admin)
            assert status == 200, proposal
        assert proposal["state"] == "approved", proposal
        return proposal

    async def approve_key(self, officer_token: str, recipient: str, approvers: list[str] | None = None) -> dict:
        """Propose an officer's age key and have it approved as two-person control requires: by
        ``approvers`` (tokens); else by two administrators the operator created, made here, while no
        officer's key is in force; else by an officer in force, signed in with the tests' password."""
        status, proposal = await self.call("PUT", "/api/staff/me/recipient", token=officer_token,
                                           json={"recipient": recipient})
        assert status == 202, proposal
        if approvers is None and proposal["needs"] == "two_administrators":
            approvers = [(await self.staff("administrator"))[1] for _ in range(2)]
        elif approvers is None:
            status, served = await self.call("GET", "/api/compliance/recipients", token=officer_token)
            assert status == 200, served
            senior = next(r["username"] for r in json.loads(served["statement"])["recipients"]
                          if r.get("kind") == "compliance_officer")
            status, login = await self.call("POST", "/api/auth/login",
                                            json={"username": senior, "password": STAFF_PASSWORD})
            assert status == 200, login
            approvers = [login["token"]]
        for approver in approvers:
            status, proposal = await self.call("POST", f"/api/compliance/keys/{proposal['proposal_id']}/approve",
                                               token=approver)
            assert status == 200, proposal
        assert proposal["state"] == "approved", proposal
        return proposal


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    """A real SMTP server on 127.0.0.1, port 0, keeping what it receives."""
    box = await Mailbox().start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def api(tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[Api]:
    """The server on embedded defaults (SQLite) but for its mail, which goes to ``mailbox``; 127.0.0.1, free port."""
    async for client in _serve(make_settings(tmp_path, **mailbox.settings()), mailbox):
        yield client


async def _serve(settings: Settings, mailbox: Mailbox | None = None, *, mail: bool = True) -> AsyncIterator[Api]:
    """The server of ``settings`` on 127.0.0.1, port 0. Parties' acts need one-time codes by mail, so unless
    ``mail`` is false (the embedded default, with no channel) a server configured without one mails its
    parties at a fresh real SMTP server of its own (``Api.mailbox``)."""
    if mailbox is None and mail and not settings.smtp_host:
        own = await Mailbox().start()
        try:
            async for client in _serve(dataclasses.replace(settings, **own.settings()), own):
                yield client
        finally:
            await own.stop()
        return
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    # The recorder worker connects back to this node; only now is its port known.
    app[OWN_URL]["value"] = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(session=session, base=str(server.make_url("")).rstrip("/"), app=app, mailbox=mailbox)
    finally:
        await server.close()


@pytest.fixture(scope="session")
def janus() -> Iterator[JanusServer]:
    """A real Janus (VideoRoom only) for the session's tests (tests/support/janus.py)."""
    server = JanusServer().start()
    try:
        yield server
    finally:
        server.stop()


def janus_settings(server: JanusServer) -> dict[str, Any]:
    """The settings that put the rooms' media on ``server``."""
    return {"janus_urls": (server.url,), "janus_api_secret": Secret(server.api_secret),
            "janus_admin_key": Secret(server.admin_key)}


@pytest.fixture
async def api_sfu(tmp_path: Path, mailbox: Mailbox, janus: JanusServer) -> AsyncIterator[Api]:
    """The server on embedded defaults with its rooms' media through ``janus``."""
    async for client in _serve(make_settings(tmp_path, **mailbox.settings(), **janus_settings(janus)), mailbox):
        yield client


@pytest.fixture
async def api_on(tmp_path: Path, database_url: str, mailbox: Mailbox) -> AsyncIterator[Api]:
    """The server on each backend in turn: SQLite, then real PostgreSQL; its mail goes to ``mailbox``."""
    async for client in _serve(make_settings(tmp_path, database_url=database_url, **mailbox.settings()), mailbox):
        yield client


async def walk_to_scheduled(api: Api, officer: str | None = None) -> Journey:
    """File, verify, accept, assign, propose and confirm: the case ends in state "scheduled"."""
    assert api.mailbox is not None, "the parties' codes reach them by mail: serve with a mailbox"
    return await walk.walk_to_scheduled(api.http, api.staff, api.mailbox, officer=officer)


async def issue_link(api: Api, journey: Journey, party_id: str) -> str:
    """The mediator issues a party's join link; the token as the party receives it (case view or mail)."""
    return await walk.party_link(api.http, journey, party_id, api.mailbox)
