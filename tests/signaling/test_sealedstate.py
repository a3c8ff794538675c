"""Room state at rest in Redis: sealed under per-session keys, bound to its key's name, shredded at the end."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from signaling.redisstate import RedisRoomStore
from signaling.roomstate import ADMITTED, Member, Room
from signaling.sealedstate import SessionCipher, StateUnreadable
from tests.support.services import RedisServer

SECRET = bytes(range(32))
PHRASE = "Li Wei owes 4417 yuan 私密"
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    return f"sealed{next(_prefixes)}"


@pytest.fixture
async def store(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisRoomStore]:
    made = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    made = aioredis.from_url(redis_server.url)
    try:
        yield made
    finally:
        await made.aclose()


async def _fill(store: RedisRoomStore, session_id: str = "ses_1") -> None:
    room = Room(session_id=session_id, case_id="cas_1", mode="video")
    room.members["pty_1"] = Member(participant_id="pty_1", role="borrower", name=PHRASE, status=ADMITTED)
    await store.create(room)
    async with store.transaction(session_id) as stored:
        assert stored is not None
        stored.locked = True
    for n in range(3):
        await store.append_chat(session_id, {"participant_id": "pty_1", "name": PHRASE, "text": f"{PHRASE} #{n}"})


async def _values(client: aioredis.Redis, prefix: str) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    async for key in client.scan_iter(match=f"{prefix}:*"):
        kind = (await client.type(key)).decode()
        found[key.decode()] = (await client.lrange(key, 0, -1)) if kind == "list" else [await client.get(key)]
    return found


def _aof(redis_server: RedisServer) -> bytes:
    assert redis_server.tmpdir is not None
    return b"".join(path.read_bytes() for path in Path(redis_server.tmpdir).rglob("*") if path.is_file())


async def test_redis_values_with_names_or_text_hold_no_plaintext(store: RedisRoomStore, client: aioredis.Redis,
                                                                 prefix: str, redis_server: RedisServer) -> None:
    await _fill(store)
    values = await _values(client, prefix)
    assert {key.rsplit(":", 1)[-1] for key in values} >= {"{ses_1}", "chat", "seq", "salt"}
    for key, items in values.items():
        for item in items:
            assert PHRASE.encode() not in item and b"pty_1" not in item, key
    await client.execute_command("BGREWRITEAOF")
    await _rewritten(client)
    assert PHRASE.encode() not in _aof(redis_server)
    assert (await store.get("ses_1")).members["pty_1"].name == PHRASE
    assert [m["text"] for m in await store.chat_messages("ses_1")] == [f"{PHRASE} #{n}" for n in range(3)]


async def test_redis_values_with_another_secret_do_not_open(store: RedisRoomStore, redis_server: RedisServer,
                                                            prefix: str) -> None:
    await _fill(store)
    other = RedisRoomStore(redis_server.url, secret=bytes(32), prefix=prefix)
    try:
        with pytest.raises(StateUnreadable, match="ses_1"):
            await other.get("ses_1")
        with pytest.raises(StateUnreadable, match="chat#1"):
            await other.chat_messages("ses_1")
    finally:
        await other.close()


async def test_redis_value_moved_to_another_key_does_not_open(store: RedisRoomStore, client: aioredis.Redis,
                                                              prefix: str) -> None:
    await _fill(store)
    chat = f"{prefix}:room:{{ses_1}}:chat"
    first, second = await client.lrange(chat, 0, 1)
    # Swap the sealed bodies of messages 1 and 2: each is bound to its own number.
    await client.lset(chat, 0, b"1:" + second.partition(b":")[2])
    with pytest.raises(StateUnreadable, match="chat#1"):
        await store.chat_messages("ses_1")
    await client.lset(chat, 0, first)
    room = f"{prefix}:room:{{ses_1}}"
    await client.set(room, first.partition(b":")[2])
    with pytest.raises(StateUnreadable):
        await store.get("ses_1")


async def test_shred_deletes_the_salt_so_old_values_never_open_again(client: aioredis.Redis, prefix: str,
                                                                     redis_server: RedisServer) -> None:
    store = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix, rewrite_aof=True)
    try:
        await _shredded(store, client, prefix, redis_server)
    finally:
        await store.close()


async def _shredded(store: RedisRoomStore, client: aioredis.Redis, prefix: str, redis_server: RedisServer) -> None:
    await _fill(store)
    await _fill(store, "ses_2")
    salt_key = f"{prefix}:room:{{ses_1}}:salt"
    salt = await client.get(salt_key)
    sealed_room = await client.get(f"{prefix}:room:{{ses_1}}")
    await store.shred("ses_1")
    left = await _values(client, prefix)
    assert sorted(k for k in left if "{ses_1}" in k) == [f"{prefix}:room:{{ses_1}}"]
    assert left[f"{prefix}:room:{{ses_1}}"][0][:1] == b"\x00"  # the tombstone: ids and "ended", nothing else
    assert PHRASE.encode() not in left[f"{prefix}:room:{{ses_1}}"][0]
    assert (await store.get("ses_1")).ended
    assert [m["text"] for m in await store.chat_messages("ses_2")][0] == f"{PHRASE} #0"
    # Only the deleted salt opened the old values: the secret with any other salt does not.
    room_name = f"{prefix}:room:{{ses_1}}"
    assert SessionCipher(SECRET, "ses_1", salt).open(room_name, sealed_room)
    with pytest.raises(StateUnreadable):
        SessionCipher(SECRET, "ses_1", bytes(32)).open(room_name, sealed_room)
    # The store asked Redis to rewrite its append-only file: once done, the salt is in no file of its directory.
    await _rewritten(client)
    assert salt not in _aof(redis_server)


async def _rewritten(client: aioredis.Redis) -> None:
    deadline = time.monotonic() + 10
    while True:
        state = await client.info("persistence")
        if not state["aof_rewrite_in_progress"] and not state["aof_rewrite_scheduled"]:
            return
        assert time.monotonic() < deadline, "Redis did not finish rewriting its append-only file"
        await asyncio.sleep(0.05)


async def test_redis_requiring_a_password_serves_only_a_store_given_it(tmp_path: Path) -> None:
    from server.settings import Settings

    server = RedisServer().start()
    try:
        admin = aioredis.from_url(server.url)
        await admin.config_set("requirepass", "hex-password-0042")
        await admin.aclose()
        password = tmp_path / "redis-password"
        password.write_text("hex-password-0042\n")
        url = Settings(redis_url=server.url, redis_password_file=str(password)).redis_connection_url()
        given, anonymous = RedisRoomStore(url, secret=SECRET), aioredis.from_url(server.url)
        try:
            await _fill(given)
            assert (await given.get("ses_1")).members["pty_1"].name == PHRASE
            with pytest.raises(redis.exceptions.AuthenticationError):
                await anonymous.ping()
        finally:
            await given.close()
            await anonymous.aclose()
    finally:
        server.stop()


async def test_redis_store_with_another_secret_than_the_other_nodes_fails_its_check(redis_server: RedisServer,
                                                                                    prefix: str) -> None:
    first = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix)
    same = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix)
    other = RedisRoomStore(redis_server.url, secret=bytes(32), prefix=prefix)
    try:
        await first.check_secret()
        await same.check_secret()
        with pytest.raises(StateUnreadable, match="MEDIATION_ROOM_STATE_KEY"):
            await other.check_secret()
    finally:
        for store in (first, same, other):
            await store.close()
