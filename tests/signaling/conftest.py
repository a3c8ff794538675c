"""A scheduled session with its three participants ready to connect to the room."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Api, Journey, walk_to_scheduled
from tests.conftest import issue_link as shared_issue_link
from tests.signaling.peer import Participant


@dataclasses.dataclass
class Session:
    api: Api
    journey: Journey
    borrower_link: str
    lender_link: str
    peers: list[Participant]

    def participant(self, auth: dict, headers: dict | None = None) -> Participant:
        peer = Participant(self.api.base, auth, headers)
        self.peers.append(peer)
        return peer

    def mediator(self) -> Participant:
        return self.participant({"token": self.journey.mediator, "session_id": self.journey.session_id})

    def bank(self) -> Participant:
        return self.participant({"token": self.journey.bank, "session_id": self.journey.session_id})

    def borrower(self) -> Participant:
        return self.participant({"token": self.borrower_link})

    async def admitted_trio(self) -> tuple[Participant, Participant, Participant]:
        mediator, bank, borrower = self.mediator(), self.bank(), self.borrower()
        await mediator.join()
        for party in (bank, borrower):
            joined = await party.join()
            assert joined["status"] == "lobby"
            assert (await mediator.request("admit", {"participant_id": party.participant_id}))["ok"]
            await party.wait_for("admitted")
        return mediator, bank, borrower


async def issue_link(api: Api, journey: Journey, party_id: str) -> str:
    """The party's join link as the party receives it (tests/conftest.py)."""
    return await shared_issue_link(api, journey, party_id)


@pytest.fixture
async def room(api: Api) -> AsyncIterator[Session]:
    journey = await walk_to_scheduled(api)
    session = Session(api=api, journey=journey, borrower_link=await issue_link(api, journey, journey.borrower_id),
                      lender_link=await issue_link(api, journey, journey.lender_id), peers=[])
    try:
        yield session
    finally:
        for peer in session.peers:
            await peer.close()
