"""Room signaling benchmark: join and admission times, chat delivery latency, and the highest chat rate
delivered with p99 under 100 ms, for N rooms of three (mediator, bank representative, borrower).

    .venv/bin/python bench/signaling.py --rooms 20
    .venv/bin/python bench/signaling.py --rooms 50 --rates 1,2,5,10,14
    .venv/bin/python bench/signaling.py --rooms 20 --server in-process
    .venv/bin/python bench/signaling.py --rooms 20 --redis --nodes 2

The script starts the server itself on 127.0.0.1 (by default a subprocess node of tests/support/nodes.py, so
that the clients' event loop does not share the server's), creates an administrator with
``python -m server.cli create-admin``, then everything else over the HTTP API: staff accounts, and per room the
case walk of tests/support/walk.py (filed, verified, accepted, assigned, proposed and confirmed, and a join link
for the borrower). All clients are python-socketio AsyncClients
(websocket transport) in this one process; every latency is two ``time.perf_counter()`` readings in it.

``--redis`` runs ``--nodes`` server processes (default 2) on one real Redis (room store and socket.io
manager) and one real PostgreSQL (case record), both started here from ``tests.support.services``; in each room the
mediator is on one node and the two parties on the next, so every chat message crosses nodes.

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import socketio  # noqa: E402

from tests.support.nodes import (ADMIN, ADMIN_PASSWORD, SECOND_ADMIN, SECOND_ADMIN_PASSWORD, Node,  # noqa: E402
                                 create_admin, node_environment)
from tests.support.nodes import runqueue_seconds, start_nodes  # noqa: E402
from tests.support.services import PostgresServer, RedisServer, free_port  # noqa: E402
from tests.support.mailbox import MailboxThread  # noqa: E402
from tests.support.walk import Http, scheduled_case  # noqa: E402

NAMESPACE = "/room"
P99_BUDGET_MS = 100.0
# The server's per-socket chat limit (MEDIATION_ROOM_CHAT_RATE, MEDIATION_ROOM_CHAT_BURST: 5/s, burst 10): a room of three
# sending round robin stays under it up to 3 x 5 = 15 msgs/s; the default steps stop just below.
CHAT_LIMIT_PER_SOCKET = 5.0
MEMBERS_PER_ROOM = 3

# Every bench client connects from 127.0.0.1, and a node refuses more than MEDIATION_ROOM_CONNECTS_PER_MINUTE
# (default 120) room connections a minute, MEDIATION_SOCKET_HANDSHAKES_PER_MINUTE (120) new sockets a minute and
# MEDIATION_SOCKET_SESSIONS_PER_ADDRESS (30) open sockets from one address. The benchmark server lifts those three
# limits and nothing else, unless --keep-connect-limit is given.
LIFTED_CONNECTS = str(10**9)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def ms(value: float) -> str:
    return "-" if value != value else f"{value * 1000:.1f}"


# --- the server -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class InProcessNode:
    """The server in this process: it shares the clients' CPU, so its own is not measured apart."""

    name: str
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        return None

    def runqueue_seconds(self) -> float | None:
        return None


@dataclasses.dataclass
class Servers:
    nodes: list[Node | InProcessNode]
    description: str
    mailbox: MailboxThread
    in_process_runner: Any = None


