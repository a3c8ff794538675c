"""The socket handshake through a real server: origins, and what a socket may hear before join_room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import socketio

from signaling.origins import Origins
from tests.conftest import Api, _serve, make_settings, walk_to_scheduled
from tests.signaling.conftest import Session
from tests.signaling.peer import Participant

OTHER_ORIGIN = "https://partner.example"


@pytest.fixture
async def listed_api(tmp_path: Path) -> AsyncIterator[Api]:
    """A server with MEDIATION_ALLOWED_ORIGINS set and no MEDIATION_PUBLIC_URL."""
    async for client in _serve(make_settings(tmp_path, allowed_origins=(OTHER_ORIGIN,))):
        yield client


async def test_handshake_own_origin_is_accepted_beside_the_listed_ones(listed_api: Api) -> None:
    journey = await walk_to_scheduled(listed_api)
    for origin in (listed_api.base, OTHER_ORIGIN):
        peer = Participant(listed_api.base, {"token": journey.mediator, "session_id": journey.session_id},
                           headers={"Origin": origin})
        try:
            assert (await peer.join())["role"] == "mediator", origin
        finally:
            await peer.close()


async def test_handshake_other_origin_is_refused_with_code_and_message(listed_api: Api) -> None:
    async with listed_api.session.get(f"{listed_api.base}/socket.io/?EIO=4&transport=polling",
                                      headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403
        body = await resp.json()
    assert body == {"code": "bad_origin", "message": body["message"]} and "evil.example" in body["message"]
    journey = await walk_to_scheduled(listed_api)
    peer = Participant(listed_api.base, {"token": journey.mediator, "session_id": journey.session_id},
                       headers={"Origin": "https://evil.example"})
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await peer.connect()
    finally:
        await peer.close()


async def test_handshake_unknown_event_before_join_gets_unknown_event(room: Session) -> None:
    peer = room.borrower()
    await peer.connect()
    reply = await peer.request("no_such_request", {})
    assert reply == {"ok": False, "error": "unknown_event", "message": reply["message"]}
    assert (await peer.wait_for("error"))["code"] == "unknown_event"
    assert (await peer.request("send_chat", {"text": "hello"}))["error"] == "not_joined"


async def test_handshake_connects_per_minute_is_the_setting(tmp_path: Path) -> None:
    async for api in _serve(make_settings(tmp_path, room_connects_per_minute=3)):
        journey = await walk_to_scheduled(api)
        auth = {"token": journey.mediator, "session_id": journey.session_id}
        for attempt in range(3):
            peer = Participant(api.base, auth)
            try:
                await peer.connect()
            finally:
                await peer.close()
        refused = Participant(api.base, auth)
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await refused.connect()
            assert refused.refusal["code"] == "rate_limited"
        finally:
            await refused.close()


def test_handshake_origins_own_listed_and_forwarded_scheme() -> None:
    origins = Origins(("https://partner.example/", ""))
    assert origins.allows("https://partner.example", "http", "node:8080")
    assert origins.allows("http://node:8080", "http", "node:8080")
    # Behind a TLS-terminating proxy that keeps Host and says the browser's scheme.
    assert origins.allows("https://rooms.example", "http", "rooms.example", "https")
    assert not origins.allows("https://rooms.example", "http", "rooms.example")
    assert not origins.allows("https://evil.example", "https", "rooms.example", "https")
    assert not origins.allows("null", "https", "rooms.example")
    assert Origins(("*",)).allows("https://anything.example", "http", "node")
    assert origins(None, {}) and not origins("https://evil.example", {"wsgi.url_scheme": "http", "HTTP_HOST": "node"})


async def _handshake_status(api: Api, headers: dict[str, str]) -> int:
    async with api.session.get(f"{api.base}/socket.io/?EIO=4&transport=polling", headers=headers) as resp:
        return resp.status


async def test_handshake_forwarded_headers_from_untrusted_peer_are_not_believed(listed_api: Api) -> None:
    """No MEDIATION_TRUSTED_PROXIES: X-Forwarded-Proto and X-Forwarded-Host are anyone's words."""
    host = listed_api.base.split("://", 1)[1]
    assert await _handshake_status(listed_api, {"Origin": listed_api.base}) == 200
    assert await _handshake_status(listed_api, {"Origin": f"https://{host}", "X-Forwarded-Proto": "https"}) == 403
    assert await _handshake_status(listed_api, {"Origin": "https://evil.example", "X-Forwarded-Proto": "https",
                                                "X-Forwarded-Host": "evil.example"}) == 403


async def test_handshake_forwarded_headers_from_trusted_proxy_name_the_own_origin(tmp_path: Path) -> None:
    async for api in _serve(make_settings(tmp_path, trusted_proxies=("127.0.0.1",))):
        host = api.base.split("://", 1)[1]
        assert await _handshake_status(api, {"Origin": f"https://{host}", "X-Forwarded-Proto": "https"}) == 200
        assert await _handshake_status(api, {"Origin": "https://rooms.example", "X-Forwarded-Proto": "https",
                                             "X-Forwarded-Host": "rooms.example"}) == 200
        assert await _handshake_status(api, {"Origin": "https://evil.example", "X-Forwarded-Proto": "https",
                                             "X-Forwarded-Host": "rooms.example"}) == 403
    async for api in _serve(make_settings(tmp_path / "other", trusted_proxies=("10.0.0.0/8",))):
        assert await _handshake_status(api, {"Origin": "https://rooms.example", "X-Forwarded-Proto": "https",
                                             "X-Forwarded-Host": "rooms.example"}) == 403


def test_handshake_origins_engineio_environ_without_request_believes_no_forwarded_header() -> None:
    origins = Origins((), lambda _peer: True)
    environ = {"wsgi.url_scheme": "https", "HTTP_HOST": "rooms.example", "HTTP_X_FORWARDED_PROTO": "https"}
    assert not origins("https://rooms.example", environ)
    assert origins("http://rooms.example", environ)
