"""Shared fixtures: real PostgreSQL, a running server on 127.0.0.1:0, and a client that speaks its API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.app import OWN_URL, create_app
from server.services import SERVICES, Services
from server.settings import Settings
from tests.services import PostgresServer

_database_names = itertools.count()

# Cheap Argon2 parameters: the cost is a production setting, not behaviour under test.
FAST_PASSWORDS = {"password_memory_kib": 1024, "password_time_cost": 1}
STAFF_PASSWORD = "a long enough password"


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
    values: dict[str, Any] = {"data_dir": tmp_path / "data", **FAST_PASSWORDS}
    values.update(overrides)
    return Settings(**values)


@dataclasses.dataclass
class Api:
    """A thin client of a running server; every call returns (status, parsed JSON or text)."""

    session: aiohttp.ClientSession
    base: str
    app: web.Application

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    async def call(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                   data: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + path, json=json, data=data, headers=headers) as resp:
            if resp.content_type == "application/octet-stream":
                return resp.status, await resp.read()
            text = await resp.text()
            if resp.content_type == "application/json" and text:
                import json as _json

                return resp.status, _json.loads(text)
            return resp.status, text

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


def application(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "borrower": {"name": "Li Wei", "email": "li.wei@example.cn", "phone": "+86 138 0013 8000"},
        "lender": "Example Commercial Bank",
        "loan_reference": "LN-2026-0042",
        "currency": "CNY",
        "principal_minor": 12_000_000,
        "overdue_minor": 1_450_000,
        "days_overdue": 75,
        "proposal": "I can pay 2,000 a month from March.",
    }
    body.update(overrides)
    return body


def future(hours: int = 48) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)).isoformat()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The server on embedded defaults (SQLite), serving on 127.0.0.1 with a free port."""
    async for client in _serve(make_settings(tmp_path)):
        yield client


async def _serve(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    # The recorder worker connects back to this node; only now is its port known.
    app[OWN_URL]["value"] = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(session=session, base=str(server.make_url("")).rstrip("/"), app=app)
    finally:
        await server.close()


@pytest.fixture
async def api_on(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    """The server on each backend in turn: SQLite, then real PostgreSQL."""
    async for client in _serve(make_settings(tmp_path, database_url=database_url)):
        yield client


@dataclasses.dataclass
class Journey:
    """A case walked to "scheduled", with everyone who takes part in it."""

    case_id: str
    receipt: str
    borrower_id: str
    lender_id: str
    session_id: str
    officer: str
    mediator: str
    mediator_id: str
    bank: str
    bank_id: str


async def walk_to_scheduled(api: Api, officer: str | None = None) -> Journey:
    """File, verify, accept, assign, propose and confirm: the case ends in state "scheduled"."""
    if officer is None:
        _, officer = await api.staff("case_officer")
    mediator_id, mediator = await api.staff("mediator")
    bank_id, bank = await api.staff("bank_representative")
    status, receipt = await api.call("POST", "/api/applications", json=application())
    assert status == 201, receipt
    case_id = receipt["case_id"]
    status, case = await api.call("GET", f"/api/cases/{case_id}", token=officer)
    parties = {p["role"]: p["party_id"] for p in case["parties"]}
    for party_id in parties.values():
        status, body = await api.call("POST", f"/api/cases/{case_id}/parties/{party_id}/verify", token=officer,
                                      json={"method": "id_card", "reference": "checked at desk"})
        assert status == 200, body
    assert (await api.call("POST", f"/api/cases/{case_id}/accept", token=officer))[0] == 200
    status, body = await api.call("PUT", f"/api/cases/{case_id}/assignments", token=officer,
                                  json={"mediator_id": mediator_id, "bank_representative_id": bank_id})
    assert status == 200, body
    status, body = await api.call("POST", f"/api/cases/{case_id}/sessions", token=mediator,
                                  json={"starts_at": future(), "duration_minutes": 60, "mode": "video"})
    assert status == 201, body
    session_id = body["sessions"][0]["session_id"]
    status, body = await api.call("POST", f"/api/cases/{case_id}/sessions/{session_id}/confirm",
                                  token=receipt["receipt_token"], json={})
    assert status == 200, body
    status, body = await api.call("POST", f"/api/cases/{case_id}/sessions/{session_id}/confirm", token=bank, json={})
    assert status == 200, body
    assert body["state"] == "scheduled"
    return Journey(case_id=case_id, receipt=receipt["receipt_token"], borrower_id=parties["borrower"],
                   lender_id=parties["lender"], session_id=session_id, officer=officer, mediator=mediator,
                   mediator_id=mediator_id, bank=bank, bank_id=bank_id)
