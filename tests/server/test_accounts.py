"""Staff sign-in, sessions, cookies, rate limits and disabling accounts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from server.models import AuditEntry, StaffSession
from tests.conftest import STAFF_PASSWORD, Api


async def test_login_sets_httponly_strict_cookie_that_authenticates(api: Api) -> None:
    user_id, _ = await api.staff("case_officer", "officer.wang")
    async with api.session.post(api.base + "/api/auth/login",
                                json={"username": "officer.wang", "password": STAFF_PASSWORD}) as response:
        assert response.status == 200
        cookie = response.cookies["mediation_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        token = (await response.json())["token"]
    assert cookie.value == token
    status, me = await api.call("GET", "/api/auth/me", headers={"Cookie": f"mediation_session={token}"})
    assert status == 200 and me["user"]["user_id"] == user_id


async def test_login_wrong_password_is_refused_and_audited(api: Api) -> None:
    await api.staff("mediator", "mediator.zhao")
    status, body = await api.call("POST", "/api/auth/login", json={"username": "mediator.zhao", "password": "nope"})
    assert status == 401 and body["error"] == "bad_credentials"
    status, body = await api.call("POST", "/api/auth/login", json={"username": "nobody", "password": "nope"})
    assert status == 401 and body["error"] == "bad_credentials"
    await api.services.audit.sequence()
    async with api.services.db.read() as session:
        failures = (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "login_failed"))).scalars().all()
    assert len(failures) == 2
    assert all(f.canonical is not None and b"nope" not in f.canonical and "nope" not in f.detail for f in failures)


async def test_login_repeated_attempts_are_rate_limited(api: Api) -> None:
    await api.staff("mediator", "mediator.qian")
    # The sign-in that api.staff() made counts too.
    limit = api.services.settings.login_attempts_per_minute - 1
    statuses = []
    for _ in range(limit + 2):
        status, body = await api.call("POST", "/api/auth/login",
                                      json={"username": "mediator.qian", "password": "wrong"})
        statuses.append(status)
    assert statuses[:limit] == [401] * limit and statuses[limit:] == [429, 429]
    async with api.session.post(api.base + "/api/auth/login",
                                json={"username": "mediator.qian", "password": STAFF_PASSWORD}) as response:
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1


async def test_session_past_expiry_is_refused(api: Api) -> None:
    _, token = await api.staff("compliance_officer")
    assert (await api.call("GET", "/api/auth/me", token=token))[0] == 200
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    async with api.services.db.write() as session:
        await session.execute(update(StaffSession).values(expires_at=past))
    status, body = await api.call("GET", "/api/auth/me", token=token)
    assert status == 401 and body["error"] == "bad_token"


async def test_logout_ends_the_session(api: Api) -> None:
    _, token = await api.staff("case_officer")
    assert (await api.call("POST", "/api/auth/logout", token=token))[0] == 204
    assert (await api.call("GET", "/api/auth/me", token=token))[0] == 401


async def test_disabled_staff_loses_sessions_and_cannot_sign_in(api: Api) -> None:
    _, admin = await api.staff("administrator")
    user_id, token = await api.staff("mediator", "mediator.sun")
    status, body = await api.call("POST", f"/api/staff/{user_id}/disable", token=admin)
    assert status == 200 and body["disabled"] is True
    assert (await api.call("GET", "/api/auth/me", token=token))[0] == 401
    status, _ = await api.call("POST", "/api/auth/login", json={"username": "mediator.sun", "password": STAFF_PASSWORD})
    assert status == 401


async def test_staff_duplicate_username_is_a_conflict(api: Api) -> None:
    _, admin = await api.staff("administrator")
    body = {"username": "clerk.li", "display_name": "Li", "role": "case_officer", "password": STAFF_PASSWORD}
    assert (await api.call("POST", "/api/staff", token=admin, json=body))[0] == 201
    status, error = await api.call("POST", "/api/staff", token=admin, json=body)
    assert status == 409 and error["field"] == "username"


async def test_cookie_write_from_foreign_origin_is_refused(api: Api) -> None:
    _, token = await api.staff("case_officer")
    status, body = await api.call("POST", "/api/applications", json={},
                                  headers={"Cookie": f"mediation_session={token}", "Origin": "https://evil.example"})
    assert status == 403 and body["error"] == "bad_origin"


async def test_malformed_tokens_are_refused_with_401(api: Api) -> None:
    for header in ("Bearer", "Basic abc", "Bearer stf_short", "Bearer " + "x" * 50, "Bearer jln_" + "A" * 43):
        status, body = await api.call("GET", "/api/auth/me", headers={"Authorization": header})
        assert status == 401 and body["error"] == "bad_token", header


async def test_password_is_stored_as_argon2id_hash(api: Api) -> None:
    user_id, _ = await api.staff("administrator")
    user = await api.services.accounts.user(user_id)
    assert user.password_hash.startswith("$argon2id$") and STAFF_PASSWORD not in user.password_hash


async def test_login_with_stale_session_cookie_still_signs_in(api: Api) -> None:
    _, token = await api.staff("case_officer", "officer.chen")
    await api.call("POST", "/api/auth/logout", token=token)
    status, body = await api.call("POST", "/api/auth/login", json={"username": "officer.chen",
                                                                  "password": STAFF_PASSWORD},
                                  headers={"Cookie": f"mediation_session={token}"})
    assert status == 200 and body["token"] != token
