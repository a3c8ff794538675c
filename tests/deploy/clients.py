"""Room clients that reconnect by themselves and send ``join_room`` again, as the web client does."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from tests.signaling.peer import WAIT, Participant


class RoomClient(Participant):
    """A participant that, like the web client, reconnects by itself and sends ``join_room`` again.

    ``rejoined`` holds the ``join_room`` results of every connection after the first.
    """

    def __init__(self, base: str, auth: dict[str, Any]) -> None:
        super().__init__(base, auth, client=socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1.0, randomization_factor=0.5))
        self.rejoined: list[dict[str, Any]] = []
        self.disconnects = 0
        self._rejoining: set[asyncio.Task[None]] = set()
        self.client.on("connect", self._connected, namespace="/room")
        self.client.on("disconnect", self._disconnected, namespace="/room")

    async def _connected(self) -> None:
        if self.participant_id is None:
            return  # the first connection: join() sends join_room
        task = asyncio.ensure_future(self._rejoin())
        self._rejoining.add(task)
        task.add_done_callback(self._rejoining.discard)

    async def _disconnected(self, *_reason: Any) -> None:
        self.disconnects += 1
        self._changed.set()

    async def _rejoin(self) -> None:
        try:
            # The same device: its resume key lets it take its place back even while its old socket, on a
            # node that died, still looks live.
            payload = {"resume": self.resume_key} if self.resume_key else {}
            result = await self.client.call("join_room", payload, namespace="/room", timeout=WAIT)
            if result.get("ok"):
                self.resume_key = result.get("resume_key")
        except (socketio.exceptions.SocketIOError, TimeoutError) as exc:
            result = {"ok": False, "error": "no_answer", "message": repr(exc)}
        self.rejoined.append(result)
        self._changed.set()

    async def wait_rejoined(self, count: int = 1, timeout: float = WAIT) -> dict[str, Any]:
        async def scan() -> dict[str, Any]:
            while len(self.rejoined) < count:
                self._changed.clear()
                await self._changed.wait()
            return self.rejoined[count - 1]
        return await asyncio.wait_for(scan(), timeout)

    async def close(self) -> None:
        for task in list(self._rejoining):
            task.cancel()
        await asyncio.gather(*self._rejoining, return_exceptions=True)
        await super().close()
