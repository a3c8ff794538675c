"""deploy/turnserver.conf on a real coturn: the credentials signaling.ice hands out allocate relays,
two relay-only ICE agents reach each other through them, and what the file refuses stays refused."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import aioice
import pytest
from aioice import stun
from aioice.turn import TurnClientUdpProtocol

from signaling.ice import ice_servers, turn_credentials
from tests.support.services import TurnServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

WAIT = 10.0
TTL = 3600
REALM = "turn.mediation.example.org"  # deploy/turnserver.conf


@pytest.fixture(scope="module")
def turn() -> Iterator[TurnServer]:
    with TurnServer() as server:
        yield server


def issued(turn: TurnServer, participant_id: str, transport: str) -> tuple[str, str]:
    """The TURN username and credential a node gives ``participant_id``, as the browser receives them."""
    scheme, port = ("turns", turn.tls_port) if transport == "tls" else ("turn", turn.port)
    url = f"{scheme}:{turn.host}:{port}?transport={'udp' if transport == 'udp' else 'tcp'}"
    (server,) = ice_servers((), (url,), turn.secret, participant_id, TTL)
    assert server["urls"] == [url]
    return str(server["username"]), str(server["credential"])


def relay_only(turn: TurnServer, username: str, password: str, *, controlling: bool = True,
               transport: str = "udp") -> aioice.Connection:
    """An ICE agent whose only candidate is a relay on ``turn``, reached over udp, tcp or tls."""
    return aioice.Connection(
        ice_controlling=controlling,
        turn_server=(turn.host, turn.tls_port if transport == "tls" else turn.port),
        turn_username=username,
        turn_password=password,
        turn_transport="udp" if transport == "udp" else "tcp",
        turn_ssl=transport == "tls",
        transport_policy=aioice.TransportPolicy.RELAY,
    )


@contextlib.asynccontextmanager
async def turn_client(turn: TurnServer, username: str, password: str) -> AsyncIterator[TurnClientUdpProtocol]:
    """A bare TURN client over UDP, for the server's answers that an ICE agent hides."""
    loop = asyncio.get_running_loop()
    server = (turn.host, turn.port)
    transport, client = await loop.create_datagram_endpoint(
        lambda: TurnClientUdpProtocol(server, username=username, password=password, lifetime=600,
                                      channel_refresh_time=500),
        remote_addr=server)
    try:
        yield client
    finally:
        if client.relayed_address is not None:
            await asyncio.wait_for(client.delete(), WAIT)
        transport.close()


async def allocation_error(turn: TurnServer, username: str, password: str) -> int | None:
    """The STUN error code of an Allocate with these credentials."""
    async with turn_client(turn, username, password) as client:
        with pytest.raises(stun.TransactionFailed) as refused:
            await asyncio.wait_for(client.connect(), WAIT)
    return refused.value.response.error_code


def relays(connection: aioice.Connection) -> list[aioice.Candidate]:
    return [c for c in connection.local_candidates if c.type == "relay"]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_turn_issued_credentials_relay_datagrams_both_ways(turn: TurnServer, transport: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if transport == "tls":
        # The client verifies the server's certificate (for 127.0.0.1) against the trust store
        # OpenSSL reads from SSL_CERT_FILE, as it would a public CA's against the system's.
        monkeypatch.setenv("SSL_CERT_FILE", str(turn.cert_path))
    mediator = relay_only(turn, *issued(turn, "pty_mediator", transport), controlling=True, transport=transport)
    borrower = relay_only(turn, *issued(turn, "pty_borrower", transport), controlling=False, transport=transport)
    try:
        await asyncio.wait_for(asyncio.gather(mediator.gather_candidates(), borrower.gather_candidates()), WAIT)
        for agent in (mediator, borrower):
            assert [c.type for c in agent.local_candidates] == ["relay"], turn.log_tail()
            (relay,) = agent.local_candidates
            assert relay.host == turn.host
            assert turn.min_port <= relay.port <= turn.max_port
        # Candidates cross as signaling carries them: SDP candidate lines.
        for near, far in ((mediator, borrower), (borrower, mediator)):
            near.remote_username, near.remote_password = far.local_username, far.local_password
            for candidate in far.local_candidates:
                await near.add_remote_candidate(aioice.Candidate.from_sdp(candidate.to_sdp()))
            await near.add_remote_candidate(None)
        await asyncio.wait_for(asyncio.gather(mediator.connect(), borrower.connect()), WAIT)

        await mediator.send(b"offer: 40% now, the rest in six instalments")
        assert await asyncio.wait_for(borrower.recv(), WAIT) == b"offer: 40% now, the rest in six instalments"
        await borrower.send(b"accepted")
        assert await asyncio.wait_for(mediator.recv(), WAIT) == b"accepted"
    finally:
        await asyncio.gather(mediator.close(), borrower.close())


async def assert_refused(turn: TurnServer, username: str, password: str) -> None:
    """The credential gathers no relay candidate, and a direct Allocate with it gets 401."""
    agent = relay_only(turn, username, password)
    try:
        await asyncio.wait_for(agent.gather_candidates(), WAIT)
        assert relays(agent) == [], turn.log_tail()
    finally:
        await agent.close()
    assert await allocation_error(turn, username, password) == 401


async def test_turn_credential_of_another_secret_gets_no_relay(turn: TurnServer) -> None:
    username, password = turn_credentials("not " + turn.secret, "pty_borrower", TTL)
    await assert_refused(turn, username, password)


async def test_turn_expired_credential_gets_no_relay(turn: TurnServer) -> None:
    username, password = turn_credentials(turn.secret, "pty_borrower", TTL, now=lambda: time.time() - 2 * TTL)
    assert int(username.split(":", 1)[0]) < time.time()
    await assert_refused(turn, username, password)


@pytest.mark.parametrize("peer", ["127.0.0.2", "10.1.2.3", "100.64.0.1", "169.254.1.1", "172.16.0.1",
                                  "192.168.1.1", "0.0.0.1", "224.0.0.1"])
async def test_turn_peer_in_internal_range_refused(turn: TurnServer, peer: str) -> None:
    async with turn_client(turn, *issued(turn, "pty_borrower", "udp")) as client:
        await asyncio.wait_for(client.connect(), WAIT)
        assert client.realm == REALM
        # A public address is allowed, so a refusal below is the file's denied range, not the client.
        await asyncio.wait_for(client.channel_bind(0x4000, ("192.0.2.1", 9)), WAIT)
        with pytest.raises(stun.TransactionFailed) as refused:
            await asyncio.wait_for(client.channel_bind(0x4001, (peer, 9)), WAIT)
        assert refused.value.response.error_code == 403
