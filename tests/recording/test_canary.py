"""A distinctive chat phrase never rests in plaintext anywhere the server keeps things after a session.

The session runs on PostgreSQL and Redis with its append-only file (the scale-out configuration, where
the most copies could hide), with a compliance key registered so chat is sealed; afterwards the database,
the records directory, every log line, every Redis value and every file of Redis's data directory (its
append-only file) are searched for the phrase. Redis values and files are searched during the session
too: room values rest there sealed under the session's key from the start.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
import redis.exceptions
from sqlalchemy import select

from server.jsonlog import JsonFormatter
from server.models import ChatJournalEntry
from tests.conftest import Api, _serve, janus_settings, make_settings, walk_to_scheduled
from tests.support.janus import JanusServer
from tests.recording.agekeys import generate
from tests.support.services import RedisServer
from tests.signaling.conftest import issue_link
from tests.signaling.peer import Participant

CANARY = "CANARY-金丝雀-4417-私密"


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer(appendonly=True).start()
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


def _redis_files_containing(server: RedisServer, needle: bytes) -> list[str]:
    """Every file of Redis's data directory (the append-only file's parts) that holds ``needle``."""
    assert server.tmpdir is not None
    return [str(path) for path in Path(server.tmpdir).rglob("*") if path.is_file() and needle in path.read_bytes()]


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
    await canary_phrase_never_rests_in_plaintext(tmp_path, postgres_url, redis_server, {})


@pytest.mark.slow
async def test_canary_phrase_never_rests_in_plaintext_after_a_session_on_janus(
        tmp_path: Path, postgres_url: str, redis_server: RedisServer, janus: JanusServer) -> None:
    """The same with the rooms' media on Janus (the recorder, when one runs, fed by its RTP forwarders)."""
    await canary_phrase_never_rests_in_plaintext(tmp_path, postgres_url, redis_server, janus_settings(janus))


async def canary_phrase_never_rests_in_plaintext(tmp_path: Path, postgres_url: str, redis_server: RedisServer,
                                                 extra: dict[str, Any]) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    settings = make_settings(tmp_path, database_url=postgres_url, redis_url=redis_server.url, **extra)
    try:
        async for api in _serve(settings):
            await _session(api, tmp_path, redis_server)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    needle = CANARY.encode()
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path
    assert await _rows_containing(postgres_url, CANARY) == []
    assert await _redis_values_containing(redis_server.url, needle) == []
    assert _redis_files_containing(redis_server, needle) == []
    await _rewrite_aof(redis_server)
    assert _redis_files_containing(redis_server, needle) == []
    assert CANARY not in stream.getvalue()


async def _rewrite_aof(server: RedisServer) -> None:
    """Have Redis rewrite its append-only file and wait until it has."""
    client = aioredis.from_url(server.url)
    try:
        try:
            await client.execute_command("BGREWRITEAOF")
        except redis.exceptions.ResponseError:
            pass  # the shred at the session's end is rewriting it already
        deadline = time.monotonic() + 10
        while True:
            state = await client.info("persistence")
            if not state["aof_rewrite_in_progress"] and not state["aof_rewrite_scheduled"]:
                return
            assert time.monotonic() < deadline, "Redis did not rewrite its append-only file"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def _session(api: Api, tmp_path: Path, redis_server: RedisServer) -> None:
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
        # While the session runs, Redis holds its room and chat, sealed: the phrase is in no value and no file.
        assert await _redis_values_containing(redis_server.url, CANARY.encode()) == []
        assert len(await _redis_values_containing(redis_server.url, b"")) >= 3  # room, chat, salt at least
        assert _redis_files_containing(redis_server, CANARY.encode()) == []
        salt_key = f"mediation:room:{{{journey.session_id}}}:salt"
        assert salt_key in await _redis_values_containing(redis_server.url, b"")
        assert (await mediator.request("end_session", {}))["ok"]
        deadline = time.monotonic() + 30
        while not any(r.kind == "transcript" for r, _ in await api.services.records.list(journey.case_id)):
            assert time.monotonic() < deadline, "transcript never sealed"
            await asyncio.sleep(0.2)
        chat = [r for r, _ in await api.services.records.list(journey.case_id) if r.kind == "chat_message"]
        assert len(chat) == 3
        # Once the transcript is sealed the session's key is destroyed: its salt is gone from Redis and the
        # chat journal from the case record.
        client = aioredis.from_url(redis_server.url)
        try:
            salts = [key async for key in client.scan_iter(match=f"*{{{journey.session_id}}}:salt")]
            while salts:
                assert time.monotonic() < deadline, f"the session's key was never destroyed: {salts}"
                await asyncio.sleep(0.2)
                salts = [key async for key in client.scan_iter(match=f"*{{{journey.session_id}}}:salt")]
            room = await client.get(f"mediation:room:{{{journey.session_id}}}")
            assert room is not None and room[:1] == b"\x00", room  # the tombstone
        finally:
            await client.aclose()
        async with api.services.db.read() as session:
            assert (await session.execute(select(ChatJournalEntry))).scalars().all() == []
    finally:
        await mediator.close()
        await borrower.close()
