"""Staff sign-in, sessions, cookies, rate limits and disabling accounts."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from server.api import router
from server.credentials import CredentialRefused
from server.models import AuditEntry, StaffSession
from server.signinthrottle import SignInThrottle
from server.tokens import new_token
from tests.conftest import STAFF_PASSWORD, Api, _serve, make_settings, walk_to_scheduled


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


async def test_login_repeated_failures_back_off_exponentially_even_for_the_right_password(api: Api) -> None:
    await api.staff("mediator", "mediator.qian")
    free = api.services.settings.login_pair_free_failures
    statuses = []
    for _ in range(free + 3):
        status, body = await api.call("POST", "/api/auth/login",
                                      json={"username": "mediator.qian", "password": "wrong"})
        statuses.append(status)
    # The failure after the free ones starts a back-off; attempts during it are refused unevaluated.
    assert statuses == [401] * (free + 1) + [429, 429]
    async with api.session.post(api.base + "/api/auth/login",
                                json={"username": "mediator.qian", "password": STAFF_PASSWORD}) as response:
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
        assert (await response.json())["error"] == "rate_limited"


def _client(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


@pytest.fixture
async def behind_proxy(tmp_path: Path) -> AsyncIterator[tuple[Api, list[float]]]:
    """A server that believes X-Forwarded-For from 127.0.0.1, with a sign-in throttle on a clock the test moves."""
    now = [1000.0]
    async for client in _serve(make_settings(tmp_path, trusted_proxies=("127.0.0.1/32",))):
        accounts = client.services.accounts
        accounts.throttle = SignInThrottle(accounts.throttle.policy, clock=lambda: now[0])
        yield client, now


async def _throttle_entries(api: Api) -> list[dict]:
    async with api.services.db.read() as session:
        rows = (await session.execute(select(AuditEntry).where(AuditEntry.action == "login_throttled")
                                      .order_by(AuditEntry.entry_id))).scalars().all()
    return [json.loads(row.detail) for row in rows]


async def test_throttle_attacker_slowed_doubling_yet_owner_from_another_address_signs_in(
        behind_proxy: tuple[Api, list[float]]) -> None:
    api, now = behind_proxy
    await api.services.accounts.create_staff(username="officer.zhou", display_name="Zhou", role="case_officer",
                                             password=STAFF_PASSWORD, actor="test:setup")
    policy = api.services.accounts.throttle.policy
    attacker, owner = _client("203.0.113.7"), _client("198.51.100.20")
    wrong = {"username": "officer.zhou", "password": "guess number one"}
    for _ in range(policy.pair_free_failures):
        assert (await api.call("POST", "/api/auth/login", json=wrong, headers=attacker))[0] == 401
    delays = []
    for _ in range(4):
        assert (await api.call("POST", "/api/auth/login", json=wrong, headers=attacker))[0] == 401
        async with api.session.post(api.base + "/api/auth/login", json=wrong, headers=attacker) as response:
            assert response.status == 429
            delays.append(int(response.headers["Retry-After"]))
        now[0] += delays[-1]  # the wait is over; the next guess is evaluated
    # Each failure past the free ones doubles the wait.
    assert delays == [1, 2, 4, 8], delays
    status, _ = await api.call("POST", "/api/auth/login", json=wrong, headers=attacker)
    assert status == 401
    status, _ = await api.call("POST", "/api/auth/login", json=wrong, headers=attacker)
    assert status == 429  # the attacker waits ...
    status, body = await api.call("POST", "/api/auth/login", headers=owner,
                                  json={"username": "officer.zhou", "password": STAFF_PASSWORD})
    assert status == 200, body  # ... the owner, elsewhere, does not


async def test_throttle_many_addresses_slow_a_username_but_not_the_owners_known_address(
        behind_proxy: tuple[Api, list[float]]) -> None:
    api, now = behind_proxy
    await api.services.accounts.create_staff(username="officer.wu", display_name="Wu", role="case_officer",
                                             password=STAFF_PASSWORD, actor="test:setup")
    good = {"username": "officer.wu", "password": STAFF_PASSWORD}
    assert (await api.call("POST", "/api/auth/login", json=good, headers=_client("198.51.100.30")))[0] == 200
    policy = api.services.accounts.throttle.policy
    for n in range(policy.username_free_failures + 1):
        status, _ = await api.call("POST", "/api/auth/login", json={**good, "password": "not the password"},
                                   headers=_client(f"203.0.113.{n + 1}"))
        assert status == 401
    # A new address now meets the username's back-off (capped low) ...
    status, body = await api.call("POST", "/api/auth/login", json=good, headers=_client("192.0.2.99"))
    assert status == 429 and "username" in body["message"]
    # ... the address the owner signed in from before does not.
    assert (await api.call("POST", "/api/auth/login", json=good, headers=_client("198.51.100.30")))[0] == 200
    scopes = [entry["scope"] for entry in await _throttle_entries(api)]
    assert scopes == ["username"], scopes


async def test_throttle_every_back_off_is_audited_with_refusals_counted(
        behind_proxy: tuple[Api, list[float]]) -> None:
    api, now = behind_proxy
    await api.services.accounts.create_staff(username="officer.he", display_name="He", role="case_officer",
                                             password=STAFF_PASSWORD, actor="test:setup")
    policy = api.services.accounts.throttle.policy
    attacker = _client("203.0.113.50")
    wrong = {"username": "officer.he", "password": "still not it at all"}
    for _ in range(policy.pair_free_failures + 1):
        assert (await api.call("POST", "/api/auth/login", json=wrong, headers=attacker))[0] == 401
    for _ in range(3):
        assert (await api.call("POST", "/api/auth/login", json=wrong, headers=attacker))[0] == 429
    now[0] += 1.5
    assert (await api.call("POST", "/api/auth/login", json=wrong, headers=attacker))[0] == 401
    entries = await _throttle_entries(api)
    assert [(e["scope"], e["failures"], e["delay_seconds"], e["refused_during_previous_block"]) for e in entries] == [
        ("pair", policy.pair_free_failures + 1, 1.0, 0),
        ("pair", policy.pair_free_failures + 2, 2.0, 3),
    ]
    assert all(e["address"] == "203.0.113.50" and e["username"] == "officer.he" for e in entries)
    assert all("still not it" not in json.dumps(e) for e in entries)


async def test_password_change_wrong_current_refused_and_throttled(behind_proxy: tuple[Api, list[float]]) -> None:
    api, _ = behind_proxy
    _, token = await api.staff("mediator", "mediator.feng")
    statuses = []
    for _ in range(api.services.accounts.throttle.policy.pair_free_failures + 2):
        status, body = await api.call("POST", "/api/auth/password", token=token,
                                      json={"current_password": "wrong wrong wrong",
                                            "new_password": "a fresh passphrase"})
        statuses.append(status)
    assert statuses[0] == 401 and statuses[-1] == 429, statuses


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
    status, second = await api.call("POST", "/api/auth/login", json={"username": "mediator.sun",
                                                                     "password": STAFF_PASSWORD})
    assert status == 200
    status, body = await api.call("POST", f"/api/staff/{user_id}/disable", token=admin)
    assert status == 200 and body["disabled"] is True
    assert (await api.call("GET", "/api/auth/me", token=token))[0] == 401
    assert (await api.call("GET", "/api/auth/me", token=second["token"]))[0] == 401
    status, _ = await api.call("POST", "/api/auth/login", json={"username": "mediator.sun", "password": STAFF_PASSWORD})
    assert status == 401
    async with api.services.db.read() as session:
        rows = (await session.execute(select(StaffSession).where(StaffSession.user_id == user_id))).scalars().all()
    assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)
    for stale in (token, second["token"]):
        with pytest.raises(CredentialRefused):
            await api.services.credentials.resolve(stale)


async def test_password_change_revokes_every_session_and_the_new_password_signs_in(api: Api) -> None:
    user_id, token = await api.staff("case_officer", "officer.lin")
    status, other = await api.call("POST", "/api/auth/login", json={"username": "officer.lin",
                                                                    "password": STAFF_PASSWORD})
    assert status == 200
    new = "plum blossoms in late winter"
    status, body = await api.call("POST", "/api/auth/password", token=token,
                                  json={"current_password": STAFF_PASSWORD, "new_password": new})
    assert status == 200, body
    assert body["token"] not in (token, other["token"]) and body["user"]["user_id"] == user_id
    for stale in (token, other["token"]):
        status, error = await api.call("GET", "/api/auth/me", token=stale)
        assert status == 401 and error["error"] == "bad_token"
    assert (await api.call("GET", "/api/auth/me", token=body["token"]))[0] == 200
    status, _ = await api.call("POST", "/api/auth/login", json={"username": "officer.lin", "password": STAFF_PASSWORD})
    assert status == 401
    status, _ = await api.call("POST", "/api/auth/login", json={"username": "officer.lin", "password": new})
    assert status == 200
    await api.services.audit.sequence()
    async with api.services.db.read() as session:
        (entry,) = (await session.execute(select(AuditEntry).where(AuditEntry.action == "password_changed"))).scalars()
    assert json.loads(entry.detail) == {"user_id": user_id, "sessions_revoked": 2}
    assert new not in entry.detail


async def test_password_change_weak_new_password_refused_and_sessions_kept(api: Api) -> None:
    _, token = await api.staff("case_officer")
    for weak, words in (("short one", "at least 12"), ("Password2024!", "common passwords"),
                        ("zzzzzzzzzzzz", "repeated or consecutive"), ("mnopqrstuvwx", "repeated or consecutive"), (STAFF_PASSWORD, "current one")):
        status, body = await api.call("POST", "/api/auth/password", token=token,
                                      json={"current_password": STAFF_PASSWORD, "new_password": weak})
        assert status == 422 and body["field"] == "new_password" and words in body["message"], body
    assert (await api.call("GET", "/api/auth/me", token=token))[0] == 200


async def test_staff_create_blocklisted_password_refused_with_clear_error(api: Api) -> None:
    _, admin = await api.staff("administrator")
    body = {"username": "clerk.ma", "display_name": "Ma", "role": "case_officer", "password": "qwertyuiop123"}
    status, error = await api.call("POST", "/api/staff", token=admin, json=body)
    assert status == 422 and error["error"] == "weak_password" and error["field"] == "password"
    assert "common passwords" in error["message"]


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


def test_create_admin_command_applies_the_password_policy(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIATION_DATA_DIR": str(tmp_path / "data"),
           "MEDIATION_PASSWORD_MEMORY_KIB": "1024", "MEDIATION_PASSWORD_TIME_COST": "1"}
    for weak, words in (("password1234\n", "common passwords"), ("root-is-my-password\n", "your username")):
        refused = subprocess.run([sys.executable, "-m", "server.cli", "create-admin", "root"], input=weak, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
    made = subprocess.run([sys.executable, "-m", "server.cli", "create-admin", "root"], input="a long enough password\n",
                          env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr


# --- two-person control of accounts that read case text or enter rooms -------------------------------------

async def _create(api: Api, admin: str, username: str, role: str) -> dict:
    status, made = await api.call("POST", "/api/staff", token=admin, json={
        "username": username, "display_name": username.title(), "role": role, "password": STAFF_PASSWORD})
    assert status == 201, made
    return made


async def _actions(api: Api, action: str) -> list[tuple[str, dict]]:
    async with api.services.db.read() as session:
        rows = (await session.execute(select(AuditEntry.actor, AuditEntry.detail)
                                      .where(AuditEntry.action == action).order_by(AuditEntry.entry_id))).all()
    return [(actor, json.loads(detail)) for actor, detail in rows]


async def test_staff_every_case_reading_role_waits_for_a_second_administrator_and_cannot_sign_in(api: Api) -> None:
    _, admin = await api.staff("administrator")
    for role in ("case_officer", "mediator", "bank_representative", "compliance_officer"):
        made = await _create(api, admin, f"new.{role.replace('_', '-')}", role)
        assert made["awaiting_approval"] and made["approved_by"] is None, made
        status, body = await api.call("POST", "/api/auth/login", json={"username": made["username"],
                                                                        "password": STAFF_PASSWORD})
        assert status == 403 and body["error"] == "awaiting_approval", body
        # A wrong password is refused as any other (awaiting approval is told only to the password's holder).
        status, body = await api.call("POST", "/api/auth/login", json={"username": made["username"],
                                                                        "password": "not the password at all"})
        assert status == 401 and body["error"] == "bad_credentials"
    # An administrator account needs no approval: it reads no case, and it counts as its creator when
    # two people are needed.
    assert not (await _create(api, admin, "new.admin", "administrator"))["awaiting_approval"]
    created = [detail for _, detail in await _actions(api, "staff_created")]
    assert [d["awaiting_approval"] for d in created if d["username"].startswith("new.")] == [True] * 4 + [False]
    refused = [detail for _, detail in await _actions(api, "login_refused")]
    assert len(refused) == 4 and {d["reason"] for d in refused} == {"awaiting_approval"}


async def test_staff_administrator_alone_cannot_make_itself_a_case_officer(api: Api) -> None:
    admin_id, admin = await api.staff("administrator")
    officer = await _create(api, admin, "shadow.clerk", "case_officer")
    # Its own approval, and approvals by administrator accounts it created (directly or through another), fail.
    status, body = await api.call("POST", f"/api/staff/{officer['user_id']}/approve", token=admin)
    assert status == 403 and body["error"] == "own_request", body
    await _create(api, admin, "puppet.one", "administrator")
    _, puppet = await api.http.request("POST", "/api/auth/login",
                                       json_body={"username": "puppet.one", "password": STAFF_PASSWORD})
    await _create(api, puppet["token"], "puppet.two", "administrator")
    _, second = await api.http.request("POST", "/api/auth/login",
                                       json_body={"username": "puppet.two", "password": STAFF_PASSWORD})
    for token in (puppet["token"], second["token"]):
        status, body = await api.call("POST", f"/api/staff/{officer['user_id']}/approve", token=token)
        assert status == 403 and body["error"] == "same_person", body
    # Nor does an account made by the puppet escape: the puppet's other administrator is still the same person.
    mediator = await _create(api, second["token"], "shadow.mediator", "mediator")
    status, body = await api.call("POST", f"/api/staff/{mediator['user_id']}/approve", token=admin)
    assert status == 403 and body["error"] == "same_person", body
    # A pending account cannot be assigned to a case, and no session of it is honoured, even one written
    # into the database by hand.
    journey = await walk_to_scheduled(api)
    status, body = await api.call("PUT", f"/api/cases/{journey.case_id}/assignments", token=journey.officer,
                                  json={"mediator_id": mediator["user_id"]})
    assert status == 422 and body["field"] == "mediator_id", body
    token, token_hash = new_token("stf")
    now = dt.datetime.now(dt.timezone.utc)
    async with api.services.db.write() as session:
        session.add(StaffSession(token_hash=token_hash, user_id=officer["user_id"], created_at=now,
                                 expires_at=now + dt.timedelta(hours=1)))
    status, body = await api.call("GET", "/api/cases", token=token)
    assert status == 401 and body["error"] == "bad_token", body
    status, body = await api.call("POST", "/api/auth/login", json={"username": "shadow.clerk",
                                                                    "password": STAFF_PASSWORD})
    assert status == 403 and body["error"] == "awaiting_approval"
    # Still pending; the administrator's own account reads no case either.
    (listed,) = [u for u in (await api.call("GET", "/api/staff", token=admin))[1]["staff"]
                 if u["user_id"] == officer["user_id"]]
    assert listed["awaiting_approval"] and listed["created_by"] == admin_id
    assert (await api.call("GET", "/api/cases", token=admin))[0] == 403


async def test_staff_second_administrator_approves_then_the_account_works_and_each_step_is_audited(
        api: Api) -> None:
    first_id, first = await api.staff("administrator")
    second_id, second = await api.staff("administrator")  # made by the operator: another person
    officer = await _create(api, first, "clerk.zhang", "case_officer")
    status, approved = await api.call("POST", f"/api/staff/{officer['user_id']}/approve", token=second)
    assert status == 200 and not approved["awaiting_approval"] and approved["approved_by"] == second_id, approved
    status, login = await api.call("POST", "/api/auth/login", json={"username": "clerk.zhang",
                                                                     "password": STAFF_PASSWORD})
    assert status == 200, login
    assert (await api.call("GET", "/api/cases", token=login["token"]))[0] == 200
    status, body = await api.call("POST", f"/api/staff/{officer['user_id']}/approve", token=second)
    assert status == 409 and body["error"] == "not_pending" and body["state"] == "active", body
    status, body = await api.call("POST", "/api/staff/usr_0123456789abcdef0123456789abcdef/approve", token=second)
    assert status == 404, body
    ((actor, detail),) = await _actions(api, "staff_approved")
    assert actor == f"administrator:{second_id}"
    assert detail == {"user_id": officer["user_id"], "username": "clerk.zhang", "role": "case_officer",
                      "created_by": first_id}
    assert [d for a, d in await _actions(api, "staff_created") if d["username"] == "clerk.zhang"] == [
        {"user_id": officer["user_id"], "username": "clerk.zhang", "role": "case_officer", "awaiting_approval": True}]


async def test_staff_disabling_an_account_awaiting_approval_refuses_it_for_good(api: Api) -> None:
    _, first = await api.staff("administrator")
    _, second = await api.staff("administrator")
    made = await _create(api, first, "mediator.refused", "mediator")
    status, body = await api.call("POST", f"/api/staff/{made['user_id']}/disable", token=second)
    assert status == 200 and body["disabled"] and not body["awaiting_approval"], body
    status, body = await api.call("POST", f"/api/staff/{made['user_id']}/approve", token=second)
    assert status == 409 and body["error"] == "not_pending" and body["state"] == "disabled", body
    status, body = await api.call("POST", "/api/auth/login", json={"username": "mediator.refused",
                                                                    "password": STAFF_PASSWORD})
    assert status == 401 and body["error"] == "bad_credentials"
    (detail,) = [d for _, d in await _actions(api, "staff_disabled") if d["user_id"] == made["user_id"]]
    assert detail["was_awaiting_approval"] is True


def test_staff_no_route_sets_another_accounts_password_role_or_enables_it() -> None:
    """An administrator cannot take an account over: no route resets another's password, changes a role or
    re-enables a disabled account (a new role or a return is a new account, under the approval above)."""
    staff_routes = {(e.method, e.path) for e in router.endpoints if e.path.startswith("/api/staff/{user_id}")}
    assert staff_routes == {("POST", "/api/staff/{user_id}/disable"), ("POST", "/api/staff/{user_id}/approve")}
    for endpoint in router.endpoints:
        fields = set(endpoint.body.model_fields) if endpoint.body is not None else set()
        if any("password" in field for field in fields):
            assert (endpoint.method, endpoint.path) in {("POST", "/api/auth/login"), ("POST", "/api/staff"),
                                                        ("POST", "/api/auth/password")}, endpoint.path
        if "role" in fields or "disabled" in fields:
            assert (endpoint.method, endpoint.path) == ("POST", "/api/staff"), endpoint.path
    # The password route changes the caller's own password: its body names no account.
    (change,) = [e for e in router.endpoints if e.path == "/api/auth/password"]
    assert change.body is not None and set(change.body.model_fields) == {"current_password", "new_password"}
