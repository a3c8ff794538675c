"""Load on the deployment of docs/deploy.md: rooms of three joining, chatting at human rates, leaving.

    .venv/bin/python bench/load.py                                  # one node, then nginx + two nodes
    .venv/bin/python bench/load.py --topology multi --steps 20,40,80,120
    .venv/bin/python bench/load.py --scenario recording --recorded-rooms 1,2

Both topologies are tests/deploy/topology.py on 127.0.0.1: PostgreSQL, Redis (append-only) and
``python -m server`` nodes; "single" is one node the clients reach directly, "multi" is nginx in front
of ``--nodes`` nodes, every client through nginx. Each step opens N fresh rooms (a case walked to a
scheduled session over HTTP; the mediator joins, the bank representative and the borrower join the
lobby and are admitted), holds them for ``--hold`` seconds while every participant sends a message
every ``--chat-interval`` seconds (jittered), then everyone leaves. Chat is sealed to a compliance
officer's key, as in production. Steps go up until an error, a lost message, a median delivery over
100 ms, or the time budget; the summary is the most rooms held with p99 under 100 ms.

The recording scenario opens R rooms whose three participants consent and send VP8/Opus from aiortc
peers (160x120, as tests/recording/test_session_recording.py does) to the recorder worker the node
spawns on start_recording, and reports the CPU of the workers and of the node per recorded room.

All clients run in this process; every latency is two ``time.perf_counter()`` readings here. Server
CPU and memory come from /proc/<pid>/stat and /proc/<pid>/status of the node processes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import socketio  # noqa: E402

from tests.deploy.topology import Topology  # noqa: E402
from tests.recording.agekeys import generate  # noqa: E402
from tests.support.nodes import ADMIN, ADMIN_PASSWORD, PYTHON, Node  # noqa: E402
from tests.support.mailbox import MailboxThread  # noqa: E402
from tests.support.walk import Http, Journey, approve_first_key, scheduled_case  # noqa: E402

NAMESPACE = "/room"
P99_BUDGET_MS = 100.0
# Every bench client comes from 127.0.0.1, and a node refuses more than MEDIATION_ROOM_CONNECTS_PER_MINUTE room
# connections a minute from one address: the bench's nodes lift that limit, nothing else.
NODE_SETTINGS = {"MEDIATION_LOG_LEVEL": "WARNING", "MEDIATION_ROOM_CONNECTS_PER_MINUTE": str(10**9)}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def ms(value: float) -> str:
    return "-" if value != value else f"{value * 1000:.1f}"


@dataclasses.dataclass
class Usage:
    """CPU seconds and resident bytes of the server processes (nodes, and their recorder workers)."""

    cpu: float
    rss: int
    at: float

    @classmethod
    def of(cls, pids: list[int]) -> Usage:
        cpu, rss = 0.0, 0
        for pid in pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                status = Path(f"/proc/{pid}/status").read_text()
                rss += int(re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE).group(1)) * 1024
        return cls(cpu=cpu, rss=rss, at=time.monotonic())

    def cores_since(self, before: Usage) -> float:
        return (self.cpu - before.cpu) / max(1e-9, self.at - before.at)


def recorder_pids(nodes: list[Node]) -> list[int]:
    """The recorder workers the nodes spawned (``python -m server.recorderworker``)."""
    parents = {node.pid for node in nodes if node.running}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) in parents and b"server.recorderworker" in (
                    entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


# --- clients -----------------------------------------------------------------------------------------------


class Meter:
    """What became of every chat message, and every error notice, in one step."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.expected = 0
        self.errors: collections.Counter[str] = collections.Counter()


