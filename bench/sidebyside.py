"""This server's chat path beside a minimal Node socket.io server, in one run, under one Node load generator.

    .venv/bin/python bench/sidebyside.py                                  # relay, sealed, node; 100 rooms
    .venv/bin/python bench/sidebyside.py --rooms 100 --rates 1,2,4,8 --step-seconds 10
    .venv/bin/python bench/sidebyside.py --configs relay,sealed,redis-sealed,node

Each configuration runs in turn on a fresh server: ``relay`` is one node with no compliance key (chat is
relayed, not sealed), ``sealed`` one node with an officer's key in force (every message sealed, filed and
audited before its acknowledgement, as in production), ``e2ee-relay`` / ``e2ee-sealed`` the same two with
end-to-end encrypted chat (every member joins with a device key and sends ciphertext of the same length), ``redis-relay`` / ``redis-sealed`` two nodes on
Redis and PostgreSQL with each room's mediator on one node and its parties on the other, and ``node`` the
reference of bench/node/reference.js (socket.io 4: numbered chat, history, broadcast, ack; nothing else).
The rooms of our server are staged as every test stages them (tests/support/walk.py, through
bench/signaling.py); then bench/node/load.js, pinned to the last CPU while the servers are pinned to the
others, joins every room (the mediator, then each party into the lobby and admitted), and sends chat round
robin at each rate of ``--rates`` (messages a second per room) for ``--step-seconds``.

Figures per configuration and rate: server CPU per delivered message (the server processes' CPU time over
the step, divided by the deliveries to other members), delivery p50/p99 (sender's emit to each other
member's receipt), acknowledgement p99, memory per connection (resident memory with every socket joined,
less before the first connected, over the connections), join p50/p99 (connect + ``join_room``), and each
as a ratio to the Node reference's at the same rate. Everything is on 127.0.0.1. bench/README.md explains
the columns; docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.recording.agekeys import generate  # noqa: E402
from tests.support.nodes import ADMIN, ADMIN_PASSWORD  # noqa: E402
from tests.support.walk import Http, approve_first_key  # noqa: E402

NODE_DIR = ROOT / "bench" / "node"
CONFIGS = ("relay", "sealed", "e2ee-relay", "e2ee-sealed", "redis-relay", "redis-sealed", "node")
P99_BUDGET_S = 0.100


def _load_signaling_bench() -> Any:
    """bench/signaling.py, whose server start-up and case walk this benchmark shares (not a package)."""
    spec = importlib.util.spec_from_file_location("bench_signaling", ROOT / "bench" / "signaling.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


staging = _load_signaling_bench()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def chat_batches(bases: list[str]) -> tuple[float, float]:
    """(group commits of sealed chat, chat messages sealed) so far on our nodes, from their /metrics."""
    batches = messages = 0.0
    async with aiohttp.ClientSession() as session:
        for base in bases:
            async with session.get(f"{base}/metrics") as response:
                for line in (await response.text()).splitlines():
                    if line.startswith("mediation_chat_batches_total "):
                        batches += float(line.split()[-1])
                    elif line.startswith('mediation_sealed_records_total{kind="chat_message"}'):
                        messages += float(line.split()[-1])
    return batches, messages


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` onto ``cpus``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


# --- results -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    rate: float
    seconds: float
    sent: int
    delivered: int
    lost: int
    errors: dict[str, int]
    latencies: list[float]
    acks: list[float]
    server_cpu: float  # seconds, all server processes, over the step
    batches: tuple[float, float]  # sealed chat: (group commits, messages in them) over the step; ours only
    idle_cores: float  # the servers' CPU with every socket open and no chat, in cores

    @property
    def cpu_per_delivery_us(self) -> float:
        return self.server_cpu / self.delivered * 1e6 if self.delivered else float("nan")

    @property
    def chat_cpu_per_delivery_us(self) -> float:
        """Net of the idle background (timers, keep-alives, the audit sequencer) over the step's length."""
        chat = self.server_cpu - self.idle_cores * self.seconds
        return chat / self.delivered * 1e6 if self.delivered else float("nan")

    @property
    def cores(self) -> float:
        return self.server_cpu / self.seconds if self.seconds else float("nan")

    @property
    def healthy(self) -> bool:
        return not self.lost and not self.errors and pct(self.latencies, 99) < P99_BUDGET_S


@dataclasses.dataclass
class Result:
    config: str
    connections: int
    joins: list[float]
    admissions: list[float]
    memory_per_connection: float  # bytes
    rss_joined: int
    steps: list[Step]

    def best(self) -> Step | None:
        """The highest rate held with p99 under budget, nothing lost and no error."""
        held = [s for s in self.steps if s.healthy]
        return held[-1] if held else None


