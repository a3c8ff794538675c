"""Property-based fuzzing of every operation in the OpenAPI document, as every kind of caller.

A real server runs in a subprocess on a throwaway data directory (SQLite). The administrator is created
with the operator CLI before it starts; everyone else is created through the API. Schemathesis generates
requests from the document - valid and invalid bodies, path and query parameters, headers - and each
generated request is sent once per caller in ``CALLERS``, so that authorization does not hide the
validation behind it. Every response must be a non-5xx that the document describes: status code,
content type and body schema.

Random 128-bit ids almost always miss, so a second pass pins the path parameters to real ids of a case
in the state where the operation is legal: a fresh case per caller and operation, so that what one
test does to its case (closing it, cancelling its session) does not change what another one sees.
That pass sends only as the callers the document allows (``x-allowed-roles``); the others are turned
away before any id is looked at, which the first pass covers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import http.cookiejar
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.errors import FailureGroup

from server import __version__
from server.api import router
from server.routing import openapi_document
from tests.conftest import Api
from tests.support import walk
from tests.support.mailbox import MailboxThread
from tests.support.nodes import Node, create_admin, node_environment, start_nodes
from tests.support.services import free_port

PASSWORD = "a long enough password"
STAFF = ("case_officer", "mediator", "bank_representative", "compliance_officer", "administrator")
# The party grant two ways: the borrower's filing receipt, and a join link to a confirmed session.
PARTY_CALLERS = ("borrower", "link_holder")
CALLERS = ("anonymous", *PARTY_CALLERS, *STAFF)
GRANTS = {"anonymous": "anonymous", "borrower": "party", "link_holder": "party", **{role: role for role in STAFF}}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# Operations on a case still under review; every other case-scoped one gets a scheduled case.
UNDER_REVIEW = {"verify_party", "accept_case", "reject_case"}

# The document the server serves (test_openapi_document_served_is_the_one_fuzzed holds it to that).
DOCUMENT = openapi_document(router.endpoints, title="Mediation session server", version=__version__)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict({
    "seed": 20260301,
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
    "generation": {"mode": "all", "max-examples": 30, "deterministic": True, "database": "none"},
}))


def _operation_id(operation: schemathesis.APIOperation) -> str:
    return operation.definition.raw["operationId"]


def _allowed_callers(operation: schemathesis.APIOperation) -> tuple[str, ...]:
    roles = operation.definition.raw["x-allowed-roles"]
    return tuple(caller for caller in CALLERS if GRANTS[caller] in roles)


def _real_id_pass(context: Any) -> bool:
    return "{" in context.operation.path and bool(_allowed_callers(context.operation))


def _in_hours(hours: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)).isoformat()


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy:
    """A random start time is almost never within the coming year; make half the proposals so, to get past that."""
    if context.operation is None or _operation_id(context.operation) != "propose_session" or not isinstance(body, dict):
        return st.just(body)
    return st.one_of(st.just(body), st.integers(1, 360 * 24).map(lambda hours: {**body, "starts_at": _in_hours(hours)}))


def _application() -> dict[str, Any]:
    return {
        "borrower": {"name": "Li Wei", "email": "li.wei@example.cn"}, "lender": "Example Commercial Bank",
        "loan_reference": "LN-2026-0042", "currency": "CNY", "principal_minor": 12_000_000,
        "overdue_minor": 1_450_000, "days_overdue": 75,
    }


def _client() -> requests.Session:
    session = requests.Session()
    # Signing in sets a session cookie; a jar that kept it would authenticate the "anonymous" requests.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    # No proxy or netrc for a server on loopback (and looking them up on every request is slow).
    session.trust_env = False
    return session


def _readable(line: str) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    return f"{entry.get('level')} {entry.get('message')}\n{entry.get('traceback', '')}".rstrip()


@dataclasses.dataclass
class Server:
    """A ``python -m server`` subprocess and the JSON log it writes."""

    base_url: str
    log_path: Path
    mailbox: MailboxThread  # the parties' mail, where their one-time codes go
    client: requests.Session = dataclasses.field(default_factory=_client)

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.request(method, self.base_url + path, json=body, headers=headers, timeout=30)
        return response.status_code, response.json() if response.content else None

    def expect(self, status: int, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        got, answer = self.call(method, path, token, body)
        assert got == status, (method, path, got, answer)
        return answer

    def log_for(self, request_id: str) -> str:
        """The server's log entries for one request, tracebacks included."""
        lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if request_id in line]
        return "\n".join(_readable(line) for line in lines) if request_id else ""