class Member:
    def __init__(self, base: str, auth: dict[str, str], meter: Meter) -> None:
        self.auth, self.base, self.meter = auth, base, meter
        self.client = socketio.AsyncClient(reconnection=False)
        self.participant_id = ""
        self.joined: dict[str, Any] = {}
        self.admitted = asyncio.Event()
        self.events: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()
        self.client.on("chat_message", self._chat, namespace=NAMESPACE)
        self.client.on("admitted", self._admitted, namespace=NAMESPACE)
        self.client.on("error", self._error, namespace=NAMESPACE)
        self.client.on("*", self._other, namespace=NAMESPACE)

    async def _chat(self, message: dict[str, Any]) -> None:
        sent = self.meter.sent.get(message.get("text", ""))
        if sent is not None and message.get("participant_id") != self.participant_id:
            self.meter.latencies.append(time.perf_counter() - sent)

    async def _admitted(self, _data: Any = None) -> None:
        self.admitted.set()

    async def _error(self, data: Any = None) -> None:
        self.meter.errors[str(data.get("code") if isinstance(data, dict) else data)] += 1

    async def _other(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))
        self.changed.set()

    async def wait_for(self, event: str, predicate=lambda data: True, timeout: float = 30.0) -> Any:
        async def scan() -> Any:
            while True:
                for name, data in self.events:
                    if name == event and predicate(data):
                        return data
                self.changed.clear()
                await self.changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    async def join(self) -> float:
        began = time.perf_counter()
        await self.client.connect(self.base, namespaces=[NAMESPACE], auth=self.auth, transports=["websocket"],
                                  wait_timeout=30)
        joined = await self.request("join_room")
        if not joined.get("ok"):
            raise RuntimeError(f"join_room refused: {joined}")
        self.participant_id, self.joined = joined["participant_id"], joined
        return time.perf_counter() - began

    async def request(self, event: str, data: Any = None) -> dict[str, Any]:
        return await self.client.call(event, data if data is not None else {}, namespace=NAMESPACE, timeout=30)

    async def chat(self, text: str) -> None:
        self.meter.sent[text] = time.perf_counter()
        self.meter.expected += 2
        try:
            reply = await self.request("send_chat", {"text": text})
        except socketio.exceptions.SocketIOError:
            reply = {"ok": False}
            self.meter.errors["no_answer"] += 1
        if not reply.get("ok"):
            self.meter.expected -= 2

    async def leave(self) -> None:
        with contextlib.suppress(Exception):
            if self.client.connected:
                await self.request("leave_room")
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        with contextlib.suppress(Exception):
            await self.client.shutdown()


@dataclasses.dataclass
class Room:
    case: Journey
    members: list[Member]

    @property
    def mediator(self) -> Member:
        return self.members[0]


async def open_room(case: Journey, base: str, meter: Meter, joins: list[float]) -> Room:
    room = Room(case, [Member(base, case.auth(who), meter) for who in ("mediator", "bank", "borrower")])
    mediator, *parties = room.members
    joins.append(await mediator.join())
    for party in parties:
        joins.append(await party.join())
        reply = await mediator.request("admit", {"participant_id": party.participant_id})
        if not reply.get("ok"):
            raise RuntimeError(f"admit refused: {reply}")
        await asyncio.wait_for(party.admitted.wait(), 30)
    return room


async def make_cases(http: Http, count: int, mailbox: MailboxThread, concurrency: int = 8) -> list[Journey]:
    admin = await http.login(ADMIN, ADMIN_PASSWORD)
    _, officer = await http.staff(admin, "case_officer")
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Journey:
        async with gate:
            return await scheduled_case(http, mailbox, admin, officer)

    return list(await asyncio.gather(*(one() for _ in range(count))))


# --- the chat scenario -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    rooms: int
    joins: list[float]
    latencies: list[float]
    expected: int
    errors: dict[str, int]
    server_cores: float
    rss_before: int
    rss_held: int
    client_cores: float
    lag_p99: float

    @property
    def connections(self) -> int:
        return 3 * self.rooms

    @property
    def lost(self) -> int:
        return max(0, self.expected - len(self.latencies))

    @property
    def healthy(self) -> bool:
        return not self.errors and self.lost == 0 and pct(self.latencies, 99) * 1000 < P99_BUDGET_MS


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late this process's loop wakes from a 5 ms sleep: delays every receipt timestamp may carry."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        began = loop.time()
        await asyncio.sleep(0.005)
        samples.append(loop.time() - began - 0.005)


