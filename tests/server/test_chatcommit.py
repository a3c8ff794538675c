"""Group commit of chat: messages filed together are each still sealed, stored, journalled and audited alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyrage
import pytest
from sqlalchemy import select

from recording.records.kinds import RecordKind
from recording.records.storage import RecordExistsError
from server.app import CHAT_COMMITS
from server.models import AuditEntry, SealedRecord
from server.records import Filing
from signaling.identity import Unavailable
from tests.conftest import Api, walk_to_scheduled
from tests.recording.agekeys import generate


async def _file(api: Api, case_id: str, session_id: str, seq: int, text: str) -> object:
    body = {"seq": seq, "sent_at": "2026-12-02T00:00:00+00:00", "participant_id": "usr_m", "name": "M",
            "role": "mediator", "text": text, "channel": "main"}
    filing = Filing(plaintext=json.dumps(body).encode(), kind=RecordKind.CHAT_MESSAGE, case_id=case_id,
                    session_id=session_id, index=seq, actor="mediator:usr_m")
    return await api.app[CHAT_COMMITS].file(filing, body)


async def _sealed_to_officer(api: Api, tmp_path: Path) -> tuple[str, pyrage.x25519.Identity]:
    """An officer's key in force (chat is sealed to it); the officer's token and private key."""
    key = generate(tmp_path / "officer")
    _, officer = await api.staff("compliance_officer")
    await api.approve_key(officer, key.recipient)
    return officer, pyrage.x25519.Identity.from_str(key.secret())


async def test_chatcommit_messages_of_two_rooms_at_once_are_one_batch_each_sealed_audited_and_journalled(
        api: Api, tmp_path: Path) -> None:
    officer, identity = await _sealed_to_officer(api, tmp_path)
    first, second = await walk_to_scheduled(api), await walk_to_scheduled(api)
    commits = api.app[CHAT_COMMITS]
    batches, messages = commits.batches, commits.messages
    sent = [(journey, seq, f"{journey.session_id} says {seq}") for journey in (first, second) for seq in (1, 2, 3)]

    filed = await asyncio.gather(*(_file(api, j.case_id, j.session_id, seq, text) for j, seq, text in sent))

    assert (commits.batches - batches, commits.messages - messages) == (1, 6)
    async with api.services.db.read() as session:
        records = {r.record_id: r for r in (await session.execute(
            select(SealedRecord).where(SealedRecord.kind == "chat_message"))).scalars()}
        audits = {e.entry_id: e for e in (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "record_sealed"))).scalars()}
    assert sorted(r.record_id for r in filed) == sorted(records)
    for (journey, seq, text), record in zip(sent, filed):
        # Its own object under its own key, opening to this message alone, with its own audit entry.
        assert (record.session_id, record.index) == (journey.session_id, seq)
        status, stored = await api.http.request("GET", f"/api/cases/{record.case_id}/records/{record.record_id}",
                                                token=officer)
        assert status == 200
        assert json.loads(pyrage.decrypt(stored, [identity]))["text"] == text
        detail = json.loads(audits[record.audit_entry_id].detail)
        assert (detail["key"], detail["size"]) == (record.storage_key, len(stored))
    assert len({r.audit_entry_id for r in filed}) == 6
    for journey in (first, second):  # the transcript's source holds each message, in the same transaction
        assert [m["text"] for m in await commits.journal.messages(journey.session_id)] == [
            text for j, _, text in sent if j is journey]


async def test_chatcommit_a_taken_number_fails_that_message_alone(api: Api, tmp_path: Path) -> None:
    await _sealed_to_officer(api, tmp_path)
    journey = await walk_to_scheduled(api)
    other = await walk_to_scheduled(api)
    await _file(api, journey.case_id, journey.session_id, 1, "first")

    outcomes = await asyncio.gather(
        _file(api, journey.case_id, journey.session_id, 1, "the same number again"),
        _file(api, journey.case_id, journey.session_id, 2, "the next"),
        _file(api, other.case_id, other.session_id, 1, "another room"),
        return_exceptions=True)

    assert isinstance(outcomes[0], RecordExistsError)
    assert [o.index for o in outcomes[1:]] == [2, 1]


async def test_chatcommit_close_files_what_was_queued_then_refuses_as_unavailable(api: Api, tmp_path: Path) -> None:
    await _sealed_to_officer(api, tmp_path)
    journey = await walk_to_scheduled(api)
    commits = api.app[CHAT_COMMITS]
    queued = asyncio.ensure_future(_file(api, journey.case_id, journey.session_id, 1, "queued before the close"))
    await asyncio.sleep(0)  # queued, not yet filed
    await commits.close()
    assert (await queued).index == 1  # what was queued is filed before the close returns
    with pytest.raises(Unavailable):
        await _file(api, journey.case_id, journey.session_id, 2, "too late")
