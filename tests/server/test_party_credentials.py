"""A party's credentials reach only the party: no staff role finds one anywhere it can look.

Also: receipts are revocable and read-only once the case closes; a join link acts only on its own session;
the audit entry of a party's act names the credential, who issued it and how it was delivered.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from server.agreements import b64url
from server.api import router
from server.app import PAGES
from server.jsonlog import JsonFormatter
from server.models import AuditEntry, LinkDelivery, Notice
from server.roomaccess import RoomAccess
from signaling.identity import Refused
from tests.conftest import Api, Journey, _serve, application, future, issue_link, make_settings, walk_to_scheduled
from tests.signaling.peer import Participant
from tests.support import walk
from tests.support.mailbox import Mailbox, SmsGateway, link_token

# Any party credential, whoever it was minted for: a join link or a receipt, raw or in a URL.
PARTY_TOKEN = re.compile(r"(jln|rcp)_[A-Za-z0-9_-]{43}")
STAFF_ROLES = ("case_officer", "mediator", "bank_representative", "compliance_officer", "administrator")


@pytest.fixture
async def gateway() -> AsyncIterator[SmsGateway]:
    box = await SmsGateway().start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def api_all(tmp_path: Path, mailbox: Mailbox, gateway: SmsGateway) -> AsyncIterator[Api]:
    """Every channel on: case view, e-mail to ``mailbox``, SMS through ``gateway``."""
    async for client in _serve(make_settings(tmp_path, **mailbox.settings(), **gateway.settings()), mailbox):
        yield client


def _leaks(where: str, text: str) -> list[str]:
    return [f"{where}: {match.group(0)[:8]}…" for match in PARTY_TOKEN.finditer(text)]


async def _everything_staff_can_read(api: Api, role: str, token: str, journey: Journey,
                                     link_ids: list[str]) -> list[str]:
    """Call every route a person can call, as ``role``, with this case's ids; return the leaks found."""
    ids = {"case_id": journey.case_id, "party_id": journey.borrower_id, "session_id": journey.session_id,
           "link_id": link_ids[-1], "user_id": journey.mediator_id, "record_id": "rec_" + "0" * 32}
    leaks: list[str] = []
    for endpoint in router.endpoints:
        if endpoint.allow == ("recorder",) or endpoint.method not in ("GET", "POST"):
            continue
        if endpoint.method == "POST" and not any(part in endpoint.path for part in ("join-links", "/confirm")):
            continue  # the only writes that touch a party's credential: issuing, retrying, confirming
        path = endpoint.path.format(**{name: ids[name] for name in re.findall(r"{(\w+)}", endpoint.path)})
        if endpoint.path == "/api/events":
            # A stream that never ends: what it says when it opens (and says of a change) is read instead.
            async with api.session.get(f"{api.base}{path}", headers={"Authorization": f"Bearer {token}"}) as stream:
                opened = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 10) if stream.status == 200 \
                    else await stream.read()
            leaks += _leaks(f"{role} GET {endpoint.path} -> {stream.status}", opened.decode(errors="replace"))
            continue
        body = {"party_id": journey.lender_id, "session_id": journey.session_id} \
            if endpoint.path.endswith("/join-links") and endpoint.method == "POST" else {}
        status, answer = await api.call(endpoint.method, path, token=token,
                                        json=body if endpoint.method == "POST" else None)
        leaks += _leaks(f"{role} {endpoint.method} {endpoint.path} -> {status}",
                        answer if isinstance(answer, str) else json.dumps(answer))
    # The pages the desk is made of, as served to this staff member.
    for page in PAGES:
        status, html = await api.call("GET", page, token=token)
        leaks += _leaks(f"{role} page {page} -> {status}", html if isinstance(html, str) else json.dumps(html))
    return leaks