async def chat_step(topology: Topology, base: str, count: int, args: argparse.Namespace) -> Step:
    meter = Meter()
    pids = [node.pid for node in topology.nodes]
    async with aiohttp.ClientSession() as session:
        cases = await make_cases(Http(session, topology.url), count, topology.mailbox)
    before = Usage.of(pids)
    joins: list[float] = []
    rooms: list[Room] = []
    gate = asyncio.Semaphore(args.join_concurrency)

    async def opened(case: Journey) -> None:
        async with gate:
            rooms.append(await open_room(case, base, meter, joins))

    try:
        await asyncio.gather(*(opened(case) for case in cases))
        await asyncio.sleep(1.0)  # the joins' roster broadcasts settle
        held, cpu0, lag, stop = Usage.of(pids), time.process_time(), [], asyncio.Event()
        lagging = asyncio.ensure_future(loop_lag(lag, stop))
        rng = random.Random(count)
        end = time.perf_counter() + args.hold
        serial = iter(range(10**9))

        async def talk(member: Member) -> None:
            await asyncio.sleep(rng.uniform(0, args.chat_interval))
            while time.perf_counter() < end:
                await member.chat(f"m{next(serial)} from {member.participant_id[:12]}")
                await asyncio.sleep(args.chat_interval * rng.uniform(0.5, 1.5))

        await asyncio.gather(*(talk(m) for room in rooms for m in room.members))
        deadline = time.perf_counter() + args.drain
        while len(meter.latencies) < meter.expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        after = Usage.of(pids)
        client_cores = (time.process_time() - cpu0) / max(1e-9, after.at - held.at)
        stop.set()
        await lagging
    finally:
        await asyncio.gather(*(m.leave() for room in rooms for m in room.members))
    return Step(rooms=count, joins=joins, latencies=meter.latencies, expected=meter.expected,
                errors=dict(meter.errors), server_cores=after.cores_since(held), rss_before=before.rss,
                rss_held=held.rss, client_cores=client_cores, lag_p99=pct(lag, 99))


def print_header() -> None:
    print(f"{'rooms':>5} {'conns':>5} {'join p50':>8} {'join p99':>8} {'chat p50':>8} {'chat p99':>8} "
          f"{'max':>7} {'deliv':>6} {'lost':>4} {'errors':>6} {'srv CPU':>7} {'CPU/conn':>8} "
          f"{'RSS MB':>6} {'KB/conn':>7} {'client':>6} {'lag p99':>7}")


def print_step(step: Step) -> None:
    per_conn_kb = (step.rss_held - step.rss_before) / 1024 / step.connections
    print(f"{step.rooms:>5} {step.connections:>5} {ms(pct(step.joins, 50)):>8} {ms(pct(step.joins, 99)):>8} "
          f"{ms(pct(step.latencies, 50)):>8} {ms(pct(step.latencies, 99)):>8} "
          f"{ms(max(step.latencies, default=float('nan'))):>7} {len(step.latencies):>6} {step.lost:>4} "
          f"{sum(step.errors.values()):>6} {step.server_cores * 100:>6.0f}% "
          f"{step.server_cores * 100 / step.connections:>7.2f}% {step.rss_held / 2**20:>6.0f} {per_conn_kb:>7.0f} "
          f"{step.client_cores * 100:>5.0f}% {ms(step.lag_p99):>7}" + (f"  {step.errors}" if step.errors else ""),
          flush=True)


async def register_compliance_key(topology: Topology, workdir: Path) -> None:
    """Seal chat (and recordings) to an officer's key, as production does."""
    key = generate(workdir / "officer")
    async with aiohttp.ClientSession() as session:
        http = Http(session, topology.url)
        admin = await http.login(ADMIN, ADMIN_PASSWORD)
        _, compliance = await http.staff(admin, "compliance_officer")
        await approve_first_key(http, admin, compliance, key.recipient)


