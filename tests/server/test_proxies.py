"""Behind a trusted reverse proxy, per-address limits count the client, not the proxy."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from tests.conftest import _serve, make_settings
from server.proxies import forwarded_client

TRUSTED = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")]


def test_forwarded_client_believed_only_from_a_trusted_proxy() -> None:
    assert forwarded_client("127.0.0.1", "203.0.113.7", TRUSTED) == "203.0.113.7"
    assert forwarded_client("198.51.100.1", "203.0.113.7", TRUSTED) is None
    # The rightmost hop that is not ours; what the client wrote further left is ignored.
    assert forwarded_client("127.0.0.1", "192.0.2.1, 203.0.113.7, 10.1.2.3", TRUSTED) == "203.0.113.7"
    assert forwarded_client("127.0.0.1", "not-an-address", TRUSTED) is None
    assert forwarded_client("127.0.0.1", "10.0.0.1", TRUSTED) is None


async def test_proxies_sign_in_limit_counts_each_forwarded_client(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, trusted_proxies=("127.0.0.1",), login_address_free_failures=4)
    async for api in _serve(settings):
        wrong = {"username": "nobody", "password": "a wrong but long password"}
        for client in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"):
            status, body = await api.call("POST", "/api/auth/login", json={**wrong, "username": client},
                                          headers={"X-Forwarded-For": client})
            assert status == 401, body
        # An address backs off at its fifth failure (login_address_free_failures=4): the sixth attempt is refused.
        for n in range(4):
            await api.call("POST", "/api/auth/login", json={**wrong, "username": f"u{n}"},
                           headers={"X-Forwarded-For": "203.0.113.1"})
        status, body = await api.call("POST", "/api/auth/login", json={**wrong, "username": "last"},
                                      headers={"X-Forwarded-For": "203.0.113.1"})
        assert status == 429, body
        status, body = await api.call("POST", "/api/auth/login", json={**wrong, "username": "other"},
                                      headers={"X-Forwarded-For": "203.0.113.9"})
        assert status == 401, body
