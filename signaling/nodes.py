"""Nodes that stop: this node's beat, and settling the members whose socket was on a node gone silent."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from signaling import devices, lobby
from signaling.identity import Unavailable
from signaling.turns import Turn, system_identity

if TYPE_CHECKING:
    from signaling.engine import RoomEngine

log = logging.getLogger("mediation.signaling")


class NodeWatch:
    """Runs on one task of its node, through the engine's ``liveness`` (never through the room store)."""

    def __init__(self, engine: RoomEngine) -> None:
        self._engine = engine
        self._counted = False  # whether the other nodes have counted this node as running yet

    async def keep_alive(self) -> None:
        engine, settings = self._engine, self._engine.settings
        heard_since: float | None = None  # since when every beat of this node has reached the store
        while True:
            try:
                counted = await engine.liveness.node_alive(engine.node_id, settings.node_timeout_seconds)
                heard_since = heard_since or time.monotonic()
                if self._counted and not counted:
                    log.error("this node went unheard past its timeout; other nodes may have marked its members "
                              "disconnected, so their sockets are closed and rejoin",
                              extra={"node": engine.node_id, "timeout_seconds": settings.node_timeout_seconds})
                    await self._release_lost_sockets()
                self._counted = True
                # After this node's own start or outage, the others had no chance to beat since the store
                # came back: wait one timeout before taking their silence for death.
                if time.monotonic() - heard_since >= settings.node_timeout_seconds:
                    for node_id, sessions in (await engine.liveness.gone_nodes()).items():
                        if node_id != engine.node_id:
                            await self._settle(node_id, sessions)
            except asyncio.CancelledError:
                raise
            except Unavailable as exc:
                heard_since = None
                log.warning("could not check on the other nodes", extra={"reason": str(exc)})
            except Exception:  # noqa: BLE001 - one failed round must not end the node's liveness
                log.exception("checking on the other nodes failed")
            await asyncio.sleep(settings.node_beat_seconds)

    async def _settle(self, node_id: str, sessions: list[str]) -> None:
        """Mark disconnected the members whose socket was on the gone node ``node_id``."""
        engine = self._engine
        marked = 0
        for session_id in sessions:
            turn = None
            async with engine.store.transaction(session_id) as room:
                if room is not None and not room.ended:
                    if devices.drop_on_node(room, node_id):
                        first = next(iter(room.members.values()), None)
                        if first is not None:
                            turn = turn or Turn.begin(room, first, system_identity(room), "")
                            turn.roster_changed = True
                    for member in list(room.members.values()):
                        if member.connected and member.node == node_id:
                            turn = turn or Turn.begin(room, member, system_identity(room), "")
                            lobby.gone(engine, turn, member, participant_id=member.participant_id, reason="node_lost")
                            marked += 1
                        elif not member.connected and member.disconnected_at is not None:
                            # Its grace timer may have run on the gone node: keep one here (a second
                            # timer for the same departure does nothing).
                            engine.tasks.own(lobby.expire_later(engine, session_id, member.participant_id,
                                                                member.disconnected_at))
            await engine.runner.flush(turn)
        await engine.liveness.forget_node(node_id)
        engine.on_node_lost(marked)
        log.warning("a node stopped; its participants are marked disconnected",
                    extra={"node": node_id, "rooms": len(sessions), "participants": marked})

    async def _release_lost_sockets(self) -> None:
        engine = self._engine
        for sid, connection in list(engine.connections.items()):
            if not connection.joined:
                continue
            room = await engine.store.get(connection.identity.session_id)
            member = room.members.get(connection.identity.participant_id) if room is not None else None
            if member is None or member.sid != sid:
                await engine.outlet.disconnect(sid)

    async def stopped(self) -> None:
        """This node shuts down: the other nodes settle its members now rather than after its timeout."""
        if not self._counted:
            return
        try:
            await self._engine.liveness.node_stopped(self._engine.node_id)
        except Unavailable as exc:
            log.warning("could not tell the other nodes this one stops", extra={"reason": str(exc)})
