"""A scripted room participant: a real python-socketio client that records every notice it gets."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from tests.support.e2ee import DeviceKeys

WAIT = 10.0


class Participant:
    def __init__(self, base: str, auth: dict[str, Any], headers: dict[str, str] | None = None,
                 client: socketio.AsyncClient | None = None) -> None:
        self.base = base
        self.auth = auth
        self.headers = headers or {}
        self.client = client or socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        self.client.on("*", self._record, namespace="/room")
        self.client.on("connect_error", self._refused, namespace="/room")
        self.refusal: Any = None
        self.participant_id: str | None = None
        self.resume_key: str | None = None  # what join_room gave this device, to resume its place with

    async def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))
        self._changed.set()

    async def _refused(self, data: Any = None) -> None:
        self.refusal = data.get("data", data) if isinstance(data, dict) else data
        self._changed.set()

    async def connect(self) -> None:
        await self.client.connect(self.base, namespaces=["/room"], auth=self.auth, headers=self.headers,
                                  transports=["websocket"], wait_timeout=WAIT)

    async def join(self, keys: DeviceKeys | None = None) -> dict[str, Any]:
        """Join; with ``keys``, as a browser that encrypts (its public key goes with the join)."""
        await self.connect()
        result = await self.request("join_room", {} if keys is None else {"public_key": keys.public_key})
        assert result["ok"], result
        self.participant_id = result["participant_id"]
        self.resume_key = result.get("resume_key")
        if keys is not None:
            keys.participant_id = result["participant_id"]
        return result

    async def request(self, event: str, data: Any = None) -> dict[str, Any]:
        return await self.client.call(event, data, namespace="/room", timeout=WAIT)

    async def wait_for(self, event: str, predicate=lambda data: True, *, after: int = 0,
                       timeout: float = WAIT) -> Any:
        """The first ``event`` (from index ``after``) whose data satisfies ``predicate``."""
        async def scan() -> Any:
            while True:
                for name, data in self.events[after:]:
                    if name == event and predicate(data):
                        return data
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    def seen(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()
        await self.client.shutdown()
        # engine.io keeps the HTTP session it made for a connection attempt that failed (a reconnect to a
        # node that is down) open; close it here rather than leave it to the garbage collector.
        engine = self.client.eio
        if not engine.external_http and engine.http is not None and not engine.http.closed:
            await engine.http.close()
