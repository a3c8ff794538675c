"""The client's address behind trusted reverse proxies, for per-address rate limits."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(raw.strip().strip("[]"))
    except ValueError:
        return None


def forwarded_client(request_remote: str | None, forwarded_for: str, trusted: list[Network]) -> str | None:
    """The first address, from the right of ``X-Forwarded-For``, that is not one of our proxies.

    Only a request that arrives from a trusted proxy is believed; entries left of the first
    untrusted hop could be written by the client itself, so they are never used.
    """
    peer = _address(request_remote or "")
    if peer is None or not any(peer in network for network in trusted):
        return None
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            return None
        if not any(address in network for network in trusted):
            return str(address)
    return None


def peer_trust(trusted_proxies: Iterable[str]) -> Callable[[str | None], bool]:
    """Whether a connection's peer address is one of ``MEDIATION_TRUSTED_PROXIES``."""
    trusted = [ipaddress.ip_network(item, strict=False) for item in trusted_proxies]

    def trusts(peer: str | None) -> bool:
        address = _address(peer or "")
        return address is not None and any(address in network for network in trusted)

    return trusts


def client_address_middleware(trusted_proxies: Iterable[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """``request.remote`` becomes the client's address when a trusted proxy forwarded the request."""
    trusted = [ipaddress.ip_network(item, strict=False) for item in trusted_proxies]

    @web.middleware
    async def client_address(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        forwarded = request.headers.get("X-Forwarded-For")
        if trusted and forwarded:
            client = forwarded_client(request.remote, forwarded, trusted)
            if client is not None:
                request = request.clone(remote=client)
        return await handler(request)

    return client_address
