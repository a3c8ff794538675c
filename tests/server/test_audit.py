"""The audit log detects any edit, deletion or reordering of its stored entries."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from recording.records import merkle
from recording.records.kinds import RecordKind
from server.audit import AuditLog, verify_log
from server.database import Database
from server.models import AuditCheckpoint, AuditEntry
from tests.support.mailbox import Mailbox
from tests.conftest import Api, _serve, application, make_settings, walk_to_scheduled
from tests.recording.agekeys import generate


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
    await api.services.audit.sequence()
    async with api.services.db.read() as session:
        actions = (await session.execute(
            select(AuditEntry.action).where(AuditEntry.case_id == journey.case_id).order_by(AuditEntry.seq)
        )).scalars().all()
    assert actions == [
        "application_filed", "party_verified", "party_verified", "case_accepted", "staff_assigned",
        "staff_assigned", "session_proposed",
        # each side enrols its device with a code sent to its verified contact, then confirms with it
        "possession_code_sent", "device_enrolled", "possession_code_sent", "device_enrolled",
        "session_confirmed", "session_confirmed", "session_scheduled",
    ]


async def _entry(session: AsyncSession, seq: int) -> AuditEntry:
    return (await session.execute(select(AuditEntry).where(AuditEntry.seq == seq))).scalar_one()


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
        entry = await _entry(session, 3)
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
        # A careful forger keeps every column in step with the forged content: only the signed root can tell.
        entry.canonical, entry.leaf_hash = forged, merkle.leaf_hash(forged)
        entry.detail = entry.detail.replace('"id_card"', '"passport"')
    report = await verify_log(api.services.db, _trusted(api))
    assert any("does not match the entries" in p for p in report.problems), report.problems
    assert not any("column" in p or "leaf hash" in p for p in report.problems), report.problems


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
        first, second = await _entry(session, 6), await _entry(session, 7)
        # Swap the contents of two rows, keeping each row's seq: the order of events changes.
        swapped = [(e.canonical, e.leaf_hash, e.actor, e.action, e.case_id, e.recorded_at, e.detail)
                   for e in (second, first)]
        for entry, values in zip((first, second), swapped):
            (entry.canonical, entry.leaf_hash, entry.actor, entry.action, entry.case_id, entry.recorded_at,
             entry.detail) = values
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
    assert "pending (not yet sequenced, not verified): 0," in ok.stdout, ok.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "mediation.db") as connection:
        # As a server's append leaves it: committed, not yet sequenced. Reported, not a failure.
        connection.execute("INSERT INTO audit_entries (recorded_at, actor, action, detail) "
                           "VALUES ('2026-01-01 00:00:00.000000', 'operator:cli', 'logout', '{}')")
    pending = subprocess.run([sys.executable, "-m", "server.cli", "verify-audit"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert pending.returncode == 0 and "pending (not yet sequenced, not verified): 1," in pending.stdout, \
        pending.stdout + pending.stderr
    with sqlite3.connect(tmp_path / "data" / "mediation.db") as connection:
        connection.execute("UPDATE audit_entries SET action = 'nothing_happened' WHERE seq = 0")
    bad = subprocess.run([sys.executable, "-m", "server.cli", "verify-audit"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and "AUDIT LOG FAILED VERIFICATION" in bad.stdout, bad.stdout


# --- the sequencer: appends queue without a lock, one sequencer at a time numbers them -----------

WAIT = 20.0


async def _wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclasses.dataclass
class Node:
    """What one server node holds of the audit log: its own engine and its own AuditLog."""

    db: Database
    audit: AuditLog


@pytest.fixture
async def node(database_url: str) -> AsyncIterator[Node]:
    """One node on a fresh database: SQLite, then real PostgreSQL."""
    db = Database(database_url)
    await db.migrate()
    try:
        yield Node(db, AuditLog(db, Ed25519PrivateKey.generate()))
    finally:
        await db.close()


async def _append(node: Node, action: str, **detail: object) -> int:
    async with node.db.write() as session:
        return await node.audit.append(session, actor="test:node", action=action, detail=dict(detail))


async def _rows(db: Database) -> list[AuditEntry]:
    async with db.read() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.entry_id))).scalars())


def _trusts(*nodes: Node) -> dict:
    return {n.audit.key_id: n.audit.public_key for n in nodes}


async def test_audit_append_is_pending_until_sequenced_and_verify_reports_it(node: Node) -> None:
    first = [await _append(node, "first", n=n) for n in range(3)]
    (row,) = [r for r in await _rows(node.db) if r.entry_id == first[0]]
    assert row.seq is None and row.canonical is None and row.leaf_hash is None
    assert json.loads(row.detail) == {"n": 0}
    assert await node.audit.checkpoint() is not None
    later = [await _append(node, "later", n=n) for n in range(2)]

    report = await verify_log(node.db, _trusts(node))
    assert report.ok, report.problems
    assert (report.entries, report.pending, report.unsigned_tail) == (3, 2, 0)

    assert await node.audit.sequence() == 2
    assert await node.audit.sequence() == 0
    report = await verify_log(node.db, _trusts(node))
    assert report.ok, report.problems
    assert (report.entries, report.pending, report.unsigned_tail) == (5, 0, 2)
    seqs = {r.entry_id: r.seq for r in await _rows(node.db)}
    assert [seqs[i] for i in first + later] == [0, 1, 2, 3, 4]
    canonical = json.loads((await _rows(node.db))[3].canonical)
    assert canonical["seq"] == 3 and canonical["action"] == "later" and canonical["detail"] == {"n": 0}


async def test_audit_entry_of_a_rolled_back_transaction_never_appears_and_leaves_no_gap(node: Node) -> None:
    await _append(node, "kept_before")
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with node.db.write() as session:
            await node.audit.append(session, actor="test:node", action="rolled_back")
            raise RuntimeError("changed my mind")
    await _append(node, "kept_after")
    assert await node.audit.checkpoint() is not None
    rows = await _rows(node.db)
    assert [(r.seq, r.action) for r in rows] == [(0, "kept_before"), (1, "kept_after")]
    report = await verify_log(node.db, _trusts(node))
    assert report.ok and report.entries == 2 and report.pending == 0, report.problems


async def test_audit_entry_committed_after_a_higher_entry_id_is_sequenced_later(postgres_url: str) -> None:
    db = Database(postgres_url)
    await db.migrate()
    node = Node(db, AuditLog(db, Ed25519PrivateKey.generate()))
    try:
        async with db.write() as slow:
            slow_id = await node.audit.append(slow, actor="test:node", action="slow")
            # While the slow transaction is open, another one appends (a higher entry_id), commits and
            # is sequenced: appends hold no lock, and the sequencer cannot see the slow entry yet.
            fast_id = await _append(node, "fast")
            assert fast_id > slow_id
            assert await node.audit.sequence() == 1
        assert await node.audit.sequence() == 1
        seqs = {r.entry_id: r.seq for r in await _rows(db)}
        assert (seqs[fast_id], seqs[slow_id]) == (0, 1)
        assert await node.audit.checkpoint() is not None
        report = await verify_log(db, _trusts(node))
        assert report.ok and report.entries == 2, report.problems
    finally:
        await db.close()


async def _append_concurrently(nodes: list[Node], tasks: int, per_task: int) -> tuple[set[str], set[str]]:
    """Many tasks append through the given nodes, some transactions rolling back; (committed, rolled back).

    Entries are named by their detail: SQLite hands a rolled-back entry_id out again, PostgreSQL never does.
    """
    committed: set[str] = set()
    rolled_back: set[str] = set()

    async def writer(task: int) -> None:
        node = nodes[task % len(nodes)]
        for n in range(per_task):
            names: list[str] = []
            try:
                async with node.db.write() as session:
                    for part in range(1 + (task + n) % 2):  # one or two entries in a transaction
                        names.append(f"{task}.{n}.{part}")
                        await node.audit.append(session, actor=f"test:task{task}", action="said",
                                                detail={"name": names[-1]})
                    if (task * per_task + n) % 7 == 3:
                        raise LookupError("rolled back on purpose")
            except LookupError:
                rolled_back.update(names)
            else:
                committed.update(names)

    await asyncio.gather(*(writer(task) for task in range(tasks)))
    return committed, rolled_back


async def _check_gap_free(nodes: list[Node], committed: set[str], rolled_back: set[str]) -> None:
    db = nodes[0].db
    await asyncio.gather(*(n.audit.sequence() for n in nodes))  # what the loops had not reached yet
    rows = await _rows(db)
    names = [json.loads(r.detail)["name"] for r in rows]
    assert len(names) == len(set(names)) and set(names) == committed  # every entry once, none rolled back
    assert sorted(r.seq for r in rows) == list(range(len(committed)))  # no seq twice, no gap
    for row in rows:
        body = json.loads(row.canonical)
        assert body["seq"] == row.seq and body["detail"] == json.loads(row.detail)
        assert merkle.leaf_hash(row.canonical) == row.leaf_hash
    await nodes[0].audit.checkpoint()
    report = await verify_log(db, _trusts(*nodes))
    assert report.ok, report.problems[:10]
    assert report.entries == len(committed) and report.pending == 0
    assert report.inclusion_proofs_checked == len(committed)


async def _sequencing_in_background(nodes: list[Node]) -> list[asyncio.Task]:
    loops = []
    for n, node in enumerate(nodes):
        loops.append(asyncio.create_task(node.audit.run_sequencer(0.005), name=f"sequencer-{n}"))
        loops.append(asyncio.create_task(node.audit.run_checkpoints(0.05), name=f"checkpoints-{n}"))
    return loops


async def _stop(loops: list[asyncio.Task]) -> None:
    for loop in loops:
        loop.cancel()
    for loop in loops:
        with pytest.raises(asyncio.CancelledError):
            await loop


async def test_audit_concurrent_appends_from_many_tasks_are_gap_free(
        node: Node, caplog: pytest.LogCaptureFixture) -> None:
    loops = await _sequencing_in_background([node])
    try:
        committed, rolled_back = await _append_concurrently([node], tasks=30, per_task=8)
    finally:
        await _stop(loops)
    assert len(committed) > 200 and rolled_back
    await _check_gap_free([node], committed, rolled_back)
    assert not [r for r in caplog.records if r.name == "mediation.audit" and r.levelno >= logging.ERROR]


async def test_audit_two_nodes_appending_and_sequencing_together_stay_gap_free(
        postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    # Two nodes of one deployment: their own engines and audit logs, one database and one signing key.
    key = Ed25519PrivateKey.generate()
    databases = [Database(postgres_url), Database(postgres_url)]
    await databases[0].migrate()
    nodes = [Node(db, AuditLog(db, key)) for db in databases]
    try:
        loops = await _sequencing_in_background(nodes)
        try:
            committed, rolled_back = await _append_concurrently(nodes, tasks=30, per_task=8)
            # Both nodes' sequencers at once, several times over, against the lock.
            await asyncio.gather(*(n.audit.sequence() for n in nodes for _ in range(3)))
        finally:
            await _stop(loops)
        assert len(committed) > 200 and rolled_back
        await _check_gap_free(nodes, committed, rolled_back)
        # Without the lock two sequencers would take the same seqs; the unique seq would refuse one, logged here.
        assert not [r for r in caplog.records if r.name == "mediation.audit" and r.levelno >= logging.ERROR]
    finally:
        for db in databases:
            await db.close()


async def test_audit_sequencer_survives_a_failure_and_resumes(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'late.db'}")
    node = Node(db, AuditLog(db, Ed25519PrivateKey.generate()))
    loop = asyncio.create_task(node.audit.run_sequencer(0.01))
    try:
        async def failed() -> bool:  # no schema yet: every tick fails
            return any(r.getMessage() == "audit sequencing failed" for r in caplog.records)

        await _wait_until(failed)
        await db.migrate()
        entry_id = await _append(node, "after_the_outage")

        async def sequenced() -> bool:
            async with db.read() as session:
                return (await session.get(AuditEntry, entry_id)).seq == 0

        await _wait_until(sequenced)
        assert not loop.done()
    finally:
        await _stop([loop])
        await db.close()


async def test_audit_record_shows_no_seq_until_sequenced_and_the_manifest_sequences_first(
        tmp_path: Path, mailbox: Mailbox) -> None:
    # Neither background loop runs during the test: only the explicit calls sequence.
    settings = make_settings(tmp_path, audit_sequence_seconds=3600.0, audit_checkpoint_seconds=3600,
                             **mailbox.settings())
    async for api in _serve(settings, mailbox):
        _, compliance = await api.staff("compliance_officer")
        key = generate(tmp_path / "officer")
        await api.approve_key(compliance, key.recipient)
        journey = await walk_to_scheduled(api)
        record = await api.services.records.seal_and_file(
            b'{"said": "hello"}', actor="test:node", kind=RecordKind.CHAT_MESSAGE, case_id=journey.case_id,
            session_id=journey.session_id, index=1)
        assert record is not None
        status, listed = await api.call("GET", f"/api/cases/{journey.case_id}/records", token=compliance)
        assert status == 200 and [r["audit_seq"] for r in listed["records"]] == [None]

        status, manifest = await api.call("GET", f"/api/cases/{journey.case_id}/records/manifest",
                                          token=compliance)
        assert status == 200
        (item,) = manifest["objects"]
        entry = json.loads(base64.b64decode(item["audit_entry"]))
        assert entry["seq"] == item["audit_seq"] and entry["detail"]["key"] == record.storage_key
        assert item["audit_seq"] < item["inclusion"]["tree_size"]
        _, listed = await api.call("GET", f"/api/cases/{journey.case_id}/records", token=compliance)
        assert [r["audit_seq"] for r in listed["records"]] == [item["audit_seq"]]
        async with api.services.db.read() as session:
            pending = (await session.execute(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.seq.is_(None)))).scalar_one()
        assert pending == 1  # only the "records_listed" entry the manifest itself appended


def test_audit_verify_command_with_a_pin_catches_entries_deleted_and_renumbered(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIATION_DATA_DIR": str(tmp_path / "data"),
           "MEDIATION_PASSWORD_MEMORY_KIB": "1024", "MEDIATION_PASSWORD_TIME_COST": "1"}
    pin = tmp_path / "pin"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True,
                              timeout=60, input="a long password\n")

    for name in ("root", "second"):
        assert run("create-admin", name).returncode == 0
    first = run("verify-audit", "--pin", str(pin))
    assert first.returncode == 0 and "pin updated" in first.stdout and pin.exists(), first.stdout + first.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "mediation.db") as connection:
        # Delete the first entry and renumber the rest, re-hashing each, and drop the checkpoints: every
        # remaining proof holds, but the log no longer extends the pinned head.
        rows = connection.execute("SELECT entry_id, canonical FROM audit_entries ORDER BY seq").fetchall()
        connection.execute("DELETE FROM audit_entries WHERE entry_id = ?", (rows[0][0],))
        connection.execute("DELETE FROM audit_checkpoints")
        for seq, (entry_id, canonical) in enumerate(rows[1:]):
            body = json.loads(canonical)
            body["seq"] = seq
            raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            connection.execute("UPDATE audit_entries SET seq = ?, canonical = ?, leaf_hash = ? WHERE entry_id = ?",
                               (seq, raw, merkle.leaf_hash(raw), entry_id))
    unpinned = run("verify-audit", "--checkpoint")
    assert unpinned.returncode == 1 and "no signed checkpoint" in unpinned.stdout, unpinned.stdout  # refused to sign
    pinned = run("verify-audit", "--pin", str(pin))
    assert pinned.returncode == 1 and "[checkpoint_inconsistent]" in pinned.stdout, pinned.stdout
