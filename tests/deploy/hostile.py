"""The hostile-load scenario: 20 rooms chat sealed at human rates on nginx and two nodes while anonymous
floods run. tests/deploy/test_hostile_load.py asserts what it must hold; bench/hostile.py repeats it and
prints the medians of its latency figures (speed is measured by benchmarks, never asserted by tests).

The floods of docs/threat-model.md ("Abuse without an account") run together, each from its own
client addresses (loopback addresses other than nginx's own stand for clients on the internet: the
nodes trust only 127.0.0.1 as a proxy): a sign-in flood, a malformed-frame flood, a polling-session
flood, and a consent-toggle flood by a party in rooms of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import random
import re
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
import socketio

from signaling.consent import NOTICE_HASHES
from tests.deploy.topology import Topology
from tests.recording.agekeys import generate
from tests.signaling.peer import Participant
from tests.support.nodes import ADMIN, ADMIN_PASSWORD, SECOND_ADMIN, SECOND_ADMIN_PASSWORD
from tests.support.walk import Http, Journey, scheduled_case

ROOMS = 20
CONSENT_ROOMS = 2
FLOOD_SECONDS = 20.0
BASELINE_SECONDS = 10.0
CHAT_INTERVAL = 2.0  # seconds between one participant's messages: a brisk human
SIGNIN_PER_SECOND = 100
SIGNIN_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 22)]  # 20 addresses
MALFORMED_PER_CONNECTION = 20
MALFORMED_ADDRESSES = [f"127.0.0.{n}" for n in range(30, 35)]
POLLING_ADDRESSES = [f"127.0.0.{n}" for n in range(40, 45)]
WAIT = 20.0
SOCKET_REFUSALS = {"too_many_sessions", "handshake_rate_limited", "poll_rate_limited"}
# Production Argon2 and the default sign-in back-off per address: the flood meets what a real node has.
NODE_SETTINGS = {"MEDIATION_PASSWORD_MEMORY_KIB": "65536", "MEDIATION_PASSWORD_TIME_COST": "3",
                 "MEDIATION_LOGIN_ADDRESS_FREE_FAILURES": "20"}


def _session(address: str) -> aiohttp.ClientSession:
    """An HTTP session whose connections leave from ``address``: one client address as the nodes see it."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0))


@dataclasses.dataclass
class Member:
    peer: Participant
    http: aiohttp.ClientSession
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    acked: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)

    async def chat(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(random.uniform(0, CHAT_INTERVAL))
        n = 0
        while not stop.is_set():
            text = f"{self.peer.participant_id} #{n}"
            n += 1
            started = time.perf_counter()
            try:
                result = await self.peer.request("send_chat", {"text": text})
            except (socketio.exceptions.SocketIOError, TimeoutError) as exc:
                self.failed.append(f"{text}: {exc!r}")
            else:
                if result.get("ok"):
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
                    self.acked.append(text)
                else:
                    self.failed.append(f"{text}: {result}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHAT_INTERVAL * random.uniform(0.8, 1.2))

    def received(self) -> set[str]:
        return {data["text"] for name, data in self.peer.events if name == "chat_message"}

    async def close(self) -> None:
        await self.peer.close()
        await self.http.close()


async def _member(base: str, auth: dict[str, str], address: str) -> Member:
    http = _session(address)
    client = socketio.AsyncClient(reconnection=False, http_session=http)
    return Member(Participant(base, auth, client=client), http)


async def _room(base: str, case: Journey, address: str) -> list[Member]:
    members = [await _member(base, case.auth(who), address) for who in ("mediator", "bank", "borrower")]
    mediator, *parties = members
    await mediator.peer.join()
    for party in parties:
        assert (await party.peer.join())["status"] == "lobby"
        assert (await mediator.peer.request("admit", {"participant_id": party.peer.participant_id}))["ok"]
        await party.peer.wait_for("admitted")
    return members


async def _paced(per_second: float, stop: asyncio.Event, make, limit: int = 400) -> None:
    """Start ``make()`` ``per_second`` times a second until ``stop``, at most ``limit`` at once."""
    running: set[asyncio.Task[None]] = set()
    started, count = time.perf_counter(), 0
    while not stop.is_set():
        due = started + count / per_second
        delay = due - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        count += 1
        if len(running) < limit:
            task = asyncio.ensure_future(make())
            running.add(task)
            task.add_done_callback(running.discard)
    await asyncio.gather(*running)


async def _signin_flood(base: str, stop: asyncio.Event, answers: Counter[str]) -> None:
    sessions = [_session(address) for address in SIGNIN_ADDRESSES]

    async def attempt() -> None:
        http = random.choice(sessions)
        body = {"username": f"guess-{random.randrange(10**9)}", "password": "password123"}
        try:
            async with http.post(f"{base}/api/auth/login", json=body) as response:
                payload = await response.json(content_type=None)
                answers[f"{response.status} {payload.get('error') if isinstance(payload, dict) else payload}"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            answers[f"error {type(exc).__name__}"] += 1

    try:
        await _paced(SIGNIN_PER_SECOND, stop, attempt)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))


async def _malformed_flood(base: str, stop: asyncio.Event, answers: Counter[str]) -> None:
    ws_url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"

    async def sender(address: str) -> None:
        async with _session(address) as http:
            while not stop.is_set():
                try:
                    async with http.ws_connect(ws_url) as ws:
                        opened = await ws.receive(timeout=WAIT)
                        if opened.type != aiohttp.WSMsgType.TEXT or not opened.data.startswith("0"):
                            answers[f"unexpected open {opened.type}"] += 1
                            continue
                        for _ in range(MALFORMED_PER_CONNECTION):
                            await ws.send_str('42/room,["send_chat", {"text": "unterminated')
                        answers["dropped"] += MALFORMED_PER_CONNECTION
                        # Dropped, not answered; the session still serves (a connect without credentials).
                        await ws.send_str("40/room,{}")
                        answers[await _answer(ws)] += 1
                except aiohttp.WSServerHandshakeError as exc:
                    answers[f"{exc.status} refused"] += 1
                    if exc.status == 429:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 0.2)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    answers[f"error {type(exc).__name__}"] += 1

    await asyncio.gather(*(sender(address) for address in MALFORMED_ADDRESSES))