async def chat_scenario(kind: str, args: argparse.Namespace, workdir: Path, began: float) -> None:
    nodes = 1 if kind == "single" else args.nodes
    with Topology(workdir / kind, nodes=nodes, settings=NODE_SETTINGS) as topology:
        if not args.unsealed:
            await register_compliance_key(topology, workdir / kind)
        base = topology.nodes[0].base if kind == "single" else topology.url
        where = ("one node, clients direct" if kind == "single" else
                 f"nginx + {nodes} nodes, every client through nginx")
        print(f"\n== {kind}: {where}; PostgreSQL + Redis; chat {'unsealed' if args.unsealed else 'sealed'}; "
              f"each participant chats every {args.chat_interval:g} s (jittered), held {args.hold:g} s per step; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print_header()
        best: Step | None = None
        for count in [int(n) for n in args.steps.split(",")]:
            if time.monotonic() - began > args.budget:
                print(f"(time budget of {args.budget:g} s spent; stopping)")
                break
            step = await chat_step(topology, base, count, args)
            print_step(step)
            if step.healthy:
                best = step
            elif step.errors or step.lost or pct(step.latencies, 50) * 1000 >= P99_BUDGET_MS:
                break  # saturated; a p99 alone over budget may be the host's noise, so the next step runs
        if best is None:
            print(f"no step held chat delivery p99 under {P99_BUDGET_MS:g} ms without errors or loss")
        else:
            print(f"most rooms held with chat p99 < {P99_BUDGET_MS:g} ms, no loss, no error: {best.rooms} "
                  f"({best.connections} connections; p99 {ms(pct(best.latencies, 99))} ms; server "
                  f"{best.server_cores * 100:.0f}% of a core)")


# --- the recording scenario ----------------------------------------------------------------------------------


async def recorded_room(room: Room, base: str) -> list[Any]:
    """Consent, start the recording, and send media from each participant to the recorder."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from tests.recording.test_peer import MovingPattern, Tone

    mediator, *parties = room.members
    notice = mediator.joined["recording_notice"][0]["sha256"]
    async with aiohttp.ClientSession() as session:
        for who, party in zip(("bank", "borrower"), parties):
            # Each party's consent with its enrolled device's possession proof, as its browser sends it.
            proof = await room.case.proof(Http(session, base), who, "give_consent")
            assert (await party.request("give_consent", {"notice_sha256": notice, "proof": proof}))["ok"]
    started = await mediator.request("start_recording")
    if not started.get("ok"):
        raise RuntimeError(f"start_recording refused: {started}")
    state = await mediator.wait_for("room_state", lambda s: any(p["role"] == "recorder" for p in s["participants"]))
    recorder_id = next(p["participant_id"] for p in state["participants"] if p["role"] == "recorder")
    connections = []
    for member in room.members:
        connection = RTCPeerConnection()
        connections.append(connection)
        connection.addTrack(MovingPattern(160, 120))
        connection.addTrack(Tone())
        await connection.setLocalDescription(await connection.createOffer())
        sent = await member.request("signal", {"to": recorder_id, "kind": "offer", "payload": {
            "type": "offer", "sdp": connection.localDescription.sdp}})
        assert sent["ok"], sent
        answer = await member.wait_for("signal", lambda d: d["kind"] == "answer")  # the only offer it sent
        await connection.setRemoteDescription(RTCSessionDescription(**answer["payload"]))
    return connections


async def sealed_bytes(node: Node) -> float:
    async with aiohttp.ClientSession() as session, session.get(node.base + "/metrics") as response:
        text = await response.text()
    match = re.search(r'^mediation_sealed_bytes_total\{kind="recording_segment"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def recording_scenario(args: argparse.Namespace, workdir: Path) -> None:
    with Topology(workdir / "recording", nodes=1, settings=NODE_SETTINGS) as topology:
        await register_compliance_key(topology, workdir / "recording")
        node = topology.nodes[0]
        print(f"\n== recording: one node; R rooms of 3 aiortc senders (160x120 VP8 + Opus) to the recorder "
              f"worker the node spawns; {args.record_seconds:g} s each; load average {os.getloadavg()[0]:.1f}")
        print(f"{'rooms':>5} {'workers':>7} {'worker CPU':>10} {'node CPU':>8} {'cores/room':>10} "
              f"{'rooms/core':>10} {'sealed kB/s':>11}")
        for count in [int(n) for n in args.recorded_rooms.split(",")]:
            meter, joins = Meter(), []
            async with aiohttp.ClientSession() as session:
                cases = await make_cases(Http(session, topology.url), count, topology.mailbox)
            rooms = [await open_room(case, node.base, meter, joins) for case in cases]
            connections: list[Any] = []
            try:
                for room in rooms:
                    connections += await recorded_room(room, topology.url)
                await asyncio.sleep(3.0)  # ICE and DTLS settle; the workers' first segments start
                workers = recorder_pids(topology.nodes)
                before_workers, before_node = Usage.of(workers), Usage.of([node.pid])
                sealed0 = await sealed_bytes(node)
                await asyncio.sleep(args.record_seconds)
                after_workers, after_node = Usage.of(workers), Usage.of([node.pid])
                sealed = (await sealed_bytes(node) - sealed0) / max(1e-9, after_node.at - before_node.at)
                worker_cores = after_workers.cores_since(before_workers)
                node_cores = after_node.cores_since(before_node)
                per_room = (worker_cores + node_cores) / count
                print(f"{count:>5} {len(workers):>7} {worker_cores * 100:>9.0f}% {node_cores * 100:>7.0f}% "
                      f"{per_room:>10.3f} {1 / per_room if per_room else float('inf'):>10.1f} "
                      f"{sealed / 1000:>11.0f}", flush=True)
                for room in rooms:
                    await room.mediator.request("end_session")
            finally:
                for connection in connections:
                    await connection.close()
                await asyncio.gather(*(m.leave() for room in rooms for m in room.members))
            deadline = time.monotonic() + 60
            while recorder_pids(topology.nodes) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)


async def run(args: argparse.Namespace) -> None:
    # SIGTERM (timeout(1), a CI stop) cancels the run: the topology is torn down on the way out.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        if args.scenario in ("chat", "both"):
            for kind in (("single", "multi") if args.topology == "both" else (args.topology,)):
                await chat_scenario(kind, args, workdir, began)
        if args.scenario in ("recording", "both"):
            await recording_scenario(args, workdir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scenario", choices=("chat", "recording", "both"), default="chat")
    parser.add_argument("--topology", choices=("single", "multi", "both"), default="both")
    parser.add_argument("--nodes", type=int, default=2, help="server nodes behind nginx in the multi topology")
    parser.add_argument("--steps", default="10,20,40,80,120", help="rooms of three per step, comma separated")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds each step chats")
    parser.add_argument("--chat-interval", type=float, default=4.0,
                        help="seconds between one participant's messages (uniformly jittered 0.5-1.5x)")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds to wait for deliveries after a step")
    parser.add_argument("--join-concurrency", type=int, default=10, help="rooms opening at the same time")
    parser.add_argument("--unsealed", action="store_true", help="no compliance key: chat is not sealed")
    parser.add_argument("--recorded-rooms", default="1,2", help="recorded rooms per recording step")
    parser.add_argument("--record-seconds", type=float, default=20.0, help="seconds each recording step measures")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds after which no new step starts")
    parser.add_argument("--workdir", default="", help="keep the services' data and the nodes' logs here")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.hold <= 0 or args.chat_interval <= 0:
        parser.error("--nodes, --hold and --chat-interval must be positive")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
