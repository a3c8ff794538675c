"""Chat latency under hostile load: the scenario of tests/deploy/test_hostile_load.py, repeated, with medians.

    .venv/bin/python bench/hostile.py              # three runs
    .venv/bin/python bench/hostile.py --runs 5

Each run starts a fresh deployment of docs/deploy.md on 127.0.0.1 (tests/deploy/topology.py: nginx, two
``python -m server`` nodes with production Argon2, PostgreSQL, Redis), so no run inherits another's
sign-in back-offs. 20 rooms of three chat sealed at human rates, first alone (the baseline), then while
the anonymous floods of docs/threat-model.md ("Abuse without an account") run (tests/deploy/hostile.py).
Every latency is the time from a ``send_chat`` to its acknowledgement, two ``time.perf_counter()``
readings in this process. Printed: each run's figures and refusals, then the median over the runs of
the baseline's and the loaded rooms' p50 and p99. The test asserts the behaviour; this measures speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.deploy.hostile import NODE_SETTINGS, HostileRun, percentile, run_hostile  # noqa: E402
from tests.deploy.topology import Topology  # noqa: E402
from tests.support.walk import Http  # noqa: E402


async def one_run(workdir: Path) -> HostileRun:
    with Topology(workdir, nodes=2, settings=NODE_SETTINGS) as topology:
        async with aiohttp.ClientSession() as session:
            return await run_hostile(topology, Http(session, topology.url), workdir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh deployments to run the scenario on (default 3)")
    args = parser.parse_args(argv)
    figures: dict[str, list[float]] = {"alone p50": [], "alone p99": [], "loaded p50": [], "loaded p99": []}
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as tmp:
        for number in range(1, args.runs + 1):
            print(f"\n== run {number}/{args.runs}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                  flush=True)
            run = asyncio.run(one_run(Path(tmp) / f"run-{number}"))
            print(run.report(), flush=True)
            figures["alone p50"].append(percentile(run.baseline_ms, 50))
            figures["alone p99"].append(percentile(run.baseline_ms, 99))
            figures["loaded p50"].append(percentile(run.latencies_ms, 50))
            figures["loaded p99"].append(percentile(run.latencies_ms, 99))
    print(f"\n== medians over {args.runs} run(s), chat acknowledgement ms")
    for name, values in figures.items():
        print(f"{name:>11}: {statistics.median(values):8.1f}   (runs: {', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
