"""ICE servers for clients, with TURN credentials in coturn's shared-secret REST scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable


def turn_credentials(secret: str, participant_id: str, ttl: int, now: Callable[[], float] = time.time) -> tuple[str, str]:
    """``username = "<expiry>:<participant_id>"``, ``credential = base64(HMAC-SHA1(secret, username))``."""
    username = f"{int(now()) + ttl}:{participant_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(
    stun_urls: tuple[str, ...], turn_urls: tuple[str, ...], turn_secret: str, participant_id: str, ttl: int
) -> list[dict[str, object]]:
    """An ``RTCIceServer[]`` for one participant."""
    servers: list[dict[str, object]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and turn_secret:
        username, credential = turn_credentials(turn_secret, participant_id, ttl)
        servers.append({"urls": list(turn_urls), "username": username, "credential": credential})
    return servers
