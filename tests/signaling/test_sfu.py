"""Rooms on a real Janus: aiortc peers publish through the room protocol; the server alone decides whom each
receives (lobby, caucus, revocation, removal), and Janus stops a feed as soon as the room changes; a Janus
killed mid-session."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.conftest import Api, _serve, janus_settings, make_settings
from tests.recording.recorder.test_peer import MovingPattern, Tone
from tests.signaling.conftest import Session, issue_link
from tests.signaling.peer import Participant
from tests.conftest import walk_to_scheduled
from tests.support.janus import JanusServer
from tests.support.mailbox import Mailbox

WAIT = 20.0


@dataclasses.dataclass
class Member:
    """A browser stand-in on the SFU: one connection up (publish), one down (the server's subscription)."""

    peer: Participant
    up: RTCPeerConnection | None = None
    down: RTCPeerConnection | None = None
    offers: int = 0

    async def publish(self) -> None:
        if self.up is not None:
            await self.up.close()
        self.up = up = RTCPeerConnection()
        up.addTrack(MovingPattern(160, 120))
        up.addTrack(Tone())
        await up.setLocalDescription(await up.createOffer())
        result = await self.peer.request("publish_media", {"offer": {"type": "offer", "sdp": up.localDescription.sdp}})
        if not result["ok"]:
            await up.close()
            self.up = None
        assert result["ok"], result
        await up.setRemoteDescription(RTCSessionDescription(**result["answer"]))

    async def answer_offers(self) -> None:
        """Answer every media_offer as a page does, in order."""
        while True:
            offer = await self.peer.wait_for("media_offer", after=self._index(self.offers), timeout=3600)
            self.offers += 1
            if self.down is None:
                self.down = RTCPeerConnection()
            await self.down.setRemoteDescription(RTCSessionDescription(**offer["offer"]))
            await self.down.setLocalDescription(await self.down.createAnswer())
            result = await self.peer.request("answer_media", {"answer": {
                "type": "answer", "sdp": self.down.localDescription.sdp}})
            assert result["ok"], result

    def _index(self, count: int) -> int:
        """The events index just past this member's ``count``-th media_offer."""
        seen = 0
        for index, (name, _data) in enumerate(self.peer.events):
            if name == "media_offer":
                if seen == count:
                    return index
                seen += 1
        return len(self.peer.events)

    def senders(self) -> set[str]:
        """Whose streams the member's latest media_offer carries."""
        offers = [data for name, data in self.peer.events if name == "media_offer"]
        return {s["participant_id"] for s in offers[-1]["streams"]} if offers else set()

    async def close(self) -> None:
        for connection in (self.up, self.down):
            if connection is not None:
                await connection.close()


async def _until(predicate: Any, timeout: float = WAIT) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.timeout(120)
async def test_sfu_subscriptions_follow_lobby_caucus_revocation_and_removal(api_sfu: Api) -> None:
    api = api_sfu
    journey = await walk_to_scheduled(api)
    room = Session(api=api, journey=journey, borrower_link=await issue_link(api, journey, journey.borrower_id),
                   lender_link="", peers=[])
    members: list[Member] = []
    answering: list[asyncio.Task[None]] = []
    try:
        mediator, bank, borrower = room.mediator(), room.bank(), room.borrower()
        joined = await mediator.join()
        assert joined["media"] == "sfu"
        await bank.join()
        lobby = Member(bank)
        members.append(lobby)
        # In the lobby nothing may be published or received.
        refused = await bank.request("publish_media", {"offer": {"type": "offer", "sdp": "v=0"}})
        assert refused["error"] == "not_admitted", refused
        assert (await mediator.request("admit", {"participant_id": bank.participant_id}))["ok"]
        await borrower.join()
        assert (await mediator.request("admit", {"participant_id": borrower.participant_id}))["ok"]

        trio = {"mediator": Member(mediator), "bank": lobby, "borrower": Member(borrower)}
        members.extend([trio["mediator"], trio["borrower"]])
        for member in trio.values():
            answering.append(asyncio.create_task(member.answer_offers()))
            await member.publish()
        ids = {name: member.peer.participant_id for name, member in trio.items()}
        for name, member in trio.items():
            others = {pid for other, pid in ids.items() if other != name}
            await _until(lambda m=member, o=others: m.senders() == o)

        # A caucus with the borrower: the bank's subscription loses both caucus members at Janus.
        opened = time.monotonic()
        assert (await mediator.request("open_caucus", {"participant_id": ids["borrower"]}))["ok"]
        await _until(lambda: trio["bank"].senders() == set())
        caucus_seconds = time.monotonic() - opened
        await _until(lambda: trio["borrower"].senders() == {ids["mediator"]})
        print(f"\ncaucus: excluded party unsubscribed {caucus_seconds:.3f} s after open_caucus")
        assert caucus_seconds < 1.5
        assert (await mediator.request("close_caucus", {}))["ok"]
        await _until(lambda: trio["bank"].senders() == {ids["mediator"], ids["borrower"]})

        # Revocation: the case officer revokes the borrower's link; nobody receives the borrower any longer.
        _, listed = await api.call("GET", f"/api/cases/{journey.case_id}/join-links", token=journey.officer)
        link_id = next(link["link_id"] for link in listed["links"] if link["party_id"] == ids["borrower"])
        revoked = time.monotonic()
        status, _ = await api.call("DELETE", f"/api/cases/{journey.case_id}/join-links/{link_id}",
                                   token=journey.officer)
        assert status == 200
        await _until(lambda: ids["borrower"] not in trio["mediator"].senders()
                     and ids["borrower"] not in trio["bank"].senders())
        revocation_seconds = time.monotonic() - revoked
        print(f"revocation: others unsubscribed from the revoked party {revocation_seconds:.3f} s after the request")
        assert revocation_seconds < 1.5

        # Removal: nobody receives the removed party any longer.
        removed = time.monotonic()
        assert (await mediator.request("remove_participant", {"participant_id": ids["bank"]}))["ok"]
        await _until(lambda: ids["bank"] not in trio["mediator"].senders())
        removal_seconds = time.monotonic() - removed
        assert trio["mediator"].senders() == set()
        print(f"removal: others unsubscribed from the removed party {removal_seconds:.3f} s after the request")
        assert removal_seconds < 1.5
    finally:
        for task in answering:
            task.cancel()
        for task in answering:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for member in members:
            await member.close()
        for peer in room.peers:
            await peer.close()


@pytest.fixture
async def api_own_janus(tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[tuple[Api, JanusServer]]:
    """A server with a Janus of its own, which the test may kill."""
    server = JanusServer().start()
    try:
        async for client in _serve(make_settings(tmp_path, **mailbox.settings(), **janus_settings(server)), mailbox):
            yield client, server
    finally:
        server.stop()


@pytest.mark.timeout(120)
async def test_sfu_janus_killed_members_told_to_publish_again_and_media_resumes(
        api_own_janus: tuple[Api, JanusServer]) -> None:
    api, janus = api_own_janus
    journey = await walk_to_scheduled(api)
    room = Session(api=api, journey=journey, borrower_link=await issue_link(api, journey, journey.borrower_id),
                   lender_link="", peers=[])
    members: list[Member] = []
    answering: list[asyncio.Task[None]] = []
    try:
        mediator, borrower = room.mediator(), room.borrower()
        await mediator.join()
        await borrower.join()
        assert (await mediator.request("admit", {"participant_id": borrower.participant_id}))["ok"]
        chat = await mediator.request("send_chat", {"text": "before the media server stops"})
        assert chat["ok"], chat
        pair = [Member(mediator), Member(borrower)]
        members.extend(pair)
        for member in pair:
            answering.append(asyncio.create_task(member.answer_offers()))
            await member.publish()
        await _until(lambda: pair[0].senders() == {borrower.participant_id})
        await _until(lambda: pair[1].senders() == {mediator.participant_id})

        killed = time.monotonic()
        janus.kill()
        marks = [len(m.peer.events) for m in pair]
        for member, mark in zip(pair, marks):
            reset = await member.peer.wait_for("media_reset", after=mark, timeout=WAIT)
            assert reset == {"reason": "sfu_lost"}
        told = time.monotonic() - killed
        # Until Janus is back, a publication is refused with a code the page retries on.
        refused = await mediator.request("publish_media", {"offer": {"type": "offer", "sdp": "v=0\r\n"}})
        assert refused["error"] == "sfu_unavailable", refused
        janus.start()
        restarted = time.monotonic()
        offers = [sum(1 for name, _ in m.peer.events if name == "media_offer") for m in pair]
        for member in pair:
            await member.close()
            member.up = member.down = None
        for member, seen in zip(pair, offers):
            member.offers = seen
        for member in pair:
            await _until_published(member)
        await _until(lambda: pair[0].senders() == {borrower.participant_id}
                     and len([1 for n, _ in mediator.events if n == "media_offer"]) > offers[0])
        await _until(lambda: pair[1].senders() == {mediator.participant_id}
                     and len([1 for n, _ in borrower.events if n == "media_offer"]) > offers[1])
        print(f"\nJanus killed: members told in {told:.3f} s; subscriptions back "
              f"{time.monotonic() - restarted:.3f} s after it restarted")
        # Nothing of the room went through Janus: the chat and the roster are intact.
        history = await borrower.request("chat_history", {})
        assert [m["text"] for m in history["messages"]] == ["before the media server stops"]
    finally:
        for task in answering:
            task.cancel()
        for task in answering:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for member in members:
            await member.close()
        for peer in room.peers:
            await peer.close()


async def _until_published(member: Member) -> None:
    """Publish again as a page does after media_reset: every second until the media server takes it."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            await member.publish()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


@pytest.mark.timeout(120)
async def test_sfu_media_layout_validated_rate_limited_and_switches_only_received_feeds(api_sfu: Api) -> None:
    from server.app import JANUS, ROOMS

    api = api_sfu
    journey = await walk_to_scheduled(api)
    room = Session(api=api, journey=journey, borrower_link=await issue_link(api, journey, journey.borrower_id),
                   lender_link="", peers=[])
    sfu = api.app[ROOMS].engine.sfu
    assert sfu is not None
    pair: list[Member] = []
    answering: list[asyncio.Task[None]] = []
    try:
        mediator, borrower = room.mediator(), room.borrower()
        await mediator.join()
        await borrower.join()
        assert (await mediator.request("admit", {"participant_id": borrower.participant_id}))["ok"]
        small = {"participant_id": borrower.participant_id, "width": 320, "height": 180}
        early = await mediator.request("media_layout", {"feeds": [small]})
        assert early["error"] == "not_published", early  # nothing at the media server to lay out yet
        pair.extend([Member(mediator), Member(borrower)])
        for member in pair:
            answering.append(asyncio.create_task(member.answer_offers()))
            await member.publish()
        await _until(lambda: pair[0].senders() == {borrower.participant_id})

        stranger = "pty_" + "ab" * 16  # not in the room: the mediator receives no such feed
        for bad in ([small, small], [{**small, "width": 9000}], [{**small, "height": -1}],
                    [{**small, "participant_id": "nobody"}], [small] * 17, [{**small, "extra": 1}]):
            refused = await mediator.request("media_layout", {"feeds": bad})
            assert refused["error"] == "invalid_payload", (bad, refused)
        taken = await mediator.request("media_layout", {"feeds": [small, {**small, "participant_id": stranger}]})
        assert taken["ok"], taken
        too_soon = await mediator.request("media_layout", {"feeds": [small]})
        assert too_soon["error"] == "rate_limited", too_soon
        media = sfu._media[(journey.session_id, mediator.participant_id)]
        # Janus took a configure for the borrower's video only: its small tile gets substream 0.
        assert sorted(media.substreams.values()) == [0], media.substreams
        assert {owner for _mid, owner in media.substreams} == {borrower.participant_id}
        offers = len([1 for name, _ in mediator.events if name == "media_offer"])
        await asyncio.sleep(0.6)
        wide = await mediator.request("media_layout", {"feeds": [{**small, "width": 1280, "height": 720}]})
        assert wide["ok"], wide
        assert sorted(media.substreams.values()) == [2], media.substreams
        # A layer switch needs no renegotiation: no new media_offer; what the mediator receives is unchanged.
        await asyncio.sleep(0.5)
        assert len([1 for name, _ in mediator.events if name == "media_offer"]) == offers
        assert pair[0].senders() == {borrower.participant_id}
        assert api.app[JANUS].open_sessions == 1
    finally:
        for task in answering:
            task.cancel()
        for task in answering:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for member in pair:
            await member.close()
        for peer in room.peers:
            await peer.close()


def _janus_sessions(janus: JanusServer) -> list[int]:
    """The sessions Janus holds now (its admin API's ``list_sessions``)."""
    body = json.dumps({"janus": "list_sessions", "transaction": "t", "admin_secret": janus.admin_secret}).encode()
    request = urllib.request.Request(janus.admin_url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.loads(response.read())
    assert answer["janus"] == "success", answer
    return list(answer["sessions"])


@pytest.mark.timeout(120)
async def test_sfu_server_shutdown_destroys_its_janus_sessions_and_ends_their_polls(tmp_path: Path,
                                                                                   mailbox: Mailbox) -> None:
    from server.app import JANUS

    janus = JanusServer().start()
    try:
        serving = _serve(make_settings(tmp_path, **mailbox.settings(), **janus_settings(janus)), mailbox)
        api = await anext(serving)
        journey = await walk_to_scheduled(api)
        room = Session(api=api, journey=journey, borrower_link="", lender_link="", peers=[])
        member = Member(room.mediator())
        try:
            await member.peer.join()
            await member.publish()
        finally:
            await member.close()
            for peer in room.peers:
                await peer.close()
        client = api.app[JANUS]
        assert client.open_sessions == 1
        assert len(await asyncio.to_thread(_janus_sessions, janus)) == 1
        with contextlib.suppress(StopAsyncIteration):
            await anext(serving)  # the app stops: its rooms, then the Janus client
        assert client.open_sessions == 0 and client.closed
        # Destroyed at once, not left to Janus's session timeout; no long poll left running here.
        assert await asyncio.to_thread(_janus_sessions, janus) == []
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("janus-poll-")]
    finally:
        janus.stop()
