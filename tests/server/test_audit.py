"""The audit log detects any edit, deletion or reordering of its stored entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from server import merkle
from server.audit import verify_log
from server.models import AuditCheckpoint, AuditEntry
from tests.conftest import Api, application, walk_to_scheduled


async def _filled_log(api: Api) -> None:
    await walk_to_scheduled(api)
    for _ in range(3):
        await api.call("POST", "/api/applications", json=application())
    assert await api.services.audit.checkpoint() is not None


def _trusted(api: Api) -> dict:
    return {api.services.audit.key_id: api.services.audit.public_key}


async def test_audit_untouched_log_verifies_with_every_proof(api_on: Api) -> None:
    await _filled_log(api_on)
    await api_on.call("POST", "/api/applications", json=application())
    await api_on.services.audit.checkpoint()
    report = await verify_log(api_on.services.db, _trusted(api_on))
    assert report.ok, report.problems
    assert report.entries >= 15 and report.checkpoints == 2
    assert report.inclusion_proofs_checked == report.entries and report.consistency_proofs_checked == 1


async def test_audit_records_every_state_change_of_the_journey(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    async with api.services.db.read() as session:
        actions = (await session.execute(
            select(AuditEntry.action).where(AuditEntry.case_id == journey.case_id).order_by(AuditEntry.seq)
        )).scalars().all()
    assert actions == [
        "application_filed", "party_verified", "party_verified", "case_accepted", "staff_assigned",
        "staff_assigned", "session_proposed", "session_confirmed", "session_confirmed", "session_scheduled",
    ]


async def _tamper_and_verify(api: Api, statement) -> list[str]:
    await _filled_log(api)
    async with api.services.db.write() as session:
        await session.execute(statement)
    report = await verify_log(api.services.db, _trusted(api))
    assert not report.ok
    return report.problems


async def test_audit_edited_entry_is_detected(api: Api) -> None:
    await _filled_log(api)
    async with api.services.db.write() as session:
        entry = await session.get(AuditEntry, 3)
        body = json.loads(entry.canonical)
        body["detail"] = {"method": "passport"}
        entry.canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    report = await verify_log(api.services.db, _trusted(api))
    assert any("entry 3: stored leaf hash" in p for p in report.problems), report.problems


async def test_audit_edit_with_recomputed_leaf_hash_is_detected_by_the_signed_root(api: Api) -> None:
    await _filled_log(api)
    async with api.services.db.write() as session:
        entry = (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "party_verified").limit(1))).scalar_one()
        forged = entry.canonical.replace(b'"id_card"', b'"passport"')
        assert forged != entry.canonical
        entry.canonical, entry.leaf_hash = forged, merkle.leaf_hash(forged)
    report = await verify_log(api.services.db, _trusted(api))
    assert any("does not match the entries" in p for p in report.problems), report.problems


async def test_audit_edited_column_outside_the_hash_is_detected(api: Api) -> None:
    problems = await _tamper_and_verify(
        api, update(AuditEntry).where(AuditEntry.seq == 4).values(actor="case_officer:usr_" + "0" * 32))
    assert any("entry 4: column actor" in p for p in problems), problems


async def test_audit_deleted_entry_is_detected(api: Api) -> None:
    problems = await _tamper_and_verify(api, delete(AuditEntry).where(AuditEntry.seq == 5))
    assert any("missing or moved" in p for p in problems), problems


async def test_audit_deleted_tail_is_detected(api: Api) -> None:
    await _filled_log(api)
    async with api.services.db.read() as session:
        last = (await session.execute(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))).scalar_one()
    async with api.services.db.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq == last))
    report = await verify_log(api.services.db, _trusted(api))
    assert any("entries were deleted" in p for p in report.problems), report.problems


async def test_audit_reordered_entries_are_detected(api: Api) -> None:
    await _filled_log(api)
    async with api.services.db.write() as session:
        first, second = await session.get(AuditEntry, 6), await session.get(AuditEntry, 7)
        # Swap the contents of two rows, keeping each row's seq: the order of events changes.
        swapped = [(e.canonical, e.leaf_hash, e.actor, e.action, e.case_id, e.recorded_at) for e in (second, first)]
        for entry, values in zip((first, second), swapped):
            entry.canonical, entry.leaf_hash, entry.actor, entry.action, entry.case_id, entry.recorded_at = values
    report = await verify_log(api.services.db, _trusted(api))
    assert any("entry 6: column seq" in p or "does not match the entries" in p for p in report.problems)
    assert not report.ok


async def test_audit_forged_checkpoint_signature_is_detected(api: Api) -> None:
    problems = await _tamper_and_verify(
        api, update(AuditCheckpoint).values(signature=b"\x00" * 64))
    assert any("bad signature" in p for p in problems), problems


async def test_audit_checkpoint_by_unknown_key_is_refused(api: Api) -> None:
    await _filled_log(api)
    report = await verify_log(api.services.db, {})
    assert any("unknown key" in p for p in report.problems)


def test_audit_verify_command_exits_nonzero_on_tamper(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIATION_DATA_DIR": str(tmp_path / "data"),
           "MEDIATION_PASSWORD_MEMORY_KIB": "1024", "MEDIATION_PASSWORD_TIME_COST": "1"}
    created = subprocess.run([sys.executable, "-m", "server.cli", "create-admin", "root"], input="a long password\n",
                             env=env, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    ok = subprocess.run([sys.executable, "-m", "server.cli", "verify-audit"], env=env, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and "audit log verified" in ok.stdout, ok.stdout + ok.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "mediation.db") as connection:
        connection.execute("UPDATE audit_entries SET action = 'nothing_happened' WHERE seq = 0")
    bad = subprocess.run([sys.executable, "-m", "server.cli", "verify-audit"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and "AUDIT LOG FAILED VERIFICATION" in bad.stdout, bad.stdout


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 33])
def test_audit_levels_proofs_match_rfc6962_paths(size: int) -> None:
    from server.audit import TreeLevels

    leaves = [merkle.leaf_hash(bytes([i])) for i in range(size)]
    levels = TreeLevels(leaves)
    for index in range(size):
        assert levels.proof(index) == merkle.inclusion_proof(leaves, index)
