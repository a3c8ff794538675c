"""What the room engine is given by the composition root: ICE servers, timings and per-socket budgets."""

from __future__ import annotations

import dataclasses

from signaling.partybudgets import Budget


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
    # A revocation is announced to every node at once (signaling/authority.py); besides, every open socket's
    # credential is asked about again (Hooks.authorize) once this long has passed since its last check.
    credential_recheck_seconds: float = 30.0
    # Every node says it runs this often; one silent for node_timeout_seconds counts as gone, and its
    # members are marked disconnected (their reconnect grace starts then).
    node_beat_seconds: float = 2.0
    node_timeout_seconds: float = 10.0
    # Per participant, across its sockets and nodes: requests that leave permanent evidence (sealed
    # records, audit entries). "consent": give_consent and withdraw_consent; "presence": join_room and
    # leave_room. Each holds ``burst`` requests, then refills one every ``interval`` seconds.
    consent_burst: int = 6
    consent_interval: float = 10.0
    presence_burst: int = 30
    presence_interval: float = 2.0
    # Janus instances (their HTTP API URLs) the rooms' media go through; none: the browsers' mesh.
    janus_urls: tuple[str, ...] = ()
    janus_api_secret: str = ""
    janus_admin_key: str = ""  # the VideoRoom plugin's admin_key: creating rooms and RTP forwarders
    janus_video_bitrate: int = 600_000
    recorder_rtp_host: str = "127.0.0.1"  # where Janus forwards recorded media to the recorder worker

    def budget(self, name: str) -> Budget:
        """The per-participant budget ``name`` of the request table."""
        if name == "consent":
            return Budget(self.consent_burst, self.consent_interval)
        if name == "presence":
            return Budget(self.presence_burst, self.presence_interval)
        raise ValueError(f"no participant budget named {name!r}")
