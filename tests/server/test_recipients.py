"""Compliance keys under two-person control, and the signed recipient statement records are sealed to."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from recording.compliance.cli import main as compliance_main
from recording.records.checkpoint import key_id, load_public_key, public_key_pem
from recording.records.kinds import RecordKind
from recording.records.statement import StatementRefused, statement_message, verify_statement
from server.models import AuditEntry
from tests.conftest import Api, Journey, walk_to_scheduled


_indexes = itertools.count()


def _key() -> str:
    return str(pyrage.x25519.Identity.generate().to_public())


async def _actions(api: Api, *actions: str) -> list[tuple[str, str, dict]]:
    async with api.services.db.read() as session:
        rows = (await session.execute(select(AuditEntry).where(AuditEntry.action.in_(actions))
                                      .order_by(AuditEntry.entry_id))).scalars().all()
    return [(row.action, row.actor, json.loads(row.detail)) for row in rows]


async def _propose(api: Api, token: str, recipient: str) -> dict:
    status, proposal = await api.call("PUT", "/api/staff/me/recipient", token=token, json={"recipient": recipient})
    assert status == 202, proposal
    return proposal


async def _approve(api: Api, token: str, proposal: dict) -> tuple[int, dict]:
    return await api.call("POST", f"/api/compliance/keys/{proposal['proposal_id']}/approve", token=token)


_cases: dict[int, tuple[object, Journey]] = {}


async def _seal(api: Api) -> list[str] | None:
    """Seal a record on a case of this server; the recipients it was sealed to (None: nobody, nothing stored)."""
    app, journey = _cases.get(id(api.app), (None, None))
    if app is not api.app or journey is None:
        journey = await walk_to_scheduled(api)
        _cases[id(api.app)] = (api.app, journey)
    record = await api.services.records.seal_and_file(b'{"chat": "hello"}', actor="test:setup",
                                                      kind=RecordKind.CONSENT, case_id=journey.case_id,
                                                      session_id=journey.session_id,
                                                      participant_id=journey.borrower_id, index=next(_indexes))
    return None if record is None else list(record.recipients)


async def test_recipients_administrator_alone_cannot_register_or_approve_a_key(api: Api) -> None:
    admin_id, admin = await api.staff("administrator")
    # The administrator makes an officer account for itself and signs in as it ...
    body = {"username": "shadow.officer", "display_name": "Shadow", "role": "compliance_officer",
            "password": "a password the admin knows"}
    status, officer = await api.call("POST", "/api/staff", token=admin, json=body)
    assert status == 201 and officer["awaiting_approval"]
    # (a second administrator, another person, approves the account: test_accounts.py holds that rule)
    _, other = await api.staff("administrator")
    assert (await api.call("POST", f"/api/staff/{officer['user_id']}/approve", token=other))[0] == 200
    status, login = await api.call("POST", "/api/auth/login", json={"username": body["username"],
                                                                    "password": body["password"]})
    assert status == 200
    proposal = await _propose(api, login["token"], _key())
    assert proposal["state"] == "pending" and proposal["needs"] == "two_administrators"
    # ... the key is not in force: nothing is sealed to it, no case or record opens to the account ...
    assert await _seal(api) is None
    status, error = await api.call("GET", "/api/cases", token=login["token"])
    assert status == 403 and error["error"] == "key_not_in_force"
    # ... the officer account cannot approve its own key, and one administrator approving is not enough.
    status, error = await _approve(api, login["token"], proposal)
    assert status == 403 and error["error"] == "own_key"
    status, partial = await _approve(api, admin, proposal)
    assert status == 200 and partial["state"] == "pending" and len(partial["approvals"]) == 1
    status, error = await _approve(api, admin, proposal)
    assert status == 409 and error["error"] == "already_approved"
    # An administrator account the first one created is the same person.
    status, _ = await api.call("POST", "/api/staff", token=admin, json={
        "username": "puppet.admin", "display_name": "Puppet", "role": "administrator",
        "password": "another password it knows"})
    status, puppet = await api.call("POST", "/api/auth/login", json={"username": "puppet.admin",
                                                                     "password": "another password it knows"})
    status, error = await _approve(api, puppet["token"], proposal)
    assert status == 403 and error["error"] == "same_person"
    assert await _seal(api) is None
    assert (await api.services.accounts.user(officer["user_id"])).age_recipient is None
    assert admin_id not in json.dumps(await api.call("GET", "/api/compliance/recipients", token=admin))


async def test_recipients_first_officer_needs_two_administrators_and_every_step_is_audited(api_on: Api) -> None:
    api = api_on  # on SQLite and on PostgreSQL
    officer_id, officer = await api.staff("compliance_officer")
    (first_id, first), (second_id, second) = await api.staff("administrator"), await api.staff("administrator")
    recipient = _key()
    proposal = await _propose(api, officer, recipient)
    assert (await _approve(api, first, proposal))[0] == 200
    status, done = await _approve(api, second, proposal)
    assert status == 200 and done["state"] == "approved", done
    assert [a["user_id"] for a in done["approvals"]] == [first_id, second_id]
    assert await _seal(api) == [recipient]
    status, _ = await api.call("GET", "/api/cases", token=officer)
    assert status == 200
    steps = await _actions(api, "recipient_proposed", "recipient_approved", "recipient_statement_issued")
    assert [(action, actor) for action, actor, _ in steps] == [
        ("recipient_proposed", f"compliance_officer:{officer_id}"),
        ("recipient_approved", f"administrator:{first_id}"),
        ("recipient_approved", f"administrator:{second_id}"),
        ("recipient_statement_issued", f"administrator:{second_id}"),
    ]
    assert [detail["complete"] for action, _, detail in steps if action == "recipient_approved"] == [False, True]
    assert steps[-1][2]["recipients"] == [recipient] and steps[-1][2]["version"] == 1


async def test_recipients_second_key_needs_an_officer_in_force_not_administrators(api: Api) -> None:
    senior_id, senior = await api.staff("compliance_officer")
    first = _key()
    await api.approve_key(senior, first)
    newcomer_id, newcomer = await api.staff("compliance_officer")
    second = _key()
    proposal = await _propose(api, newcomer, second)
    assert proposal["needs"] == "compliance_officer"
    _, admin = await api.staff("administrator")
    status, error = await _approve(api, admin, proposal)
    assert status == 403 and error["error"] == "approver_not_in_force"
    assert await _seal(api) == [first]
    status, done = await _approve(api, senior, proposal)
    assert status == 200 and done["state"] == "approved"
    assert sorted(await _seal(api) or []) == sorted([first, second])
    approvals = [(actor, detail["complete"]) for _, actor, detail in await _actions(api, "recipient_approved")]
    assert approvals[-1] == (f"compliance_officer:{senior_id}", True)
    # Listed on the compliance page for every officer: the newcomer sees the approval of its key.
    status, listing = await api.call("GET", "/api/compliance/keys", token=newcomer)
    assert status == 200 and listing["proposals"][0]["proposal_id"] == proposal["proposal_id"]


async def test_recipients_replacing_a_key_supersedes_pending_and_keeps_the_old_until_approved(api: Api) -> None:
    officer_id, officer = await api.staff("compliance_officer")
    old = _key()
    await api.approve_key(officer, old)
    stale = await _propose(api, officer, _key())
    fresh = await _propose(api, officer, _key())
    status, error = await _approve(api, officer, fresh)
    assert status == 403 and error["error"] == "own_key"
    status, error = await _approve(api, officer, stale)
    assert status == 409 and error["state"] == "superseded"
    assert await _seal(api) == [old]  # the replacement waits for a second person
    superseded = await _actions(api, "recipient_superseded")
    assert [d["proposal_id"] for _, _, d in superseded] == [stale["proposal_id"]]
    status, rejected = await api.call("POST", f"/api/compliance/keys/{fresh['proposal_id']}/reject", token=officer)
    assert status == 200 and rejected["state"] == "rejected"
    assert [a for a, _, _ in await _actions(api, "recipient_rejected")] == ["recipient_rejected"]


async def test_recipients_disabled_officer_leaves_the_statement(api: Api) -> None:
    (gone_id, gone), (_, stays) = await api.staff("compliance_officer"), await api.staff("compliance_officer")
    kept, dropped = _key(), _key()
    await api.approve_key(stays, kept)
    proposal = await _propose(api, gone, dropped)
    assert (await _approve(api, stays, proposal))[0] == 200
    assert sorted(await _seal(api) or []) == sorted([kept, dropped])
    _, admin = await api.staff("administrator")
    assert (await api.call("POST", f"/api/staff/{gone_id}/disable", token=admin))[0] == 200
    assert await _seal(api) == [kept]


async def test_recipients_statement_is_signed_by_the_audit_key_and_a_forgery_is_refused(api: Api) -> None:
    _, officer = await api.staff("compliance_officer")
    recipient = _key()
    await api.approve_key(officer, recipient)
    status, served = await api.call("GET", "/api/compliance/recipients", token=officer)
    assert status == 200
    public = load_public_key(served["public_key_pem"].encode())
    statement = verify_statement(served["statement"].encode(), bytes.fromhex(served["signature"]), public,
                                 served["key_id"])
    assert [r["recipient"] for r in statement["recipients"]] == [recipient]
    forged = served["statement"].replace(recipient, _key()).encode()
    try:
        verify_statement(forged, bytes.fromhex(served["signature"]), public)
    except StatementRefused as exc:
        assert "BAD SIGNATURE" in str(exc)
    else:
        raise AssertionError("a statement with a recipient swapped in was accepted")


async def test_recipients_compliance_tool_checks_the_statement_and_refuses_a_bad_signature(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _, officer = await api.staff("compliance_officer")
    recipient = _key()
    await api.approve_key(officer, recipient)
    pem = tmp_path / "audit.pem"
    pem.write_text(public_key_pem(api.services.audit.public_key))
    monkeypatch.setenv("MEDIATION_TOKEN", officer)
    code = await asyncio.to_thread(compliance_main, ["recipients", "--server", api.base, "--audit-public-key", str(pem)])
    out = capsys.readouterr()
    assert code == 0 and "signature verified" in out.out and recipient in out.out, out
    _, served = await api.call("GET", "/api/compliance/recipients", token=officer)
    forged = {**served, "statement": served["statement"].replace(recipient, _key())}
    saved = tmp_path / "statement.json"
    saved.write_text(json.dumps(forged))
    code = compliance_main(["recipients", "--file", str(saved), "--audit-public-key", str(pem)])
    out = capsys.readouterr()
    assert code == 1 and "BAD SIGNATURE" in out.err and "signature verified" not in out.out, out
    # Signed by a key that is not the pinned one: refused too, even though its signature is sound.
    other = Ed25519PrivateKey.generate()
    resigned = {**served, "key_id": key_id(other.public_key()),
                "signature": other.sign(statement_message(served["statement"].encode())).hex(),
                "public_key_pem": public_key_pem(other.public_key())}
    saved.write_text(json.dumps(resigned))
    code = compliance_main(["recipients", "--file", str(saved), "--audit-public-key", str(pem)])
    out = capsys.readouterr()
    assert code == 1 and "not a trusted audit key" in out.err, out
