"""The RoomStore contract, run against the embedded store and against Redis: both must behave alike."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from signaling.identity import Unavailable
from signaling.redisstate import RedisRoomStore, RoomLockLost, RoomLockTimeout
from signaling.roomstate import ADMITTED, Member, MemoryRoomStore, Room, RoomStore
from tests.support.services import RedisServer, free_port

_prefixes = itertools.count()
SECRET = bytes(range(32))


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    """Keys of their own for each test, on the module's one Redis server."""
    return f"test{next(_prefixes)}"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RoomStore]:
    if request.param == "memory":
        made: RoomStore = MemoryRoomStore()
    else:
        made = RedisRoomStore(request.getfixturevalue("redis_server").url, secret=SECRET, prefix=prefix)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def redis_nodes(redis_server: RedisServer, prefix: str) -> AsyncIterator[tuple[RedisRoomStore, RedisRoomStore]]:
    """Two stores on the same keys, as two server processes would have."""
    first = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix)
    second = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def new_room(session_id: str = "ses_1", mode: str = "video") -> Room:
    return Room(session_id=session_id, case_id="cas_1", mode=mode)


def message(text: str) -> dict:
    return {"sent_at": "2026-01-01T00:00:00.000+00:00", "participant_id": "pty_1", "name": "Li Wei",
            "role": "borrower", "text": text, "channel": "main", "audience": ["pty_1", "usr_1"]}


async def test_create_is_idempotent_and_returns_the_stored_room(store: RoomStore) -> None:
    created = await store.create(new_room(mode="video"))
    assert created.to_dict() == new_room(mode="video").to_dict()
    again = await store.create(new_room(mode="chat"))
    assert again.mode == "video"
    assert (await store.get("ses_1")).to_dict() == created.to_dict()


async def test_get_of_an_unknown_room_is_none(store: RoomStore) -> None:
    assert await store.get("ses_unknown") is None
    assert await store.chat_messages("ses_unknown") == []
    async with store.transaction("ses_unknown") as room:
        assert room is None
    assert await store.get("ses_unknown") is None


async def test_a_transactions_changes_are_saved_whole(store: RoomStore) -> None:
    await store.create(new_room())
    async with store.transaction("ses_1") as room:
        room.members["pty_1"] = Member(participant_id="pty_1", role="borrower", name="李伟", status=ADMITTED,
                                       sid="abc", chat_muted=True)
        room.caucus = ["usr_1", "pty_1"]
        room.deleted["3"] = {"by": "usr_1", "at": "2026-01-01T00:00:00+00:00"}
        room.locked = True
        expected = room.to_dict()
    stored = await store.get("ses_1")
    assert stored.to_dict() == expected
    assert stored.members["pty_1"].name == "李伟" and stored.mediator is None


async def test_a_transaction_that_raises_saves_nothing(store: RoomStore) -> None:
    await store.create(new_room())
    with pytest.raises(ZeroDivisionError):
        async with store.transaction("ses_1") as room:
            room.locked = True
            room.removed.append("pty_1")
            raise ZeroDivisionError
    assert (await store.get("ses_1")).to_dict() == new_room().to_dict()
    async with store.transaction("ses_1") as room:  # the lock was released
        assert room is not None and not room.locked


async def test_rooms_handed_out_are_copies(store: RoomStore) -> None:
    created = await store.create(new_room())
    created.locked = True
    fetched = await store.get("ses_1")
    fetched.removed.append("pty_1")
    stored = await store.append_chat("ses_1", message("hello"))
    stored["text"] = "changed"
    assert (await store.get("ses_1")).to_dict() == new_room().to_dict()
    assert (await store.chat_messages("ses_1"))[0]["text"] == "hello"


async def test_concurrent_transactions_on_one_room_serialise(store: RoomStore) -> None:
    await store.create(new_room())

    async def add(n: int) -> None:
        async with store.transaction("ses_1") as room:
            seen = len(room.removed)
            await asyncio.sleep(0)  # give every other transaction the chance to interleave
            room.removed.append(f"pty_{n}")
            assert len(room.removed) == seen + 1

    await asyncio.gather(*(add(n) for n in range(20)))
    assert sorted((await store.get("ses_1")).removed) == sorted(f"pty_{n}" for n in range(20))


async def test_chat_is_numbered_from_one_without_gaps_under_concurrent_appends(store: RoomStore) -> None:
    await store.create(new_room())
    results = await asyncio.gather(*(store.append_chat("ses_1", message(f"m{n}")) for n in range(30)))
    assert sorted(r["seq"] for r in results) == list(range(1, 31))
    for result in results:
        assert result == {**message(result["text"]), "seq": result["seq"]}
    stored = await store.chat_messages("ses_1")
    assert [m["seq"] for m in stored] == list(range(1, 31))
    assert {m["seq"]: m for m in stored} == {r["seq"]: r for r in results}
    # Every room counts on its own.
    assert (await store.append_chat("ses_2", message("other room")))["seq"] == 1


