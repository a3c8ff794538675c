"""Every kind of token resolved by the one credentials module, and resolved again after it is revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from server.credentials import CredentialRefused
from server.models import StaffUser
from server.tokens import new_token
from tests.conftest import Api, walk_to_scheduled
from tests.signaling.conftest import issue_link


async def test_credentials_each_token_kind_resolves_to_its_principal(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.lender_id)
    credentials = api.services.credentials
    staff = await credentials.resolve(journey.mediator)
    assert (staff.kind, staff.role, staff.subject_id, staff.via) == ("staff", "mediator", journey.mediator_id,
                                                                     "session")
    receipt = await credentials.resolve(journey.receipt)
    assert (receipt.kind, receipt.role, receipt.subject_id, receipt.case_id, receipt.via) == (
        "party", "borrower", journey.borrower_id, journey.case_id, "receipt")
    party = await credentials.resolve(link)
    assert (party.kind, party.role, party.subject_id, party.case_id, party.session_id, party.via) == (
        "party", "lender", journey.lender_id, journey.case_id, journey.session_id, "join_link")
    for principal in (staff, receipt, party):
        assert await credentials.resolve_again(principal.credential or "") == principal


async def test_credentials_unknown_or_malformed_tokens_are_refused_as_bad_token(api: Api) -> None:
    credentials = api.services.credentials
    for prefix in ("stf", "rcp", "jln", "rtk"):
        token, _ = new_token(prefix)
        with pytest.raises(CredentialRefused) as refused:
            await credentials.resolve(token)
        assert refused.value.code == "bad_token" and refused.value.status == 401, prefix
    for token in ("jln_short", "xyz_" + "A" * 43, ""):
        with pytest.raises(CredentialRefused) as refused:
            await credentials.resolve(token)
        assert refused.value.reason == "malformed", token
    with pytest.raises(CredentialRefused):
        await credentials.resolve_again("jln:not-hex")


async def test_credentials_resolved_again_after_revocation_are_refused_with_the_reason(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    link = await issue_link(api, journey, journey.lender_id)
    credentials = api.services.credentials
    party = await credentials.resolve(link)
    staff = await credentials.resolve(journey.bank)
    status, _ = await api.call("DELETE", f"/api/cases/{journey.case_id}/join-links/{party.link_id}",
                               token=journey.officer)
    assert status == 200
    with pytest.raises(CredentialRefused) as refused:
        await credentials.resolve_again(party.credential or "")
    assert refused.value.reason == "revoked"
    async with api.services.db.write() as session:
        await session.execute(update(StaffUser).where(StaffUser.user_id == journey.bank_id).values(disabled=True))
    with pytest.raises(CredentialRefused):
        await credentials.resolve_again(staff.credential or "")


async def test_credentials_recorder_token_in_a_cookie_is_refused(api: Api) -> None:
    token, _ = new_token("rtk")
    status, body = await api.call("GET", "/api/auth/me", headers={"Cookie": f"mediation_session={token}"})
    assert status == 401 and body["error"] == "bad_token"
    status, body = await api.call("GET", "/api/auth/me", token=token)
    assert status == 401 and body["error"] == "bad_token"