# --- one configuration -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    """The servers under load: what to read CPU and memory from, and each room's members for the plan."""

    pids: list[int]
    rooms: list[list[dict[str, Any]]]
    bases: list[str] = dataclasses.field(default_factory=list)  # our nodes, whose /metrics count the batches


async def register_compliance_key(base: str, node_env: dict[str, str], workdir: Path) -> None:
    """An officer's key in force, put there as production does (two administrators approve it; the staging
    made the second already)."""
    key = generate(workdir / "officer")
    async with aiohttp.ClientSession() as session:
        http = Http(session, base)
        admin = await http.login(ADMIN, ADMIN_PASSWORD)
        _, compliance = await http.staff(admin, "compliance_officer")
        await approve_first_key(http, admin, compliance, key.recipient)


@contextlib.asynccontextmanager
async def our_server(config: str, args: argparse.Namespace, tmp: Path) -> AsyncIterator[Target]:
    redis = config.startswith("redis")
    options = argparse.Namespace(redis=redis, nodes=2, server="subprocess", keep_connect_limit=False)
    async with staging.servers(options, tmp) as running:
        nodes = running.nodes
        if config.endswith("sealed"):
            await register_compliance_key(nodes[0].base, nodes[0].env, tmp)
        began = time.perf_counter()
        sessions = await staging.make_sessions(nodes[0].base, args.rooms, args.setup_concurrency, running.mailbox)
        print(f"  {config}: {len(sessions)} sessions staged in {time.perf_counter() - began:.0f} s", flush=True)
        rooms = []
        for session in sessions:
            home, away = nodes[session.index % len(nodes)], nodes[(session.index + 1) % len(nodes)]
            rooms.append([
                {"url": home.base, "auth": {"token": session.mediator, "session_id": session.session_id}},
                {"url": away.base, "auth": {"token": session.bank, "session_id": session.session_id}},
                {"url": away.base, "auth": {"token": session.borrower_link}},
            ])
        yield Target(pids=[node.pid for node in nodes], rooms=rooms, bases=[node.base for node in nodes])


@contextlib.asynccontextmanager
async def reference_server(args: argparse.Namespace) -> AsyncIterator[Target]:
    proc = await asyncio.create_subprocess_exec(
        shutil.which("node") or "node", str(NODE_DIR / "reference.js"), "0", cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None
        port = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))["port"]
        url = f"http://127.0.0.1:{port}"
        rooms = [[{"url": url, "auth": {"room": f"r{index}", "role": role, "name": role}}
                  for role in ("mediator", "bank_representative", "borrower")] for index in range(args.rooms)]
        yield Target(pids=[proc.pid], rooms=rooms)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()


