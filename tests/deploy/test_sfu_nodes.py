"""Two server nodes on Redis and PostgreSQL with two Janus instances (docs/deploy.md, "Several Janus instances"):
a room is pinned to one instance, recorded with the room in Redis, and every node sends its members' media
there - also a node started afresh, which on its own would have ranked the other instance first.

The mediator's socket is on node a, the parties' on node b; the members are aiortc peers publishing and
subscribing through the room protocol as pages do (tests/signaling/test_sfu.py). Which instance carries the
room is read from Janus itself (the VideoRoom's ``listparticipants`` on each).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from signaling.janus import JanusClient, JanusError
from signaling.sfu import NO_SUCH_ROOM, feed_id, janus_room_id, preferred
from tests.deploy.clients import RoomClient
from tests.deploy.topology import Topology
from tests.signaling.test_sfu import WAIT, Member, _until, _until_published
from tests.support.janus import JanusServer
from tests.support.nodes import ADMIN, ADMIN_PASSWORD
from tests.support.walk import Http, scheduled_case

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def janus_pair() -> Iterator[tuple[JanusServer, JanusServer]]:
    """Two instances of one deployment: the same API secret and VideoRoom admin key."""
    first, second = JanusServer(), JanusServer()
    second.api_secret, second.admin_key = first.api_secret, first.admin_key
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()


@pytest.fixture
def topology(tmp_path: Path, janus_pair: tuple[JanusServer, JanusServer]) -> Iterator[Topology]:
    first, second = janus_pair
    settings = {"MEDIATION_JANUS_URLS": f"{first.url},{second.url}",
                "MEDIATION_JANUS_API_SECRET": first.api_secret, "MEDIATION_JANUS_ADMIN_KEY": first.admin_key}
    with Topology(tmp_path, nodes=2, settings=settings) as running:
        yield running


async def publishers(janus: JanusServer, session_id: str) -> set[int] | None:
    """The feeds publishing in the session's VideoRoom on ``janus``; None if that instance has no such room."""
    async with JanusClient() as client:
        session = await client.session(janus.url, janus.api_secret, lambda _handle, _event: None, lambda: None)
        handle = await session.attach()
        try:
            data, _ = await session.request(handle, {"request": "listparticipants", "room": janus_room_id(session_id)})
        except JanusError as exc:
            if exc.code == NO_SUCH_ROOM:
                return None
            raise
        return {int(p["id"]) for p in data.get("participants", []) if p.get("publisher")}


async def receives_video(member: Member) -> None:
    """A decoded video frame arrives on each video m-line the member's latest media_offer names."""
    offers = [data for name, data in member.peer.events if name == "media_offer"]
    mids = {s["mid"] for s in offers[-1]["streams"] if s["kind"] == "video"}
    assert member.down is not None
    tracks = [t.receiver.track for t in member.down.getTransceivers() if t.mid in mids]
    assert len(tracks) == len(mids), (mids, [t.mid for t in member.down.getTransceivers()])
    for track in tracks:
        frame = await asyncio.wait_for(track.recv(), WAIT)
        assert frame.width > 0


async def test_sfu_room_pinned_to_one_janus_across_nodes_and_a_node_restart(
        topology: Topology, janus_pair: tuple[JanusServer, JanusServer]) -> None:
    by_url = {janus.url: janus for janus in janus_pair}
    node_a, node_b = topology.nodes
    with topology.diagnosed():
        async with aiohttp.ClientSession() as http_session:
            http = Http(http_session, topology.url)
            admin = await http.login(ADMIN, ADMIN_PASSWORD)
            _, officer = await http.staff(admin, "case_officer")
            case = await scheduled_case(http, topology.mailbox, admin, officer)
        # The instance every node would choose for this session first is down when the room first publishes:
        # the room goes to the other one, and must stay there once the first is back.
        first_choice, pinned = (by_url[url] for url in preferred(by_url, case.session_id))
        first_choice.shutdown()

        mediator = RoomClient(node_a.base, case.auth("mediator"))
        bank, borrower = RoomClient(node_b.base, case.auth("bank")), RoomClient(node_b.base, case.auth("borrower"))
        peers = [mediator, bank, borrower]
        members = {peer: Member(peer) for peer in peers}
        answering: list[asyncio.Task[None]] = []
        try:
            await mediator.join()
            for party in (bank, borrower):
                await party.join()
                assert (await mediator.request("admit", {"participant_id": party.participant_id}))["ok"]
                await party.wait_for("admitted")
            for member in members.values():
                answering.append(asyncio.create_task(member.answer_offers()))
            await _until_published(members[mediator])  # refused while node a finds the first choice down
            first_choice.start()
            for party in (bank, borrower):
                await _until_published(members[party])
            ids = {peer: peer.participant_id for peer in peers}
            for peer, member in members.items():
                others = {pid for other, pid in ids.items() if other is not peer}
                await _until(lambda m=member, o=others: m.senders() == o)
            for member in members.values():
                await receives_video(member)
            feeds = {feed_id(case.session_id, pid) for pid in ids.values()}
            assert await publishers(pinned, case.session_id) == feeds
            assert await publishers(first_choice, case.session_id) is None
            print(f"\nroom pinned to {pinned.url}; {first_choice.url} (ranked first) holds no room of it")

            # Node b dies and comes back: its parties rejoin it and publish again - to the pinned instance,
            # which a fresh node knows only from the room in Redis.
            await asyncio.to_thread(topology.kill, node_b)
            await asyncio.to_thread(topology.restart, node_b)
            for party in (bank, borrower):
                rejoined = await party.wait_rejoined(timeout=WAIT * 2)
                assert rejoined["ok"] and rejoined["status"] == "admitted", rejoined
                member = members[party]
                seen = sum(1 for name, _ in party.events if name == "media_offer")
                await member.close()
                member.up = member.down = None
                member.offers = seen
            for party in (bank, borrower):
                await _until_published(members[party])
            for peer, member in members.items():
                others = {pid for other, pid in ids.items() if other is not peer}
                await _until(lambda m=member, o=others: m.senders() == o, timeout=WAIT * 2)
            for party in (bank, borrower):
                await receives_video(members[party])
            assert await publishers(pinned, case.session_id) == feeds
            assert await publishers(first_choice, case.session_id) is None
        finally:
            for task in answering:
                task.cancel()
            for task in answering:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for member in members.values():
                await member.close()
            await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
