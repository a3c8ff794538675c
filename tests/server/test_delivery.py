"""Join links reach only their party: by case view, by e-mail over a real SMTP server, by SMS through a gateway.

Staff see how each delivery went (sent, or failed with its class) and can retry, which replaces the link.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from server.models import AuditEntry, JoinLink, LinkDelivery
from tests.conftest import Api, _serve, issue_link, make_settings, walk_to_scheduled
from tests.support import walk
from tests.support.mailbox import Mailbox, SmsGateway, link_token
from tests.support.services import free_port


@pytest.fixture
async def gateway() -> AsyncIterator[SmsGateway]:
    box = await SmsGateway().start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def api_sms(tmp_path: Path, mailbox: Mailbox, gateway: SmsGateway) -> AsyncIterator[Api]:
    """The server sending party mail to ``mailbox`` and party SMS to ``gateway``."""
    settings = make_settings(tmp_path, **mailbox.settings(), **gateway.settings())
    async for client in _serve(settings, mailbox):
        yield client


@pytest.fixture
async def api_embedded(tmp_path: Path) -> AsyncIterator[Api]:
    """The embedded default: no mail server, no SMS gateway."""
    async for client in _serve(make_settings(tmp_path), mail=False):
        yield client


async def _issue(api: Api, journey, party_id: str) -> dict:
    status, link = await api.call("POST", f"/api/cases/{journey.case_id}/join-links", token=journey.mediator,
                                  json={"party_id": party_id, "session_id": journey.session_id})
    assert status == 201, link
    return link


async def _audited(api: Api, case_id: str, action: str) -> list[dict]:
    async with api.services.db.read() as session:
        rows = (await session.execute(select(AuditEntry).where(AuditEntry.case_id == case_id,
                                                               AuditEntry.action == action)
                                      .order_by(AuditEntry.entry_id))).scalars().all()
    return [json.loads(row.detail) for row in rows]


async def test_delivery_email_over_real_smtp_reaches_party_and_opens_its_case(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    link = await _issue(api, journey, journey.borrower_id)
    assert {d["channel"]: (d["status"], d["error"]) for d in link["deliveries"]} == {
        "case_view": ("sent", None), "email": ("sent", None)}
    assert api.mailbox is not None
    mail = await api.mailbox.wait_for("li.wei@example.cn", link["link_id"])
    assert mail.sender == "mediation@mediation.test" and mail.subject == "Your mediation session link"
    token = link_token(mail.text)
    status, view = await api.call("GET", "/api/party/case", token=token)
    assert status == 200 and view["party"]["party_id"] == journey.borrower_id
    # The same link as the case view's: one credential, two ways to it.
    _, own = await api.call("GET", "/api/party/case", token=journey.receipt)
    assert [link_token(n["link"]) for n in own["notices"] if n["link_id"] == link["link_id"]] == [token]
    delivered = await _audited(api, journey.case_id, "link_delivered")
    assert {(d["channel"], d["status"]) for d in delivered} == {("case_view", "sent"), ("email", "sent")}


async def test_delivery_sms_through_gateway_reaches_party_with_bearer_secret(api_sms: Api,
                                                                            gateway: SmsGateway) -> None:
    journey = await walk_to_scheduled(api_sms)
    link = await _issue(api_sms, journey, journey.borrower_id)
    assert {d["channel"]: d["status"] for d in link["deliveries"]} == {
        "case_view": "sent", "email": "sent", "sms": "sent"}
    assert gateway.refused == [] and len(gateway.received) == 1
    message = gateway.received[0]
    assert message["to"] == "+8613800138000"  # the application's "+86 138 0013 8000", digits only
    status, view = await api_sms.call("GET", "/api/party/case", token=link_token(message["text"]))
    assert status == 200 and view["party"]["party_id"] == journey.borrower_id


async def test_delivery_failure_is_visible_with_class_and_retry_replaces_the_link(api_sms: Api,
                                                                                 gateway: SmsGateway) -> None:
    journey = await walk_to_scheduled(api_sms)
    assert api_sms.mailbox is not None
    api_sms.mailbox.refuse_recipients = True
    gateway.status = 503
    link = await _issue(api_sms, journey, journey.borrower_id)
    assert {d["channel"]: (d["status"], d["error"]) for d in link["deliveries"]} == {
        "case_view": ("sent", None), "email": ("failed", "recipient_refused"), "sms": ("failed", "http_503")}
    _, listed = await api_sms.call("GET", f"/api/cases/{journey.case_id}/join-links", token=journey.officer)
    assert [d["status"] for d in listed["links"][0]["deliveries"]] == ["sent", "failed", "failed"]
    failed = [d for d in await _audited(api_sms, journey.case_id, "link_delivered") if d["status"] == "failed"]
    assert sorted((d["channel"], d["error"]) for d in failed) == [("email", "recipient_refused"), ("sms", "http_503")]
    _, first_view = await api_sms.call("GET", "/api/party/case", token=journey.receipt)
    old_token = link_token(next(n["link"] for n in first_view["notices"] if n["link_id"] == link["link_id"]))

    api_sms.mailbox.refuse_recipients = False
    gateway.status = 202
    status, fresh = await api_sms.call("POST", f"/api/cases/{journey.case_id}/join-links/{link['link_id']}/retry",
                                       token=journey.mediator)
    assert status == 201, fresh
    assert fresh["link_id"] != link["link_id"] and "token" not in fresh and "url" not in fresh
    assert {d["channel"]: d["status"] for d in fresh["deliveries"]} == {"case_view": "sent", "email": "sent",
                                                                          "sms": "sent"}
    # The old link stopped working, and says why; the new one arrived by every channel.
    status, refused = await api_sms.call("GET", "/api/party/case", token=old_token)
    assert status == 401 and "replaced by a newer one" in refused["message"]
    mail = await api_sms.mailbox.wait_for("li.wei@example.cn", fresh["link_id"])
    assert link_token(mail.text) == link_token(gateway.received[-1]["text"])
    assert (await api_sms.call("GET", "/api/party/case", token=link_token(mail.text)))[0] == 200
    issued = await _audited(api_sms, journey.case_id, "link_issued")
    assert issued[-1]["replaces"] == link["link_id"]
    revoked = await _audited(api_sms, journey.case_id, "link_revoked")
    assert revoked == [{"link_id": link["link_id"], "reason": "reissued"}]
    # A revoked link is not retried: that would bring back someone the mediator removed.
    status, body = await api_sms.call("POST", f"/api/cases/{journey.case_id}/join-links/{link['link_id']}/retry",
                                      token=journey.mediator)
    assert status == 409 and body["error"] == "already_revoked"


async def test_delivery_smtp_server_unreachable_fails_with_class_and_link_still_reaches_case_view(
        tmp_path: Path, mailbox: Mailbox) -> None:
    settings = make_settings(tmp_path, **mailbox.settings(), delivery_timeout_seconds=2.0)
    async for api in _serve(settings, mailbox):
        journey = await walk_to_scheduled(api)  # the parties' enrolment codes still reach them
        await mailbox.stop()  # then the mail server goes away: nothing listens on its port
        link = await _issue(api, journey, journey.borrower_id)
        assert {d["channel"]: (d["status"], d["error"]) for d in link["deliveries"]} == {
            "case_view": ("sent", None), "email": ("failed", "unreachable")}
        # The lender has no case view: its only channel failed, and staff see that.
        lender = await _issue(api, journey, journey.lender_id)
        assert [(d["channel"], d["status"], d["error"]) for d in lender["deliveries"]] == [
            ("email", "failed", "unreachable")]


async def test_delivery_embedded_default_sends_no_code_so_no_party_act_can_be_proved(api_embedded: Api) -> None:
    """With neither e-mail nor SMS there is no channel for a one-time code (the case view is never one: the
    receipt opens it), so confirming, consenting and signing cannot be proved; nothing changes
    (docs/deploy.md, "One-time codes need e-mail or SMS")."""
    _, officer = await api_embedded.staff("case_officer")
    mediator_id, mediator = await api_embedded.staff("mediator")
    bank_id, bank = await api_embedded.staff("bank_representative")
    filed = await walk.file_case(api_embedded.http, officer)
    await walk.verify_parties(api_embedded.http, filed, officer)
    await api_embedded.http.call("POST", f"{filed.path}/accept", token=officer)
    await api_embedded.http.call("PUT", f"{filed.path}/assignments", token=officer,
                                 json_body={"mediator_id": mediator_id, "bank_representative_id": bank_id})
    body = await api_embedded.http.call("POST", f"{filed.path}/sessions", token=mediator, expect=201,
                                        json_body={"starts_at": walk.future(), "duration_minutes": 60, "mode": "video"})
    session_id = body["sessions"][0]["session_id"]
    for token in (filed.receipt, bank):
        status, answer = await api_embedded.call("POST", f"{filed.path}/possession/codes", token=token,
                                                 json={"purpose": "enrol"})
        assert (status, answer["error"]) == (409, "no_verified_contact"), answer
        status, answer = await api_embedded.call("POST", f"{filed.path}/sessions/{session_id}/confirm", token=token,
                                                 json={})
        assert (status, answer["error"]) == (403, "possession_required"), answer
    _, case = await api_embedded.call("GET", filed.path, token=officer)
    assert case["state"] == "accepted" and case["sessions"][0]["confirmed_by"] == []
    # So no session is confirmed, and no link is issued: none could have been delivered but to the case view.
    status, answer = await api_embedded.call("POST", f"{filed.path}/join-links", token=mediator,
                                             json={"party_id": filed.borrower_id, "session_id": session_id})
    assert (status, answer["error"]) == (409, "illegal_transition")


async def test_delivery_rows_and_notices_never_hold_the_token(api_sms: Api, gateway: SmsGateway) -> None:
    journey = await walk_to_scheduled(api_sms)
    token = await issue_link(api_sms, journey, journey.borrower_id)
    async with api_sms.services.db.read() as session:
        rows = (await session.execute(select(LinkDelivery))).scalars().all()
    assert len(rows) == 3
    for row in rows:
        assert token not in json.dumps({c.name: str(getattr(row, c.name)) for c in LinkDelivery.__table__.columns})


async def test_verify_party_contacts_of_a_borrower_cannot_be_redirected_by_staff(api: Api) -> None:
    _, officer = await api.staff("case_officer")
    _, receipt = await api.call("POST", "/api/applications", json={
        "borrower": {"name": "Li Wei", "email": "li.wei@example.cn"}, "lender": "Example Commercial Bank",
        "loan_reference": "LN-1", "currency": "CNY", "principal_minor": 100, "overdue_minor": 0,
        "days_overdue": 1})
    _, case = await api.call("GET", f"/api/cases/{receipt['case_id']}", token=officer)
    borrower = next(p for p in case["parties"] if p["role"] == "borrower")
    status, body = await api.call("POST", f"/api/cases/{receipt['case_id']}/parties/{borrower['party_id']}/verify",
                                  token=officer, json={"method": "id_card", "reference": "seen",
                                                       "email": "officer@mediation.example"})
    assert status == 409 and body["error"] == "contacts_on_file" and body["field"] == "email"
    _, case = await api.call("GET", f"/api/cases/{receipt['case_id']}", token=officer)
    borrower = next(p for p in case["parties"] if p["role"] == "borrower")
    assert borrower["email"] == "li.wei@example.cn" and borrower["verified_at"] is None
