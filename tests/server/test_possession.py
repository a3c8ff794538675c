"""The party's possession factor: one-time codes, device enrolment, proofs of each act, and case recovery."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from server.models import AuditEntry, Case, DeviceEnrolment, PossessionCode, SessionConfirmation
from tests.conftest import Api, walk_to_scheduled
from tests.support import walk
from tests.support.walk import BORROWER_EMAIL, Device


async def _audited(api: Api, case_id: str, action: str) -> list[dict]:
    async with api.services.db.read() as session:
        rows = (await session.execute(select(AuditEntry).where(AuditEntry.case_id == case_id,
                                                               AuditEntry.action == action)
                                      .order_by(AuditEntry.entry_id))).scalars().all()
    return [json.loads(row.detail) for row in rows]


async def _proposed(api: Api) -> tuple[walk.Filed, str, str, str]:
    """A case with a proposed session, not yet confirmed: (filed, session_id, mediator, bank)."""
    _, officer = await api.staff("case_officer")
    mediator_id, mediator = await api.staff("mediator")
    bank_id, bank = await api.staff("bank_representative")
    filed = await walk.file_case(api.http, officer)
    await walk.verify_parties(api.http, filed, officer)
    await api.http.call("POST", f"{filed.path}/accept", token=officer)
    await api.http.call("PUT", f"{filed.path}/assignments", token=officer,
                        json_body={"mediator_id": mediator_id, "bank_representative_id": bank_id})
    body = await api.http.call("POST", f"{filed.path}/sessions", token=mediator, expect=201,
                               json_body={"starts_at": walk.future(), "duration_minutes": 60, "mode": "video"})
    return filed, body["sessions"][0]["session_id"], mediator, bank


async def test_code_is_sent_only_to_the_verified_contact_and_stored_only_as_a_keyed_hash(api: Api) -> None:
    filed, _, _, _ = await _proposed(api)
    assert api.mailbox is not None
    sent = await walk.request_code(api.http, filed.path, filed.receipt, purpose="enrol")
    assert sent["channel"] == "email" and sent["to"] == "l***@example.cn" and "code" not in sent
    code = await walk.read_code(api.mailbox, BORROWER_EMAIL, sent["code_id"])
    assert re.fullmatch(r"[0-9]{8}", code)
    async with api.services.db.read() as session:
        row = await session.get(PossessionCode, sent["code_id"])
        dumped = json.dumps({c.name: str(getattr(row, c.name)) for c in PossessionCode.__table__.columns})
    assert code not in dumped and BORROWER_EMAIL not in dumped
    (entry,) = await _audited(api, filed.case_id, "possession_code_sent")
    assert entry["code_id"] == sent["code_id"] and entry["channel"] == "email" and code not in json.dumps(entry)
    assert entry["credential"]["kind"] == "receipt"


async def test_code_wrong_five_times_is_void_and_a_right_one_works_once(api: Api) -> None:
    filed, _, _, _ = await _proposed(api)
    assert api.mailbox is not None
    sent = await walk.request_code(api.http, filed.path, filed.receipt, purpose="enrol")
    code = await walk.read_code(api.mailbox, BORROWER_EMAIL, sent["code_id"])
    wrong = f"{(int(code) + 1) % 10 ** 8:08d}"
    key = Ed25519PrivateKey.generate()
    device = Device(key=key, enrolment_id="", fingerprint="")
    enrol = {"code_id": sent["code_id"], "public_key": device.public_key}
    answers = []
    for _ in range(5):
        status, body = await api.call("POST", f"{filed.path}/possession/enrolments", token=filed.receipt,
                                      json={**enrol, "code": wrong})
        answers.append((status, body["error"]))
    assert answers == [(422, "code_wrong")] * 4 + [(422, "code_spent")]
    status, body = await api.call("POST", f"{filed.path}/possession/enrolments", token=filed.receipt,
                                  json={**enrol, "code": code})
    assert (status, body["error"]) == (422, "code_spent")  # void: even the right code no longer works
    # A fresh code works once.
    sent = await walk.request_code(api.http, filed.path, filed.receipt, purpose="enrol")
    code = await walk.read_code(api.mailbox, BORROWER_EMAIL, sent["code_id"])
    status, enrolled = await api.call("POST", f"{filed.path}/possession/enrolments", token=filed.receipt,
                                      json={"code_id": sent["code_id"], "code": code, "public_key": device.public_key})
    assert status == 201, enrolled
    other = Device(key=Ed25519PrivateKey.generate(), enrolment_id="", fingerprint="")
    status, body = await api.call("POST", f"{filed.path}/possession/enrolments", token=filed.receipt,
                                  json={"code_id": sent["code_id"], "code": code, "public_key": other.public_key})
    assert (status, body["error"]) == (422, "code_spent")


async def test_code_expired_is_refused(api: Api) -> None:
    filed, _, _, _ = await _proposed(api)
    assert api.mailbox is not None
    sent = await walk.request_code(api.http, filed.path, filed.receipt, purpose="enrol")
    code = await walk.read_code(api.mailbox, BORROWER_EMAIL, sent["code_id"])
    async with api.services.db.write() as session:
        await session.execute(update(PossessionCode).where(PossessionCode.code_id == sent["code_id"]).values(
            expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    device = Device(key=Ed25519PrivateKey.generate(), enrolment_id="", fingerprint="")
    status, body = await api.call("POST", f"{filed.path}/possession/enrolments", token=filed.receipt,
                                  json={"code_id": sent["code_id"], "code": code, "public_key": device.public_key})
    assert (status, body["error"]) == (422, "code_expired")
    async with api.services.db.read() as session:
        assert (await session.execute(select(DeviceEnrolment))).first() is None


async def test_code_requests_are_limited_per_party(api: Api) -> None:
    filed, _, _, _ = await _proposed(api)
    limit = api.services.settings.possession_codes_per_party
    for _ in range(limit):
        await walk.request_code(api.http, filed.path, filed.receipt, purpose="enrol")
    status, body = await api.call("POST", f"{filed.path}/possession/codes", token=filed.receipt,
                                  json={"purpose": "enrol"})
    assert (status, body["error"]) == (429, "rate_limited")


async def test_enrolment_is_audited_with_credential_channel_and_fingerprint(api: Api) -> None:
    filed, _, _, bank = await _proposed(api)
    assert api.mailbox is not None
    device = await walk.enrol_device(api.http, filed.path, bank, api.mailbox, filed.lender_email)
    (entry,) = await _audited(api, filed.case_id, "device_enrolled")
    assert entry["enrolment_id"] == device.enrolment_id and entry["fingerprint"] == device.fingerprint
    assert entry["party_id"] == filed.lender_id and entry["channel"] == "email"
    assert entry["credential"]["kind"] == "staff_session"
    status, state = await api.call("GET", f"{filed.path}/possession", token=bank)
    assert status == 200 and [e["fingerprint"] for e in state["enrolments"]] == [device.fingerprint]
    # The same key cannot be enrolled a second time (for this party or another).
    sent = await walk.request_code(api.http, filed.path, filed.receipt, purpose="enrol")
    code = await walk.read_code(api.mailbox, BORROWER_EMAIL, sent["code_id"])
    status, body = await api.call("POST", f"{filed.path}/possession/enrolments", token=filed.receipt,
                                  json={"code_id": sent["code_id"], "code": code, "public_key": device.public_key})
    assert (status, body["error"]) == (409, "key_enrolled")


async def test_confirm_without_proof_or_with_another_partys_device_changes_nothing(api: Api) -> None:
    filed, session_id, _, bank = await _proposed(api)
    assert api.mailbox is not None
    confirm = f"{filed.path}/sessions/{session_id}/confirm"
    status, body = await api.call("POST", confirm, token=filed.receipt, json={})
    assert (status, body["error"]) == (403, "possession_required")
    borrower = await walk.enrol_device(api.http, filed.path, filed.receipt, api.mailbox, BORROWER_EMAIL)
    lender = await walk.enrol_device(api.http, filed.path, bank, api.mailbox, filed.lender_email)
    # The bank's challenge signed by the borrower's device; the borrower's challenge spent twice.
    stolen = await walk.prove(api.http, filed.path, bank, borrower, "confirm_session", session_id)
    status, body = await api.call("POST", confirm, token=bank, json={"proof": stolen})
    assert (status, body["error"]) == (403, "possession_invalid")
    # A proof for another act does not confirm.
    other_act = await walk.prove(api.http, filed.path, filed.receipt, borrower, "give_consent", session_id)
    status, body = await api.call("POST", confirm, token=filed.receipt, json={"proof": other_act})
    assert (status, body["error"]) == (403, "possession_invalid")
    async with api.services.db.read() as session:
        assert (await session.execute(select(SessionConfirmation))).first() is None
    proof = await walk.prove(api.http, filed.path, filed.receipt, borrower, "confirm_session", session_id)
    await api.http.call("POST", confirm, token=filed.receipt, json_body={"proof": proof})
    status, body = await api.call("POST", confirm, token=filed.receipt, json={"proof": proof})
    assert (status, body["error"]) == (403, "possession_invalid")  # single use
    await walk.confirm(api.http, filed.path, bank, lender, session_id)
    entries = await _audited(api, filed.case_id, "session_confirmed")
    assert [e["possession"]["enrolment_id"] for e in entries] == [borrower.enrolment_id, lender.enrolment_id]
    assert entries[0]["credential"]["kind"] == "receipt" and entries[0]["possession"]["channel"] == "email"
    assert entries[1]["credential"] == {"kind": "staff_session", "user_id": entries[1]["credential"]["user_id"],
                                        "issued_by": "sign_in", "delivered_via": ["sign_in_response"]}


async def test_confirm_with_a_code_for_the_act_when_no_device_is_enrolled(api: Api) -> None:
    filed, session_id, _, _ = await _proposed(api)
    assert api.mailbox is not None
    # A code for another act is refused, and spends nothing of the right one.
    sent = await walk.request_code(api.http, filed.path, filed.receipt, purpose="act", act="sign_agreement")
    code = await walk.read_code(api.mailbox, BORROWER_EMAIL, sent["code_id"])
    confirm = f"{filed.path}/sessions/{session_id}/confirm"
    status, body = await api.call("POST", confirm, token=filed.receipt,
                                  json={"proof": {"code_id": sent["code_id"], "code": code}})
    assert (status, body["error"]) == (422, "code_wrong")
    sent = await walk.request_code(api.http, filed.path, filed.receipt, purpose="act", act="confirm_session",
                                   session_id=session_id)
    code = await walk.read_code(api.mailbox, BORROWER_EMAIL, sent["code_id"])
    status, body = await api.call("POST", confirm, token=filed.receipt,
                                  json={"proof": {"code_id": sent["code_id"], "code": code}})
    assert status == 200, body
    (entry,) = await _audited(api, filed.case_id, "session_confirmed")
    assert entry["possession"] == {"party_id": filed.borrower_id, "method": "code", "code_id": sent["code_id"],
                                   "channel": "email"}


@pytest.mark.parametrize("role", ["case_officer", "mediator", "compliance_officer", "administrator"])
async def test_staff_desk_cannot_request_enrol_challenge_confirm_or_sign_for_a_party(api: Api, role: str) -> None:
    filed, session_id, mediator, _ = await _proposed(api)
    if role == "mediator":
        token = mediator
    else:
        _, token = await api.staff(role)
    attempts = [
        ("GET", f"{filed.path}/possession", None),
        ("POST", f"{filed.path}/possession/codes", {"purpose": "enrol"}),
        ("POST", f"{filed.path}/possession/enrolments",
         {"code_id": "pcd_" + "0" * 32, "code": "00000000", "public_key": "A" * 43}),
        ("POST", f"{filed.path}/possession/challenges", {"act": "confirm_session", "session_id": session_id}),
        ("POST", f"{filed.path}/sessions/{session_id}/confirm", {"party_id": filed.borrower_id}),
        ("POST", f"{filed.path}/agreement/signatures", {"version": 1, "public_key": "A" * 43, "signature": "A" * 86}),
    ]
    for method, path, body in attempts:
        status, answer = await api.call(method, path, token=token, json=body)
        assert status == 403, (role, path, status, answer)
    async with api.services.db.read() as session:
        assert (await session.execute(select(PossessionCode))).first() is None


async def test_agreement_signed_only_with_the_partys_enrolled_key(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    await api.http.call("PUT", f"{journey.path}/agreement", token=journey.mediator, json_body={
        "currency": "CNY", "settled_amount_minor": 300_000, "waived_penalties_minor": 0,
        "instalments": [{"due_date": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
                         "amount_minor": 300_000}], "terms": "One instalment."})
    stray = Device(key=Ed25519PrivateKey.generate(), enrolment_id="", fingerprint="")
    status, body = await walk.sign(api.http, journey.path, journey.receipt, stray, expect=403), None
    assert status["error"] == "key_not_enrolled"
    # The bank's device does not sign for the borrower.
    await walk.sign(api.http, journey.path, journey.receipt, journey.devices["bank"], expect=403)
    signed = await walk.sign(api.http, journey.path, journey.receipt, journey.devices["borrower"])
    assert signed["signatures"][0]["enrolment"]["enrolment_id"] == journey.devices["borrower"].enrolment_id
    done = await walk.sign(api.http, journey.path, journey.bank, journey.devices["bank"])
    assert done["state"] == "signed"
    (entry, _) = await _audited(api, journey.case_id, "agreement_signed_by_party")
    assert entry["possession"]["fingerprint"] == journey.devices["borrower"].fingerprint
    assert entry["credential"]["kind"] == "receipt"


async def test_recovery_gives_a_new_receipt_and_answers_alike_for_unknown_cases(api: Api) -> None:
    filed, _, _, _ = await _proposed(api)
    assert api.mailbox is not None
    async with api.services.db.read() as session:
        number = (await session.get(Case, filed.case_id)).case_number
    answers = []
    for case_number, contact in ((number, BORROWER_EMAIL), ("MD-20200101-ABCDEF", BORROWER_EMAIL),
                                 (number, "someone.else@example.cn")):
        status, body = await api.call("POST", "/api/recovery/codes",
                                      json={"case_number": case_number, "contact": contact})
        answers.append((status, body))
    assert answers[0] == answers[1] == answers[2] and answers[0][0] == 202
    await api.services.possession.close()  # the code is sent after the answer
    (mail,) = [m for m in api.mailbox.messages if "recovering access" in m.text]
    code = walk.CODE.search(mail.text).group(1)
    for case_number in ("MD-20200101-ABCDEF", number):
        status, body = await api.call("POST", "/api/recovery/receipts", json={
            "case_number": case_number, "contact": "someone.else@example.cn", "code": code})
        assert (status, body["error"]) == (422, "code_wrong")
    status, recovered = await api.call("POST", "/api/recovery/receipts", json={
        "case_number": number, "contact": BORROWER_EMAIL.upper(), "code": code})
    assert status == 201 and recovered["case_id"] == filed.case_id, recovered
    assert (await api.call("GET", "/api/party/case", token=recovered["receipt_token"]))[0] == 200
    assert (await api.call("GET", "/api/party/case", token=filed.receipt))[0] == 401  # the lost one stops
    (entry,) = await _audited(api, filed.case_id, "receipt_recovered")
    assert entry["possession"]["channel"] == "email" and entry["replaces"].startswith("rct_")
    status, body = await api.call("POST", "/api/recovery/receipts", json={
        "case_number": number, "contact": BORROWER_EMAIL, "code": code})
    assert (status, body["error"]) == (422, "code_wrong")  # spent


async def test_codes_never_reach_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    filed, session_id, _, _ = await _proposed(api)
    assert api.mailbox is not None
    sent = await walk.request_code(api.http, filed.path, filed.receipt, purpose="act", act="confirm_session",
                                   session_id=session_id)
    code = await walk.read_code(api.mailbox, BORROWER_EMAIL, sent["code_id"])
    await api.http.call("POST", f"{filed.path}/sessions/{session_id}/confirm", token=filed.receipt,
                        json_body={"proof": {"code_id": sent["code_id"], "code": code}})
    assert sent["code_id"] in caplog.text  # the code is logged by its id...
    assert code not in caplog.text  # ...never by itself


async def test_bank_representative_acts_only_for_the_lender_never_the_borrower(api: Api) -> None:
    filed, session_id, _, bank = await _proposed(api)
    assert api.mailbox is not None
    lender = await walk.enrol_device(api.http, filed.path, bank, api.mailbox, filed.lender_email)
    proof = await walk.prove(api.http, filed.path, bank, lender, "confirm_session", session_id)
    status, body = await api.call("POST", f"{filed.path}/sessions/{session_id}/confirm", token=bank,
                                  json={"party_id": filed.borrower_id, "proof": proof})
    assert status == 403 and body["field"] == "party_id"
    status, state = await api.call("GET", f"{filed.path}/possession", token=bank)
    assert state["party_id"] == filed.lender_id and state["role"] == "lender"
    # Its code went to the lender's verified contact, not the borrower's.
    assert all(walk.BORROWER_EMAIL not in m.recipients for m in api.mailbox.messages)
    async with api.services.db.read() as session:
        assert (await session.execute(select(SessionConfirmation))).first() is None
