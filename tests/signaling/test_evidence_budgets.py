"""Evidence budgets: a party cannot fill the case record with consent toggles, whatever sockets or nodes it uses."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.models import AuditEntry
from signaling.partybudgets import Budget, LocalBudgets
from signaling.redisbudgets import RedisBudgets
from signaling.roomsettings import RoomSettings
from tests.recording.agekeys import generate
from tests.signaling.conftest import Session
from tests.support.services import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


async def test_consent_toggles_from_a_lobby_party_file_at_most_the_documented_budget(room: Session,
                                                                                      tmp_path: Path) -> None:
    api = room.api
    _, compliance = await api.staff("compliance_officer")
    key = generate(tmp_path / "officer")
    await api.approve_key(compliance, key.recipient)  # in force: consent is sealed evidence
    borrower = room.borrower()
    joined = await borrower.join()
    assert joined["status"] == "lobby" and joined["records_sealed"]  # no mediator, never admitted
    notice = joined["recording_notice"][0]["sha256"]
    journey = room.journey
    started = time.monotonic()
    answers = []
    for n in range(300):
        # Each toggle carries the borrower's fresh possession proof, as its browser sends one.
        act = "give_consent" if n % 2 == 0 else "withdraw_consent"
        proof = await journey.proof(api.http, "borrower", act)
        answers.append(await borrower.request(act, {"notice_sha256": notice, "proof": proof}
                                              if act == "give_consent" else {"proof": proof}))
    elapsed = time.monotonic() - started
    budget = RoomSettings().budget("consent")
    allowed = budget.burst + math.floor(elapsed / budget.interval)
    taken = [answer for answer in answers if answer["ok"]]
    refused = {answer.get("error") for answer in answers if not answer["ok"]}
    print(f"300 toggles in {elapsed:.1f} s: {len(taken)} taken, at most {allowed} allowed")
    assert refused == {"rate_limited"}
    assert budget.burst <= len(taken) <= allowed
    records = [record for record, _ in await api.services.records.list(room.journey.case_id)
               if record.kind == "consent"]
    async with api.services.db.read() as session:
        entries = (await session.execute(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.case_id == room.journey.case_id,
            AuditEntry.action.in_(("room_consent_given", "room_consent_withdrawn"))))).scalar_one()
    assert len(records) == len(taken)
    assert entries == len(taken)


async def test_local_budget_refills_one_per_interval_and_counts_each_participant_apart() -> None:
    now = [0.0]
    budgets = LocalBudgets(clock=lambda: now[0])
    budget = Budget(burst=3, interval=10.0)
    assert [await budgets.take("ses_1", "pty_1", "consent", budget) for _ in range(4)] == [True] * 3 + [False]
    assert await budgets.take("ses_1", "pty_2", "consent", budget)
    assert await budgets.take("ses_1", "pty_1", "presence", budget)
    now[0] = 9.9
    assert not await budgets.take("ses_1", "pty_1", "consent", budget)
    now[0] = 10.0
    assert await budgets.take("ses_1", "pty_1", "consent", budget)
    assert not await budgets.take("ses_1", "pty_1", "consent", budget)


async def test_redis_budget_is_one_across_nodes(redis_server: RedisServer) -> None:
    first = RedisBudgets(redis_server.url, prefix="budgets-shared")
    second = RedisBudgets(redis_server.url, prefix="budgets-shared")
    budget = Budget(burst=4, interval=60.0)
    try:
        taken = [await node.take("ses_1", "pty_1", "consent", budget) for node in (first, second) * 4]
        assert taken == [True] * 4 + [False] * 4
        assert await second.take("ses_1", "pty_2", "consent", budget)
        quick = Budget(burst=1, interval=0.2)
        assert await first.take("ses_2", "pty_1", "consent", quick)
        assert not await second.take("ses_2", "pty_1", "consent", quick)
        deadline = time.monotonic() + 5
        while not await second.take("ses_2", "pty_1", "consent", quick):
            assert time.monotonic() < deadline, "the budget never refilled"
    finally:
        await first.close()
        await second.close()
