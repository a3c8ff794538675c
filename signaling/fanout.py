"""Fan-out of socket.io events between nodes through Redis pub/sub, and what a node missed while cut off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import socketio

log = logging.getLogger("mediation.signaling.fanout")


class RedisFanout(socketio.AsyncRedisManager):
    """socket.io's Redis manager, resubscribing at a steady short interval and saying when it did.

    Pub/sub keeps nothing: what other nodes published while this node was not subscribed never
    reaches its sockets. ``on_resubscribed(since)`` is called (on the listener's task; it must not
    block) with the wall-clock time the subscription was lost, so the rooms can resend from their
    store what this node's sockets may have missed.
    """

    def __init__(self, url: str, on_resubscribed: Callable[[float], None], *, retry_seconds: float = 0.5) -> None:
        super().__init__(url)
        self._on_resubscribed = on_resubscribed
        self._retry_seconds = retry_seconds

    # python-socketio makes a new Redis client after every failure and leaves the old one, with its
    # connections, for the garbage collector. One client is kept here instead: its connection pool
    # replaces broken connections by itself; only the subscription is made anew after a failure.
    def _redis_connect(self) -> None:
        if self.redis is None:
            super()._redis_connect()
        self.connected = True

    async def _resubscribe(self) -> None:
        self._redis_connect()
        if self.pubsub is not None:
            await self.pubsub.aclose()
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(self.channel)

    async def close(self) -> None:
        """Stop listening and close the connections to Redis."""
        listener = getattr(self, "thread", None)
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        if self.pubsub is not None:
            await self.pubsub.aclose()
        if self.redis is not None:
            await self.redis.aclose()

    # Replaces python-socketio's listener loop (AsyncRedisManager._redis_listen_with_retries), whose
    # back-off doubles up to 60 s, and which cannot tell anyone that it lost messages.
    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        lost_at: float | None = None
        while True:
            try:
                await self._resubscribe()
                if lost_at is not None:
                    log.warning("resubscribed to Redis", extra={"cut_off_seconds": round(time.time() - lost_at, 3)})
                    self._on_resubscribed(lost_at)
                    lost_at = None
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the subscription means: subscribe again
                if lost_at is None:
                    lost_at = time.time()
                    log.error("lost the Redis subscription; retrying", extra={"error": str(exc)})
                await asyncio.sleep(self._retry_seconds)
