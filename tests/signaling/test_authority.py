"""Authority versions and revocation notices: in Redis (several nodes) and in-process (one node), alike."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from signaling.authority import ANY_SCOPE, LocalAuthority
from signaling.redisauthority import RedisAuthority
from tests.support.services import RedisServer

_prefixes = itertools.count()
SCOPES = ("participant:pty_1", "session:ses_1", "case:cas_1")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_nodes(redis_server: RedisServer) -> AsyncIterator[tuple[RedisAuthority, RedisAuthority]]:
    """Two nodes' views of the same versions and channel, each listening as a node does."""
    prefix = f"authority{next(_prefixes)}"
    nodes = (RedisAuthority(redis_server.url, prefix=prefix), RedisAuthority(redis_server.url, prefix=prefix))
    listeners = [asyncio.ensure_future(node.run()) for node in nodes]
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        async with asyncio.timeout(5):  # until both listen: a notice published before then is heard by none
            while (await client.pubsub_numsub(f"{prefix}:revoked"))[0][1] < 2:
                await asyncio.sleep(0.01)
        yield nodes
    finally:
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        await client.aclose()
        for node in nodes:
            await node.close()


async def test_authority_bump_on_one_node_is_read_on_the_other_before_its_notice(
        redis_nodes: tuple[RedisAuthority, RedisAuthority]) -> None:
    first, second = redis_nodes
    heard: list[frozenset[str] | None] = []
    second.listen(heard.append)
    assert await second.versions(SCOPES) == (0, 0, 0)
    await first.revoke({"session:ses_1"})
    # The version is there for a request on the other node at once, whatever its notice is doing.
    assert await second.versions(SCOPES) == (0, 1, 0)
    async with asyncio.timeout(5):
        while not heard:
            await asyncio.sleep(0.01)
    assert heard == [frozenset({"session:ses_1"})]
    await first.revoke({"session:ses_1", "participant:pty_1"})
    assert await first.versions(SCOPES) == (1, 2, 0)
    # Every revocation also counts once in ANY_SCOPE, read alike by every node (a handshake's proof that
    # nothing was revoked while the case record answered it).
    assert await second.versions((ANY_SCOPE,)) == (2,)


async def test_authority_in_process_tells_its_listener_as_it_bumps() -> None:
    authority = LocalAuthority()
    heard: list[frozenset[str] | None] = []
    authority.listen(heard.append)
    await authority.revoke({"case:cas_1"})
    assert heard == [frozenset({"case:cas_1"})]
    assert await authority.versions(SCOPES) == (0, 0, 1)
    await authority.revoke({"case:cas_1", "session:ses_1"})
    assert await authority.versions((ANY_SCOPE,)) == (2,)