async def _answer(ws: aiohttp.ClientWebSocketResponse) -> str:
    while True:
        message = await ws.receive(timeout=WAIT)
        if message.type != aiohttp.WSMsgType.TEXT:
            return f"unexpected {message.type}"
        if message.data.startswith("44/room,") and "bad_token" in message.data:
            return "still served"
        if message.data != "2":  # engine.io's ping
            return f"unexpected {message.data[:40]}"


async def _polling_flood(base: str, stop: asyncio.Event, answers: Counter[str]) -> None:
    async def poller(address: str) -> None:
        async with _session(address) as http:
            while not stop.is_set():
                try:
                    async with http.get(f"{base}/socket.io/?EIO=4&transport=polling") as response:
                        text = await response.text()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    answers[f"error {type(exc).__name__}"] += 1
                    continue
                if response.status == 429:
                    code = re.search(r'"code": "(\w+)"', text)
                    answers[f"429 {code.group(1) if code else text[:60]}"] += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.05)
                else:
                    answers[f"{response.status}"] += 1

    await asyncio.gather(*(poller(address) for address in POLLING_ADDRESSES))


async def _consent_flood(borrower: Member, case: Journey, base: str, stop: asyncio.Event,
                         answers: Counter[str]) -> None:
    """The borrower toggles consent as fast as it can, each toggle with its device's fresh possession proof."""
    notice = next(iter(NOTICE_HASHES))
    give = True
    http = Http(borrower.http, base)
    while not stop.is_set():
        act = "give_consent" if give else "withdraw_consent"
        try:
            proof = await case.proof(http, "borrower", act)
            result = await borrower.peer.request(act, {"notice_sha256": notice, "proof": proof} if give
                                                 else {"proof": proof})
        except (socketio.exceptions.SocketIOError, TimeoutError):
            answers["disconnected"] += 1
            return
        answers["ok" if result.get("ok") else result.get("error", "?")] += 1
        if result.get("ok"):
            give = not give


async def _anonymous_floods(base: str, seconds: float) -> tuple[Counter[str], Counter[str], Counter[str]]:
    stop = asyncio.Event()
    signin, malformed, polling = Counter(), Counter(), Counter()
    floods = [asyncio.ensure_future(_signin_flood(base, stop, signin)),
              asyncio.ensure_future(_malformed_flood(base, stop, malformed)),
              asyncio.ensure_future(_polling_flood(base, stop, polling))]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*floods), 120)
    return signin, malformed, polling


def run_anonymous_floods(base: str, seconds: float) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """The anonymous floods, in a process of their own: their clients' work must not delay the rooms'
    clients in the test's process, whose acknowledgement times are the figure under test."""
    return asyncio.run(_anonymous_floods(base, seconds))


