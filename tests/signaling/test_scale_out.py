"""Two server processes sharing one PostgreSQL and one Redis: a room spans both nodes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from tests.conftest import application, future
from tests.services import PostgresServer, RedisServer, free_port
from tests.signaling.peer import WAIT, Participant

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
ADMIN, ADMIN_PASSWORD = "admin", "an administrator's long password"
STAFF_PASSWORD = "a long enough password"
OFFER = {"type": "offer", "sdp": "v=0\r\n"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

_names = itertools.count()


@dataclasses.dataclass
class Node:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    stderr_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, max_chars: int = 4000) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-max_chars:]

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited with {self.proc.returncode}; stderr:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.name} not ready within {START_TIMEOUT:g} s; stderr:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclasses.dataclass
class Cluster:
    a: Node
    b: Node

    @contextlib.contextmanager
    def diagnosed(self) -> Iterator[None]:
        """On failure, show what the nodes logged."""
        try:
            yield
        except BaseException:
            for node in (self.a, self.b):
                print(f"--- node {node.name} (port {node.port}) stderr tail ---\n{node.tail()}")
            raise


@pytest.fixture(scope="module")
def cluster(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis = RedisServer().start()
    nodes: list[Node] = []
    try:
        database = f"scale_out_{os.getpid()}"
        postgres.psql(f"CREATE DATABASE {database} OWNER mediation")
        tmp = tmp_path_factory.mktemp("scale-out")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
        env.update(MEDIATION_DATABASE_URL=postgres.dsn.rsplit("/", 1)[0] + f"/{database}",
                   MEDIATION_REDIS_URL=redis.url, MEDIATION_AUDIT_KEY_FILE=str(tmp / "audit-signing.key"),
                   MEDIATION_PASSWORD_MEMORY_KIB="1024", MEDIATION_PASSWORD_TIME_COST="1",
                   MEDIATION_HOST="127.0.0.1", MEDIATION_DATA_DIR=str(tmp / "data-cli"))
        # The CLI migrates the database and creates the shared signing key before either node starts.
        made = subprocess.run([PYTHON, "-m", "server.cli", "create-admin", ADMIN], input=f"{ADMIN_PASSWORD}\n",
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)
        assert made.returncode == 0, made.stderr + made.stdout
        for name in ("a", "b"):
            port = free_port()
            stderr_path = tmp / f"node-{name}.stderr"
            with open(stderr_path, "wb") as stderr:
                proc = subprocess.Popen(
                    [PYTHON, "-m", "server"], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                    env={**env, "MEDIATION_PORT": str(port), "MEDIATION_DATA_DIR": str(tmp / f"data-{name}")},
                    start_new_session=True)
            nodes.append(Node(name=name, port=port, proc=proc, stderr_path=stderr_path))
        deadline = time.monotonic() + START_TIMEOUT
        for node in nodes:
            node.wait_ready(deadline)
        yield Cluster(*nodes)
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


# --- the case, made over node A's HTTP API ----------------------------------------------------------


class Http:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def call(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
                   expect: int = 200) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + path, json=json_body, headers=headers) as response:
            text = await response.text()
        assert response.status == expect, f"{method} {path}: {response.status} {text}"
        return json.loads(text) if text else None

    async def login(self, username: str, password: str) -> str:
        return (await self.call("POST", "/api/auth/login", json_body={"username": username,
                                                                        "password": password}))["token"]


@dataclasses.dataclass
class Case:
    session_id: str
    mediator: str
    bank: str
    borrower_link: str


async def scheduled_case(http: Http) -> Case:
    """Staff made by the administrator; the case filed, verified, accepted, assigned, confirmed; links issued."""
    admin = await http.login(ADMIN, ADMIN_PASSWORD)
    tokens = {}
    for role in ("case_officer", "mediator", "bank_representative"):
        username = f"{role.replace('_', '-')}-{os.getpid()}-{next(_names)}"
        made = await http.call("POST", "/api/staff", token=admin, expect=201, json_body={
            "username": username, "display_name": username.title(), "role": role, "password": STAFF_PASSWORD})
        tokens[role] = (made["user_id"], await http.login(username, STAFF_PASSWORD))
    officer, (mediator_id, mediator), (bank_id, bank) = (tokens["case_officer"][1], tokens["mediator"],
                                                         tokens["bank_representative"])
    receipt = await http.call("POST", "/api/applications", json_body=application(), expect=201)
    case_id = receipt["case_id"]
    case = await http.call("GET", f"/api/cases/{case_id}", token=officer)
    parties = {p["role"]: p["party_id"] for p in case["parties"]}
    for party_id in parties.values():
        await http.call("POST", f"/api/cases/{case_id}/parties/{party_id}/verify", token=officer,
                        json_body={"method": "id_card", "reference": "checked at desk"})
    await http.call("POST", f"/api/cases/{case_id}/accept", token=officer)
    await http.call("PUT", f"/api/cases/{case_id}/assignments", token=officer,
                    json_body={"mediator_id": mediator_id, "bank_representative_id": bank_id})
    case = await http.call("POST", f"/api/cases/{case_id}/sessions", token=mediator, expect=201,
                           json_body={"starts_at": future(), "duration_minutes": 60, "mode": "video"})
    session_id = case["sessions"][0]["session_id"]
    for token in (receipt["receipt_token"], bank):
        confirmed = await http.call("POST", f"/api/cases/{case_id}/sessions/{session_id}/confirm", token=token,
                                    json_body={})
    assert confirmed["state"] == "scheduled"
    link = await http.call("POST", f"/api/cases/{case_id}/join-links", token=mediator, expect=201,
                           json_body={"party_id": parties["borrower"], "session_id": session_id})
    return Case(session_id=session_id, mediator=mediator, bank=bank, borrower_link=link["token"])


@dataclasses.dataclass
class Room:
    cluster: Cluster
    case: Case
    peers: list[Participant]

    def join(self, node: Node, who: str) -> Participant:
        auth = ({"token": self.case.borrower_link} if who == "borrower"
                else {"token": getattr(self.case, who), "session_id": self.case.session_id})
        peer = Participant(node.base, auth)
        self.peers.append(peer)
        return peer

    async def trio(self, bank_node: Node) -> tuple[Participant, Participant, Participant]:
        """The mediator on A admits the bank (on ``bank_node``) and the borrower on B."""
        mediator = self.join(self.cluster.a, "mediator")
        bank = self.join(bank_node, "bank")
        borrower = self.join(self.cluster.b, "borrower")
        await mediator.join()
        for party in (bank, borrower):
            assert (await party.join())["status"] == "lobby"
            assert (await mediator.request("admit", {"participant_id": party.participant_id}))["ok"]
            await party.wait_for("admitted")
        return mediator, bank, borrower


@pytest.fixture
async def room(cluster: Cluster) -> AsyncIterator[Room]:
    with cluster.diagnosed():
        async with aiohttp.ClientSession() as session:
            case = await scheduled_case(Http(session, cluster.a.base))
    made = Room(cluster=cluster, case=case, peers=[])
    try:
        yield made
    finally:
        for peer in made.peers:
            await peer.close()


def roster(state: dict) -> set[str]:
    return {p["participant_id"] for p in state["participants"]}


# --- the tests --------------------------------------------------------------------------------------


async def test_admission_roster_chat_and_signaling_cross_nodes(room: Room) -> None:
    with room.cluster.diagnosed():
        mediator, bank, borrower = await room.trio(bank_node=room.cluster.a)
        everyone = {mediator.participant_id, bank.participant_id, borrower.participant_id}
        for peer in (mediator, bank, borrower):  # A, A, B
            await peer.wait_for("room_state", lambda s: roster(s) == everyone
                                and all(p["status"] == "admitted" and p["connected"] for p in s["participants"]))

        first = await borrower.request("send_chat", {"text": "from node B"})
        second = await borrower.request("send_chat", {"text": "again from B"})
        assert first["ok"] and second["ok"] and (first["seq"], second["seq"]) == (1, 2)
        for seq, text in ((1, "from node B"), (2, "again from B")):
            received = await mediator.wait_for("chat_message", lambda m, seq=seq: m["seq"] == seq)
            assert received["text"] == text and received["participant_id"] == borrower.participant_id
        # Senders on both nodes at once: one numbering, no gaps, no duplicates.
        sent = await asyncio.gather(*(peer.request("send_chat", {"text": f"{name} {n}"})
                                      for n in range(4) for name, peer in (("a", mediator), ("b", borrower))))
        assert sorted(r["seq"] for r in sent) == list(range(3, 11))
        for peer in (mediator, bank, borrower):
            await peer.wait_for("chat_message", lambda m: m["seq"] == 10)
            assert sorted(m["seq"] for m in peer.seen("chat_message")) == list(range(1, 11))
        history = await bank.request("chat_history", {})
        assert [m["seq"] for m in history["messages"]] == list(range(1, 11))

        assert (await mediator.request("signal", {"to": borrower.participant_id, "kind": "offer",
                                                  "payload": OFFER}))["ok"]
        assert await borrower.wait_for("signal") == {"from": mediator.participant_id, "kind": "offer",
                                                     "payload": OFFER}
        answer = {"type": "answer", "sdp": "v=0\r\n"}
        assert (await borrower.request("signal", {"to": mediator.participant_id, "kind": "answer",
                                                  "payload": answer}))["ok"]
        assert (await mediator.wait_for("signal"))["payload"] == answer


async def test_caucus_opened_on_a_isolates_the_party_on_b(room: Room) -> None:
    with room.cluster.diagnosed():
        mediator, bank, borrower = await room.trio(bank_node=room.cluster.b)
        mark = len(bank.events)
        assert (await mediator.request("open_caucus", {"participant_id": borrower.participant_id}))["ok"]
        await borrower.wait_for("caucus_started")
        await bank.wait_for("caucus_in_progress")
        assert (await bank.wait_for("media_isolation", lambda d: d["stop_sending_to"]))["stop_sending_to"] == [
            mediator.participant_id, borrower.participant_id]
        assert (await borrower.request("typing", {"active": True}))["ok"]
        private = await borrower.request("send_chat", {"text": "private: I could pay more"})
        assert private["ok"]
        await mediator.wait_for("typing", lambda d: d["participant_id"] == borrower.participant_id)
        await mediator.wait_for("chat_message", lambda m: m["seq"] == private["seq"])
        assert (await mediator.request("send_chat", {"text": "private: noted"}))["ok"]
        await borrower.wait_for("chat_message", lambda m: m["text"] == "private: noted")
        assert (await bank.request("signal", {"to": borrower.participant_id, "kind": "offer",
                                              "payload": OFFER}))["error"] == "isolated"
        assert (await bank.request("send_chat", {"text": "still here"}))["ok"]
        assert [m["text"] for m in (await bank.request("chat_history", {}))["messages"]] == ["still here"]
        assert (await mediator.request("close_caucus", {}))["ok"]
        await bank.wait_for("caucus_ended")
        leaked = [d for e, d in bank.events[mark:] if e in ("chat_message", "typing", "signal", "caucus_started")
                  and d.get("participant_id") != bank.participant_id]
        assert leaked == []


async def test_removal_on_a_disconnects_the_participant_on_b_and_revokes_its_link(room: Room) -> None:
    with room.cluster.diagnosed():
        mediator, bank, borrower = await room.trio(bank_node=room.cluster.a)
        assert (await mediator.request("remove_participant", {"participant_id": borrower.participant_id,
                                                              "reason": "abusive"}))["ok"]
        assert (await borrower.wait_for("removed"))["reason"] == "abusive"
        async with asyncio.timeout(WAIT):
            while borrower.client.connected:
                await asyncio.sleep(0.05)
        await mediator.wait_for("room_state", lambda s: roster(s) == {mediator.participant_id, bank.participant_id})
        await bank.wait_for("room_state", lambda s: roster(s) == {mediator.participant_id, bank.participant_id})
        for node in (room.cluster.b, room.cluster.a):
            again = room.join(node, "borrower")
            with pytest.raises(socketio.exceptions.ConnectionError):
                await again.connect()
            assert again.refusal["code"] == "removed", (node.name, again.refusal)