async def test_chat_keeps_text_and_empty_lists_exactly(store: RoomStore) -> None:
    odd = {**message('quote " backslash \\ 我 </script> {"seq":99}'), "audience": [], "seq": 42}
    stored = await store.append_chat("ses_1", odd)
    assert stored == {**odd, "seq": 1}
    assert await store.chat_messages("ses_1") == [stored]
    assert await store.append_chat("ses_1", {}) == {"seq": 2}
    assert (await store.chat_messages("ses_1"))[1] == {"seq": 2}


async def test_shred_forgets_the_chat_and_leaves_an_ended_tombstone(store: RoomStore) -> None:
    room = new_room()
    room.members["pty_b"] = Member(participant_id="pty_b", role="borrower", name="Li Wei", status=ADMITTED)
    room.consents["pty_b"] = {"notice_sha256": "ab", "at": "now"}
    await store.create(room)
    for n in range(3):
        await store.append_chat("ses_1", message(f"m{n}"))
    await store.append_chat("ses_2", message("kept"))
    await store.shred("ses_1")
    assert await store.chat_messages("ses_1") == []
    assert [m["text"] for m in await store.chat_messages("ses_2")] == ["kept"]
    left = await store.get("ses_1")
    assert left is not None and left.ended
    assert left.to_dict() == {**new_room().to_dict(), "ended": True}
    async with store.transaction("ses_1") as again:
        assert again is not None and again.ended and again.members == {}
    assert (await store.get("ses_1")).to_dict() == left.to_dict()


# --- Redis only: what several nodes need ----------------------------------------------------------


async def test_two_nodes_see_each_others_writes(redis_nodes: tuple[RedisRoomStore, RedisRoomStore]) -> None:
    first, second = redis_nodes
    await first.create(new_room())
    assert (await second.create(new_room(mode="chat"))).mode == "video"
    async with second.transaction("ses_1") as room:
        room.locked = True
    assert (await first.get("ses_1")).locked
    await first.append_chat("ses_1", message("from the first"))
    assert (await second.append_chat("ses_1", message("from the second")))["seq"] == 2
    assert [m["text"] for m in await first.chat_messages("ses_1")] == ["from the first", "from the second"]


async def test_chat_numbers_stay_gapless_when_nodes_append_in_turn_and_after_a_shred(
        redis_nodes: tuple[RedisRoomStore, RedisRoomStore]) -> None:
    """Each node appends with its remembered number and salt; another node's appends, a skipped number and a
    shredded key make that memory stale, and the append corrects it instead of storing a wrong number."""
    first, second = redis_nodes
    await first.create(new_room())
    assert (await first.append_chat("ses_1", message("a1")))["seq"] == 1
    assert (await second.append_chat("ses_1", message("b2")))["seq"] == 2
    assert (await second.append_chat("ses_1", message("b3")))["seq"] == 3
    assert (await first.append_chat("ses_1", message("a4")))["seq"] == 4  # its memory said 2
    await second.skip_seq("ses_1")
    assert (await first.append_chat("ses_1", message("a6")))["seq"] == 6
    assert [(m["seq"], m["text"]) for m in await second.chat_messages("ses_1")] == [
        (1, "a1"), (2, "b2"), (3, "b3"), (4, "a4"), (6, "a6")]
    await second.shred("ses_1")  # the first node still remembers the shredded salt
    await first.append_chat("ses_1", message("after the shred"))
    assert [m["text"] for m in await second.chat_messages("ses_1")] == ["after the shred"]


async def test_two_nodes_exclude_each_other(redis_nodes: tuple[RedisRoomStore, RedisRoomStore]) -> None:
    first, second = redis_nodes
    await first.create(new_room())
    entered = asyncio.Event()

    async def other_node() -> bool:
        async with second.transaction("ses_1") as room:
            entered.set()
            return room.locked

    async with first.transaction("ses_1") as room:
        waiting = asyncio.create_task(other_node())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(entered.wait()), 0.3)
        room.locked = True
    assert await asyncio.wait_for(waiting, 5) is True  # it entered after us and saw our write

    async def add(node: RedisRoomStore, n: int) -> None:
        async with node.transaction("ses_1") as room:
            await asyncio.sleep(0)
            room.removed.append(f"pty_{n}")

    await asyncio.gather(*(add(first if n % 2 else second, n) for n in range(20)))
    assert len((await first.get("ses_1")).removed) == 20


