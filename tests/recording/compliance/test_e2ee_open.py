"""`mediation-compliance open` on a session whose chat was end-to-end encrypted: the node stored ciphertext and
the keys the clients sealed; the officer's tool decrypts the chat and the transcript."""

from __future__ import annotations

import asyncio
from pathlib import Path

from recording.compliance.fetch import fetch_bundle
from recording.compliance.open import load_identities, open_bundle
from tests.conftest import _serve, make_settings, walk_to_scheduled
from tests.recording.agekeys import generate
from tests.recording.test_session_recording import _transcript_sealed
from tests.signaling.conftest import issue_link
from tests.signaling.peer import Participant
from tests.support.e2ee import DeviceKeys

CANARY = "CANARY-e2ee-tool-金丝雀-7302"


async def test_open_decrypts_e2ee_chat_and_transcript_with_the_filed_keys(tmp_path: Path) -> None:
    async for api in _serve(make_settings(tmp_path)):
        _, compliance = await api.staff("compliance_officer")
        officer = generate(tmp_path / "officer")
        await api.approve_key(compliance, officer.recipient)
        journey = await walk_to_scheduled(api)
        mediator = Participant(api.base, {"token": journey.mediator, "session_id": journey.session_id})
        borrower = Participant(api.base, {"token": await issue_link(api, journey, journey.borrower_id)})
        m_keys, b_keys = DeviceKeys(journey.session_id), DeviceKeys(journey.session_id)
        try:
            await mediator.join(m_keys)
            await borrower.join(b_keys)
            assert (await mediator.request("admit", {"participant_id": borrower.participant_id}))["ok"]
            await borrower.wait_for("admitted")
            for peer, keys, other in ((borrower, b_keys, m_keys), (mediator, m_keys, b_keys)):
                key = keys.new_send_key("main")
                assert (await peer.request("file_key", keys.file_payload(key, [officer.recipient])))["ok"]
                assert (await peer.request("share_keys", keys.share_payload(
                    key, {other.participant_id: other.public_key})))["ok"]
            assert (await borrower.request("send_chat", b_keys.encrypt("main", CANARY)))["ok"]
            assert (await mediator.request("send_chat", m_keys.encrypt("main", "noted")))["ok"]
            assert (await mediator.request("end_session", {}))["ok"]
            await _transcript_sealed(api, journey.case_id)
        finally:
            await mediator.close()
            await borrower.close()
        await api.services.audit.checkpoint()
        pin = tmp_path / "pin"
        _, problems = await asyncio.to_thread(fetch_bundle, api.base, journey.case_id, compliance,
                                              tmp_path / "bundle", pin)
        assert problems == []
        assert not [p for p in (tmp_path / "bundle").rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
        report = open_bundle(tmp_path / "bundle", load_identities(officer.identity_file), [], tmp_path / "out",
                             pin=pin)
        assert "undecryptable_chat" not in report.codes and "bad_key_record" not in report.codes, report.render()
        session = journey.session_id
        chat = (tmp_path / "out" / session / "chat.txt").read_text()
        transcript = (tmp_path / "out" / session / "transcript.txt").read_text()
        assert CANARY in chat and "noted" in chat
        assert CANARY in transcript and "noted" in transcript


async def test_open_reports_chat_whose_key_record_is_missing(tmp_path: Path) -> None:
    async for api in _serve(make_settings(tmp_path)):
        _, compliance = await api.staff("compliance_officer")
        officer = generate(tmp_path / "officer")
        await api.approve_key(compliance, officer.recipient)
        journey = await walk_to_scheduled(api)
        mediator = Participant(api.base, {"token": journey.mediator, "session_id": journey.session_id})
        m_keys = DeviceKeys(journey.session_id)
        try:
            await mediator.join(m_keys)
            m_keys.new_send_key("main")  # never filed: a browser that skipped compliance
            assert (await mediator.request("send_chat", m_keys.encrypt("main", CANARY)))["ok"]
            assert (await mediator.request("end_session", {}))["ok"]
            await _transcript_sealed(api, journey.case_id)
        finally:
            await mediator.close()
        await api.services.audit.checkpoint()
        pin = tmp_path / "pin"
        await asyncio.to_thread(fetch_bundle, api.base, journey.case_id, compliance, tmp_path / "bundle", pin)
        report = open_bundle(tmp_path / "bundle", load_identities(officer.identity_file), [], tmp_path / "out",
                             pin=pin)
        assert "undecryptable_chat" in report.codes, report.render()
        assert CANARY not in "".join(p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*.txt*"))
