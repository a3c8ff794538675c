"""Property-based fuzzing of every operation in the OpenAPI document, once per kind of caller.

A real server runs in a subprocess on a throwaway data directory (SQLite). An administrator is created
with the operator CLI before it starts; everyone else is created through the API. Schemathesis then
generates requests from the document the server serves - valid and invalid bodies, path and query
parameters, headers - and sends each one as every caller in ``CALLERS``, so that authorization does
not hide the validation behind it. Every response must be a non-5xx that the document describes:
status code, content type and body schema.

Random 128-bit ids almost always miss, so a second pass pins the path parameters to real ids of a
case in the state where the operation is legal (a fresh one per caller and operation, so that the
order the items run in does not matter).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import checks

from server import __version__
from server.api import router
from server.routing import openapi_document
from tests.services import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
POLL_INTERVAL = 0.05
PASSWORD = "a long enough password"
STAFF = ("case_officer", "mediator", "bank_representative", "compliance_officer", "administrator")
# "borrower" holds a filing receipt: the party grant.
CALLERS = ("anonymous", "borrower", *STAFF)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# Operations that act on a case still under review; every other case-scoped one wants a scheduled case.
UNDER_REVIEW = {"verify_party", "accept_case", "reject_case"}

DOCUMENT = openapi_document(router.endpoints, title="Mediation session server", version=__version__)
CONFIG = schemathesis.Config.from_dict({
    "seed": 20260301,
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
    "generation": {"mode": "all", "max-examples": 30, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
})
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def _application() -> dict[str, Any]:
    return {
        "borrower": {"name": "Li Wei", "email": "li.wei@example.cn"}, "lender": "Example Commercial Bank",
        "loan_reference": "LN-2026-0042", "currency": "CNY", "principal_minor": 12_000_000,
        "overdue_minor": 1_450_000, "days_overdue": 75,
    }


@dataclasses.dataclass
class Server:
    """A ``python -m server`` subprocess and the JSON log it writes."""

    base_url: str
    log_path: Path
    http: requests.Session = dataclasses.field(default_factory=requests.Session)

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, self.base_url + path, json=body, headers=headers, timeout=30)
        return response.status_code, response.json() if response.content else None

    def expect(self, status: int, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        got, answer = self.call(method, path, token, body)
        assert got == status, (method, path, got, answer)
        return answer

    def log_for(self, request_id: str) -> str:
        """The server's log entries of one request, tracebacks included."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if request_id and request_id in line) or "(no log entries)"


@dataclasses.dataclass
class RealIds:
    """Real ids to pin an operation's path parameters to, and the borrower's receipt for that case."""

    path: dict[str, str]
    receipt: str


@dataclasses.dataclass
class Cast:
    """One signed-in caller per role, and cases built on demand for the real-id pass."""

    server: Server
    tokens: dict[str, str]
    user_ids: dict[str, str]
    _real: dict[tuple[str, str], RealIds] = dataclasses.field(default_factory=dict)

    def login(self, username: str) -> str:
        return self.server.expect(200, "POST", "/api/auth/login", body={"username": username,
                                                                        "password": PASSWORD})["token"]

    def staff(self, role: str, username: str) -> str:
        user = self.server.expect(201, "POST", "/api/staff", self.tokens["administrator"], {
            "username": username, "display_name": username.title(), "role": role, "password": PASSWORD})
        return user["user_id"]

    def headers(self, caller: str, operation_id: str, receipt: str | None = None) -> dict[str, str]:
        if caller == "anonymous":
            return {}
        if caller == "borrower":
            token = receipt or self.tokens["borrower"]
        elif operation_id == "logout":
            token = self.login(caller)  # signing out ends the session: spend a fresh one
        else:
            token = self.tokens[caller]
        return {"Authorization": f"Bearer {token}"}

    def real_ids(self, caller: str, operation_id: str) -> RealIds:
        key = (caller, operation_id)
        if key not in self._real:
            self._real[key] = self._build(f"{caller}-{operation_id}".replace("_", "-"), operation_id)
        return self._real[key]

    def _build(self, name: str, operation_id: str) -> RealIds:
        """A case with the cast's mediator and bank representative, walked as far as the operation needs."""
        officer, call = self.tokens["case_officer"], self.server.expect
        receipt = call(201, "POST", "/api/applications", body=_application())
        case_id = receipt["case_id"]
        parties = {p["role"]: p["party_id"] for p in call(200, "GET", f"/api/cases/{case_id}", officer)["parties"]}
        ids = {"case_id": case_id, "party_id": parties["borrower"], "user_id": self.staff("mediator", name[:60])}
        if operation_id in UNDER_REVIEW:
            return RealIds(path=ids, receipt=receipt["receipt_token"])
        for party_id in parties.values():
            call(200, "POST", f"/api/cases/{case_id}/parties/{party_id}/verify", officer,
                 {"method": "id_card", "reference": "checked at desk"})
        call(200, "POST", f"/api/cases/{case_id}/accept", officer)
        call(200, "PUT", f"/api/cases/{case_id}/assignments", officer,
             {"mediator_id": self.user_ids["mediator"], "bank_representative_id": self.user_ids["bank_representative"]})
        starts_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).isoformat()
        case = call(201, "POST", f"/api/cases/{case_id}/sessions", officer,
                    {"starts_at": starts_at, "duration_minutes": 60, "mode": "video"})
        session_id = case["sessions"][0]["session_id"]
        call(200, "POST", f"/api/cases/{case_id}/sessions/{session_id}/confirm", receipt["receipt_token"], {})
        call(200, "POST", f"/api/cases/{case_id}/sessions/{session_id}/confirm", self.tokens["bank_representative"],
             {})
        link = call(201, "POST", f"/api/cases/{case_id}/join-links", officer,
                    {"party_id": parties["borrower"], "session_id": session_id})
        ids.update(session_id=session_id, link_id=link["link_id"])
        return RealIds(path=ids, receipt=receipt["receipt_token"])


