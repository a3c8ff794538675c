"""Hostile load on nginx and two nodes: 20 rooms chat sealed at human rates while anonymous floods run.

The scenario is tests/deploy/hostile.py. Asserted: no chat message lost, every message acknowledged, no
5xx on either node, log growth under 1 MB, and every flood answered with its documented refusal. The
latency figures (p50, p99) are printed, never asserted: speed is measured by bench/hostile.py, which
runs the same scenario (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.deploy.hostile import (FLOOD_SECONDS, NODE_SETTINGS, SIGNIN_PER_SECOND, SOCKET_REFUSALS, run_hostile)
from tests.deploy.topology import Topology
from tests.support.walk import Http

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LOG_BUDGET_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with Topology(tmp_path_factory.mktemp("hostile"), nodes=2, settings=NODE_SETTINGS) as running:
        yield running


@pytest.fixture
async def desk_http(topology: Topology) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session, topology.url)


async def test_hostile_load_rooms_stay_whole_while_floods_are_refused(topology: Topology, desk_http: Http,
                                                                      tmp_path: Path) -> None:
    with topology.diagnosed():
        run = await run_hostile(topology, desk_http, tmp_path)
    print("\n" + run.report())

    assert run.latencies_ms, "no chat message was acknowledged under the floods"
    assert not run.failed, run.failed[:10]
    assert not run.lost, run.lost[:10]
    assert run.five_hundreds == 0
    assert run.log_growth_bytes < LOG_BUDGET_BYTES
    # Each flood met its documented refusal, and nothing else.
    signin, malformed, polling, consent = run.signin, run.malformed, run.polling, run.consent
    assert set(signin) <= {"401 bad_credentials", "429 rate_limited", "429 busy"}, signin
    assert signin["429 busy"] > 0 and sum(signin.values()) >= SIGNIN_PER_SECOND * FLOOD_SECONDS * 0.5, signin
    assert set(malformed) <= {"dropped", "still served", "429 refused"} and malformed["still served"] > 0, malformed
    assert set(polling) <= {"200", *(f"429 {code}" for code in SOCKET_REFUSALS)}, polling
    assert polling["429 too_many_sessions"] > 0, polling
    assert set(consent) <= {"ok", "rate_limited", "disconnected"} and consent["ok"] > 0, consent
    assert consent["rate_limited"] > 0 or consent["disconnected"] > 0, consent
