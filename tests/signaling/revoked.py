"""What a revoked socket must show: its next request refused with the code, the notice, and its close within 1 s."""

from __future__ import annotations

import asyncio
import time

import socketio

from tests.signaling.peer import WAIT, Participant

# A revocation reaches every open socket, on every node, within this long (docs/protocol.md).
REACH_SECONDS = 1.0


async def refused_at_once(peer: Participant, code: str, *, since: float) -> None:
    """``peer``'s next request is refused with ``code`` (or finds the socket closed already, the notice
    received); ``access_revoked`` {code} arrives and the socket closes, all within REACH_SECONDS of ``since``."""
    try:
        result = await peer.request("chat_history", {})
    except (socketio.exceptions.BadNamespaceError, socketio.exceptions.DisconnectedError,
            socketio.exceptions.TimeoutError):
        result = None  # closed already: nothing it sends is served
    if result is None:
        assert not peer.client.connected
    else:
        assert result == {"ok": False, "error": code, "message": result["message"]}, result
    notice = await peer.wait_for("access_revoked", timeout=WAIT)
    assert notice["code"] == code, notice
    async with asyncio.timeout(WAIT):
        while peer.client.connected:
            await asyncio.sleep(0.01)
    elapsed = time.monotonic() - since
    assert elapsed < REACH_SECONDS, f"closed {elapsed:.2f} s after the revocation"


async def closed_within(peer: Participant, code: str, *, since: float) -> None:
    """``peer`` sends nothing: ``access_revoked`` {code} reaches it and it closes within REACH_SECONDS."""
    notice = await peer.wait_for("access_revoked", timeout=WAIT)
    assert notice["code"] == code, notice
    async with asyncio.timeout(WAIT):
        while peer.client.connected:
            await asyncio.sleep(0.01)
    elapsed = time.monotonic() - since
    assert elapsed < REACH_SECONDS, f"closed {elapsed:.2f} s after the revocation"