@dataclasses.dataclass
class CaseIds:
    """Real ids to pin path parameters to, and the tokens of the case's borrower."""

    path: dict[str, str]
    party_tokens: dict[str, str]


@dataclasses.dataclass
class Cast:
    """A signed-in caller per role, a scheduled case for the parties, and cases built for the real-id pass."""

    server: Server
    usernames: dict[str, str]
    tokens: dict[str, str] = dataclasses.field(default_factory=dict)
    user_ids: dict[str, str] = dataclasses.field(default_factory=dict)
    home: CaseIds | None = None
    approver: str = ""  # the second administrator's token: approves the accounts the first creates
    _cases: dict[tuple[str, str], CaseIds] = dataclasses.field(default_factory=dict)

    def login(self, role: str) -> str:
        body = {"username": self.usernames[role], "password": PASSWORD}
        return self.server.expect(200, "POST", "/api/auth/login", body=body)["token"]

    def create_staff(self, role: str, username: str) -> str:
        user = self.server.expect(201, "POST", "/api/staff", self.tokens["administrator"], {
            "username": username, "display_name": username.title(), "role": role, "password": PASSWORD})
        if user["awaiting_approval"]:  # a second administrator, made apart by the operator, approves it
            self.server.expect(200, "POST", f"/api/staff/{user['user_id']}/approve", self.approver)
        return user["user_id"]

    def headers(self, caller: str, operation_id: str, case: CaseIds) -> dict[str, str]:
        if caller == "anonymous":
            return {}
        if caller in PARTY_CALLERS:
            assert self.home is not None
            token = case.party_tokens.get(caller) or self.home.party_tokens[caller]
        elif operation_id == "logout":
            token = self.login(caller)  # signing out ends the session: spend a fresh one
        else:
            token = self.tokens[caller]
        return {"Authorization": f"Bearer {token}"}

    def case_for(self, caller: str, operation_id: str) -> CaseIds:
        """The case whose ids ``caller`` fuzzes ``operation_id`` with, built on first use."""
        key = (caller, operation_id)
        if key not in self._cases:
            self._cases[key] = self.build_case(f"{caller}-{operation_id}".replace("_", "-"),
                                               scheduled=operation_id not in UNDER_REVIEW)
        return self._cases[key]

    def build_case(self, name: str, *, scheduled: bool) -> CaseIds:
        """A filed case; if ``scheduled``, with the cast's mediator and bank representative, a confirmed session
        and a join link for the borrower (the case walk of tests/support/walk.py)."""
        # user_id: someone the administrator may disable without disabling a caller.
        user_id = self.create_staff("mediator", name)
        return asyncio.run(self._walk(user_id, scheduled=scheduled))

    async def _walk(self, user_id: str, *, scheduled: bool) -> CaseIds:
        officer = self.tokens["case_officer"]
        async with aiohttp.ClientSession() as session:
            http = walk.Http(session, self.server.base_url)
            case = await walk.file_case(http, officer, _application())
            ids = {"case_id": case.case_id, "party_id": case.borrower_id, "user_id": user_id}
            if not scheduled:
                return CaseIds(path=ids, party_tokens={"borrower": case.receipt})
            await walk.verify_parties(http, case, officer)
            session_id, _ = await walk.schedule_session(
                http, case, officer, (self.user_ids["mediator"], self.tokens["mediator"]),
                (self.user_ids["bank_representative"], self.tokens["bank_representative"]), self.server.mailbox)
            link = await walk.issue_link(http, case, officer, case.borrower_id, session_id)
            # The link reaches the borrower only: read it in the borrower's case view, as the borrower does.
            link_token = await walk.received_link(http, case, link)
        ids.update(session_id=session_id, link_id=link["link_id"])
        return CaseIds(path=ids, party_tokens={"borrower": case.receipt, "link_holder": link_token})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    mailbox = MailboxThread().start()
    env = node_environment(MEDIATION_PORT=str(port), MEDIATION_DATA_DIR=str(root / "data"),
                           MEDIATION_LOGIN_ATTEMPTS_PER_MINUTE="100000", MEDIATION_APPLICATIONS_PER_MINUTE="100000",
                           # Fuzzed sign-ins fail by the hundred from one address; the cast must still sign in.
                           MEDIATION_LOGIN_PAIR_FREE_FAILURES="100000", MEDIATION_LOGIN_ADDRESS_FREE_FAILURES="100000",
                           MEDIATION_LOGIN_USERNAME_FREE_FAILURES="100000", **mailbox.environment())
    create_admin(env, "admin", PASSWORD)
    create_admin(env, "admin2", PASSWORD)
    node = Node(name="fuzz", port=port, env=env, log_path=root / "server.log")
    try:
        start_nodes([node])
        yield Server(base_url=node.base, log_path=node.log_path, mailbox=mailbox)
    finally:
        node.stop()
        mailbox.stop()


