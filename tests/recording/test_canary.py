"""A distinctive chat phrase never rests in plaintext anywhere the server keeps things after a session.

The session runs on PostgreSQL and Redis (the scale-out configuration, where the most copies could
hide), with a compliance key registered so chat is sealed; afterwards the database, the records
directory, every log line and every Redis value are searched for the phrase.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from server.jsonlog import JsonFormatter
from tests.conftest import Api, _serve, make_settings, walk_to_scheduled
from tests.recording.agekeys import generate
from tests.support.services import RedisServer
from tests.signaling.conftest import issue_link
from tests.signaling.peer import Participant

CANARY = "CANARY-金丝雀-4417-私密"


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


async def _rows_containing(dsn: str, needle: str) -> list[str]:
    """Every (table, column) of the database whose text holds ``needle``."""
    url = dsn.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        columns = await connection.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'")
        found = []
        for column in columns:
            name = f'"{column["table_name"]}"', f'"{column["column_name"]}"'
            if column["data_type"] == "bytea":
                query = f"SELECT count(*) FROM {name[0]} WHERE position($1::bytea in {name[1]}) > 0"
                hits = await connection.fetchval(query, needle.encode())
            else:
                query = f"SELECT count(*) FROM {name[0]} WHERE position($1 in {name[1]}::text) > 0"
                hits = await connection.fetchval(query, needle)
            if hits:
                found.append(f"{column['table_name']}.{column['column_name']}")
        return found
    finally:
        await connection.close()


async def _redis_values_containing(url: str, needle: bytes) -> list[str]:
    client = aioredis.from_url(url)
    try:
        found = []
        async for key in client.scan_iter():
            kind = (await client.type(key)).decode()
            if kind == "string":
                values = [await client.get(key)]
            elif kind == "list":
                values = await client.lrange(key, 0, -1)
            elif kind == "hash":
                values = list((await client.hgetall(key)).values())
            else:
                values = [str(await client.dump(key)).encode()]
            if any(needle in (value or b"") for value in values):
                found.append(key.decode())
        return found
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_canary_phrase_never_rests_in_plaintext_after_a_session(
        tmp_path: Path, postgres_url: str, redis_server: RedisServer) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    settings = make_settings(tmp_path, database_url=postgres_url, redis_url=redis_server.url)
    try:
        async for api in _serve(settings):
            await _session(api, tmp_path)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    needle = CANARY.encode()
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path
    assert await _rows_containing(postgres_url, CANARY) == []
    assert await _redis_values_containing(redis_server.url, needle) == []
    assert CANARY not in stream.getvalue()


async def _session(api: Api, tmp_path: Path) -> None:
    key = generate(tmp_path / "officer")
    _, compliance = await api.staff("compliance_officer")
    await api.approve_key(compliance, key.recipient)
    journey = await walk_to_scheduled(api)
    mediator = Participant(api.base, {"token": journey.mediator, "session_id": journey.session_id})
    borrower = Participant(api.base, {"token": await issue_link(api, journey, journey.borrower_id)})
    try:
        joined = await mediator.join()
        assert joined["records_sealed"]
        await borrower.join()
        await mediator.request("admit", {"participant_id": borrower.participant_id})
        await borrower.wait_for("admitted")
        for n in range(3):
            sent = await borrower.request("send_chat", {"text": f"{CANARY} #{n}"})
            assert sent["ok"], sent
        await mediator.wait_for("chat_message", lambda m: m["text"].endswith("#2"))
        assert (await mediator.request("end_session", {}))["ok"]
        deadline = time.monotonic() + 30
        while not any(r.kind == "transcript" for r, _ in await api.services.records.list(journey.case_id)):
            assert time.monotonic() < deadline, "transcript never sealed"
            await asyncio.sleep(0.2)
        chat = [r for r, _ in await api.services.records.list(journey.case_id) if r.kind == "chat_message"]
        assert len(chat) == 3
    finally:
        await mediator.close()
        await borrower.close()
