"""`mediation-compliance fetch` against a real server: a bad or missing record is reported, everything else fetched."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pyrage

from recording.compliance.fetch import fetch_bundle
from recording.compliance.open import load_identities, open_bundle
from recording.records import merkle
from recording.records.canonical import canonical_json
from recording.records.kinds import RecordKind
from tests.conftest import STAFF_PASSWORD, _serve, make_settings, walk_to_scheduled
from tests.recording.agekeys import generate


async def test_fetch_missing_and_unaudited_records_reported_rest_fetched_and_pinned(tmp_path: Path) -> None:
    async for api in _serve(make_settings(tmp_path)):
        _, compliance = await api.staff("compliance_officer")
        key = generate(tmp_path / "officer")
        await api.approve_key(compliance, key.recipient)
        journey = await walk_to_scheduled(api)
        records = [await api.services.records.seal_and_file(
            b'{"said": "hello %d"}' % n, actor="test:node", kind=RecordKind.CHAT_MESSAGE, case_id=journey.case_id,
            session_id=journey.session_id, index=n) for n in (1, 2, 3)]
        await api.services.audit.checkpoint()
        # The first record's file is lost from storage.
        os.remove(api.services.settings.records_dir / records[0].storage_key)
        status, body = await api.call("GET", f"/api/cases/{journey.case_id}/records/{records[0].record_id}",
                                      token=compliance)
        assert status == 404 and body["error"] == "record_missing", body
        pin = tmp_path / "pin"
        count, problems = await asyncio.to_thread(fetch_bundle, api.base, journey.case_id, compliance,
                                                  tmp_path / "bundle", pin)
        assert count == 2 and [p.code for p in problems] == ["not_on_case"], problems
        assert records[0].storage_key in problems[0].message
        report = open_bundle(tmp_path / "bundle", load_identities(key.identity_file), [], tmp_path / "out", pin=pin)
        assert report.verified == 2 and report.codes == ["no_transcript", "not_on_case"], report.render()
        assert pin.exists() and "checkpoint_not_pinned" in [w.code for w in report.warnings]
        # A deleted audit row: the record's manifest and download answer documented errors, never 500.
        # (as a database writer does it: without the foreign key checks)
        with closing(sqlite3.connect(api.services.settings.data_dir / "mediation.db")) as connection, connection:
            connection.execute("DELETE FROM audit_entries WHERE entry_id = ?", (records[1].audit_entry_id,))
        status, manifest = await api.call("GET", f"/api/cases/{journey.case_id}/records/manifest", token=compliance)
        assert status == 200 and records[1].storage_key not in [o["key"] for o in manifest["objects"]]
        status, listed = await api.call("GET", f"/api/cases/{journey.case_id}/records", token=compliance)
        assert status == 200, listed
        with closing(sqlite3.connect(api.services.settings.data_dir / "mediation.db")) as connection, connection:
            connection.execute("DELETE FROM sealed_records WHERE record_id = ?", (records[2].record_id,))
        status, body = await api.call("GET", f"/api/cases/{journey.case_id}/records/{records[2].record_id}",
                                      token=compliance)
        assert status == 404, body


async def test_fetch_forged_segment_after_a_restart_is_refused_by_the_node_and_reported_by_the_tool(
        tmp_path: Path) -> None:
    """Issue 11's forged-segment scenario: a database-and-disk writer replaces a segment, its row and its entry."""
    settings = make_settings(tmp_path)
    key = generate(tmp_path / "officer")
    pin = tmp_path / "pin"
    async for api in _serve(settings):
        _, compliance = await api.staff("compliance_officer", "officer-one")
        await api.approve_key(compliance, key.recipient)
        journey = await walk_to_scheduled(api)
        recipient = pyrage.x25519.Recipient.from_str(key.recipient)
        segments = [await api.services.records.file_ciphertext(
            pyrage.encrypt(b"borrower media %d" % index, [recipient]), actor="recorder:test", recipients=[key.recipient],
            case_id=journey.case_id, session_id=journey.session_id, participant_id="pty_borrower01", part=0,
            index=index) for index in range(2)]
        head = await api.services.audit.checkpoint()
        while head is not None and head.tree_size & (head.tree_size - 1) == 0:
            # A pinned size that is a power of two is a whole subtree: a later head extends it by hashes to
            # its right alone, so a rewrite inside it would show only in inclusion proofs. Any other size
            # makes every consistency proof from the pin hash over the entries it covers.
            await api.staff("mediator", f"padding-{head.tree_size}")
            head = await api.services.audit.checkpoint()
        _, first = await asyncio.to_thread(fetch_bundle, api.base, journey.case_id, compliance, tmp_path / "b1", pin)
        opened = open_bundle(tmp_path / "b1", load_identities(key.identity_file), [], tmp_path / "o1", pin=pin)
        assert opened.verified == 2 and pin.exists(), opened.render()
        pinned = pin.read_text()
    # The attacker: other media sealed to the officer, the row and the entry rewritten to match.
    forged = pyrage.encrypt(b"other media", [recipient])
    target = segments[1]
    (settings.records_dir / target.storage_key).write_bytes(forged)
    with closing(sqlite3.connect(settings.data_dir / "mediation.db")) as connection, connection:
        digest = hashlib.sha256(forged).hexdigest()
        connection.execute("UPDATE sealed_records SET sha256 = ?, size = ? WHERE record_id = ?",
                           (digest, len(forged), target.record_id))
        (canonical,) = connection.execute("SELECT canonical FROM audit_entries WHERE entry_id = ?",
                                          (target.audit_entry_id,)).fetchone()
        body = json.loads(canonical)
        body["detail"].update(sha256=digest, size=len(forged))
        raw = canonical_json(body)
        connection.execute("UPDATE audit_entries SET canonical = ?, leaf_hash = ? WHERE entry_id = ?",
                           (raw, merkle.leaf_hash(raw), target.audit_entry_id))
    async for api in _serve(settings):
        status, body = await api.call("GET", "/readyz")
        assert status == 503 and body["error"] == "audit_refused", body
        status, login = await api.call("POST", "/api/auth/login",
                                       json={"username": "officer-one", "password": STAFF_PASSWORD})
        assert status == 200, login
        token = login["token"]
        await walk_to_scheduled(api)  # the log grows: an unguarded node would sign now
        assert await api.services.audit.checkpoint() is None
        count, problems = await asyncio.to_thread(fetch_bundle, api.base, journey.case_id, token, tmp_path / "b2",
                                                  pin)
        report = open_bundle(tmp_path / "b2", load_identities(key.identity_file), [], tmp_path / "o2", pin=pin)
        # The head signed at the last clean stop (after the officer's downloads) does not extend the pin:
        # the pinned entries no longer hash to the pinned root. And the forged entry is in no signed tree.
        assert {"checkpoint_inconsistent", "audit_not_included"} <= set(report.codes), report.render()
        assert target.storage_key in "\n".join(p.message for _, p in report.problems if p.code == "audit_not_included")
        assert report.verified == 0 and not report.complete
        assert pin.read_text() == pinned  # the pin moves only past a checkpoint that extends it