@pytest.fixture(scope="module")
def cast(server: Server) -> Cast:
    cast = Cast(server=server, usernames={"administrator": "admin"})
    cast.tokens["administrator"] = cast.login("administrator")
    cast.approver = cast.server.expect(200, "POST", "/api/auth/login",
                                       body={"username": "admin2", "password": PASSWORD})["token"]
    for role in STAFF:
        if role != "administrator":
            cast.usernames[role] = role.replace("_", "-")
            cast.user_ids[role] = cast.create_staff(role, cast.usernames[role])
            cast.tokens[role] = cast.login(role)
    cast.home = cast.build_case("home", scheduled=True)
    return cast


def _unexpected_method(case: schemathesis.Case) -> bool:
    # A method the path does not have is answered 405 before anyone is authenticated: one caller is enough.
    return case.method.upper() != case.operation.method.upper()


def _send(case: schemathesis.Case, server: Server, caller: str, headers: dict[str, str]) -> None:
    response = case.call(base_url=server.base_url, session=server.client, headers=headers, timeout=30)
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as exc:
        detail = f"Sent as caller {caller!r}."
        log = server.log_for(response.headers.get("x-request-id", [""])[0])
        if log:
            detail += f" The server logged:\n{log}"
        raise FailureGroup(list(exc.exceptions), f"{exc.message}\n{detail}\n") from None


def test_openapi_document_served_is_the_one_fuzzed(server: Server) -> None:
    status, served = server.call("GET", "/api/openapi.json")
    assert status == 200
    assert served == json.loads(json.dumps(DOCUMENT))


async def test_api_login_username_with_nul_answers_422_on_every_backend(api_on: Api) -> None:
    # PostgreSQL refuses NUL in text: unvalidated, the lookup failed with a 500 there (SQLite answered 401).
    status, body = await api_on.call("POST", "/api/auth/login", json={"username": "admin\x00", "password": "x"})
    assert status == 422 and body["field"] == "username", body


def test_api_body_nested_too_deep_answers_400_malformed_json(server: Server) -> None:
    nested = b"[" * 20_000 + b"]" * 20_000
    response = server.client.post(server.base_url + "/api/auth/login", data=nested,
                                  headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"


# The change stream never ends by itself, so a generated request would wait on it for its whole timeout:
# tests/server/test_changes.py and the authorization matrix test it instead.
FUZZED = schema.exclude(operation_id="change_events")


@FUZZED.parametrize()
def test_api_operation_fuzzed_as_every_caller_answers_as_documented(
    case: schemathesis.Case, cast: Cast, server: Server
) -> None:
    operation_id = _operation_id(case.operation)
    assert cast.home is not None
    for caller in CALLERS[:1] if _unexpected_method(case) else CALLERS:
        _send(case, server, caller, cast.headers(caller, operation_id, cast.home))


@FUZZED.include(_real_id_pass).parametrize()
def test_api_operation_on_real_case_fuzzed_as_allowed_callers_answers_as_documented(
    case: schemathesis.Case, cast: Cast, server: Server
) -> None:
    if _unexpected_method(case):
        return  # the first pass sends these
    operation_id = _operation_id(case.operation)
    for caller in _allowed_callers(case.operation):
        real = cast.case_for(caller, operation_id)
        # Parameters with no real counterpart here (a record_id, say) keep their generated value.
        generated = case.path_parameters or {}
        case.path_parameters = {name: real.path.get(name, value) for name, value in generated.items()}
        _send(case, server, caller, cast.headers(caller, operation_id, real))