async def test_staff_every_role_finds_no_party_credential_in_api_pages_logs_audit_or_outbox(
        api_all: Api, gateway: SmsGateway) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        journey = await walk_to_scheduled(api_all)
        # The parties do receive their credentials: these are what staff must never see.
        borrower_link = await issue_link(api_all, journey, journey.borrower_id)
        lender_link = await issue_link(api_all, journey, journey.lender_id)
        assert PARTY_TOKEN.fullmatch(borrower_link) and PARTY_TOKEN.fullmatch(lender_link)
        assert any(borrower_link in message["text"] for message in gateway.received)
        tokens = {"case_officer": journey.officer, "mediator": journey.mediator, "bank_representative": journey.bank,
                  "compliance_officer": (await api_all.staff("compliance_officer"))[1],
                  "administrator": (await api_all.staff("administrator"))[1]}
        _, listed = await api_all.call("GET", f"/api/cases/{journey.case_id}/join-links", token=journey.officer)
        link_ids = [link["link_id"] for link in listed["links"]]
        leaks: list[str] = []
        for role in STAFF_ROLES:
            leaks += await _everything_staff_can_read(api_all, role, tokens[role], journey, link_ids)
        await api_all.services.audit.checkpoint()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    assert not leaks, "\n".join(leaks)
    # The logs, everything the server wrote while staff tried.
    assert not _leaks("log", stream.getvalue())
    for secret in (borrower_link, lender_link, journey.receipt):
        assert secret not in stream.getvalue()
    # The audit log, every entry as sequenced into the tree.
    async with api_all.services.db.read() as session:
        entries = (await session.execute(select(AuditEntry))).scalars().all()
        notices = (await session.execute(select(Notice))).scalars().all()
        deliveries = (await session.execute(select(LinkDelivery))).scalars().all()
    assert entries and all(entry.canonical is not None for entry in entries)
    for entry in entries:
        assert not _leaks(f"audit {entry.action}", entry.detail + (entry.canonical or b"").decode())
    assert {"link_issued", "link_delivered"} <= {entry.action for entry in entries}
    # The notifier's outbox: each notice (a link only sealed to the receipt) and each delivery attempt.
    sealed = [notice for notice in notices if notice.sealed_secret is not None]
    assert sealed, "the borrower's link notices are sealed to its receipt"
    for notice in notices:
        assert not _leaks(f"notice {notice.kind}", notice.text + (notice.sealed_secret or b"").decode("latin-1"))
    assert len(deliveries) >= 5
    for row in deliveries:
        assert not _leaks("delivery", " ".join(str(getattr(row, c.name)) for c in LinkDelivery.__table__.columns))


