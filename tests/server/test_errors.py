"""The wire form of errors: 409 bodies name the case's state as a field."""

from __future__ import annotations

from tests.conftest import Api, application


async def test_conflict_of_illegal_transition_carries_state_field(api: Api) -> None:
    _, officer = await api.staff("case_officer")
    _, receipt = await api.call("POST", "/api/applications", json=application())
    case_id = receipt["case_id"]
    assert (await api.call("POST", f"/api/cases/{case_id}/reject", token=officer,
                           json={"reason": "not a consumer loan"}))[0] == 200
    status, body = await api.call("POST", f"/api/cases/{case_id}/close", token=officer,
                                  json={"outcome": "withdrawn"})
    assert status == 409
    assert body["error"] == "illegal_transition" and body["state"] == "rejected"


async def test_conflict_not_about_case_state_has_no_state_field(api: Api) -> None:
    _, officer = await api.staff("case_officer")
    _, receipt = await api.call("POST", "/api/applications", json=application())
    _, case = await api.call("GET", f"/api/cases/{receipt['case_id']}", token=officer)
    party_id = case["parties"][0]["party_id"]
    verify = f"/api/cases/{receipt['case_id']}/parties/{party_id}/verify"
    check = {"method": "id_card", "reference": "checked at desk"}
    assert (await api.call("POST", verify, token=officer, json=check))[0] == 200
    status, body = await api.call("POST", verify, token=officer, json=check)
    assert status == 409 and body["error"] == "already_verified" and "state" not in body


async def test_openapi_error_body_documents_state_field(api: Api) -> None:
    status, document = await api.call("GET", "/api/openapi.json")
    assert status == 200
    assert "state" in document["components"]["schemas"]["ErrorView"]["properties"]