@contextlib.asynccontextmanager
async def servers(args: argparse.Namespace, tmp: Path) -> AsyncIterator[Servers]:
    base_env = {
        "MEDIATION_LOG_LEVEL": "WARNING", "MEDIATION_LOGIN_ATTEMPTS_PER_MINUTE": "100000", "MEDIATION_APPLICATIONS_PER_MINUTE": "100000",
        "MEDIATION_AUDIT_KEY_FILE": str(tmp / "audit-signing.key"), "MEDIATION_DATA_DIR": str(tmp / "data"),
    }
    redis = postgres = None
    # The parties' mail: the walk reads each party's enrolment code there, as every test does.
    mailbox = MailboxThread().start()
    base_env.update(mailbox.environment())
    nodes: list[Node | InProcessNode] = []
    running: list[Node] = []
    runner = None
    try:
        if args.redis:
            if not (ROOT / "signaling" / "redisstate.py").exists():
                raise SystemExit("--redis: signaling/redisstate.py (the Redis room store) does not exist yet in this "
                                 "checkout; run without --redis")
            redis = RedisServer().start()
            postgres = PostgresServer(settings={"max_connections": "200"}).start()
            base_env.update(MEDIATION_REDIS_URL=redis.url, MEDIATION_DATABASE_URL=postgres.dsn)
            description = (f"{args.nodes} server processes, Redis room store + socket.io manager, PostgreSQL "
                           f"case record")
        else:
            description = ("1 server process" if args.server == "subprocess" else
                           "server in this process (shares the clients' event loop)") + \
                ", in-process room store, SQLite case record"
        create_admin(node_environment(**base_env))  # migrates the database and makes the audit key first
        create_admin(node_environment(**base_env), SECOND_ADMIN, SECOND_ADMIN_PASSWORD)  # approves staff accounts
        if not args.keep_connect_limit:
            base_env.update(MEDIATION_ROOM_CONNECTS_PER_MINUTE=LIFTED_CONNECTS,
                            MEDIATION_SOCKET_SESSIONS_PER_ADDRESS=LIFTED_CONNECTS,
                            MEDIATION_SOCKET_HANDSHAKES_PER_MINUTE=LIFTED_CONNECTS)
        if args.server == "in-process" and not args.redis:
            import logging

            from aiohttp import web

            import server.app
            from server.settings import Settings

            logging.getLogger("mediation").setLevel(logging.ERROR)  # its warnings would go to stderr here
            settings = Settings.from_env(node_environment(**base_env, MEDIATION_PORT="0"))
            runner = web.AppRunner(server.app.create_app(settings), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            nodes.append(InProcessNode(name="in-process", port=port))
        else:
            count = args.nodes if args.redis else 1
            for index in range(count):
                port = free_port()
                env = node_environment(**{**base_env, "MEDIATION_PORT": str(port), "MEDIATION_DATA_DIR":
                                          str(tmp / f"data-{index}") if args.redis else str(tmp / "data")})
                node = Node(name=chr(ord("a") + index), port=port, env=env, log_path=tmp / f"node-{index}.log")
                running.append(node)
                nodes.append(node)
                start_nodes([node])  # one at a time: the first start migrates
        yield Servers(nodes=nodes, description=description, mailbox=mailbox, in_process_runner=runner)
    finally:
        if runner is not None:
            await runner.cleanup()
        for node in running:
            node.stop()
        for service in (redis, postgres):
            if service is not None:
                service.stop()
        mailbox.stop()


# --- scheduled sessions over HTTP -----------------------------------------------------------------------------


@dataclasses.dataclass
class Session:
    index: int
    session_id: str
    mediator: str
    bank: str
    borrower_link: str


async def make_sessions(base: str, rooms: int, concurrency: int, mailbox: MailboxThread) -> list[Session]:
    async with aiohttp.ClientSession() as client:
        http = Http(client, base)
        admin = await http.login(ADMIN, ADMIN_PASSWORD)
        _, officer = await http.staff(admin, "case_officer")
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> Session:
            async with gate:
                case = await scheduled_case(http, mailbox, admin, officer)  # walked as every test walks a case
            return Session(index=index, session_id=case.session_id, mediator=case.mediator, bank=case.bank,
                           borrower_link=case.borrower_link)

        return list(await asyncio.gather(*(one(i) for i in range(rooms))))


# --- room members ---------------------------------------------------------------------------------------------


class Meter:
    """Chat messages in flight and what became of them, across every room."""

    def __init__(self) -> None:
        self.sent: dict[str, tuple[float, str]] = {}  # message id -> (send time, sender participant id)
        self.latencies: list[float] = []
        self.acks: list[float] = []
        self.delivered = 0
        self.errors: dict[str, int] = {}
        self.expected = 0
        self.outstanding = 0
        self.settled = asyncio.Event()

    def reset(self) -> None:
        self.__init__()

    def receipt(self, message_id: str, now: float) -> None:
        sent = self.sent.get(message_id)
        if sent is None:
            return
        self.latencies.append(now - sent[0])
        self.delivered += 1
        self.outstanding -= 1
        if self.outstanding <= 0:
            self.settled.set()

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


class Member:
    def __init__(self, base: str, auth: dict[str, str], meter: Meter) -> None:
        self.base, self.auth, self.meter = base, auth, meter
        self.client = socketio.AsyncClient(reconnection=False)
        self.participant_id: str | None = None
        self.admitted = asyncio.Event()
        self.client.on("chat_message", self._chat, namespace=NAMESPACE)
        self.client.on("admitted", self._admitted, namespace=NAMESPACE)
        self.client.on("error", self._error, namespace=NAMESPACE)
        self.admitted_at = 0.0

    async def _chat(self, message: dict[str, Any]) -> None:
        now = time.perf_counter()
        if message.get("participant_id") != self.participant_id:
            self.meter.receipt(message.get("text", ""), now)

    async def _admitted(self, _data: Any = None) -> None:
        self.admitted_at = time.perf_counter()
        self.admitted.set()

    async def _error(self, data: Any = None) -> None:
        self.meter.error(str(data.get("code") if isinstance(data, dict) else data))

    async def join(self) -> tuple[float, dict[str, Any]]:
        began = time.perf_counter()
        await self.client.connect(self.base, namespaces=[NAMESPACE], auth=self.auth, transports=["websocket"],
                                  wait_timeout=30)
        joined = await self.client.call("join_room", {}, namespace=NAMESPACE, timeout=30)
        took = time.perf_counter() - began
        if not joined.get("ok"):
            raise SystemExit(f"join_room refused: {joined}")
        self.participant_id = joined["participant_id"]
        return took, joined

    async def send(self, message_id: str) -> None:
        sent_at = time.perf_counter()
        self.meter.sent[message_id] = (sent_at, self.participant_id or "")

        def acked(reply: Any = None) -> None:
            if isinstance(reply, dict) and reply.get("ok"):
                self.meter.acks.append(time.perf_counter() - sent_at)
            else:  # counted by its error event; nobody will receive it
                self.meter.outstanding -= MEMBERS_PER_ROOM - 1
                if self.meter.outstanding <= 0:
                    self.meter.settled.set()

        await self.client.emit("send_chat", {"text": message_id}, namespace=NAMESPACE, callback=acked)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.client.connected:
                await self.client.disconnect()
        with contextlib.suppress(Exception):
            await self.client.shutdown()


@dataclasses.dataclass
class Room:
    session: Session
    mediator: Member
    bank: Member
    borrower: Member

    @property
    def members(self) -> list[Member]:
        return [self.mediator, self.bank, self.borrower]


async def open_rooms(sessions: list[Session], nodes: list[Node | InProcessNode], meter: Meter, concurrency: int,
                     ) -> tuple[list[Room], list[float], list[float], float]:
    """Every room: the mediator joins, then the two parties join the lobby and the mediator admits each."""
    joins: list[float] = []
    admissions: list[float] = []
    rooms: list[Room] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(session: Session) -> None:
        # With several nodes the mediator is on one and the parties on the next: chat crosses nodes.
        home, away = nodes[session.index % len(nodes)], nodes[(session.index + 1) % len(nodes)]
        room = Room(session=session,
                    mediator=Member(home.base, {"token": session.mediator, "session_id": session.session_id}, meter),
                    bank=Member(away.base, {"token": session.bank, "session_id": session.session_id}, meter),
                    borrower=Member(away.base, {"token": session.borrower_link}, meter))
        rooms.append(room)
        async with gate:
            took, _ = await room.mediator.join()
            joins.append(took)
            for party in (room.bank, room.borrower):
                took, joined = await party.join()
                joins.append(took)
                if joined["status"] != "lobby":
                    raise SystemExit(f"a party joined as {joined['status']!r}, not lobby")
                began = time.perf_counter()
                reply = await room.mediator.client.call("admit", {"participant_id": party.participant_id},
                                                        namespace=NAMESPACE, timeout=30)
                if not reply.get("ok"):
                    raise SystemExit(f"admit refused: {reply}")
                await asyncio.wait_for(party.admitted.wait(), 30)
                admissions.append(party.admitted_at - began)

    began = time.perf_counter()
    await asyncio.gather(*(one(s) for s in sessions))
    return rooms, joins, admissions, time.perf_counter() - began


# --- chat at a given rate -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    per_room: float
    seconds: float
    sent: int
    delivered: int
    expected: int
    latencies: list[float]
    acks: list[float]
    errors: dict[str, int]
    client_cpu: float
    server_cpu: float | None
    client_wait: float | None
    server_wait: float | None
    lags: list[float]

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    @property
    def p99(self) -> float:
        return pct(self.latencies, 99)

    @property
    def healthy(self) -> bool:
        return not self.errors and self.lost == 0 and self.p99 * 1000 < P99_BUDGET_MS


_ids = itertools.count()


async def chat_step(rooms: list[Room], nodes: list[Node | InProcessNode], meter: Meter, per_room: float, seconds: float,
                    drain: float) -> Step:
    """Each room sends ``per_room`` msgs/s for ``seconds``, round robin over its members; then wait for delivery."""
    meter.reset()
    interval = 1.0 / per_room
    cpu0, server0 = time.process_time(), [n.cpu_seconds() for n in nodes]
    wait0, server_wait0 = runqueue_seconds(os.getpid()), [n.runqueue_seconds() for n in nodes]
    began = time.perf_counter()
    rng = random.Random(1)
    lags: list[float] = []
    sending = True

    async def lag_probe() -> None:
        # How late this process's event loop wakes from a 5 ms sleep: client-side (and host) delay.
        while sending:
            at = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - at - 0.005)

    probe = asyncio.ensure_future(lag_probe())

    async def room_sender(room: Room) -> None:
        start = began + rng.random() * interval  # rooms out of phase, as real ones are
        for k in itertools.count():
            at = start + k * interval
            if at - began >= seconds:
                return
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            meter.expected += MEMBERS_PER_ROOM - 1
            meter.outstanding += MEMBERS_PER_ROOM - 1
            await room.members[k % MEMBERS_PER_ROOM].send(f"m{next(_ids)}")

    await asyncio.gather(*(room_sender(r) for r in rooms))
    sent_for = time.perf_counter() - began
    sending = False
    await probe
    if meter.outstanding > 0:
        meter.settled.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(meter.settled.wait(), drain)
    wall = time.perf_counter() - began
    client_cpu = (time.process_time() - cpu0) / wall
    server1 = [n.cpu_seconds() for n in nodes]
    server_cpu = (sum(b - a for a, b in zip(server0, server1)) / wall
                  if all(v is not None for v in server0 + server1) else None)
    wait1, server_wait1 = runqueue_seconds(os.getpid()), [n.runqueue_seconds() for n in nodes]
    client_wait = (wait1 - wait0) / wall if wait0 is not None and wait1 is not None else None
    server_wait = (sum(b - a for a, b in zip(server_wait0, server_wait1)) / wall
                   if all(v is not None for v in server_wait0 + server_wait1) else None)
    return Step(per_room=per_room, seconds=sent_for, sent=len(meter.sent), delivered=meter.delivered,
                expected=meter.expected, latencies=list(meter.latencies), acks=list(meter.acks),
                errors=dict(meter.errors), client_cpu=client_cpu, server_cpu=server_cpu,
                client_wait=client_wait, server_wait=server_wait, lags=lags)


