"""The background tasks the room engine starts: each owned, its failure logged, all ended at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger("mediation.signaling")


class Tasks:
    """Timers and loops are cancelled at close; finishers (sealing a transcript) are awaited, never cancelled."""

    def __init__(self) -> None:
        self._running: set[asyncio.Future[None]] = set()
        self._finishing: set[asyncio.Future[None]] = set()

    def own(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._running.add(task)
        task.add_done_callback(self._done)

    def finish(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def _done(self, task: asyncio.Future[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a room task failed", exc_info=task.exception())

    async def close(self, finish_timeout: float = 90.0) -> None:
        if self._finishing:
            await asyncio.wait(list(self._finishing), timeout=finish_timeout)
        running = list(self._running)
        for task in running:
            task.cancel()
        for task in running:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001 - logged by _done already
                pass
