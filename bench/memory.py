"""What a connected, joined socket holds on our server, and where its join spends its time.

    .venv/bin/python bench/memory.py                       # 100 rooms of three: tracemalloc diff, then joins
    .venv/bin/python bench/memory.py --rooms 50 --top 40
    .venv/bin/python bench/memory.py --profile-joins 30    # also cProfile the server through the joins

The server runs in this process (``bench/signaling.py --server in-process``: one node, in-process room
store, SQLite) so tracemalloc sees its allocations; the sockets come from bench/node/load.js (another
process), which joins every room as bench/sidebyside.py does (the mediator, then each party into the
lobby, admitted) and then holds them. Two runs on fresh servers:

1. **memory**: tracemalloc on, a snapshot once the sessions are staged (before the first connection)
   and one with every socket joined (after a garbage collection each); the difference per connection,
   in total and by the line that allocated it (``--top``), our code and the libraries alike.
2. **joins** (tracemalloc off, it slows every allocation): connect + ``join_room`` p50/p99 from the load
   generator, and with ``--profile-joins N`` the N functions of the server with the most cumulative time
   through the joins (cProfile, in this process; the load generator's own time is not in it).

The join times here share this process's CPU with the staging client's leftovers and the profiler; read
them beside bench/sidebyside.py's. docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import collections
import gc
import io
import json
import pstats
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from bench.sidebyside import NODE_DIR, pct, staging  # noqa: E402
from server.app import DATABASE  # noqa: E402


def _plan(sessions: list[Any], base: str, path: Path, join_concurrency: int) -> Path:
    rooms = [{"members": [
        {"url": base, "auth": {"token": s.mediator, "session_id": s.session_id}},
        {"url": base, "auth": {"token": s.bank, "session_id": s.session_id}},
        {"url": base, "auth": {"token": s.borrower_link}},
    ]} for s in sessions]
    path.write_text(json.dumps({"rooms": rooms, "joinConcurrency": join_concurrency, "rates": [],
                                "stepSeconds": 0, "drainSeconds": 0, "idleSeconds": 0, "stopAtP99Seconds": 1}))
    return path


async def _drive(plan: Path, on_event: Any, timeout: float) -> None:
    """Run the load generator over ``plan``; ``on_event(kind, event)`` is awaited for each line it prints."""
    proc = await asyncio.create_subprocess_exec(shutil.which("node") or "node", str(NODE_DIR / "load.js"), str(plan),
                                                cwd=NODE_DIR, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, limit=2**28)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            if not line:
                raise SystemExit("the load generator ended early")
            event = json.loads(line)
            if event["event"] == "failed":
                raise SystemExit(f"the load generator failed: {event['error']}")
            await on_event(event["event"], event)
            if event["event"] == "done":
                break
        proc.stdin.write(b"close\n")
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _settled_snapshot() -> tracemalloc.Snapshot:
    gc.collect()
    return tracemalloc.take_snapshot().filter_traces([
        tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")])


async def memory(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        tmp = Path(scratch)
        options = argparse.Namespace(redis=False, nodes=1, server="in-process", keep_connect_limit=False)
        async with staging.servers(options, tmp) as running:
            base = running.nodes[0].base
            sessions = await staging.make_sessions(base, args.rooms, args.setup_concurrency, running.mailbox)
            connections = 3 * len(sessions)
            tracemalloc.start(args.frames)
            snapshots: dict[str, tracemalloc.Snapshot] = {}

            async def on_event(kind: str, _event: dict[str, Any]) -> None:
                if kind == "staged":
                    snapshots["before"] = _settled_snapshot()
                elif kind == "joined":
                    await asyncio.sleep(1.0)  # the last admissions' notices go out
                    snapshots["joined"] = _settled_snapshot()

            await _drive(_plan(sessions, base, tmp / "plan.json", args.join_concurrency), on_event, args.timeout)
            tracemalloc.stop()
    diff = snapshots["joined"].compare_to(snapshots["before"], args.group)
    total = sum(stat.size_diff for stat in diff)
    blocks = sum(stat.count_diff for stat in diff)
    print(f"memory: {connections} connections joined; {total / connections / 1024:.1f} KB and "
          f"{blocks / connections:.0f} blocks a connection held (tracemalloc, Python allocations only)")
    print(f"  {'KB/conn':>8} {'blocks/conn':>11}  where")
    for stat in diff[:args.top]:
        if args.group == "traceback":
            where = " <- ".join(line.strip() for line in stat.traceback.format(limit=args.frames)[::-1])
        elif args.group == "filename":
            where = stat.traceback[0].filename
        else:
            frame = stat.traceback[0]
            where = f"{frame.filename}:{frame.lineno}: {stat.traceback.format(limit=1)[-1].strip()}"
        print(f"  {stat.size_diff / connections / 1024:8.2f} {stat.count_diff / connections:11.1f}  {_short(where)}")


def _shape(statement: str) -> str:
    """A statement's verb and the tables it names, e.g. ``SELECT join_links``."""
    words = statement.split()
    verb = words[0].upper() if words else "?"
    tables = []
    for keyword in ("FROM", "JOIN", "INTO", "UPDATE"):
        tables += [words[i + 1] for i, word in enumerate(words[:-1]) if word.upper() == keyword]
    return f"{verb} {' '.join(dict.fromkeys(t.strip('(),') for t in tables))}".strip()


