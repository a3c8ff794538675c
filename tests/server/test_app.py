"""The app's resources start and stop each in their own cleanup context."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.errors import is_database_unavailable
from tests.conftest import make_settings
from tests.support.services import PostgresServer, RedisServer


def _redis_clients(server: RedisServer) -> int:
    """Connections the Redis server holds open, this one included."""
    with redis.Redis.from_url(server.url) as client:
        return int(client.info("clients")["connected_clients"])


def _node_heard(server: RedisServer) -> bool:
    """The node's first heartbeat is written: it holds a pooled connection and will say it stops."""
    with redis.Redis.from_url(server.url) as client:
        return client.dbsize() > 0


async def test_app_cleanup_audit_stop_failing_still_closes_room_store_and_fanout(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with PostgresServer() as postgres, RedisServer() as room_redis:
        settings = make_settings(tmp_path, database_url=postgres.dsn, redis_url=room_redis.url,
                                 audit_checkpoint_seconds=3600)
        server = TestServer(create_app(settings), host="127.0.0.1", port=0)
        await server.start_server()
        try:
            async with asyncio.timeout(10):
                while not _node_heard(room_redis):
                    await asyncio.sleep(0.05)
        except BaseException:
            await server.close()
            raise
        # The database goes away under the node: its last audit checkpoint cannot be written.
        postgres.shutdown()
        with pytest.raises(Exception) as raised:
            await server.close()
        assert is_database_unavailable(raised.value), repr(raised.value)
        failed = [r for r in caplog.records if r.getMessage().startswith("stopping ")]
        assert [r.getMessage() for r in failed] == ["stopping audit log failed"]
        assert failed[0].exc_info is not None
        # Stopped after the audit log all the same: no connection of the node is left on Redis.
        assert _redis_clients(room_redis) == 1
