"""The change feed: who is told which case changed, and when a stream ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from server.changes import STREAMS_PER_CREDENTIAL
from tests.conftest import Api, _serve, future, make_settings, walk_to_scheduled
from tests.support import walk
from tests.support.services import RedisServer

WAIT = 2.0  # the pages promise a change within 2 s


class Events:
    """One open ``/api/events`` stream, read event by event."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = WAIT) -> tuple[str, dict] | None:
        """The next event (comments skipped), or None when the stream ended."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    block = await self.response.content.readuntil(b"\n\n")
                except asyncio.IncompleteReadError:
                    return None
                if not block:
                    return None
                fields = dict(line.split(": ", 1) for line in block.decode().strip().split("\n")
                              if ": " in line and not line.startswith(":"))
                if "event" in fields:
                    return fields["event"], json.loads(fields.get("data", "{}"))

    async def case_changed(self) -> str:
        """The case id of the next ``case_changed`` event."""
        while True:
            event = await self.next()
            assert event is not None, "the stream ended"
            if event[0] == "case_changed":
                return event[1]["case_id"]


@contextlib.asynccontextmanager
async def events(api: Api, token: str) -> AsyncIterator[Events]:
    async with api.session.get(f"{api.base}/api/events", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        stream = Events(response)
        assert await stream.next() == ("ready", {})
        yield stream


async def _propose(api: Api, journey: walk.Journey) -> None:
    status, body = await api.call("POST", f"/api/cases/{journey.case_id}/sessions", token=journey.mediator,
                                  json={"starts_at": future(48), "duration_minutes": 30, "mode": "video"})
    assert status == 201, body


async def test_changes_each_party_and_assignee_told_only_of_its_own_case(api: Api) -> None:
    _, officer = await api.staff("case_officer")
    mine = await walk_to_scheduled(api, officer)
    other = await walk_to_scheduled(api, officer)
    async with events(api, mine.receipt) as borrower, events(api, other.receipt) as stranger, \
            events(api, other.mediator) as other_mediator, events(api, mine.bank) as bank, \
            events(api, officer) as desk:
        await _propose(api, mine)
        assert await borrower.case_changed() == mine.case_id
        assert await bank.case_changed() == mine.case_id
        assert await desk.case_changed() == mine.case_id  # a case officer reads every case
        await _propose(api, other)
        # The first change the other case's party and mediator hear of is their own.
        assert await stranger.case_changed() == other.case_id
        assert await other_mediator.case_changed() == other.case_id


async def test_changes_party_confirming_tells_the_mediators_desk(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    await _propose(api, journey)
    _, view = await api.call("GET", "/api/party/case", token=journey.receipt)
    proposed = next(s for s in view["sessions"] if s["state"] == "proposed")
    async with events(api, journey.mediator) as desk:
        # The borrower confirms with its enrolled device's proof, as its page does.
        await walk.confirm(api.http, f"/api/cases/{journey.case_id}", journey.receipt, journey.devices["borrower"],
                           proposed["session_id"])
        assert await desk.case_changed() == journey.case_id


async def test_changes_mediator_taken_off_a_case_is_told_once_then_no_more(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    successor_id, successor = await api.staff("mediator")
    async with events(api, journey.mediator) as leaving, events(api, successor) as arriving:
        status, body = await api.call("PUT", f"/api/cases/{journey.case_id}/assignments", token=journey.officer,
                                      json={"mediator_id": successor_id})
        assert status == 200, body
        assert await leaving.case_changed() == journey.case_id  # its desk drops the case
        assert await arriving.case_changed() == journey.case_id
        status, _ = await api.call("POST", f"/api/cases/{journey.case_id}/sessions", token=successor,
                                   json={"starts_at": future(48), "duration_minutes": 30, "mode": "video"})
        assert status == 201
        assert await arriving.case_changed() == journey.case_id
        # Of the case it left, it hears nothing more.
        await _assert_quiet(leaving)


async def _assert_quiet(stream: Events) -> None:
    """No case_changed event arrives within the promised delay."""
    try:
        event = await stream.next(timeout=WAIT)
    except TimeoutError:
        return
    assert event is None or event[0] != "case_changed", event


async def test_changes_revoked_receipt_stream_told_and_closed(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    async with events(api, journey.receipt) as borrower:
        status, body = await api.call("POST", f"/api/cases/{journey.case_id}/receipt/revoke", token=journey.officer)
        assert status == 200, body
        event = await borrower.next()
        assert event is not None and event[0] == "access_revoked" and event[1]["code"] == "bad_token", event
        assert await borrower.next() is None


async def test_changes_signed_out_staff_stream_told_and_closed(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    async with events(api, journey.mediator) as desk:
        status, _ = await api.call("POST", "/api/auth/logout", token=journey.mediator)
        assert status == 204
        event = await desk.next()
        assert event is not None and event[0] == "access_revoked", event
        assert await desk.next() is None


async def test_changes_streams_per_credential_are_bounded_429(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(STREAMS_PER_CREDENTIAL):
            await stack.enter_async_context(events(api, journey.receipt))
        status, body = await api.call("GET", "/api/events", token=journey.receipt)
        assert status == 429 and body["error"] == "too_many_streams", body


async def test_changes_administrator_and_anonymous_refused(api: Api) -> None:
    _, admin = await api.staff("administrator")
    status, body = await api.call("GET", "/api/events", token=admin)
    assert status == 403 and body["error"] == "forbidden", body
    status, body = await api.call("GET", "/api/events")
    assert status == 401 and body["error"] == "unauthorized", body


async def test_changes_made_on_one_node_reach_a_stream_on_another(tmp_path: Path, postgres_url: str) -> None:
    with RedisServer() as redis_server:
        settings = make_settings(tmp_path, database_url=postgres_url, redis_url=redis_server.url)
        async for first in _serve(settings):
            async for second in _serve(settings):
                journey = await walk_to_scheduled(first)
                async with events(second, journey.receipt) as borrower:
                    await _propose(first, journey)
                    assert await borrower.case_changed() == journey.case_id
