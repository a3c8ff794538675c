"""Which server nodes run, and which rooms each holds sockets of: apart from room storage; the in-process one."""

from __future__ import annotations

from typing import Protocol


class NodeLiveness(Protocol):
    """Each node says it runs; members whose node went silent are found through the rooms it noted."""

    async def node_alive(self, node_id: str, timeout: float) -> bool:
        """Say that ``node_id`` runs; unless said again within ``timeout`` seconds, it counts as gone.

        Returns whether it was still counted as running: with other nodes, False on its first call and
        after it stalled past its timeout (when they may have marked its members disconnected)."""

    async def node_hosts(self, node_id: str, session_id: str) -> None:
        """Note that ``node_id`` holds sockets of the room, so its members can be found if it dies."""

    async def node_stopped(self, node_id: str) -> None:
        """The node shuts down: count it as gone now, not once its timeout passes."""

    async def gone_nodes(self) -> dict[str, list[str]]:
        """Nodes that stopped saying they run, each with the rooms it held sockets of."""

    async def forget_node(self, node_id: str) -> None:
        """The gone node's members have been dealt with: drop what is known of it."""

    async def close(self) -> None: ...


class LocalLiveness:
    """The embedded default: one process holds every socket and every room, so no other node can vanish."""

    async def node_alive(self, node_id: str, timeout: float) -> bool:
        return True

    async def node_hosts(self, node_id: str, session_id: str) -> None:
        return None

    async def node_stopped(self, node_id: str) -> None:
        return None

    async def gone_nodes(self) -> dict[str, list[str]]:
        return {}

    async def forget_node(self, node_id: str) -> None:
        return None

    async def close(self) -> None:
        return None
