"""Per-address budgets of the socket transport, and malformed frames, through a real server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from server.app import METRICS
from tests.conftest import Api, _serve, make_settings

POLL = "/socket.io/?EIO=4&transport=polling"
CLIENT_A, CLIENT_B = "203.0.113.7", "198.51.100.20"


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Api]:
    """Small budgets, and the test's loopback connection trusted as a proxy so X-Forwarded-For names clients."""
    settings = make_settings(tmp_path, trusted_proxies=("127.0.0.1",), socket_sessions_per_address=3,
                             socket_handshakes_per_minute=5, socket_polls_per_minute=8)
    async for api in _serve(settings):
        yield api


async def _get(api: Api, path: str, client: str) -> tuple[int, str, dict[str, str]]:
    async with api.session.get(api.base + path, headers={"X-Forwarded-For": client}) as response:
        return response.status, await response.text(), dict(response.headers)


async def _handshake(api: Api, client: str) -> str:
    status, text, _ = await _get(api, POLL, client)
    assert status == 200, text
    return text.split('"sid":"', 1)[1].split('"', 1)[0]


def _refusals(api: Api, reason: str) -> float:
    return api.app[METRICS].refusals.labels(reason)._value.get()


async def test_socketguard_sessions_past_address_budget_get_429_too_many_sessions(guarded: Api) -> None:
    for _ in range(3):
        await _handshake(guarded, CLIENT_A)
    status, text, headers = await _get(guarded, POLL, CLIENT_A)
    assert status == 429 and '"code": "too_many_sessions"' in text and int(headers["Retry-After"]) >= 1
    assert _refusals(guarded, "too_many_sessions") == 1
    await _handshake(guarded, CLIENT_B)  # another address has its own budget


async def test_socketguard_handshakes_past_rate_get_429_handshake_rate_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, trusted_proxies=("127.0.0.1",), socket_handshakes_per_minute=2)
    async for api in _serve(settings):
        for _ in range(2):
            await _handshake(api, CLIENT_A)
        status, text, headers = await _get(api, POLL, CLIENT_A)
        assert status == 429 and '"code": "handshake_rate_limited"' in text and int(headers["Retry-After"]) >= 1
        await _handshake(api, CLIENT_B)


async def test_socketguard_polls_past_rate_get_429_poll_rate_limited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, trusted_proxies=("127.0.0.1",), socket_polls_per_minute=4)
    async for api in _serve(settings):
        sid = await _handshake(api, CLIENT_A)  # a handshake is a polling request too
        async with api.session.post(f"{api.base}{POLL}&sid={sid}", data="40/room,{}",
                                    headers={"X-Forwarded-For": CLIENT_A}) as response:
            assert response.status == 200
        await _handshake(api, CLIENT_A)
        await _handshake(api, CLIENT_A)
        status, text, headers = await _get(api, f"{POLL}&sid={sid}", CLIENT_A)
        assert status == 429 and '"code": "poll_rate_limited"' in text and int(headers["Retry-After"]) >= 1
        await _handshake(api, CLIENT_B)


async def test_socketguard_malformed_frames_counted_logged_once_without_traceback_session_kept(
        guarded: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(2):
        async with guarded.session.ws_connect(f"{guarded.base}/socket.io/?EIO=4&transport=websocket",
                                              headers={"X-Forwarded-For": CLIENT_A}) as ws:
            opened = await ws.receive(timeout=5)
            assert opened.type == aiohttp.WSMsgType.TEXT and opened.data.startswith("0")
            for _ in range(3):
                await ws.send_str('42/room,["send_chat", {"text": "unterminated')
            await ws.send_str("49/room,{}")  # a packet type socket.io does not have
            # The session is still served: a connect without credentials is answered with its refusal.
            await ws.send_str("40/room,{}")
            answer = await ws.receive(timeout=5)
            assert answer.type == aiohttp.WSMsgType.TEXT and answer.data.startswith("44/room,"), answer
            assert '"bad_token"' in answer.data
    assert guarded.app[METRICS].malformed_frames._value.get() == 8
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1 and lines[0].client == CLIENT_A and lines[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


async def test_socketguard_websocket_declines_compression_offered_and_still_opens(guarded: Api) -> None:
    url = guarded.base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with guarded.session.ws_connect(url, compress=15, headers={"X-Forwarded-For": CLIENT_A}) as ws:
        assert ws.compress == 0  # permessage-deflate offered by the client, not agreed by the server
        opened = await ws.receive_str(timeout=10)
        assert opened.startswith("0{") and '"sid"' in opened  # engine.io's open packet, uncompressed
    # Offered nothing, the same.
    async with guarded.session.ws_connect(url, compress=0, headers={"X-Forwarded-For": CLIENT_B}) as ws:
        assert (await ws.receive_str(timeout=10)).startswith("0{")
