"""Join links revoked by link, by session and by case: each keeps why, and each revocation is audited."""

from __future__ import annotations

import json

from sqlalchemy import select

from server.models import AuditEntry, JoinLink
from tests.conftest import Api, walk_to_scheduled
from tests.signaling.conftest import issue_link


async def _revocations(api: Api, case_id: str) -> tuple[dict[str, str | None], dict[str, str]]:
    """link_id -> revoked_reason kept on the link, and link_id -> reason named in the audit log."""
    async with api.services.db.read() as session:
        links = (await session.execute(select(JoinLink).where(JoinLink.case_id == case_id))).scalars().all()
        entries = (await session.execute(
            select(AuditEntry).where(AuditEntry.case_id == case_id, AuditEntry.action == "link_revoked")
        )).scalars().all()
    audited = {}
    for entry in entries:
        detail = json.loads(entry.detail)
        audited[detail["link_id"]] = detail["reason"]
    return {link.link_id: link.revoked_reason for link in links}, audited


async def _link_id(api: Api, case_id: str, officer: str, party_id: str) -> str:
    _, listed = await api.call("GET", f"/api/cases/{case_id}/join-links", token=officer)
    return [link["link_id"] for link in listed["links"] if link["party_id"] == party_id][-1]


async def test_joinlinks_each_revocation_keeps_its_reason_and_is_audited(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    await issue_link(api, journey, journey.borrower_id)
    borrower_link = await _link_id(api, journey.case_id, journey.officer, journey.borrower_id)
    status, _ = await api.call("DELETE", f"/api/cases/{journey.case_id}/join-links/{borrower_link}",
                               token=journey.officer)
    assert status == 200
    await issue_link(api, journey, journey.lender_id)
    lender_link = await _link_id(api, journey.case_id, journey.officer, journey.lender_id)
    status, _ = await api.call("POST", f"/api/cases/{journey.case_id}/sessions/{journey.session_id}/cancel",
                               token=journey.mediator)
    assert status == 200
    kept, audited = await _revocations(api, journey.case_id)
    assert kept == {borrower_link: "revoked", lender_link: "session_cancelled"}
    assert audited == kept


async def test_joinlinks_closing_revokes_the_live_links_only_once(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    await issue_link(api, journey, journey.borrower_id)
    first = await _link_id(api, journey.case_id, journey.officer, journey.borrower_id)
    await api.call("DELETE", f"/api/cases/{journey.case_id}/join-links/{first}", token=journey.officer)
    await issue_link(api, journey, journey.borrower_id)
    second = await _link_id(api, journey.case_id, journey.officer, journey.borrower_id)
    status, _ = await api.call("POST", f"/api/cases/{journey.case_id}/close", token=journey.officer,
                               json={"outcome": "not_settled"})
    assert status == 200
    kept, audited = await _revocations(api, journey.case_id)
    assert kept == {first: "revoked", second: "case_closed"}
    assert audited == kept
    status, listed = await api.call("GET", f"/api/cases/{journey.case_id}/join-links", token=journey.officer)
    assert {link["status"] for link in listed["links"]} == {"revoked"}
