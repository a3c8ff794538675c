"""Repayment agreements: validation, signatures on the canonical text, countersigning, voiding, feedback."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.agreements import b64url, verify_signed_agreement
from tests.conftest import Api, walk_to_scheduled
from tests.support.walk import Device


def terms(**overrides):
    today = dt.date.today()
    body = {
        "currency": "CNY", "settled_amount_minor": 900_000, "waived_penalties_minor": 120_000,
        "instalments": [
            {"due_date": (today + dt.timedelta(days=30 * n)).isoformat(), "amount_minor": 300_000}
            for n in (1, 2, 3)
        ],
        "terms": "The borrower pays three instalments; the bank waives late-payment penalties.",
    }
    body.update(overrides)
    return body


def sign(document: dict, key: Ed25519PrivateKey | Device, version: int) -> dict:
    """A signature body; ``key`` is the party's enrolled device (tests/support/walk.py) or a stray key."""
    key = key.key if isinstance(key, Device) else key
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"version": version, "public_key": b64url(public), "signature": b64url(key.sign(rfc8785.dumps(document)))}


async def _drafted(api: Api):
    journey = await walk_to_scheduled(api)
    status, agreement = await api.call("PUT", f"/api/cases/{journey.case_id}/agreement", token=journey.mediator,
                                       json=terms())
    assert status == 200, agreement
    return journey, agreement


