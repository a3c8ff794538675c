"""The test-service helpers start real PostgreSQL, Redis and Janus servers."""

from __future__ import annotations

import socket

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support import services
from tests.support.services import PostgresServer, RedisServer, free_port


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_free_port_is_bindable():
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def _pg_connect(pg: PostgresServer) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1", port=pg.port, user="mediation", database="mediation"
    )


async def test_postgres_start_query_restart_stop():
    pg = PostgresServer()
    try:
        pg.start()
        assert pg.running
        assert pg.dsn == f"postgresql+asyncpg://mediation@127.0.0.1:{pg.port}/mediation"
        tmpdir = pg.tmpdir
        assert tmpdir is not None and tmpdir.is_dir()

        conn = await _pg_connect(pg)
        try:
            assert await conn.fetchval("select 1") == 1
            assert await conn.fetchval("select current_user") == "mediation"
            owner = await conn.fetchval(
                "select pg_get_userbyid(datdba) from pg_database "
                "where datname = current_database()"
            )
            assert owner == "mediation"
            await conn.execute("create table kept (v int)")
            await conn.execute("insert into kept values (42)")
        finally:
            await conn.close()

        port = pg.port
        pg.restart()
        assert pg.running
        assert pg.port == port

        conn = await _pg_connect(pg)
        try:
            assert await conn.fetchval("select 1") == 1
            assert await conn.fetchval("select v from kept") == 42
        finally:
            await conn.close()
    finally:
        pg.stop()

    assert not pg.running
    assert not _port_open(port)
    assert not tmpdir.exists()
    pg.stop()  # idempotent


async def test_postgres_restart_drops_open_connections():
    with PostgresServer() as pg:
        conn = await _pg_connect(pg)
        try:
            pg.restart()
            with pytest.raises((asyncpg.PostgresError, ConnectionError, OSError)):
                await conn.fetchval("select 1")
        finally:
            await conn.close()
        conn = await _pg_connect(pg)
        try:
            assert await conn.fetchval("select 1") == 1
        finally:
            await conn.close()


async def test_postgres_recovers_after_kill():
    with PostgresServer() as pg:
        # synchronous_commit is off server-wide; make this commit reach the
        # WAL before the crash.
        pg.psql(
            "set synchronous_commit = on; create table t (v int); insert into t values (7)",
            user="mediation",
            database="mediation",
        )
        pg.kill()
        assert not pg.running
        pg.start()
        conn = await _pg_connect(pg)
        try:
            assert await conn.fetchval("select v from t") == 7
        finally:
            await conn.close()


def test_postgres_missing_binaries_fail_loudly(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(services, "PG_BINDIR_GLOB", str(tmp_path / "none" / "*" / "bin"))
    pg = PostgresServer()
    with pytest.raises(RuntimeError, match="postgresql"):
        pg.start()
    assert not pg.running
    assert pg.tmpdir is None


async def test_redis_start_ping_restart_stop():
    server = RedisServer()
    try:
        server.start()
        assert server.running
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        tmpdir = server.tmpdir
        assert tmpdir is not None and tmpdir.is_dir()

        client = aioredis.from_url(server.url)
        try:
            assert await client.ping() is True
            await client.set("k", "v")
        finally:
            await client.aclose()

        port = server.port
        server.restart()
        assert server.running
        assert server.port == port

        client = aioredis.from_url(server.url)
        try:
            assert await client.ping() is True
            # No persistence: a restart starts empty.
            assert await client.get("k") is None
        finally:
            await client.aclose()
    finally:
        server.stop()

    assert not server.running
    assert not _port_open(port)
    assert not tmpdir.exists()
    server.stop()  # idempotent


def test_redis_missing_binary_fails_loudly(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    server = RedisServer()
    with pytest.raises(RuntimeError, match="redis-server"):
        server.start()
    assert server.tmpdir is None


async def test_redis_appendonly_restart_keeps_data():
    with RedisServer(appendonly=True) as server:
        client = aioredis.from_url(server.url)
        try:
            await client.set("k", "v")
        finally:
            await client.aclose()
        server.restart()
        client = aioredis.from_url(server.url)
        try:
            assert await client.get("k") == b"v"
        finally:
            await client.aclose()


def _serve_once(listener: socket.socket, body: bytes) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


def test_nginx_passes_a_refused_request_to_the_next_upstream():
    import threading
    import urllib.request

    dead = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        live = listener.getsockname()[1]
        with services.NginxServer([dead, live]) as nginx:
            for _ in range(2):  # whichever node round robin picks first, the live one answers
                server = threading.Thread(target=_serve_once, args=(listener, b"live"))
                server.start()
                with urllib.request.urlopen(nginx.url + "/healthz", timeout=10) as response:
                    assert response.read() == b"live"
                server.join(10)
        assert not _port_open(nginx.port)


def _janus(url: str, body: dict) -> dict:
    import json
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps({**body, "transaction": "t"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_janus_serves_only_the_videoroom_behind_its_secret_and_recovers_after_kill():
    from tests.support.janus import JanusServer

    with JanusServer() as janus:
        info = _janus(janus.url, {"janus": "info", "apisecret": janus.api_secret})
        assert list(info["plugins"]) == ["janus.plugin.videoroom"]
        assert list(info["transports"]) == ["janus.transport.http"]
        refused = _janus(janus.url, {"janus": "create"})
        assert refused["janus"] == "error" and refused["error"]["code"] == 403  # JANUS_ERROR_UNAUTHORIZED
        url = janus.url
        janus.kill()
        assert not _port_open(janus.port)
        janus.start()
        assert janus.url == url
        assert _janus(janus.url, {"janus": "create", "apisecret": janus.api_secret})["janus"] == "success"