async def measure(config: str, target: Target, args: argparse.Namespace, tmp: Path) -> Result:
    cpus = sorted(os.sched_getaffinity(0))
    load_cpus = {cpus[-1]} if args.pin and len(cpus) > 1 else set(cpus)
    server_cpus = set(cpus[:-1]) if args.pin and len(cpus) > 1 else set(cpus)
    for pid in target.pids:
        pin(pid, server_cpus)
    plan = {"rooms": [{"members": members} for members in target.rooms], "joinConcurrency": args.join_concurrency,
            "rates": args.rates, "stepSeconds": args.step_seconds, "drainSeconds": args.drain,
            "idleSeconds": args.idle_seconds, "stopAtP99Seconds": P99_BUDGET_S,
            "e2ee": config.startswith("e2ee")}
    plan_path = tmp / f"plan-{config}.json"
    plan_path.write_text(json.dumps(plan))
    command = [shutil.which("node") or "node", str(NODE_DIR / "load.js"), str(plan_path)]
    if args.pin and len(cpus) > 1 and shutil.which("taskset"):
        command = ["taskset", "-c", ",".join(map(str, sorted(load_cpus))), *command]
    proc = await asyncio.create_subprocess_exec(*command, cwd=NODE_DIR, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, start_new_session=True,
                                                limit=2**28)
    assert proc.stdout is not None and proc.stdin is not None

    def cpu() -> float:
        return sum(proc_cpu_seconds(pid) for pid in target.pids)

    def rss() -> int:
        return sum(proc_rss_bytes(pid) for pid in target.pids)

    rss_staged = rss_joined = 0
    joins: list[float] = []
    admissions: list[float] = []
    steps: list[Step] = []
    cpu_at = idle_at = idle_began = idle_cores = 0.0
    batches_at = (0.0, 0.0)
    profilers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), args.timeout)
            if not line:
                raise SystemExit(f"{config}: the load generator ended early")
            event = json.loads(line)
            kind = event["event"]
            if kind == "staged":
                rss_staged = rss()
            elif kind == "joined":
                joins, admissions = event["joins"], event["admissions"]
                await asyncio.sleep(0.5)
                rss_joined = rss()
            elif kind == "idle_start":
                idle_at, idle_began = cpu(), time.perf_counter()
            elif kind == "idle_end":
                idle_cores = (cpu() - idle_at) / (time.perf_counter() - idle_began)
            elif kind == "step_start":
                cpu_at = cpu()
                batches_at = await chat_batches(target.bases)
                if args.profile and not profilers and config != "node":
                    profilers = start_profiles(config, target.pids, args)
            elif kind == "step_end":
                steps.append(Step(rate=event["rate"], seconds=event["seconds"], sent=event["sent"],
                                  delivered=event["delivered"], lost=event["lost"], errors=event["errors"],
                                  latencies=event["latencies"], acks=event["acks"], server_cpu=cpu() - cpu_at,
                                  idle_cores=idle_cores,
                                  batches=tuple(b - a for a, b in zip(batches_at, await chat_batches(target.bases)))))
                print_step(config, steps[-1])
            elif kind == "done":
                break
            elif kind == "failed":
                raise SystemExit(f"{config}: the load generator failed: {event['error']}")
        for profiler, output in profilers:
            profiler.wait(timeout=args.step_seconds + 60)
            print_profile(config, output)
        proc.stdin.write(b"close\n")
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    connections = sum(len(members) for members in target.rooms)
    return Result(config=config, connections=connections, joins=joins, admissions=admissions,
                  memory_per_connection=(rss_joined - rss_staged) / connections, rss_joined=rss_joined, steps=steps)


# --- profiles ----------------------------------------------------------------------------------------------------


