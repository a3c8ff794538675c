"""Authority versions in Redis, for several server nodes: a counter per scope and a pub/sub channel of revocations."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Collection, Sequence

import redis.asyncio as aioredis

from signaling.authority import ANY_SCOPE, OnRevoked
from signaling.redisstate import answering, redis_client

log = logging.getLogger("mediation.signaling.authority")


class RedisAuthority:
    """Nodes sharing ``prefix`` share the versions (a key per scope, kept ``ttl`` after its last bump; a
    version that expired reads 0 again, which only makes its sockets be asked about once more); each
    bump is published so every node acts on it at once.

    The version is bumped before the notice is published, and a request reads the versions from Redis,
    so a request that reaches any node after ``revoke`` returned is checked against the change even if
    that node's notice is still on its way. Pub/sub keeps nothing: after a lost subscription the
    listener is told ``None`` and every socket of the node is asked about."""

    def __init__(self, url: str, *, prefix: str = "mediation", wait: float = 10.0, ttl: float = 7 * 24 * 3600,
                 retry_seconds: float = 0.5) -> None:
        self._redis = redis_client(url, wait=wait)
        # Subscribed apart: the command client's health check would read a notice as its PING's answer.
        self._subscriber = aioredis.Redis.from_url(url)
        self._prefix = f"{prefix}:authority:"
        self._ttl_ms = int(ttl * 1000)
        self._channel = f"{prefix}:revoked"
        self._retry_seconds = retry_seconds
        self._listeners: list[OnRevoked] = []

    async def versions(self, scopes: Sequence[str]) -> tuple[int, ...]:
        with answering():
            found = await self._redis.mget([self._prefix + scope for scope in scopes])
        return tuple(int(v) if v is not None else 0 for v in found)

    async def revoke(self, scopes: Collection[str]) -> None:
        ordered = sorted(scopes)
        with answering():
            async with self._redis.pipeline(transaction=True) as pipe:
                for scope in (*ordered, ANY_SCOPE):
                    pipe.incr(self._prefix + scope)
                    pipe.pexpire(self._prefix + scope, self._ttl_ms)
                pipe.publish(self._channel, json.dumps(ordered))
                await pipe.execute()

    def listen(self, on_revoked: OnRevoked) -> None:
        self._listeners.append(on_revoked)

    def _tell(self, scopes: frozenset[str] | None) -> None:
        for listener in self._listeners:
            listener(scopes)

    async def run(self) -> None:
        lost_at: float | None = None
        while True:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if lost_at is not None:
                    log.warning("resubscribed to revocations", extra={"cut_off_seconds": round(time.time() - lost_at, 3)})
                    lost_at = None
                    self._tell(None)
                async for message in pubsub.listen():
                    try:
                        scopes = json.loads(message["data"])
                    except (TypeError, ValueError):
                        log.error("ignored a malformed revocation notice")
                        continue
                    if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
                        self._tell(frozenset(scopes))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the subscription means: subscribe again
                if lost_at is None:
                    lost_at = time.time()
                    log.error("lost the revocation subscription; retrying", extra={"error": str(exc)})
                await asyncio.sleep(self._retry_seconds)
            finally:
                await pubsub.aclose()

    async def close(self) -> None:
        self._listeners.clear()
        await self._redis.aclose()
        await self._subscriber.aclose()
