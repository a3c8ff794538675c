"""A rewritten audit log after a restart: the node refuses to sign, the witness refuses to cosign, verify-audit says so."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import delete, select, update

from recording.records import merkle
from recording.records.canonical import canonical_json
from recording.records.checkpoint import (
    SIGNATURE_COSIGNATURE_V1,
    Pin,
    checkpoint_body,
    count_cosignatures,
    parse_note,
    parse_vkey,
    sign_note,
    vkey,
)
from server.audit import load_or_create_signing_key, verify_log
from server.database import Database
from server.models import AuditCheckpoint, AuditEntry
from server.settings import Settings, SettingsError
from server.witness import WitnessService, WitnessState
from server.witness import main as witness_main
from server.witnesses import add_checkpoint_body
from tests.recording.agekeys import generate
from tests.conftest import _serve, application, make_settings, walk_to_scheduled


async def _witness(tmp_path: Path) -> tuple[WitnessService, TestServer]:
    service = WitnessService("witness.example/w1", load_or_create_signing_key(tmp_path / "witness.key"),
                             WitnessState(tmp_path / "witness-state"), logs_file=tmp_path / "witnessed-logs")
    server = TestServer(service.app(), host="127.0.0.1", port=0)
    await server.start_server()
    return service, server


async def _rewrite(db: Database, change) -> None:
    """What an attacker with the database does: change entries, re-hash them, and drop the checkpoints."""
    async with db.write() as session:
        entries = (await session.execute(select(AuditEntry).where(AuditEntry.seq.is_not(None))
                                         .order_by(AuditEntry.seq))).scalars().all()
        kept = change(entries, session)
        await session.flush()
        for seq, entry in enumerate(kept):
            body = json.loads(entry.canonical)
            body["seq"] = seq
            canonical = canonical_json(body)
            entry.seq, entry.canonical, entry.leaf_hash = seq, canonical, merkle.leaf_hash(canonical)
            entry.action = body["action"]
        await session.execute(delete(AuditCheckpoint))


def _edit_one(entries, _session):
    body = json.loads(entries[3].canonical)
    body["action"] = "nothing_happened"
    entries[3].canonical = canonical_json(body)
    return entries


async def _restart_after(tmp_path: Path, change, witness_answer: int) -> None:
    settings = make_settings(tmp_path)
    service, witness = await _witness(tmp_path)
    settings = make_settings(tmp_path, witness_urls=(str(witness.make_url("")).rstrip("/"),),
                             witness_keys=(service.vkey,), witness_quorum=1)
    try:
        async for api in _serve(settings):
            audit = api.services.audit
            (tmp_path / "witnessed-logs").write_text(vkey(audit.origin, audit.public_key) + "\n")
            await walk_to_scheduled(api)
            signed = await audit.checkpoint()
            assert signed is not None and count_cosignatures(parse_note(signed.note), [parse_vkey(service.vkey)])
            pin = Pin.parse(signed.note)
            status, ready = await api.call("GET", "/readyz")
            assert status == 200, ready
        db = Database(settings.effective_database_url)
        try:
            await _rewrite(db, change)
            report = await verify_log(db, {audit.key_id: audit.public_key}, pin=pin)
            assert not report.ok and any("[checkpoint_inconsistent]" in p for p in report.problems), report.problems
        finally:
            await db.close()
        async for api in _serve(settings):
            restarted = api.services.audit
            assert restarted.refusal is not None and "refusing to sign" in restarted.refusal
            status, body = await api.call("GET", "/readyz")
            assert status == 503 and body["error"] == "audit_refused", body
            await api.call("POST", "/api/applications", json=application())
            assert await restarted.checkpoint() is None
            async with api.services.db.read() as session:
                assert (await session.execute(select(AuditCheckpoint))).scalars().all() == []
            status, metrics = await api.call("GET", "/metrics")
            assert "mediation_audit_checkpoint_refused 1.0" in metrics
            # What an unguarded node would have signed over the rewritten log: the witness refuses it.
            leaves = restarted._leaves
            forged = sign_note(checkpoint_body(restarted.origin, len(leaves), merkle.root_from_leaf_hashes(leaves)),
                               restarted.origin, load_or_create_signing_key(settings.audit_key_path))
            proof = merkle.consistency_proof(leaves, pin.head.tree_size) if pin.head.tree_size <= len(leaves) else []
            async with aiohttp.ClientSession() as http:
                async with http.post(witness.make_url("/add-checkpoint"),
                                     data=add_checkpoint_body(pin.head.tree_size, proof, forged)) as response:
                    assert response.status == witness_answer, await response.text()
                async with http.post(witness.make_url("/add-checkpoint"),
                                     data=add_checkpoint_body(0, [], forged)) as response:
                    assert response.status == 409 and int(await response.text()) == pin.head.tree_size
    finally:
        await witness.close()


async def test_audit_node_restarted_over_a_rewritten_entry_refuses_to_sign(tmp_path: Path) -> None:
    await _restart_after(tmp_path, _edit_one, 422)  # same size, another root: no proof can link them


async def test_audit_node_restarted_over_deleted_and_renumbered_entries_refuses_to_sign(tmp_path: Path) -> None:
    def delete_three(entries, session):
        for entry in entries[2:5]:
            session.sync_session.delete(entry)
        return entries[:2] + entries[5:]

    await _restart_after(tmp_path, delete_three, 400)  # smaller than what the witness cosigned


async def test_audit_history_and_consistency_routes_serve_what_verifies(tmp_path: Path) -> None:
    async for api in _serve(make_settings(tmp_path)):
        await walk_to_scheduled(api)
        first = await api.services.audit.checkpoint()
        await api.call("POST", "/api/applications", json=application())
        second = await api.services.audit.checkpoint()
        _, token = await api.staff("compliance_officer")
        status, history = await api.call("GET", "/api/audit/checkpoints", token=token)
        assert status == 200, history
        assert [c["tree_size"] for c in history["checkpoints"]] == [first.tree_size, second.tree_size]
        assert parse_vkey(history["log_vkey"]).name == history["origin"]
        status, body = await api.call(
            "GET", f"/api/audit/consistency?old_size={first.tree_size}&new_size={second.tree_size}", token=token)
        assert status == 200, body
        proof = [base64.b64decode(p) for p in body["proof"]]
        assert merkle.verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash, proof)
        status, body = await api.call("GET", f"/api/audit/consistency?old_size=5&new_size={10 ** 6}", token=token)
        assert status == 422 and body["error"] == "invalid_field", body
        status, openapi = await api.call("GET", "/api/openapi.json")
        assert "/api/audit/checkpoints" in openapi["paths"] and "/api/audit/consistency" in openapi["paths"]


async def test_witness_cosigns_only_from_the_size_it_holds(tmp_path: Path) -> None:
    service, witness = await _witness(tmp_path)
    key = load_or_create_signing_key(tmp_path / "log.key")
    origin = "example.org/log"
    (tmp_path / "witnessed-logs").write_text(vkey(origin, key.public_key()) + "\n")
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(9)]
    try:
        async with aiohttp.ClientSession() as http:
            async def add(old: int, proof: list[bytes], size: int, signer=key) -> tuple[int, str]:
                note = sign_note(checkpoint_body(origin, size, merkle.root_from_leaf_hashes(leaves[:size])),
                                 origin, signer)
                async with http.post(witness.make_url("/add-checkpoint"),
                                     data=add_checkpoint_body(old, proof, note)) as response:
                    return response.status, await response.text()

            status, line = await add(0, [], 4)
            assert status == 200 and line.startswith("\u2014 witness.example/w1 "), line
            assert (await add(0, [], 6))[0] == 409
            assert (await add(4, merkle.consistency_proof(leaves[:6], 4)[:-1], 6))[0] == 422
            assert (await add(4, merkle.consistency_proof(leaves[:6], 4), 6))[0] == 200
            assert (await add(6, [], 9, signer=load_or_create_signing_key(tmp_path / "other.key")))[0] == 403
            assert service.state.load(origin)[0] == 6
            assert parse_vkey(service.vkey).signature_type == SIGNATURE_COSIGNATURE_V1
    finally:
        await witness.close()


async def test_audit_node_restarted_over_a_hole_in_the_log_refuses_and_still_serves_manifests(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path)
    async for api in _serve(settings):
        journey = await walk_to_scheduled(api)
        assert await api.services.audit.checkpoint() is not None
    db = Database(settings.effective_database_url)
    try:
        async with db.write() as session:
            await session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    finally:
        await db.close()
    async for api in _serve(settings):
        assert api.services.audit.refusal is not None and "gap" in api.services.audit.refusal
        assert any(r.levelname == "ERROR" and "refusing to sign audit checkpoints: the log has a gap" in r.getMessage()
                   for r in caplog.records if r.name == "mediation.audit")
        status, body = await api.call("GET", "/readyz")
        assert status == 503 and body["error"] == "audit_refused"
        _, token = await api.staff("compliance_officer")
        await api.approve_key(token, generate(tmp_path / "officer").recipient)  # two-person control
        status, manifest = await api.call("GET", f"/api/cases/{journey.case_id}/records/manifest", token=token)
        assert status == 200, manifest
        status, body = await api.call("GET", "/api/audit/checkpoint", token=token)
        assert status == 200, body


def test_witness_settings_mismatched_or_bad_keys_fail_at_start_with_the_variable_named(tmp_path: Path) -> None:
    witness = vkey("w.example", load_or_create_signing_key(tmp_path / "w.key").public_key(), SIGNATURE_COSIGNATURE_V1)
    base = {"MEDIATION_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env({**base, "MEDIATION_WITNESS_URLS": "http://127.0.0.1:7380",
                                  "MEDIATION_WITNESS_KEYS": witness, "MEDIATION_WITNESS_QUORUM": "1"})
    assert settings.witness_keys == (witness,)
    for extra, named in [({"MEDIATION_WITNESS_URLS": "http://a,http://b", "MEDIATION_WITNESS_KEYS": witness},
                          "MEDIATION_WITNESS_URLS"),
                         ({"MEDIATION_WITNESS_QUORUM": "1"}, "MEDIATION_WITNESS_QUORUM"),
                         ({"MEDIATION_WITNESS_KEYS": witness.replace("+", "+0", 1)}, "MEDIATION_WITNESS_KEYS"),
                         ({"MEDIATION_WITNESS_URLS": "ftp://witness"}, "MEDIATION_WITNESS_URLS")]:
        with pytest.raises(SettingsError, match=named):
            Settings.from_env({**base, **extra})


def test_witness_vkey_command_prints_a_cosignature_key_for_its_own_key_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    witness_main(["vkey", "--name", "w.example", "--key", str(tmp_path / "w.key")])
    printed = capsys.readouterr().out.strip()
    parsed = parse_vkey(printed)
    assert parsed.name == "w.example" and parsed.signature_type == SIGNATURE_COSIGNATURE_V1
    assert (tmp_path / "w.key").stat().st_mode & 0o777 == 0o600
    witness_main(["vkey", "--name", "w.example", "--key", str(tmp_path / "w.key")])
    assert capsys.readouterr().out.strip() == printed  # the same key on every start
