"""Resending what this node's sockets may have missed while its Redis subscription was lost."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from signaling.identity import Identity, Unavailable
from signaling.roomstate import ADMITTED
from signaling import devices
from signaling.views import isolated_from, room_view, visible_history, waiting_view

if TYPE_CHECKING:
    from signaling.engine import RoomEngine

log = logging.getLogger("mediation.signaling")

# How far before a lost Redis subscription chat is resent: a turn stamps sent_at before it publishes.
RESYNC_MARGIN_SECONDS = 5.0
# How long a resend keeps asking a store that does not answer yet: 40 × 0.5 s.
RESYNC_ATTEMPTS = 40
RESYNC_RETRY_SECONDS = 0.5


async def resend(engine: RoomEngine, lost_at: float) -> None:
    """Send each joined socket of this node its room's state and the chat it may see since ``lost_at``."""
    since = lost_at - RESYNC_MARGIN_SECONDS
    sockets: dict[str, list[tuple[str, Identity]]] = {}
    for sid, connection in list(engine.connections.items()):
        if connection.joined:
            sockets.setdefault(connection.identity.session_id, []).append((sid, connection.identity))
    outlet = engine.outlet
    for session_id, members in sockets.items():
        # Right after Redis comes back, pooled connections it closed fail once each, and a Redis
        # loading its append-only file refuses reads: ask again until it answers, not just once.
        for attempt in range(RESYNC_ATTEMPTS):
            try:
                room = await engine.store.get(session_id)
                stored = await engine.store.chat_messages(session_id) if room is not None else []
                break
            except Unavailable as exc:
                if attempt + 1 == RESYNC_ATTEMPTS:
                    log.error("no resend: the room store did not answer", extra={
                        "session_id": session_id, "attempts": RESYNC_ATTEMPTS, "error": str(exc)})
                    room = None
                else:
                    await asyncio.sleep(RESYNC_RETRY_SECONDS)
        if room is None:
            continue
        messages = [m for m in stored if dt.datetime.fromisoformat(m["sent_at"]).timestamp() >= since]
        for sid, identity in members:
            member = room.members.get(identity.participant_id)
            if member is not None and devices.waiting(room, member.participant_id, sid):
                await outlet.emit("room_state", waiting_view(room, member), to=sid, ignore_queue=True)
                continue
            if member is None or member.sid != sid:
                continue
            # Only to this node's own socket; a client keeps one chat_message per seq.
            await outlet.emit("room_state", room_view(room, member), to=sid, ignore_queue=True)
            if member.status == ADMITTED:
                await outlet.emit("media_isolation", {"stop_sending_to": isolated_from(room, member)}, to=sid,
                                  ignore_queue=True)
            for message in visible_history(room, member, messages):
                await outlet.emit("chat_message", message, to=sid, ignore_queue=True)
