"""Two server processes sharing one PostgreSQL and one Redis: a room spans both nodes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
import socketio

from tests.signaling.peer import WAIT, Participant
from tests.signaling.revoked import closed_within, refused_at_once, removed_within
from tests.support.mailbox import MailboxThread
from tests.support.nodes import (ADMIN, ADMIN_PASSWORD, Node, SECOND_ADMIN, SECOND_ADMIN_PASSWORD, create_admin,
                                 diagnosing, node_environment, start_nodes)
from tests.support.services import PostgresServer, RedisServer, free_port
from tests.support.walk import STAFF_PASSWORD, Http, Journey, scheduled_case

OFFER = {"type": "offer", "sdp": "v=0\r\n"}


@dataclasses.dataclass
class Cluster:
    a: Node
    b: Node
    admin: str = ""  # the administrator's token, signed in once (sign-in is throttled per username)
    mailbox: MailboxThread | None = None  # the parties' mail, where their one-time codes go

    def diagnosed(self) -> contextlib.AbstractContextManager[None]:
        """On failure, show what the nodes logged."""
        return diagnosing([self.a, self.b])


@pytest.fixture(scope="module")
def cluster(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis = RedisServer().start()
    mailbox = MailboxThread().start()
    nodes: list[Node] = []
    try:
        database = f"scale_out_{os.getpid()}"
        postgres.psql(f"CREATE DATABASE {database} OWNER mediation")
        tmp = tmp_path_factory.mktemp("scale-out")
        env = node_environment(MEDIATION_DATABASE_URL=postgres.dsn.rsplit("/", 1)[0] + f"/{database}",
                               MEDIATION_REDIS_URL=redis.url, MEDIATION_AUDIT_KEY_FILE=str(tmp / "audit-signing.key"),
                               MEDIATION_DATA_DIR=str(tmp / "data-cli"), **mailbox.environment())
        create_admin(env)  # migrates the database and creates the shared signing key before either node starts
        create_admin(env, SECOND_ADMIN, SECOND_ADMIN_PASSWORD)  # approves the staff accounts the first makes
        for name in ("a", "b"):
            port = free_port()
            nodes.append(Node(name=name, port=port, log_path=tmp / f"node-{name}.log", env={
                **env, "MEDIATION_PORT": str(port), "MEDIATION_DATA_DIR": str(tmp / f"data-{name}")}))
        start_nodes(nodes)
        yield Cluster(*nodes, mailbox=mailbox)
    finally:
        for node in nodes:
            node.stop()
        redis.stop()
        mailbox.stop()


@dataclasses.dataclass
class Room:
    cluster: Cluster
    case: Journey
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
            http = Http(session, cluster.a.base)
            cluster.admin = cluster.admin or await http.login(ADMIN, ADMIN_PASSWORD)
            assert cluster.mailbox is not None
            case = await scheduled_case(http, cluster.mailbox, admin=cluster.admin)
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


async def test_consent_budget_of_a_party_is_one_across_nodes(room: Room) -> None:
    with room.cluster.diagnosed():
        on_a = room.join(room.cluster.a, "borrower")
        joined = await on_a.join()
        notice = {"notice_sha256": joined["recording_notice"][0]["sha256"]}
        toggles = [("give_consent", notice), ("withdraw_consent", {})] * 4

        async def toggle(peer: Participant, event: str, payload: dict) -> dict:
            # Each toggle with the borrower's fresh possession proof, as its browser sends one.
            async with aiohttp.ClientSession() as session:
                proof = await room.case.proof(Http(session, room.cluster.a.base), "borrower", event)
            return await peer.request(event, {**payload, "proof": proof})

        started = time.monotonic()
        first = [await toggle(on_a, event, payload) for event, payload in toggles]
        taken = sum(answer["ok"] for answer in first)
        assert taken == 6 and {a.get("error") for a in first if not a["ok"]} == {"rate_limited"}
        await on_a.close()
        # The same party through the other node, at once: its budget is spent there too.
        on_b = room.join(room.cluster.b, "borrower")
        await on_b.join()
        again = [await toggle(on_b, event, payload) for event, payload in toggles]
        refilled = math.floor((time.monotonic() - started) / 10)  # one every 10 s (docs/protocol.md)
        assert sum(answer["ok"] for answer in again) <= refilled
        assert {answer.get("error") for answer in again if not answer["ok"]} == {"rate_limited"}


# --- revocation: the revoking call reaches node A, the socket it ends is on node B -----------------------------


async def _revoke_link(room: Room, http: Http, _mediator: Participant, _prepared: str) -> None:
    listed = await http.call("GET", f"/api/cases/{room.case.case_id}/join-links", token=room.case.officer)
    link_id = next(link["link_id"] for link in listed["links"]
                   if link["party_id"] == room.case.borrower_id and link["status"] == "active")
    await http.call("DELETE", f"/api/cases/{room.case.case_id}/join-links/{link_id}", token=room.case.officer)


async def _remove_borrower(room: Room, _http: Http, mediator: Participant, _prepared: str) -> None:
    # The mediator's socket is on A: the removal revokes the borrower's link, announced to B.
    assert (await mediator.request("remove_participant", {"participant_id": room.case.borrower_id}))["ok"]


async def _disable_bank(room: Room, http: Http, _mediator: Participant, _prepared: str) -> None:
    await http.call("POST", f"/api/staff/{room.case.bank_id}/disable", token=room.cluster.admin)


async def _sign_out_bank(room: Room, http: Http, _mediator: Participant, _prepared: str) -> None:
    status, body = await http.request("POST", "/api/auth/logout", token=room.case.bank)
    assert status in (200, 204), body


async def _change_bank_password(room: Room, http: Http, _mediator: Participant, _prepared: str) -> None:
    # Ends every session of the account (signed out everywhere), the one its socket on B entered with too.
    await http.call("POST", "/api/auth/password", token=room.case.bank,
                    json_body={"current_password": STAFF_PASSWORD, "new_password": "another long passphrase 7"})


async def _other_bank(room: Room, http: Http) -> str:
    return (await http.staff(room.cluster.admin, "bank_representative"))[0]


async def _unassign_bank(room: Room, http: Http, _mediator: Participant, other_id: str) -> None:
    await http.call("PUT", f"/api/cases/{room.case.case_id}/assignments", token=room.case.officer,
                    json_body={"bank_representative_id": other_id})


async def _cancel_session(room: Room, http: Http, _mediator: Participant, _prepared: str) -> None:
    await http.call("POST", f"/api/cases/{room.case.case_id}/sessions/{room.case.session_id}/cancel",
                    token=room.case.officer)


async def _close_case(room: Room, http: Http, _mediator: Participant, _prepared: str) -> None:
    await http.call("POST", f"/api/cases/{room.case.case_id}/close", token=room.case.officer,
                    json_body={"outcome": "not_settled"})


Prepare = Callable[[Room, Http], Awaitable[str]]
Revoke = Callable[[Room, Http, Participant, str], Awaitable[None]]

# kind: (what is made before the clock starts, revoke on node A, {who on node B: the code it is refused with});
# where two are ended, the bank sends nothing (the announcement alone ends it) and the borrower sends a request
# at once. A case is rejected only before it is accepted, when no session exists: no socket to end.
REVOCATIONS: dict[str, tuple[Prepare | None, Revoke, dict[str, str]]] = {
    "link_revoked": (None, _revoke_link, {"borrower": "bad_token"}),
    "party_removed": (None, _remove_borrower, {"borrower": "removed"}),
    "staff_disabled": (None, _disable_bank, {"bank": "bad_token"}),
    "staff_signed_out": (None, _sign_out_bank, {"bank": "bad_token"}),
    "staff_password_changed": (None, _change_bank_password, {"bank": "bad_token"}),
    "staff_unassigned": (_other_bank, _unassign_bank, {"bank": "not_a_participant"}),
    "session_cancelled": (None, _cancel_session, {"borrower": "bad_token", "bank": "bad_session"}),
    "case_closed": (None, _close_case, {"borrower": "bad_token", "bank": "bad_session"}),
}


@pytest.mark.parametrize("kind", sorted(REVOCATIONS))
async def test_revocation_on_a_ends_the_socket_on_b_within_a_second(room: Room, kind: str) -> None:
    prepare, revoke, ended = REVOCATIONS[kind]
    with room.cluster.diagnosed():
        mediator, bank, borrower = await room.trio(bank_node=room.cluster.b)
        peers = {"borrower": borrower, "bank": bank}
        async with aiohttp.ClientSession() as session:
            http = Http(session, room.cluster.a.base)
            prepared = await prepare(room, http) if prepare is not None else ""
            sent = time.monotonic()
            await revoke(room, http, mediator, prepared)
            since = time.monotonic()  # answered: committed and announced to every node
            print(f"{kind}: the revoking call answered after {since - sent:.2f} s")
        for who, code in ended.items():
            if code == "removed":
                await removed_within(peers[who], since=since, sent=sent)
            elif who == "bank" and len(ended) > 1:
                await closed_within(bank, code, since=since, sent=sent)
            else:
                await refused_at_once(peers[who], code, since=since, sent=sent)
        for who in set(peers) - set(ended):
            assert (await peers[who].request("chat_history", {}))["ok"], who
        if kind not in ("session_cancelled", "case_closed"):
            gone = {peers[who].participant_id for who in ended}
            await mediator.wait_for("room_state", lambda s: not gone & roster(s))


async def test_second_device_on_a_waits_and_once_admitted_closes_the_first_on_b(room: Room) -> None:
    with room.cluster.diagnosed():
        mediator, bank, borrower = await room.trio(bank_node=room.cluster.a)  # the borrower on B
        second = room.join(room.cluster.a, "borrower")
        joined = await second.join()
        assert (joined["status"], joined["second_device"]) == ("lobby", True)
        assert (await borrower.request("send_chat", {"text": "still on B"}))["ok"]
        assert (await second.request("chat_history", {}))["error"] == "device_waiting"
        assert (await mediator.request("admit_device", {"participant_id": borrower.participant_id}))["ok"]
        assert await borrower.wait_for("device_replaced") == {"reason": "second_device_admitted"}
        async with asyncio.timeout(WAIT):
            while borrower.client.connected:
                await asyncio.sleep(0.05)
        await second.wait_for("admitted")
        assert (await second.request("send_chat", {"text": "now on A"}))["ok"]
        await bank.wait_for("chat_message", lambda m: m["text"] == "now on A")