async def test_receipt_revoked_by_case_officer_opens_nothing_and_is_audited(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    status, state = await api.call("GET", f"/api/cases/{journey.case_id}/receipt", token=journey.officer)
    assert status == 200 and state["status"] == "active" and "rcp_" not in json.dumps(state)
    # A mediator may not revoke it: the receipt is the case officer's to manage.
    status, _ = await api.call("POST", f"/api/cases/{journey.case_id}/receipt/revoke", token=journey.mediator)
    assert status == 403
    assert (await api.call("GET", "/api/party/case", token=journey.receipt))[0] == 200
    status, state = await api.call("POST", f"/api/cases/{journey.case_id}/receipt/revoke", token=journey.officer)
    assert status == 200 and state["status"] == "revoked" and state["revoked_at"] is not None
    status, body = await api.call("GET", "/api/party/case", token=journey.receipt)
    assert status == 401 and body["error"] == "bad_token" and "revoked" in body["message"]
    status, body = await api.call("POST", f"/api/cases/{journey.case_id}/receipt/revoke", token=journey.officer)
    assert status == 409 and body["error"] == "already_revoked"
    async with api.services.db.read() as session:
        actors = (await session.execute(select(AuditEntry.actor).where(
            AuditEntry.case_id == journey.case_id, AuditEntry.action == "receipt_revoked"))).scalars().all()
    assert len(actors) == 1 and actors[0].startswith("case_officer:")
    # With no live receipt the borrower's links go only to its mail.
    status, link = await api.call("POST", f"/api/cases/{journey.case_id}/join-links", token=journey.mediator,
                                  json={"party_id": journey.borrower_id, "session_id": journey.session_id})
    assert status == 201 and [d["channel"] for d in link["deliveries"]] == ["email"]


async def test_receipt_after_case_closes_reads_but_cannot_act(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    case_path = f"/api/cases/{journey.case_id}"
    status, case = await api.call("POST", f"{case_path}/sessions", token=journey.mediator,
                                  json={"starts_at": future(72), "mode": "chat"})
    assert status == 201, case
    status, _ = await api.call("POST", f"{case_path}/close", token=journey.mediator, json={"outcome": "withdrawn"})
    assert status == 200
    _, state = await api.call("GET", f"{case_path}/receipt", token=journey.officer)
    assert state["status"] == "read_only"
    status, view = await api.call("GET", "/api/party/case", token=journey.receipt)
    assert status == 200 and view["state"] == "closed"
    pending = [s["session_id"] for s in view["sessions"] if s["session_id"] != journey.session_id]
    status, body = await api.call("POST", f"{case_path}/sessions/{pending[0]}/confirm", token=journey.receipt,
                                  json={})
    assert status == 409 and body["state"] == "closed"
    status, body = await api.call("POST", f"{case_path}/agreement/signatures", token=journey.receipt,
                                  json={"version": 1, "public_key": "A" * 43, "signature": "A" * 86})
    assert status == 409 and body["state"] == "closed"
    status, view = await api.call("GET", "/api/party/case", token=journey.receipt)
    assert [s["confirmed_by"] for s in view["sessions"] if s["session_id"] == pending[0]] == [[]]


async def test_join_link_confirms_only_its_own_session(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    case_path = f"/api/cases/{journey.case_id}"
    status, case = await api.call("POST", f"{case_path}/sessions", token=journey.mediator,
                                  json={"starts_at": future(72), "mode": "chat"})
    assert status == 201
    (other,) = [s["session_id"] for s in case["sessions"] if s["session_id"] != journey.session_id]
    token = await issue_link(api, journey, journey.borrower_id)
    status, body = await api.call("POST", f"{case_path}/sessions/{other}/confirm", token=token, json={})
    assert status == 403 and body["error"] == "other_session" and journey.session_id in body["message"]
    _, case = await api.call("GET", case_path, token=journey.officer)
    assert [s["confirmed_by"] for s in case["sessions"] if s["session_id"] == other] == [[]]
    # The borrower's receipt, which is for the whole case, may confirm it.
    case = await walk.confirm(api.http, case_path, journey.receipt, journey.devices["borrower"], other)
    assert [s["confirmed_by"] for s in case["sessions"] if s["session_id"] == other] == [
        [journey.borrower_id]]
    assert link_token(f"http://x/room#{token}") == token


async def test_join_link_enters_only_its_own_sessions_room(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    status, case = await api.call("POST", f"/api/cases/{journey.case_id}/sessions", token=journey.mediator,
                                  json={"starts_at": future(72), "mode": "chat"})
    assert status == 201
    (other,) = [s["session_id"] for s in case["sessions"] if s["session_id"] != journey.session_id]
    token = await issue_link(api, journey, journey.borrower_id)
    access = RoomAccess(api.services.db, api.services.credentials, lambda _digest: None)
    with pytest.raises(Refused) as refused:
        await access.enter({"token": token, "session_id": other}, {})
    assert refused.value.code == "bad_session"
    # Another case's session is refused alike; with no session named, the link enters its own.
    elsewhere = await walk_to_scheduled(api, officer=journey.officer)
    with pytest.raises(Refused) as refused:
        await access.enter({"token": token, "session_id": elsewhere.session_id}, {})
    assert refused.value.code == "bad_session"
    identity = await access.enter({"token": token}, {})
    assert (identity.session_id, identity.participant_id) == (journey.session_id, journey.borrower_id)


async def test_receipt_after_case_rejected_reads_but_cannot_act(api: Api) -> None:
    _, officer = await api.staff("case_officer")
    receipt = await api.http.call("POST", "/api/applications", json_body=application(), expect=201)
    case_path = f"/api/cases/{receipt['case_id']}"
    status, _ = await api.call("POST", f"{case_path}/reject", token=officer, json={"reason": "not a consumer loan"})
    assert status == 200
    _, state = await api.call("GET", f"{case_path}/receipt", token=officer)
    assert state["status"] == "read_only"
    status, view = await api.call("GET", "/api/party/case", token=receipt["receipt_token"])
    assert status == 200 and view["state"] == "rejected"
    status, body = await api.call("POST", f"{case_path}/agreement/signatures", token=receipt["receipt_token"],
                                  json={"version": 1, "public_key": "A" * 43, "signature": "A" * 86})
    assert status == 409 and body["state"] == "rejected", body
    status, body = await api.call("POST", f"{case_path}/feedback", token=receipt["receipt_token"],
                                  json={"rating": 5, "comment": "fine"})
    assert status == 409 and body["state"] == "rejected", body


async def _details(api: Api, case_id: str, action: str) -> list[dict]:
    async with api.services.db.read() as session:
        rows = (await session.execute(select(AuditEntry.detail).where(
            AuditEntry.case_id == case_id, AuditEntry.action == action).order_by(AuditEntry.entry_id))).scalars().all()
    return [json.loads(row) for row in rows]


async def test_audit_party_acts_name_credential_its_issuer_and_channels(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    # Confirming with the receipt: the entry names the receipt (by its public id), not the token.
    _, receipt = await api.call("GET", f"/api/cases/{journey.case_id}/receipt", token=journey.officer)
    (by_borrower,) = [d for d in await _details(api, journey.case_id, "session_confirmed")
                      if d["party_id"] == journey.borrower_id]
    assert by_borrower["credential"] == {"kind": "receipt", "receipt_id": receipt["receipt_id"],
                                         "issued_by": "application", "delivered_via": ["application_response"]}
    (by_bank,) = [d for d in await _details(api, journey.case_id, "session_confirmed")
                  if d["party_id"] == journey.lender_id]
    # The bank representative acts for the lender with its own staff session, named as such.
    assert by_bank["credential"]["kind"] == "staff_session" and by_bank["credential"]["user_id"] == journey.bank_id
    assert by_borrower["possession"]["enrolment_id"] == journey.devices["borrower"].enrolment_id
    assert by_bank["possession"]["enrolment_id"] == journey.devices["bank"].enrolment_id
    # Signing with a join link: the link, the mediator who issued it, the channels that delivered it.
    token = await issue_link(api, journey, journey.borrower_id)
    _, listed = await api.call("GET", f"/api/cases/{journey.case_id}/join-links", token=journey.officer)
    (link_id,) = [link["link_id"] for link in listed["links"]]
    _, agreement = await api.call("PUT", f"/api/cases/{journey.case_id}/agreement", token=journey.mediator, json={
        "currency": "CNY", "settled_amount_minor": 100_000,
        "instalments": [{"due_date": "2027-06-01", "amount_minor": 100_000}]})
    key = journey.devices["borrower"].key  # the borrower's enrolled device, now used with its join link
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    status, _ = await api.call("POST", f"/api/cases/{journey.case_id}/agreement/signatures", token=token, json={
        "version": 1, "public_key": b64url(public), "signature": b64url(key.sign(rfc8785.dumps(agreement["document"])))})
    assert status == 201
    (signed,) = await _details(api, journey.case_id, "agreement_signed_by_party")
    expected = {"kind": "join_link", "link_id": link_id, "issued_by": journey.mediator_id,
                "delivered_via": ["case_view", "email"]}
    assert signed["credential"] == expected
    # Joining the room with it: the room's entry says the same.
    borrower = Participant(api.base, {"token": token})
    try:
        await borrower.join()
        deadline = asyncio.get_running_loop().time() + 10
        while not (joined := await _details(api, journey.case_id, "room_participant_joined")):
            assert asyncio.get_running_loop().time() < deadline, "the join was never audited"
            await asyncio.sleep(0.05)
    finally:
        await borrower.close()
    assert joined[0]["credential"] == expected