async def test_a_lock_held_too_long_times_out_clearly(redis_server: RedisServer, prefix: str) -> None:
    holder = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix)
    impatient = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix, lock_wait=0.2)
    try:
        await holder.create(new_room())
        async with holder.transaction("ses_1"):
            with pytest.raises(RoomLockTimeout, match="ses_1"):
                async with impatient.transaction("ses_1"):
                    pytest.fail("entered a locked room")
    finally:
        await holder.close()
        await impatient.close()


async def test_a_transaction_that_outlives_its_lock_is_refused_not_saved(redis_server: RedisServer,
                                                                          prefix: str) -> None:
    slow = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix, lock_ttl=0.2)
    other = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await slow.create(new_room())
        with pytest.raises(RoomLockLost):
            async with slow.transaction("ses_1") as room:
                room.locked = True
                # As if the lock expired: a stalled loop did not extend it.
                assert await client.delete(f"{prefix}:room:{{ses_1}}:lock") == 1
                async with other.transaction("ses_1") as theirs:
                    theirs.removed.append("pty_9")
        stored = await other.get("ses_1")
        assert stored.removed == ["pty_9"] and not stored.locked
    finally:
        await client.aclose()
        await slow.close()
        await other.close()


async def test_room_keys_expire_and_writes_refresh_them(redis_server: RedisServer, prefix: str) -> None:
    store = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix, room_ttl=3600)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await store.create(new_room())
        await store.append_chat("ses_1", message("hi"))
        await client.pexpire(f"{prefix}:room:{{ses_1}}", 10_000)
        async with store.transaction("ses_1") as room:
            room.locked = True
        keys = [f"{prefix}:room:{{ses_1}}{suffix}" for suffix in ("", ":chat", ":seq")]
        for key in keys:
            assert 3_500_000 < await client.pttl(key) <= 3_600_000, key
        assert await client.exists(f"{prefix}:room:{{ses_1}}:lock") == 0
    finally:
        await client.aclose()
        await store.close()


async def test_redis_being_unreachable_surfaces_as_unavailable() -> None:
    store = RedisRoomStore(f"redis://127.0.0.1:{free_port()}/0", secret=SECRET)
    try:
        with pytest.raises(Unavailable) as raised:
            await store.create(new_room())
        assert isinstance(raised.value.__cause__, redis.exceptions.ConnectionError)
        with pytest.raises(Unavailable):
            await store.get("ses_1")
        with pytest.raises(Unavailable):
            async with store.transaction("ses_1"):
                pytest.fail("entered without a lock")
        with pytest.raises(Unavailable):
            await store.append_chat("ses_1", message("lost?"))
        with pytest.raises(Unavailable):
            await store.skip_seq("ses_1")
    finally:
        await store.close()


async def test_skipped_numbers_are_never_given_out(store: RoomStore) -> None:
    assert (await store.append_chat("ses_1", message("one")))["seq"] == 1
    await store.skip_seq("ses_1")
    assert await store.next_seq("ses_1") == 3
    assert (await store.append_chat("ses_1", message("three")))["seq"] == 3
    assert [(m["seq"], m["text"]) for m in await store.chat_messages("ses_1")] == [(1, "one"), (3, "three")]


async def test_a_slow_transaction_keeps_its_lock_past_the_ttl(redis_server: RedisServer, prefix: str) -> None:
    slow = RedisRoomStore(redis_server.url, secret=SECRET, prefix=prefix, lock_ttl=0.3)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        await slow.create(new_room())
        async with slow.transaction("ses_1") as room:
            room.locked = True
            began = time.monotonic()
            while time.monotonic() - began < 1.0:  # three lock lifetimes
                assert await client.exists(f"{prefix}:room:{{ses_1}}:lock") == 1
                await asyncio.sleep(0.05)
        assert (await slow.get("ses_1")).locked
        assert await client.exists(f"{prefix}:room:{{ses_1}}:lock") == 0
    finally:
        await client.aclose()
        await slow.close()


async def test_connections_redis_closed_on_restart_do_not_fail_commands_after_it(prefix: str) -> None:
    with RedisServer(appendonly=True) as server:
        store = RedisRoomStore(server.url, secret=SECRET, prefix=prefix)
        try:
            await store.create(new_room())
            # Fill the pool: every one of these holds its own connection at the same moment.
            await asyncio.gather(*(store.append_chat("ses_1", {"text": f"before {i}"}) for i in range(12)))
            server.restart()
            await asyncio.sleep(1.2)  # past the idle time after which a pooled connection is checked
            # Commands are not retried, so without that check each stale connection would fail once.
            stored = await asyncio.gather(*(store.append_chat("ses_1", {"text": f"after {i}"}) for i in range(12)))
            assert sorted(m["seq"] for m in stored) == list(range(13, 25))
            assert len(await store.chat_messages("ses_1")) == 24
        finally:
            await store.close()