def _short(where: str) -> str:
    text = where.strip()
    for prefix in (*(p + "/" for p in sys.path if p and "site-packages" in p), str(ROOT) + "/"):
        text = text.replace(prefix, "")
    return text


async def joins(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-joins-") as scratch:
        tmp = Path(scratch)
        options = argparse.Namespace(redis=False, nodes=1, server="in-process", keep_connect_limit=False)
        async with staging.servers(options, tmp) as running:
            base = running.nodes[0].base
            sessions = await staging.make_sessions(base, args.rooms, args.setup_concurrency, running.mailbox)
            profiler = cProfile.Profile() if args.profile_joins else None
            found: dict[str, Any] = {}
            statements: collections.Counter[str] = collections.Counter()
            counting = False

            def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                if counting:
                    statements[_shape(statement)] += 1

            engine = running.in_process_runner.app[DATABASE].engine.sync_engine
            event.listen(engine, "before_cursor_execute", count)

            async def on_event(kind: str, event: dict[str, Any]) -> None:
                nonlocal counting
                if kind == "staged":
                    found["began"] = time.perf_counter()
                    counting = True
                    if profiler is not None:
                        profiler.enable()
                elif kind == "joined":
                    counting = False
                    if profiler is not None:
                        profiler.disable()
                    found["wall"] = time.perf_counter() - found["began"]
                    found["joins"], found["admissions"] = event["joins"], event["admissions"]

            await _drive(_plan(sessions, base, tmp / "plan.json", args.join_concurrency), on_event, args.timeout)
    samples = found["joins"]
    print(f"joins: {len(samples)} connections in {found['wall']:.1f} s; connect + join_room p50 "
          f"{pct(samples, 50) * 1000:.0f} ms, p99 {pct(samples, 99) * 1000:.0f} ms; admission p50 "
          f"{pct(found['admissions'], 50) * 1000:.0f} ms (in-process server, {args.join_concurrency} rooms at a time)")
    connections = len(samples)
    print(f"  SQL statements through the joins: {sum(statements.values()) / connections:.1f} a connection "
          f"(the audit sequencer's included); by kind, a connection:")
    for shape, n in statements.most_common(args.top):
        print(f"  {n / connections:6.2f}  {shape}")
    if profiler is not None:
        print("  cProfile (a coroutine's every resumption counts as a call; cumulative times overlap):")
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(args.profile_joins)
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rooms", type=int, default=100, help="rooms of three")
    parser.add_argument("--top", type=int, default=30, help="allocating lines to print")
    parser.add_argument("--frames", type=int, default=1, help="frames kept per allocation (tracemalloc)")
    parser.add_argument("--group", choices=("lineno", "filename", "traceback"), default="lineno",
                        help="sum the allocations by line, by file, or by the whole kept traceback (--frames)")
    parser.add_argument("--join-concurrency", type=int, default=10, help="rooms opening at once")
    parser.add_argument("--setup-concurrency", type=int, default=8, help="cases walked at once over HTTP")
    parser.add_argument("--profile-joins", type=int, default=0, metavar="N",
                        help="cProfile the server through the joins and print its N top functions")
    parser.add_argument("--skip", choices=("memory", "joins"), help="leave one of the two runs out")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for any phase")
    args = parser.parse_args(argv)
    if not (NODE_DIR / "node_modules" / "socket.io-client").exists():
        raise SystemExit(f"run `npm ci` in {NODE_DIR.relative_to(ROOT)} first")
    if args.skip != "memory":
        asyncio.run(memory(args))
    if args.skip != "joins":
        asyncio.run(joins(args))


if __name__ == "__main__":
    main()