# --- the run --------------------------------------------------------------------------------------------------


def print_step_header() -> None:
    print(f"{'msgs/s/room':>11} {'sent/s':>7} {'delivered/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'ack p99':>7} {'lost':>5} {'errors':>7} {'CPU client/server':>17} {'CPU wait':>9} {'lag p99':>7}")


def print_step(step: Step, rooms: int) -> None:
    errors = sum(step.errors.values())

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.0f}%"

    cpu = f"{share(step.client_cpu)}/{share(step.server_cpu)}"
    wait = f"{share(step.client_wait)}/{share(step.server_wait)}"
    print(f"{step.per_room:>11g} {step.sent / step.seconds:>7.0f} {step.delivered / step.seconds:>11.0f} "
          f"{ms(pct(step.latencies, 50)):>7} {ms(step.p99):>7} {ms(max(step.latencies, default=float('nan'))):>7} "
          f"{ms(pct(step.acks, 99)):>7} {step.lost:>5} {errors:>7} {cpu:>17} {wait:>9} {ms(pct(step.lags, 99)):>7}"
          + (f"  {step.errors}" if step.errors else ""), flush=True)


async def run(args: argparse.Namespace) -> None:
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    limit = CHAT_LIMIT_PER_SOCKET * MEMBERS_PER_ROOM
    over = [r for r in rates + [args.rate] if r >= limit]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-signaling-") as tmp_dir:
        async with servers(args, Path(tmp_dir)) as running:
            nodes = running.nodes
            print(f"signaling bench: {args.rooms} rooms x {MEMBERS_PER_ROOM} members; {running.description}; "
                  f"{os.cpu_count()} CPUs, load average {load[0]:.1f}")
            if not args.keep_connect_limit:
                print("  (the server's room connections/min per address is lifted: every client here is "
                      "127.0.0.1)")
            if over:
                print(f"  note: {over} msgs/s per room exceeds the per-socket chat limit "
                      f"({CHAT_LIMIT_PER_SOCKET:g}/s x {MEMBERS_PER_ROOM} members = {limit:g}/s): expect rate_limited")
            began = time.perf_counter()
            sessions = await make_sessions(nodes[0].base, args.rooms, args.setup_concurrency, running.mailbox)
            print(f"setup: {len(sessions)} scheduled sessions over HTTP in {time.perf_counter() - began:.1f} s")
            meter = Meter()
            rooms: list[Room] = []
            try:
                rooms, joins, admissions, wall = await open_rooms(sessions, nodes, meter, args.join_concurrency)
                print(f"join  (connect + join_room ack), n={len(joins)}: p50 {ms(pct(joins, 50))} ms, "
                      f"p99 {ms(pct(joins, 99))} ms, max {ms(max(joins))} ms; all rooms open in {wall:.1f} s "
                      f"({args.join_concurrency} rooms at a time)")
                print(f"admission (admit sent -> admitted received), n={len(admissions)}: "
                      f"p50 {ms(pct(admissions, 50))} ms, p99 {ms(pct(admissions, 99))} ms, "
                      f"max {ms(max(admissions))} ms")
                await asyncio.sleep(1.0)  # let the joins' room_state broadcasts settle
                step = await chat_step(rooms, nodes, meter, args.rate, args.seconds, args.drain)
                print(f"\nchat latency at {args.rate:g} msgs/s per room ({args.rate * args.rooms:g} msgs/s sent, "
                      f"each delivered to the 2 other members), {args.seconds:g} s:")
                print_step_header()
                print_step(step, args.rooms)
                print(f"\nstepping the rate up ({args.step_seconds:g} s per step) until p99 >= {P99_BUDGET_MS:g} ms, "
                      f"a loss or an error:")
                print_step_header()
                best: Step | None = None
                stopped = False
                for rate in rates:
                    await asyncio.sleep(args.pause)  # buckets refill, queues drain
                    step = await chat_step(rooms, nodes, meter, rate, args.step_seconds, args.drain)
                    print_step(step, args.rooms)
                    if not step.healthy:
                        stopped = True
                        break
                    best = step
                if best is None:
                    print(f"\nno step kept p99 under {P99_BUDGET_MS:g} ms without loss or errors")
                else:
                    print(f"\nhighest rate with p99 < {P99_BUDGET_MS:g} ms, no loss, no errors: "
                          f"{best.delivered / best.seconds:.0f} deliveries/s "
                          f"({best.sent / best.seconds:.0f} msgs/s sent, {best.per_room:g} per room x {args.rooms} "
                          f"rooms; p99 {ms(best.p99)} ms)")
                    if not stopped:
                        print(f"  the ceiling was not reached: the last step is the highest asked for; a room of "
                              f"{MEMBERS_PER_ROOM} stays under the per-socket chat limit only below {limit:g} msgs/s, "
                              f"so push further with more --rooms")
            finally:
                await asyncio.gather(*(m.close() for r in rooms for m in r.members))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rooms", type=int, default=10, help="rooms of 3 (mediator, bank rep, borrower)")
    parser.add_argument("--rate", type=float, default=2.0, help="msgs/s per room for the latency measurement")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the latency measurement")
    parser.add_argument("--rates", default="1,2,5,10,14", help="msgs/s per room for the steps, comma separated")
    parser.add_argument("--step-seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument("--drain", type=float, default=3.0, help="seconds to wait for deliveries after a step")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between steps (chat buckets refill)")
    parser.add_argument("--server", choices=("subprocess", "in-process"), default="subprocess",
                        help="where the server runs (--redis always uses subprocesses)")
    parser.add_argument("--redis", action="store_true",
                        help="Redis room store + PostgreSQL, --nodes server processes, rooms spanning nodes")
    parser.add_argument("--nodes", type=int, default=2, help="server processes with --redis")
    parser.add_argument("--join-concurrency", type=int, default=10, help="rooms opening at the same time")
    parser.add_argument("--setup-concurrency", type=int, default=8, help="cases walked over HTTP at the same time")
    parser.add_argument("--keep-connect-limit", action="store_true",
                        help="keep MEDIATION_ROOM_CONNECTS_PER_MINUTE at its default, 120 a minute per address "
                             "(then at most 40 rooms a minute)")
    args = parser.parse_args(argv)
    if args.rooms < 1 or args.nodes < 1 or args.rate <= 0:
        parser.error("--rooms, --nodes and --rate must be positive")
    if args.redis:
        args.server = "subprocess"
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
