"""The periodic re-check of a node's sockets (``RoomAccess.check_many``) answers for each socket what asking
about it alone (``RoomAccess.check``) answers, in a read whose statements do not grow with the sockets."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, event, update

from server.models import Assignment, JoinLink, ScheduledSession, StaffSession
from server.joinlinks import RevokeReason
from server.roomaccess import RoomAccess
from server.tokens import hash_token
from signaling.identity import Identity, Refused
from tests.conftest import Api, Journey, issue_link, walk_to_scheduled


async def _code(access: RoomAccess, identity: Identity) -> str | None:
    try:
        await access.check(identity)
    except Refused as refused:
        return refused.code
    return None


@contextmanager
def _statements(api: Api) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001 - SQLAlchemy's event signature
        if "audit_entries" not in statement:  # the audit sequencer works on its own meanwhile
            seen.append(statement)

    engine = api.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _members(api: Api, access: RoomAccess, journey: Journey) -> dict[str, Identity]:
    """The identities the case's four members enter its session's room with: two staff sessions, two links."""
    borrower = await issue_link(api, journey, journey.borrower_id)
    lender = await issue_link(api, journey, journey.lender_id)
    entered = {
        "mediator": await access.enter({"token": journey.mediator, "session_id": journey.session_id}, {}),
        "bank": await access.enter({"token": journey.bank, "session_id": journey.session_id}, {}),
        "borrower": await access.enter({"token": borrower}, {}),
        "lender": await access.enter({"token": lender}, {}),
    }
    return entered


async def test_check_many_answers_as_check_for_every_socket_in_a_fixed_number_of_statements(api: Api) -> None:
    access = RoomAccess(api.services.db, api.services.credentials, lambda _digest: None)
    first = await walk_to_scheduled(api)
    second = await walk_to_scheduled(api, officer=first.officer)
    one, two = await _members(api, access, first), await _members(api, access, second)
    everyone = [*one.values(), *two.values()]
    assert all(identity.expires_at is not None for identity in everyone)  # both kinds carry their expiry

    with _statements(api) as few:
        assert await access.check_many(list(one.values())) == [None] * 4
    with _statements(api) as more:
        assert await access.check_many(everyone) == [None] * 8
    assert len(more) == len(few) <= 6, more  # one per table read, whatever the number of sockets

    # Each way a socket loses its place, in the first case; the second case's members keep theirs.
    now = dt.datetime.now(dt.timezone.utc)
    async with api.services.db.write() as session:
        await session.execute(update(StaffSession).where(StaffSession.token_hash == hash_token(first.bank))
                              .values(expires_at=now - dt.timedelta(seconds=1)))
        await session.execute(update(JoinLink).where(JoinLink.party_id == first.borrower_id)
                              .values(revoked_at=now, revoked_reason=RevokeReason.REMOVED.value,
                                      revoked_by=first.mediator_id))
        await session.execute(delete(Assignment).where(Assignment.case_id == first.case_id,
                                                       Assignment.role == "mediator"))
    # A socket whose session was cancelled meanwhile, and one claiming a session its link is not for.
    async with api.services.db.write() as session:
        await session.execute(update(ScheduledSession).where(ScheduledSession.session_id == second.session_id)
                              .values(state="cancelled"))
    elsewhere = dataclasses.replace(one["lender"], session_id=second.session_id)
    asked = [*everyone, elsewhere]
    alone = [await _code(access, identity) for identity in asked]
    assert alone == ["not_a_participant", "bad_token", "removed", None] + ["bad_session"] * 4 + ["bad_session"]
    assert [refusal.code if refusal else None for refusal in await access.check_many(asked)] == alone
