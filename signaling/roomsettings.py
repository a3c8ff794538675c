"""What the room engine is given by the composition root: ICE servers, timings and per-socket budgets."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class RoomSettings:
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl_seconds: int = 3600
    reconnect_grace_seconds: float = 60.0
    # Per socket: the chat bucket meters send_chat, typing and consent changes, the signal bucket every other
    # request.
    chat_rate: float = 5.0
    chat_burst: float = 10.0
    signal_rate: float = 100.0
    signal_burst: float = 300.0
    # Requests refused for rate a socket may send (burst, then per second) before it is disconnected:
    # far beyond what a client that heeds rate_limited ever reaches.
    flood_rate: float = 10.0
    flood_burst: float = 300.0
    # Room connections per client address per minute, on each node.
    connects_per_minute: int = 120
    # A socket's credential is asked about again (Hooks.authorize) once this long has passed since its last
    # check, on its next request or by the quiet-socket sweep: a revocation ends an open socket within it.
    credential_recheck_seconds: float = 1.0
    # Every node says it runs this often; one silent for node_timeout_seconds counts as gone, and its
    # members are marked disconnected (their reconnect grace starts then).
    node_beat_seconds: float = 2.0
    node_timeout_seconds: float = 10.0