def _five_hundreds(node_base: str) -> int:
    with urllib.request.urlopen(node_base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(int(float(value)) for value in
               re.findall(r'^mediation_http_requests_total\{[^}]*status="5\d\d"[^}]*\} (\S+)$', text, re.M))


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of sorted ``values`` (nearest rank below), NaN when there are none."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * q / 100))]


@dataclasses.dataclass
class HostileRun:
    """What one run of the scenario saw: latencies (ms, sorted), losses, errors and each flood's answers."""

    baseline_ms: list[float]
    latencies_ms: list[float]
    failed: list[str]
    lost: list[str]
    log_growth_bytes: int
    five_hundreds: int
    signin: Counter[str]
    malformed: Counter[str]
    polling: Counter[str]
    consent: Counter[str]

    def report(self) -> str:
        base, load = self.baseline_ms, self.latencies_ms
        return "\n".join([
            f"rooms alone, {BASELINE_SECONDS:g} s: {len(base)} acknowledged, p50 {percentile(base, 50):.1f} ms, "
            f"p99 {percentile(base, 99):.1f} ms",
            f"hostile load, {FLOOD_SECONDS:g} s, {ROOMS} rooms: {len(load)} chat messages acknowledged, "
            f"p50 {percentile(load, 50):.1f} ms, p99 {percentile(load, 99):.1f} ms, "
            f"max {load[-1] if load else float('nan'):.1f} ms; failed {len(self.failed)}; lost {len(self.lost)}; "
            f"log growth {self.log_growth_bytes} bytes; 5xx {self.five_hundreds}",
            f"sign-in flood: {dict(self.signin)}",
            f"malformed-frame flood: {dict(self.malformed)}",
            f"polling flood: {dict(self.polling)}",
            f"consent-toggle flood: {dict(self.consent)}",
        ])


async def register_compliance_key(http: Http, admin: str, workdir: Path) -> None:
    """An officer's key in force, so that chat and consent are sealed as in production: two-person control
    has the operator's two administrators approve the first officer's key."""
    _, compliance = await http.staff(admin, "compliance_officer")
    key = generate(workdir / "officer")
    proposal = await http.call("PUT", "/api/staff/me/recipient", token=compliance, expect=202,
                               json_body={"recipient": key.recipient})
    for approver in (admin, await http.login(SECOND_ADMIN, SECOND_ADMIN_PASSWORD)):
        await http.call("POST", f"/api/compliance/keys/{proposal['proposal_id']}/approve", token=approver,
                        expect=200)


async def run_hostile(topology: Topology, http: Http, workdir: Path) -> HostileRun:
    """Rooms alone for a baseline, then the same rooms with every flood; what they saw."""
    base = topology.url
    admin = await http.login(ADMIN, ADMIN_PASSWORD)
    _, officer = await http.staff(admin, "case_officer")
    await register_compliance_key(http, admin, workdir)
    cases = [await scheduled_case(http, topology.mailbox, admin, officer) for _ in range(ROOMS + CONSENT_ROOMS)]
    rooms: list[list[Member]] = []
    members: list[Member] = []
    marks: list[int] = []
    try:
        for index, case in enumerate(cases):
            rooms.append(await _room(base, case, f"127.0.1.{index + 1}"))
        chat_rooms, consent_rooms = rooms[:ROOMS], rooms[ROOMS:]
        logs_before = sum(node.log_path.stat().st_size for node in topology.nodes)
        errors_before = sum(_five_hundreds(node.base) for node in topology.nodes)

        stop = asyncio.Event()
        consent: Counter[str] = Counter()
        members = [m for room in chat_rooms for m in room]
        work = [asyncio.ensure_future(m.chat(stop)) for m in members]
        # First the rooms alone, for a baseline on this host; then the floods join.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), BASELINE_SECONDS)
        marks = [len(m.latencies_ms) for m in members]
        work += [asyncio.ensure_future(_consent_flood(room[2], case, base, stop, consent))
                 for room, case in zip(consent_rooms, cases[ROOMS:])]
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            signin, malformed, polling = await asyncio.get_running_loop().run_in_executor(
                pool, run_anonymous_floods, base, FLOOD_SECONDS)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*work), 120)

        # Every acknowledged message reaches the two others of its room.
        async def delivered(room: list[Member]) -> list[str]:
            missing: list[str] = []
            for sender in room:
                for receiver in room:
                    if receiver is sender:
                        continue
                    for text in sender.acked:
                        with contextlib.suppress(TimeoutError):
                            await receiver.peer.wait_for("chat_message", lambda d, t=text: d["text"] == t,
                                                         timeout=5)
                    missing += [f"{receiver.peer.participant_id} lacks {t}"
                                for t in set(sender.acked) - receiver.received()]
            return missing

        lost = [line for room in chat_rooms for line in await delivered(room)]
        logs_after = sum(node.log_path.stat().st_size for node in topology.nodes)
        errors_after = sum(_five_hundreds(node.base) for node in topology.nodes)
    finally:
        await asyncio.gather(*(m.close() for room in rooms for m in room), return_exceptions=True)

    return HostileRun(
        baseline_ms=sorted(ms for m, mark in zip(members, marks) for ms in m.latencies_ms[:mark]),
        latencies_ms=sorted(ms for m, mark in zip(members, marks) for ms in m.latencies_ms[mark:]),
        failed=[line for m in members for line in m.failed], lost=lost,
        log_growth_bytes=logs_after - logs_before, five_hundreds=errors_after - errors_before,
        signin=signin, malformed=malformed, polling=polling, consent=consent)
