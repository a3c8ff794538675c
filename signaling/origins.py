"""Which browser origins may open room sockets: the configured ones, and always the server's own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Origins:
    """``MEDIATION_ALLOWED_ORIGINS`` and ``MEDIATION_PUBLIC_URL``, plus the origin the request itself was sent to.

    Called by engine.io as its ``cors_allowed_origins`` (``origin, environ``); the server answers a refused
    handshake itself, with ``{code: "bad_origin", message}``, before engine.io sees it."""

    def __init__(self, allowed: Iterable[str]) -> None:
        listed = [origin.rstrip("/") for origin in allowed if origin]
        self._any = "*" in listed
        self._allowed = frozenset(listed)

    def allows(self, origin: str, scheme: str, host: str, forwarded_proto: str | None = None) -> bool:
        if self._any or origin in self._allowed:
            return True
        # The server's own origin: the Host it was reached at, with the scheme it was reached by (or, behind
        # a TLS-terminating proxy, the one the proxy says the browser used).
        schemes = {scheme} | ({forwarded_proto.split(",")[0].strip()} if forwarded_proto else set())
        return bool(host) and origin in {f"{s}://{host}" for s in schemes}

    def __call__(self, origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True  # not a browser's cross-origin request; credentials decide
        return self.allows(origin, environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST", ""),
                           environ.get("HTTP_X_FORWARDED_PROTO"))