async def test_agreement_signed_by_both_is_countersigned_and_verifies_offline(api: Api, tmp_path: Path) -> None:
    journey, agreement = await _drafted(api)
    assert agreement["canonical"].encode() == rfc8785.dumps(agreement["document"])
    borrower_key, bank_key = journey.devices["borrower"], journey.devices["bank"]
    path = f"/api/cases/{journey.case_id}/agreement/signatures"
    status, after_one = await api.call("POST", path, token=journey.receipt,
                                       json=sign(agreement["document"], borrower_key, 1))
    assert status == 201 and after_one["state"] == "draft"
    status, done = await api.call("POST", path, token=journey.bank, json=sign(agreement["document"], bank_key, 1))
    assert status == 201 and done["state"] == "signed" and done["countersigned"]
    status, signed = await api.call("GET", f"/api/cases/{journey.case_id}/agreement/signed", token=journey.receipt)
    assert status == 200
    trusted = {api.services.audit.key_id: api.services.audit.public_key}
    assert verify_signed_agreement(signed, trusted) == []
    target = tmp_path / "signed.json"
    target.write_text(json.dumps(signed))
    env = {**os.environ, "MEDIATION_DATA_DIR": str(api.services.settings.data_dir)}
    ok = subprocess.run([sys.executable, "-m", "server.cli", "verify-agreement", str(target)], env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "verified" in ok.stdout, ok.stdout + ok.stderr
    # Per signature, the enrolment behind it: when, through which channel, the key's fingerprint.
    for who in ("borrower", "bank"):
        device = journey.devices[who]
        (line,) = [line for line in ok.stdout.splitlines() if device.enrolment_id in line]
        assert device.fingerprint in line and "by email" in line, ok.stdout
    # An enrolment moved onto another signature is seen.
    swapped = json.loads(json.dumps(signed))
    swapped["signatures"][0]["enrolment"], swapped["signatures"][1]["enrolment"] = (
        swapped["signatures"][1]["enrolment"], swapped["signatures"][0]["enrolment"])
    assert any("not the one its enrolment names" in p for p in verify_signed_agreement(swapped, trusted))


async def test_agreement_tampered_after_signing_fails_verification(api: Api, tmp_path: Path) -> None:
    journey, agreement = await _drafted(api)
    path = f"/api/cases/{journey.case_id}/agreement/signatures"
    for token, who in ((journey.receipt, "borrower"), (journey.bank, "bank")):
        status, body = await api.call("POST", path, token=token, json=sign(agreement["document"], journey.devices[who], 1))
        assert status == 201, body
    _, signed = await api.call("GET", f"/api/cases/{journey.case_id}/agreement/signed", token=journey.officer)
    trusted = {api.services.audit.key_id: api.services.audit.public_key}
    signed["document"]["instalments"][0]["amount_minor"] = 1
    problems = verify_signed_agreement(signed, trusted)
    assert any("borrower signature does not match" in p for p in problems)
    assert any("countersignature does not match" in p for p in problems)
    target = tmp_path / "tampered.json"
    target.write_text(json.dumps(signed))
    env = {**os.environ, "MEDIATION_DATA_DIR": str(api.services.settings.data_dir)}
    bad = subprocess.run([sys.executable, "-m", "server.cli", "verify-agreement", str(target)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "FAILED" in bad.stdout


async def test_agreement_change_after_a_signature_voids_it(api: Api) -> None:
    journey, agreement = await _drafted(api)
    path = f"/api/cases/{journey.case_id}/agreement/signatures"
    status, body = await api.call("POST", path, token=journey.receipt,
                                  json=sign(agreement["document"], journey.devices["borrower"], 1))
    assert status == 201, body
    status, redrafted = await api.call("PUT", f"/api/cases/{journey.case_id}/agreement", token=journey.mediator,
                                       json=terms(terms="Revised: the bank also waives interest."))
    assert status == 200 and redrafted["version"] == 2 and redrafted["signatures"] == []
    # A signature on the old text is refused; signing the new one works.
    status, body = await api.call("POST", path, token=journey.bank,
                                  json=sign(agreement["document"], journey.devices["bank"], 1))
    assert status == 409 and body["error"] == "agreement_changed"
    status, body = await api.call("POST", path, token=journey.bank,
                                  json=sign(agreement["document"], journey.devices["bank"], 2))
    assert status == 422 and body["field"] == "signature"


async def test_agreement_terms_are_checked(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    path = f"/api/cases/{journey.case_id}/agreement"
    today = dt.date.today()
    bad_sum = terms(settled_amount_minor=1_000_000)
    status, body = await api.call("PUT", path, token=journey.mediator, json=bad_sum)
    assert status == 422 and "add up to 900000" in body["message"]
    unordered = terms(instalments=[{"due_date": (today + dt.timedelta(days=60)).isoformat(), "amount_minor": 450_000},
                                   {"due_date": (today + dt.timedelta(days=30)).isoformat(), "amount_minor": 450_000}])
    assert (await api.call("PUT", path, token=journey.mediator, json=unordered))[0] == 422
    negative = terms(waived_penalties_minor=-1)
    assert (await api.call("PUT", path, token=journey.mediator, json=negative))[0] == 422
    assert (await api.call("PUT", path, token=journey.mediator, json=terms(currency="USD")))[0] == 422
    assert (await api.call("PUT", path, token=journey.bank, json=terms()))[0] == 403


async def test_feedback_after_close_is_aggregated_for_case_officers(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    path = f"/api/cases/{journey.case_id}/feedback"
    status, body = await api.call("POST", path, token=journey.receipt, json={"rating": 5, "comment": "fair"})
    assert status == 409 and body["error"] == "illegal_transition"
    await api.call("POST", f"/api/cases/{journey.case_id}/close", token=journey.mediator, json={"outcome": "settled"})
    assert (await api.call("POST", path, token=journey.receipt, json={"rating": 5, "comment": "fair"}))[0] == 204
    assert (await api.call("POST", path, token=journey.bank, json={"rating": 3}))[0] == 204
    status, body = await api.call("POST", path, token=journey.receipt, json={"rating": 1})
    assert status == 409 and body["error"] == "already_given"
    status, summary = await api.call("GET", "/api/feedback/summary", token=journey.officer)
    assert status == 200 and summary["count"] == 2 and summary["average"] == 4.0
    assert summary["distribution"]["5"] == 1 and summary["by_mediator"][0]["count"] == 2
    assert (await api.call("GET", "/api/feedback/summary", token=journey.mediator))[0] == 403
