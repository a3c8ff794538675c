"""Token buckets that limit how fast one socket may send."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``."""

    __slots__ = ("rate", "burst", "_clock", "_tokens", "_updated")  # three per socket

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()

    def take(self, cost: float = 1.0) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True

    def full(self) -> bool:
        """Whether the bucket holds its whole burst (as of its last ``take``)."""
        return self._tokens >= self.burst
