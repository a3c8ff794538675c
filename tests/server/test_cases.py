"""The case lifecycle through the HTTP API, on SQLite and on real PostgreSQL."""

from __future__ import annotations

import json

from tests.conftest import Api, application, future, issue_link, walk_to_scheduled
from tests.support import walk
from tests.support.mailbox import link_token


async def test_case_full_lifecycle_reaches_closed_with_links(api_on: Api) -> None:
    journey = await walk_to_scheduled(api_on)
    status, link = await api_on.call("POST", f"/api/cases/{journey.case_id}/join-links", token=journey.mediator,
                                     json={"party_id": journey.borrower_id, "session_id": journey.session_id})
    assert status == 201, link
    # Staff learn the link's id, session, expiry and how it was delivered; never the token.
    assert "token" not in link and "url" not in link and "jln_" not in json.dumps(link)
    assert {d["channel"]: d["status"] for d in link["deliveries"]} == {"case_view": "sent", "email": "sent"}
    # The borrower's receipt view carries the link, sealed at rest and opened with the receipt.
    status, view = await api_on.call("GET", "/api/party/case", token=journey.receipt)
    notices = [n for n in view["notices"] if n["kind"] == "join_link"]
    assert [n["link_id"] for n in notices] == [link["link_id"]]
    token = link_token(notices[0]["link"])
    assert token.startswith("jln_") and notices[0]["link"].endswith(token)
    # The link authenticates its party, and only for its own case.
    status, view = await api_on.call("GET", "/api/party/case", token=token)
    assert status == 200 and view["case_id"] == journey.case_id and view["party"]["role"] == "borrower"
    status, listed = await api_on.call("GET", f"/api/cases/{journey.case_id}/join-links", token=journey.officer)
    assert [entry["status"] for entry in listed["links"]] == ["active"]
    status, revoked = await api_on.call("DELETE", f"/api/cases/{journey.case_id}/join-links/{link['link_id']}",
                                        token=journey.officer)
    assert status == 200 and revoked["status"] == "revoked"
    assert (await api_on.call("GET", "/api/party/case", token=token))[0] == 401
    status, closed = await api_on.call("POST", f"/api/cases/{journey.case_id}/close", token=journey.mediator,
                                       json={"outcome": "settled", "note": "agreement filed"})
    assert status == 200 and closed["state"] == "closed" and closed["outcome"] == "settled"


async def test_case_accept_before_verification_is_refused_and_changes_nothing(api_on: Api) -> None:
    _, officer = await api_on.staff("case_officer")
    _, receipt = await api_on.call("POST", "/api/applications", json=application())
    status, body = await api_on.call("POST", f"/api/cases/{receipt['case_id']}/accept", token=officer)
    assert status == 409 and body["error"] == "parties_unverified"
    _, case = await api_on.call("GET", f"/api/cases/{receipt['case_id']}", token=officer)
    assert case["state"] == "submitted"


async def test_case_illegal_transition_answers_409_naming_case_state_and_action(api_on: Api) -> None:
    _, officer = await api_on.staff("case_officer")
    _, receipt = await api_on.call("POST", "/api/applications", json=application())
    case_id = receipt["case_id"]
    assert (await api_on.call("POST", f"/api/cases/{case_id}/reject", token=officer,
                              json={"reason": "not a consumer loan"}))[0] == 200
    status, body = await api_on.call("POST", f"/api/cases/{case_id}/close", token=officer,
                                     json={"outcome": "withdrawn"})
    assert status == 409 and body["error"] == "illegal_transition"
    assert case_id in body["message"] and '"rejected"' in body["message"] and "close" in body["message"]


async def test_application_overdue_bucket_follows_days_overdue(api: Api) -> None:
    _, officer = await api.staff("case_officer")
    buckets = {}
    for days in (0, 29, 30, 90, 91, 400):
        _, receipt = await api.call("POST", "/api/applications", json=application(days_overdue=days))
        _, case = await api.call("GET", f"/api/cases/{receipt['case_id']}", token=officer)
        buckets[days] = case["overdue_bucket"]
    assert buckets == {0: "short", 29: "short", 30: "medium", 90: "medium", 91: "long", 400: "long"}


async def test_case_list_pages_and_filters_by_state(api: Api) -> None:
    _, officer = await api.staff("case_officer")
    case_ids = []
    for _ in range(5):
        _, receipt = await api.call("POST", "/api/applications", json=application())
        case_ids.append(receipt["case_id"])
    await api.call("POST", f"/api/cases/{case_ids[0]}/reject", token=officer, json={"reason": "duplicate"})
    status, page = await api.call("GET", "/api/cases?per_page=2&page=2&state=submitted", token=officer)
    assert status == 200 and page["total"] == 4 and len(page["cases"]) == 2
    status, rejected = await api.call("GET", "/api/cases?state=rejected", token=officer)
    assert [c["case_id"] for c in rejected["cases"]] == [case_ids[0]]
    status, body = await api.call("GET", "/api/cases?state=lost", token=officer)
    assert status == 422 and body["field"] == "state"


async def test_session_proposal_in_the_past_is_refused(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    status, body = await api.call("POST", f"/api/cases/{journey.case_id}/sessions", token=journey.mediator,
                                  json={"starts_at": future(-1), "mode": "chat"})
    assert status == 422 and body["field"] == "starts_at"


async def test_confirm_twice_is_a_conflict(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    body = await walk.confirm(api.http, journey.path, journey.bank, journey.devices["bank"], journey.session_id,
                              expect=409)
    assert body["error"] == "already_confirmed"


async def test_closing_revokes_every_join_link(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    token = await issue_link(api, journey, journey.lender_id)
    await api.call("POST", f"/api/cases/{journey.case_id}/close", token=journey.officer,
                   json={"outcome": "not_settled"})
    status, body = await api.call("GET", "/api/party/case", token=token)
    assert status == 401 and body["error"] == "bad_token"