def start_profiles(config: str, pids: list[int], args: argparse.Namespace) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """py-spy sampling each server process through the first step: folded stacks of the thread holding the GIL
    (Python at work, not waiting)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    started = []
    for index, pid in enumerate(pids):
        output = out / f"{config}-{index}.folded"
        started.append((subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--duration", str(int(args.step_seconds)), "--rate", "200",
             "--format", "raw", "--output", str(output), "--nonblocking", "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), output))
    return started


def print_profile(config: str, folded: Path, top: int = 25) -> None:
    """The functions with the most samples on the stack (inclusive) and on top of it (self), in per cent."""
    if not folded.exists():
        print(f"  {config}: no profile (py-spy needs ptrace permission over the server process)")
        return
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [frame.split(" (")[0] + " (" + frame.rsplit("/", 1)[-1] if " (" in frame else frame
                  for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
        own[frames[-1]] = own.get(frames[-1], 0) + samples
    print(f"  {config}: profile {folded.name}, {total} samples holding the GIL")
    for title, table in (("inclusive", inclusive), ("self", own)):
        print(f"    top {top} {title}:")
        for frame, samples in sorted(table.items(), key=lambda item: -item[1])[:top]:
            print(f"      {samples * 100 / max(total, 1):5.1f}%  {frame}")


# --- printing ----------------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.1f}"


def print_step(config: str, step: Step) -> None:
    print(f"  {config:>12} rate {step.rate:g}/room: sent {step.sent}, delivered {step.delivered}, lost {step.lost}, "
          f"errors {step.errors or 0}; p50/p99 {ms(pct(step.latencies, 50))}/{ms(pct(step.latencies, 99))} ms, "
          f"ack p99 {ms(pct(step.acks, 99))} ms; server {step.cores * 100:.0f}% of a core, "
          f"{step.cpu_per_delivery_us:.0f} µs CPU per delivery ({step.chat_cpu_per_delivery_us:.0f} net of the "
          f"idle {step.idle_cores * 100:.1f}%)"
          + (f"; {step.batches[1]:.0f} sealed in {step.batches[0]:.0f} group commits" if step.batches[0] else ""),
          flush=True)


def ratio(value: float, reference: float) -> str:
    if value != value or reference != reference or reference <= 0:
        return "-"
    return f"{value / reference:.1f}×"


def print_summary(results: list[Result]) -> None:
    reference = next((r for r in results if r.config == "node"), None)
    rates = sorted({s.rate for r in results for s in r.steps})
    print("\nPer rate (messages a second per room; deliveries to the other two members):")
    print(f"{'config':>12} {'msgs/s':>7} {'µs CPU/deliv':>12} {'× node':>7} {'net µs':>7} {'× node':>7} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'× node':>7} {'ack p99':>8} {'cores':>6} {'lost':>5} {'errors':>6}")
    for rate in rates:
        ref_step = next((s for s in reference.steps if s.rate == rate), None) if reference else None
        for result in results:
            step = next((s for s in result.steps if s.rate == rate), None)
            if step is None:
                continue
            print(f"{result.config:>12} {step.sent / step.seconds:>7.0f} {step.cpu_per_delivery_us:>12.0f} "
                  f"{ratio(step.cpu_per_delivery_us, ref_step.cpu_per_delivery_us) if ref_step else '-':>7} "
                  f"{step.chat_cpu_per_delivery_us:>7.0f} "
                  f"{ratio(step.chat_cpu_per_delivery_us, ref_step.chat_cpu_per_delivery_us) if ref_step else '-':>7} "
                  f"{ms(pct(step.latencies, 50)):>7} {ms(pct(step.latencies, 99)):>7} "
                  f"{ratio(pct(step.latencies, 99), pct(ref_step.latencies, 99)) if ref_step else '-':>7} "
                  f"{ms(pct(step.acks, 99)):>8} {step.cores:>6.2f} {step.lost:>5} {sum(step.errors.values()):>6}")
    print("\nPer configuration:")
    print(f"{'config':>12} {'conns':>5} {'KB/conn':>8} {'× node':>7} {'join p50':>9} {'join p99':>9} {'× node':>11} "
          f"{'admit p99':>9} {'most msgs/s with p99<100ms':>27} {'per core':>9}")
    for result in results:
        best = result.best()
        per_core = (best.sent / best.seconds) / best.cores if best and best.cores > 0 else float("nan")
        joins = f"{ratio(pct(result.joins, 50), pct(reference.joins, 50))}/" \
                f"{ratio(pct(result.joins, 99), pct(reference.joins, 99))}" if reference else "-"
        held = f"{best.sent / best.seconds:.0f} ({best.cores * 100:.0f}% core)" if best else "none"
        print(f"{result.config:>12} {result.connections:>5} {result.memory_per_connection / 1024:>8.0f} "
              f"{ratio(result.memory_per_connection, reference.memory_per_connection) if reference else '-':>7} "
              f"{ms(pct(result.joins, 50)):>9} {ms(pct(result.joins, 99)):>9} {joins:>11} "
              f"{ms(pct(result.admissions, 99)):>9} {held:>27} {per_core:>9.0f}")


# --- main --------------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    if not (NODE_DIR / "node_modules" / "socket.io").exists():
        raise SystemExit(f"run `npm ci` in {NODE_DIR.relative_to(ROOT)} first (socket.io and socket.io-client)")
    load1, load5, _ = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load1:.1f} / {load5:.1f}; {args.rooms} rooms of three, "
          f"rates {args.rates} msgs/s per room, {args.step_seconds:g} s a step; configs {args.configs}", flush=True)
    results = []
    for config in args.configs:
        with tempfile.TemporaryDirectory(prefix=f"sidebyside-{config}-") as scratch:
            tmp = Path(scratch)
            server = reference_server(args) if config == "node" else our_server(config, args, tmp)
            async with server as target:
                results.append(await measure(config, target, args, tmp))
    print_summary(results)
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) for r in results]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rooms", type=int, default=100, help="rooms of three")
    parser.add_argument("--configs", type=lambda s: s.split(","), default=["relay", "sealed", "node"],
                        help=f"comma-separated, run in this order: {', '.join(CONFIGS)}")
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 2.0, 4.0],
                        help="chat messages a second per room, one step each (below 15: the per-socket chat limit)")
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=30.0,
                        help="seconds to wait for deliveries after a step (the CPU is counted through it)")
    parser.add_argument("--idle-seconds", type=float, default=3.0,
                        help="seconds every socket stays open without chat before the steps (the idle CPU)")
    parser.add_argument("--join-concurrency", type=int, default=10, help="rooms opening at once")
    parser.add_argument("--setup-concurrency", type=int, default=8, help="cases walked at once over HTTP")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin the load generator to the last CPU and the servers to the others")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for any phase")
    parser.add_argument("--json", help="also write every sample here")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample our servers with py-spy through the first step; folded stacks go to DIR")
    args = parser.parse_args(argv)
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown --configs {unknown}: choose from {', '.join(CONFIGS)}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