def _environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    env.update(
        MEDIATION_PORT=str(port), MEDIATION_DATA_DIR=str(data_dir), MEDIATION_PASSWORD_MEMORY_KIB="1024",
        MEDIATION_PASSWORD_TIME_COST="1", MEDIATION_LOGIN_ATTEMPTS_PER_MINUTE="100000",
        MEDIATION_APPLICATIONS_PER_MINUTE="100000",
    )
    return env


def _wait_until_healthy(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"server not healthy within {START_TIMEOUT} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz")
    env = _environment(root / "data", free_port())
    subprocess.run([sys.executable, "-m", "server.cli", "create-admin", "admin"], input=f"{PASSWORD}\n",
                   text=True, env=env, cwd=ROOT, check=True, capture_output=True, timeout=60)
    log_path = root / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "server"], env=env, cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
    base_url = f"http://{HOST}:{env['MEDIATION_PORT']}"
    try:
        _wait_until_healthy(process, base_url + "/healthz", log_path)
        yield Server(base_url=base_url, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cast(server: Server) -> Cast:
    cast = Cast(server=server, tokens={}, user_ids={})
    cast.tokens["administrator"] = cast.login("admin")
    for role in STAFF:
        if role != "administrator":
            cast.user_ids[role] = cast.staff(role, role.replace("_", "-"))
            cast.tokens[role] = cast.login(role.replace("_", "-"))
    cast.tokens["borrower"] = server.expect(201, "POST", "/api/applications", body=_application())["receipt_token"]
    return cast


def _send(case: schemathesis.Case, server: Server, headers: dict[str, str]) -> None:
    response = case.call(base_url=server.base_url, session=server.http, headers=headers, timeout=30)
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except BaseException as exc:
        exc.add_note("server log:\n" + server.log_for(response.headers.get("X-Request-Id", [""])[0]))
        raise


def test_openapi_document_served_is_the_one_fuzzed(server: Server) -> None:
    status, served = server.call("GET", "/api/openapi.json")
    assert status == 200
    assert json.loads(json.dumps(DOCUMENT)) == served


@schema.parametrize()
@pytest.mark.parametrize("caller", CALLERS)
def test_api_operation_fuzzed_by_each_caller_answers_as_documented(
    case: schemathesis.Case, caller: str, cast: Cast, server: Server
) -> None:
    _send(case, server, cast.headers(caller, case.operation.definition.raw["operationId"]))


@schema.include(path_regex=r"\{").parametrize()
@pytest.mark.parametrize("caller", CALLERS)
def test_api_operation_on_real_case_fuzzed_by_each_caller_answers_as_documented(
    case: schemathesis.Case, caller: str, cast: Cast, server: Server
) -> None:
    operation_id = case.operation.definition.raw["operationId"]
    real = cast.real_ids(caller, operation_id)
    case.path_parameters = {name: real.path[name] for name in case.path_parameters or {}}
    _send(case, server, cast.headers(caller, operation_id, receipt=real.receipt))
