"""Node liveness in Redis, for several server nodes: a beat key per node and the rooms each holds sockets of."""

from __future__ import annotations

import time

from signaling.redisstate import answering, redis_client


class RedisLiveness:
    """Nodes sharing ``prefix`` see each other's beats; a node whose beat key expired counts as gone."""

    def __init__(self, url: str, *, prefix: str = "mediation", room_ttl: float = 7 * 24 * 3600,
                 wait: float = 10.0) -> None:
        self._redis = redis_client(url, wait=wait)
        self._prefix = prefix
        self._room_ttl_ms = int(room_ttl * 1000)

    def _keys(self, node_id: str) -> tuple[str, str, str]:
        """The (every node, node alive, node's rooms) keys."""
        return f"{self._prefix}:nodes", f"{self._prefix}:node:{node_id}:alive", f"{self._prefix}:node:{node_id}:rooms"

    async def node_alive(self, node_id: str, timeout: float) -> bool:
        nodes, alive, _ = self._keys(node_id)
        with answering():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(nodes, node_id)
                pipe.set(alive, str(time.time()), px=int(timeout * 1000), get=True)
                _, before = await pipe.execute()
        return before is not None

    async def node_hosts(self, node_id: str, session_id: str) -> None:
        _, _, rooms = self._keys(node_id)
        with answering():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(rooms, session_id)
                pipe.pexpire(rooms, self._room_ttl_ms)
                await pipe.execute()

    async def node_stopped(self, node_id: str) -> None:
        with answering():
            await self._redis.delete(self._keys(node_id)[1])

    async def gone_nodes(self) -> dict[str, list[str]]:
        nodes = self._keys("")[0]
        with answering():
            known = sorted(member.decode() for member in await self._redis.smembers(nodes))
            if not known:
                return {}
            async with self._redis.pipeline(transaction=False) as pipe:
                for node_id in known:
                    pipe.exists(self._keys(node_id)[1])
                alive = await pipe.execute()
            gone = [node_id for node_id, up in zip(known, alive) if not up]
            return {node_id: sorted(r.decode() for r in await self._redis.smembers(self._keys(node_id)[2]))
                    for node_id in gone}

    async def forget_node(self, node_id: str) -> None:
        nodes, _, rooms = self._keys(node_id)
        with answering():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.srem(nodes, node_id)
                pipe.delete(rooms)
                await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()
