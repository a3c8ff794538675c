"""Password hashing behind admission control: its own pool, refused at once when full, never in sealing's way."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from server.errors import TooManyRequests
from server.hashing import HashingPool
from tests.conftest import STAFF_PASSWORD, _serve, make_settings


async def test_hashing_pool_full_refuses_at_once_with_retry_after() -> None:
    release = threading.Event()
    refused: list[int] = []
    pool = HashingPool(workers=1, queue=1, on_refused=lambda: refused.append(1))
    try:
        running = [asyncio.ensure_future(pool.run(release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0)
        assert pool.admitted == 2
        started = time.perf_counter()
        with pytest.raises(TooManyRequests) as caught:
            await pool.run(release.wait, 10)
        assert time.perf_counter() - started < 0.05
        assert caught.value.code == "busy" and int(caught.value.headers["Retry-After"]) >= 1 and refused == [1]
        release.set()
        assert await asyncio.gather(*running) == [True, True]
        assert pool.admitted == 0 and await pool.run(lambda: 7) == 7
    finally:
        release.set()
        pool.close()


async def test_hashing_pool_busy_leaves_default_executor_free() -> None:
    """Sealing and the database run on asyncio's default executor: a full hashing pool never holds them."""
    release = threading.Event()
    pool = HashingPool(workers=2, queue=0)
    try:
        busy = [asyncio.ensure_future(pool.run(release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0)
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "sealed"), 1.0) == "sealed"
        release.set()
        await asyncio.gather(*busy)
    finally:
        release.set()
        pool.close()


async def test_hashing_signin_flood_gets_429_busy_never_5xx(tmp_path: Path) -> None:
    # Production-like Argon2 cost and one hashing thread with one waiting: a burst of sign-ins overflows it.
    settings = make_settings(tmp_path, password_memory_kib=32 * 1024, password_time_cost=2,
                             password_hash_workers=1, password_hash_queue=1, login_attempts_per_minute=1000)
    async for api in _serve(settings):
        await api.services.accounts.create_staff(username="mediator.sun", display_name="Sun", role="mediator",
                                                 password=STAFF_PASSWORD, actor="test:setup")

        async def sign_in() -> tuple[int, dict, str | None]:
            async with api.session.post(api.base + "/api/auth/login",
                                        json={"username": "mediator.sun", "password": "wrong guess"}) as response:
                return response.status, await response.json(), response.headers.get("Retry-After")

        answers = await asyncio.gather(*(sign_in() for _ in range(12)))
        statuses = sorted(status for status, _, _ in answers)
        assert set(statuses) == {401, 429}, statuses
        for status, body, retry in answers:
            if status == 429:
                assert body["error"] == "busy" and retry is not None and int(retry) >= 1
        assert statuses.count(401) >= 2


async def test_hashing_pool_threads_run_at_lowest_priority() -> None:
    pool = HashingPool(workers=1, queue=0)
    try:
        nice = await pool.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert nice == 19 and os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != 19
    finally:
        pool.close()
