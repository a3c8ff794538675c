"""`mediation-compliance fetch` against a real server: a bad or missing record is reported, everything else fetched."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from recording.compliance.fetch import fetch_bundle
from recording.compliance.open import load_identities, open_bundle
from recording.records.kinds import RecordKind
from tests.conftest import _serve, make_settings, walk_to_scheduled
from tests.recording.agekeys import generate


async def test_fetch_missing_and_unaudited_records_reported_rest_fetched_and_pinned(tmp_path: Path) -> None:
    async for api in _serve(make_settings(tmp_path)):
        _, compliance = await api.staff("compliance_officer")
        key = generate(tmp_path / "officer")
        assert (await api.call("PUT", "/api/staff/me/recipient", token=compliance,
                               json={"recipient": key.recipient}))[0] == 200
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
        with sqlite3.connect(api.services.settings.data_dir / "mediation.db") as connection:
            connection.execute("DELETE FROM audit_entries WHERE entry_id = ?", (records[1].audit_entry_id,))
        status, manifest = await api.call("GET", f"/api/cases/{journey.case_id}/records/manifest", token=compliance)
        assert status == 200 and records[1].storage_key not in [o["key"] for o in manifest["objects"]]
        status, listed = await api.call("GET", f"/api/cases/{journey.case_id}/records", token=compliance)
        assert status == 200, listed
        with sqlite3.connect(api.services.settings.data_dir / "mediation.db") as connection:
            connection.execute("DELETE FROM sealed_records WHERE record_id = ?", (records[2].record_id,))
        status, body = await api.call("GET", f"/api/cases/{journey.case_id}/records/{records[2].record_id}",
                                      token=compliance)
        assert status == 404, body
