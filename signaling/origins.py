"""Which browser origins may open room sockets: the configured ones, and always the server's own."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def _first(header: str | None) -> str | None:
    value = (header or "").split(",")[0].strip()
    return value or None


def transport_peer(request: Any) -> str | None:
    """The address at the other end of the connection (not ``request.remote``, which a trusted proxy's
    ``X-Forwarded-For`` may have replaced by the client's)."""
    transport = getattr(request, "transport", None)
    peername = transport.get_extra_info("peername") if transport is not None else None
    return str(peername[0]) if isinstance(peername, (tuple, list)) and peername else None


class Origins:
    """``MEDIATION_ALLOWED_ORIGINS`` and ``MEDIATION_PUBLIC_URL``, plus the origin the request itself was sent to.

    Called by engine.io as its ``cors_allowed_origins`` (``origin, environ``); the server answers a refused
    handshake itself, with ``{code: "bad_origin", message}``, before engine.io sees it. The server's own
    origin is the ``Host`` the request came with and its scheme; ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` count only on a connection from a proxy ``trusts_peer`` accepts
    (``MEDIATION_TRUSTED_PROXIES``): anyone else could write them."""

    def __init__(self, allowed: Iterable[str], trusts_peer: Callable[[str | None], bool] = lambda _peer: False) -> None:
        listed = [origin.rstrip("/") for origin in allowed if origin]
        self._any = "*" in listed
        self._allowed = frozenset(listed)
        self._trusts_peer = trusts_peer

    def allows(self, origin: str, scheme: str, host: str, forwarded_proto: str | None = None, *,
               forwarded_host: str | None = None) -> bool:
        """``forwarded_proto`` and ``forwarded_host`` are what a trusted proxy said; callers pass None otherwise."""
        if self._any or origin in self._allowed:
            return True
        # The server's own origin: the Host it was reached at, with the scheme it was reached by (or, behind
        # a TLS-terminating proxy, the one the proxy says the browser used).
        schemes = {scheme} | ({proto} if (proto := _first(forwarded_proto)) else set())
        hosts = {host} | ({named} if (named := _first(forwarded_host)) else set())
        return any(origin == f"{s}://{h}" for s in schemes for h in hosts if h)

    def allows_request(self, origin: str, request: Any) -> bool:
        """The check for an aiohttp request, forwarded headers believed only from a trusted proxy."""
        trusted = self._trusts_peer(transport_peer(request))
        headers = request.headers
        return self.allows(origin, request.scheme, headers.get("Host", ""),
                           headers.get("X-Forwarded-Proto") if trusted else None,
                           forwarded_host=headers.get("X-Forwarded-Host") if trusted else None)

    def __call__(self, origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True  # not a browser's cross-origin request; credentials decide
        request = environ.get("aiohttp.request")
        if request is not None:
            return self.allows_request(origin, request)
        # No connection to ask (engine.io's environ sets wsgi.url_scheme from X-Forwarded-Proto): no
        # forwarded header is believed.
        scheme = "http" if "HTTP_X_FORWARDED_PROTO" in environ else environ.get("wsgi.url_scheme", "http")
        return self.allows(origin, scheme, environ.get("HTTP_HOST", ""))
