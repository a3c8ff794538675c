"""Per-participant budgets for requests that leave permanent evidence (sealed records, audit entries).

A socket's own buckets (``signal``, ``chat``) bound one connection; these bound one participant in one
session, across all its sockets and, with Redis, all nodes. A budget holds ``burst`` requests and
refills one every ``interval`` seconds (docs/protocol.md, "Evidence budgets")."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Protocol

from signaling.throttle import TokenBucket

# Buckets remembered by one process before the full (idle) ones are dropped.
MAX_REMEMBERED = 10_000


@dataclasses.dataclass(frozen=True)
class Budget:
    burst: int
    interval: float  # seconds per request once the burst is spent

    def describe(self) -> str:
        return f"{self.burst} at once, then one every {self.interval:g} s"


class PartyBudgets(Protocol):
    """Where the budgets live: this process (embedded) or Redis (several nodes)."""

    async def take(self, session_id: str, participant_id: str, name: str, budget: Budget) -> bool:
        """Spend one request of the participant's budget ``name``; False if none is left."""

    async def close(self) -> None: ...


class LocalBudgets:
    """The embedded default: one process holds every socket of a participant."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}

    async def take(self, session_id: str, participant_id: str, name: str, budget: Budget) -> bool:
        key = (session_id, participant_id, name)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_REMEMBERED:
                self._forget_full()
            bucket = self._buckets[key] = TokenBucket(1 / budget.interval, budget.burst, self._clock)
        return bucket.take()

    def _forget_full(self) -> None:
        # A full bucket is what a new one would be: forgetting it changes no answer.
        for key, bucket in list(self._buckets.items()):
            if bucket.take(0) and bucket.full():
                del self._buckets[key]

    async def close(self) -> None:
        self._buckets.clear()
