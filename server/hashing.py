"""Password hashing behind admission control: its own bounded pool, apart from sealing and database work.

Argon2id is made to be expensive, and an anonymous caller reaches it by signing in. Run on asyncio's
default executor it would take the threads that seal records and migrate the database, so a sign-in
flood would stall every room's sealed chat. Here it has its own threads (Argon2 releases the GIL
while it hashes, so a thread costs one core and no event-loop time), at most ``workers`` hashes run at
once, at most ``queue`` more wait, and any caller past that is refused at once with 429 and
``Retry-After`` instead of waiting.

Its threads also run at the lowest CPU priority (nice 19, Linux schedules each thread apart): when
cores are short, as with several nodes on one host, the event loop, sealing and the database get the
CPU first, and sign-ins wait instead of the rooms.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from server.errors import TooManyRequests

T = TypeVar("T")

# Set inside ``admission``: hashes run there were admitted already, with the work around them.
_ADMITTED: contextvars.ContextVar[bool] = contextvars.ContextVar("password_hash_admitted", default=False)


LOWEST_PRIORITY = 19


def _lower_priority() -> None:
    # Raising a thread's own nice value needs no privilege; where threads have no priority of their own
    # (not Linux) this does nothing.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)


def _timed(function: Callable[..., T], args: tuple[object, ...]) -> tuple[T, float]:
    started = time.perf_counter()
    return function(*args), time.perf_counter() - started


class HashingPool:
    """At most ``workers`` hashes at once and ``queue`` waiting; beyond that, ``TooManyRequests`` at once."""

    def __init__(self, workers: int, queue: int, on_refused: Callable[[], None] | None = None) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="password-hash",
                                                               initializer=_lower_priority)
        self._workers = workers
        self._capacity = workers + queue
        self._admitted = 0
        self._on_refused = on_refused
        # Mean seconds per hash, smoothed: Retry-After is about how long the queue ahead takes to drain.
        self._mean_seconds = 0.1

    @property
    def admitted(self) -> int:
        """Hashes running or waiting now."""
        return self._admitted

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """Admit one caller's hashing, or refuse it at once: wrap the whole of a sign-in in it, so a refused
        attempt costs nothing else either (no database lookup, no audit entry)."""
        if _ADMITTED.get():
            yield
            return
        if self._admitted >= self._capacity:
            if self._on_refused is not None:
                self._on_refused()
            retry = max(1, math.ceil(self._mean_seconds * self._capacity / self._workers))
            raise TooManyRequests("the server is busy checking passwords; retry shortly", code="busy",
                                  headers={"Retry-After": str(retry)})
        self._admitted += 1
        token = _ADMITTED.set(True)
        try:
            yield
        finally:
            _ADMITTED.reset(token)
            self._admitted -= 1

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` on the pool's threads, admitted first unless the caller's admission covers it."""
        with self.admission():
            result, seconds = await asyncio.get_running_loop().run_in_executor(self._executor, _timed, function, args)
        self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
