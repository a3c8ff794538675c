"""Node liveness, apart from room storage: in Redis (several nodes) and in-process (one node, nobody to lose)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from signaling.liveness import LocalLiveness
from signaling.redisliveness import RedisLiveness
from tests.support.services import RedisServer

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_nodes(redis_server: RedisServer) -> AsyncIterator[tuple[RedisLiveness, RedisLiveness]]:
    """Two nodes' views of the same keys, as two server processes would have."""
    prefix = f"liveness{next(_prefixes)}"
    first, second = RedisLiveness(redis_server.url, prefix=prefix), RedisLiveness(redis_server.url, prefix=prefix)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_silent_node_is_reported_gone_with_the_rooms_it_held(
        redis_nodes: tuple[RedisLiveness, RedisLiveness]) -> None:
    first, second = redis_nodes
    assert await first.node_alive("node-a", timeout=0.3) is False  # not counted before its first beat
    assert await first.node_alive("node-a", timeout=0.3) is True
    assert await second.node_alive("node-b", timeout=30) is False
    await first.node_hosts("node-a", "ses_1")
    await first.node_hosts("node-a", "ses_2")
    await second.node_hosts("node-b", "ses_2")
    assert await second.gone_nodes() == {}
    await asyncio.sleep(0.5)  # node-a says nothing past its timeout
    assert await second.gone_nodes() == {"node-a": ["ses_1", "ses_2"]}
    await second.forget_node("node-a")
    assert await second.gone_nodes() == {}
    # A node that stalled and beats again is told it had been counted gone.
    assert await first.node_alive("node-a", timeout=30) is False


async def test_a_node_that_stops_is_gone_at_once(redis_nodes: tuple[RedisLiveness, RedisLiveness]) -> None:
    first, second = redis_nodes
    await first.node_alive("node-a", timeout=30)
    await first.node_hosts("node-a", "ses_1")
    await first.node_stopped("node-a")
    assert await second.gone_nodes() == {"node-a": ["ses_1"]}


async def test_the_embedded_liveness_has_no_other_nodes_to_lose() -> None:
    liveness = LocalLiveness()
    assert await liveness.node_alive("node-a", timeout=0.01) is True
    await liveness.node_hosts("node-a", "ses_1")
    await liveness.node_stopped("node-a")
    assert await liveness.gone_nodes() == {}
