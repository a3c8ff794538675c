"""The whole authorization matrix: every endpoint, called by every kind of caller, on its own and another case.

The expected outcome of each cell is written here by hand from the product's intent (who may do what, and
which cases each caller reaches); it is deliberately not read from the ``allow=`` sets in ``server/api.py``.
Every route registered in ``server.api.router`` must have an entry, so a new route without a decision fails.

"allow" means the call passes authorization and, since every allowed cell gets a valid body and a case in a
state where the action is legal, succeeds with a 2xx. "deny" means exactly 401 for an anonymous caller and
exactly 403 for an authenticated one, each with a JSON error body.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pyrage
import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from recording.records.kinds import RecordKind
from server.agreements import b64url
from server.api import router
from server.models import JoinLink, StaffUser
from server.roomaccess import RoomAccess
from server.schemas import SignatureIn
from signaling.identity import Refused
from signaling.requests import REQUESTS as ROOM_REQUESTS
from tests.conftest import STAFF_PASSWORD, Api, application, future
from tests.support import walk
from tests.support.mailbox import link_token

Route = tuple[str, str]

# --- the intended matrix ----------------------------------------------------------------------

ANONYMOUS = "anonymous"
PARTY = "party"
CASE_OFFICER = "case_officer"
MEDIATOR = "mediator"
BANK = "bank_representative"
COMPLIANCE = "compliance_officer"
ADMIN = "administrator"
STAFF = (CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, ADMIN)

# The callers of the matrix. The two party callers belong to the "own" case: one holds the borrower's
# receipt, the other a join link issued for the borrower. The mediator and bank representative are the ones
# assigned to the "own" case; the "other" case has different parties, mediator and bank representative.
RECEIPT = "receipt"
JOIN_LINK = "join_link"
PRINCIPALS = (ANONYMOUS, RECEIPT, JOIN_LINK, *STAFF)
GRANT = {ANONYMOUS: ANONYMOUS, RECEIPT: PARTY, JOIN_LINK: PARTY, **{role: role for role in STAFF}}

OWN, OTHER = "own", "other"
EVERYONE = frozenset({ANONYMOUS, PARTY, *STAFF})
RECORDER = "recorder"  # a grant held only by the recording worker; not a principal of this matrix

# (method, path) -> the grants that may call it. Case routes are further limited by ``reaches_case``.
EXPECTED: dict[Route, frozenset[str]] = {
    # operations, sign-in and applications: open to everyone, signed in or not
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    ("GET", "/metrics"): EVERYONE,
    ("GET", "/api/openapi.json"): EVERYONE,
    ("POST", "/api/auth/login"): EVERYONE,
    ("GET", "/api/auth/session"): EVERYONE,  # "signed in?" is answered for everyone, never with a 401
    ("POST", "/api/applications"): EVERYONE,
    # audit: compliance officers and administrators read the checkpoint
    ("GET", "/api/audit/checkpoint"): frozenset({COMPLIANCE, ADMIN}),
    ("GET", "/api/audit/checkpoints"): frozenset({COMPLIANCE, ADMIN}),
    ("GET", "/api/audit/consistency"): frozenset({COMPLIANCE, ADMIN}),
    # accounts: any staff signs out; everyone signed in may ask who they are
    ("POST", "/api/auth/logout"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, ADMIN}),
    ("GET", "/api/auth/me"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, ADMIN, PARTY}),
    # staff management: administrators; case officers may list staff to assign people
    ("GET", "/api/staff"): frozenset({ADMIN, CASE_OFFICER}),
    ("POST", "/api/staff"): frozenset({ADMIN}),
    ("POST", "/api/staff/{user_id}/disable"): frozenset({ADMIN}),
    # an account one administrator made for a role that reads cases waits for a second one (test_accounts.py)
    ("POST", "/api/staff/{user_id}/approve"): frozenset({ADMIN}),
    # every staff member changes their own password
    ("POST", "/api/auth/password"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, ADMIN}),
    # a party's own view
    ("GET", "/api/party/case"): frozenset({PARTY}),
    # the live change feed: whoever reads cases (a party its own); what each event names is filtered per caller
    ("GET", "/api/events"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, PARTY}),
    # reading cases: everyone working cases, never administrators
    ("GET", "/api/cases"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE}),
    ("GET", "/api/cases/{case_id}"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE}),
    # review: case officers only
    ("POST", "/api/cases/{case_id}/parties/{party_id}/verify"): frozenset({CASE_OFFICER}),
    ("POST", "/api/cases/{case_id}/accept"): frozenset({CASE_OFFICER}),
    ("POST", "/api/cases/{case_id}/reject"): frozenset({CASE_OFFICER}),
    ("PUT", "/api/cases/{case_id}/assignments"): frozenset({CASE_OFFICER}),
    # scheduling: case officers and mediators propose and cancel; parties and the bank confirm
    ("POST", "/api/cases/{case_id}/sessions"): frozenset({CASE_OFFICER, MEDIATOR}),
    ("POST", "/api/cases/{case_id}/sessions/{session_id}/confirm"): frozenset({PARTY, BANK}),
    ("POST", "/api/cases/{case_id}/sessions/{session_id}/cancel"): frozenset({CASE_OFFICER, MEDIATOR}),
    # join links: case officers and mediators issue, list and revoke
    ("POST", "/api/cases/{case_id}/join-links"): frozenset({CASE_OFFICER, MEDIATOR}),
    ("GET", "/api/cases/{case_id}/join-links"): frozenset({CASE_OFFICER, MEDIATOR}),
    ("DELETE", "/api/cases/{case_id}/join-links/{link_id}"): frozenset({CASE_OFFICER, MEDIATOR}),
    ("POST", "/api/cases/{case_id}/join-links/{link_id}/retry"): frozenset({CASE_OFFICER, MEDIATOR}),
    # the borrower's receipt: case officers read its state and revoke it (never see it)
    ("GET", "/api/cases/{case_id}/receipt"): frozenset({CASE_OFFICER}),
    ("POST", "/api/cases/{case_id}/receipt/revoke"): frozenset({CASE_OFFICER}),
    # closing: case officers and mediators
    ("POST", "/api/cases/{case_id}/close"): frozenset({CASE_OFFICER, MEDIATOR}),
    # sealed records: only compliance officers register keys, list, and download (every case)
    ("PUT", "/api/staff/me/recipient"): frozenset({COMPLIANCE}),
    # compliance keys under two-person control: officers and administrators see the proposals and
    # reject; approving falls to an officer in force once one is (as in this matrix), so an
    # administrator is refused there (test_recipients.py covers the first officer's two administrators)
    ("GET", "/api/compliance/keys"): frozenset({COMPLIANCE, ADMIN}),
    ("POST", "/api/compliance/keys/{proposal_id}/approve"): frozenset({COMPLIANCE}),
    ("POST", "/api/compliance/keys/{proposal_id}/reject"): frozenset({COMPLIANCE, ADMIN}),
    # the signed recipient statement: anyone signed in checks what records are sealed to
    ("GET", "/api/compliance/recipients"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, ADMIN, PARTY}),
    ("GET", "/api/cases/{case_id}/records"): frozenset({COMPLIANCE}),
    ("GET", "/api/cases/{case_id}/records/manifest"): frozenset({COMPLIANCE}),
    ("GET", "/api/cases/{case_id}/records/{record_id}"): frozenset({COMPLIANCE}),
    # recording segments: only a running recorder worker, which no person holds (tests/recording)
    ("POST", "/api/recordings/{session_id}/segments"): frozenset({RECORDER}),
    # agreements: everyone on the case reads; the mediator drafts; each side signs
    ("GET", "/api/cases/{case_id}/agreement"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, PARTY}),
    ("GET", "/api/cases/{case_id}/agreement/signed"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, PARTY}),
    ("GET", "/api/cases/{case_id}/agreement/signed.pdf"): frozenset({CASE_OFFICER, MEDIATOR, BANK, COMPLIANCE, PARTY}),
    ("PUT", "/api/cases/{case_id}/agreement"): frozenset({MEDIATOR}),
    ("POST", "/api/cases/{case_id}/agreement/signatures"): frozenset({PARTY, BANK}),
    # the possession factor: only the party side (the bank representative for the lender) reads its own
    # contacts and devices, asks for a code to its verified contact, enrols a device, asks for a challenge;
    # the staff desk never (tests/server/test_possession.py tries each act as each staff role)
    ("GET", "/api/cases/{case_id}/possession"): frozenset({PARTY, BANK}),
    ("POST", "/api/cases/{case_id}/possession/codes"): frozenset({PARTY, BANK}),
    ("POST", "/api/cases/{case_id}/possession/enrolments"): frozenset({PARTY, BANK}),
    ("POST", "/api/cases/{case_id}/possession/challenges"): frozenset({PARTY, BANK}),
    # case recovery: open to everyone (the code goes only to the borrower's verified contact)
    ("POST", "/api/recovery/codes"): EVERYONE,
    ("POST", "/api/recovery/receipts"): EVERYONE,
    # feedback: the parties (the bank representative for the lender) give it; case officers read aggregates
    ("POST", "/api/cases/{case_id}/feedback"): frozenset({PARTY, BANK}),
    ("GET", "/api/feedback/summary"): frozenset({CASE_OFFICER}),
}


def reaches_case(principal: str, scope: str) -> bool:
    """Case membership as intended: who may touch the "own" case and the "other" one."""
    if principal in (CASE_OFFICER, COMPLIANCE):
        return True  # their reach covers every case
    if principal in (MEDIATOR, BANK):
        return scope == OWN  # only the case they are assigned to
    if principal in (RECEIPT, JOIN_LINK):
        return scope == OWN  # a party sees only its own case
    return False  # administrators manage accounts, not cases; anonymous callers reach nothing


def is_case_route(route: Route) -> bool:
    return "{case_id}" in route[1]


# Routes that act only on a closed case, where closing has revoked every join link: a link holder
# can never reach them (tests/server/test_cases.py shows closing revokes links), so no cell is checked.
CLOSED_CASE_ROUTES = {("POST", "/api/cases/{case_id}/feedback")}

# Routes whose cell acts on a session other than the one the join link was issued for (the case's second,
# pending session): a join link acts only on its own session, so its holder is refused (403 other_session).
OTHER_SESSION_ROUTES = {("POST", "/api/cases/{case_id}/sessions/{session_id}/confirm")}


def expected_allow(route: Route, principal: str, scope: str | None) -> bool:
    if GRANT[principal] not in EXPECTED[route]:
        return False
    if principal == JOIN_LINK and route in OTHER_SESSION_ROUTES:
        return False
    return scope is None or reaches_case(principal, scope)


REGISTERED: list[Route] = [(endpoint.method, endpoint.path) for endpoint in router.endpoints]

# --- the world each route is called in ---------------------------------------------------------

# The stage a fresh case must reach before an allowed cell may act on it (the action is legal there).
# Routes not listed only read, so every cell shares the two standing cases.
FRESH_STAGE: dict[Route, str] = {
    ("POST", "/api/cases/{case_id}/parties/{party_id}/verify"): "submitted",
    ("POST", "/api/cases/{case_id}/accept"): "verified",
    ("POST", "/api/cases/{case_id}/reject"): "submitted",
    ("PUT", "/api/cases/{case_id}/assignments"): "scheduled",
    ("POST", "/api/cases/{case_id}/sessions"): "scheduled",
    ("POST", "/api/cases/{case_id}/sessions/{session_id}/confirm"): "scheduled",
    ("POST", "/api/cases/{case_id}/sessions/{session_id}/cancel"): "scheduled",
    ("POST", "/api/cases/{case_id}/join-links"): "scheduled",
    ("DELETE", "/api/cases/{case_id}/join-links/{link_id}"): "scheduled",
    ("POST", "/api/cases/{case_id}/join-links/{link_id}/retry"): "scheduled",
    ("POST", "/api/cases/{case_id}/receipt/revoke"): "submitted",
    ("POST", "/api/cases/{case_id}/close"): "scheduled",
    ("PUT", "/api/cases/{case_id}/agreement"): "drafted",
    ("POST", "/api/cases/{case_id}/agreement/signatures"): "drafted",
    ("POST", "/api/cases/{case_id}/feedback"): "closed",
    ("POST", "/api/recovery/receipts"): "verified",
}

_names = itertools.count()
RECIPIENT_KEY = str(pyrage.x25519.Identity.generate().to_public())
AGREEMENT = {
    "currency": "CNY", "settled_amount_minor": 600_000, "waived_penalties_minor": 50_000,
    "instalments": [{"due_date": (dt.date.today() + dt.timedelta(days=30 * n)).isoformat(), "amount_minor": 300_000}
                    for n in (1, 2)],
    "terms": "Two instalments.",
}


def _signature(document: dict, device: walk.Device | None = None) -> dict:
    """A signature of ``document`` by ``device`` (the caller's enrolled one), or by a stray key."""
    key = device.key if device is not None else Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"version": document.get("version", 1), "public_key": b64url(public),
            "signature": b64url(key.sign(rfc8785.dumps(document)))}


async def _expect(api: Api, status: int, method: str, path: str, *, token: str | None = None,
                  json: Any = None) -> Any:
    got, body = await api.call(method, path, token=token, json=json)
    assert got == status, f"setup {method} {path}: expected {status}, got {got}: {body}"
    return body


async def _delivered_token(api: Api, receipt: str, link_id: str) -> str:
    """A borrower's join link as the borrower reads it: in its case view, opened with its receipt."""
    view = await _expect(api, 200, "GET", "/api/party/case", token=receipt)
    (notice,) = [n for n in view["notices"] if n["link_id"] == link_id]
    return link_token(notice["link"])


@dataclasses.dataclass
class CaseWorld:
    """One case and the handles a caller needs to act on it."""

    case_id: str
    receipt: str
    borrower_id: str
    lender_id: str
    mediator_id: str | None = None
    bank_id: str | None = None
    session_id: str | None = None  # confirmed by both parties
    pending_session_id: str | None = None  # proposed, confirmed by nobody yet
    link_token: str | None = None  # the borrower's join link for session_id
    lender_link_id: str | None = None  # the lender's join link for session_id
    record_id: str | None = None  # a sealed record filed on the case
    agreement: dict | None = None  # the current agreement document
    lender_email: str = ""  # the lender's verified contact, where its codes go
    devices: dict[str, walk.Device] = dataclasses.field(default_factory=dict)  # "borrower", "bank": enrolled


@dataclasses.dataclass
class Desk:
    """The staff of one server and the two standing cases: "own" (the matrix's parties and assigned staff)
    and "other" (its own parties, a different mediator and bank representative)."""

    api: Api
    users: dict[str, tuple[str, str]]  # role or "<role>@other" -> (user_id, token)
    login_username: str
    own: CaseWorld | None = None
    other: CaseWorld | None = None
    caller: str = ""  # the principal of the cell being prepared: a party act's proof is the caller's own

    @classmethod
    async def open(cls, api: Api) -> Desk:
        users = {role: await api.staff(role) for role in STAFF}
        users[f"{MEDIATOR}@{OTHER}"] = await api.staff(MEDIATOR)
        users[f"{BANK}@{OTHER}"] = await api.staff(BANK)
        login_username = f"sign-in-{next(_names)}"
        await api.services.accounts.create_staff(username=login_username, display_name="Sign In",
                                                 role=MEDIATOR, password=STAFF_PASSWORD, actor="test:setup")
        desk = cls(api=api, users=users, login_username=login_username)
        # A compliance key, so that the case's records can be sealed to someone.
        await api.approve_key(users[COMPLIANCE][1], RECIPIENT_KEY)
        desk.own = await desk.new_case("scheduled", OWN)
        desk.other = await desk.new_case("scheduled", OTHER)
        return desk

    def token(self, role: str) -> str:
        return self.users[role][1]

    def side(self, role: str, scope: str) -> tuple[str, str]:
        return self.users[role if scope == OWN else f"{role}@{OTHER}"]

    async def new_case(self, stage: str, scope: str) -> CaseWorld:
        """A fresh case walked to ``stage`` (tests/support/walk.py): "submitted", "verified", or "scheduled",
        "drafted" and "closed", which are assigned to the ``scope`` side's mediator and bank representative,
        have one confirmed session with a join link for each party, a second session proposed and not yet
        confirmed, an agreement (signed by both sides when "scheduled") and a sealed record."""
        http, officer = self.api.http, self.token(CASE_OFFICER)
        filed = await walk.file_case(http, officer)
        world = CaseWorld(case_id=filed.case_id, receipt=filed.receipt, borrower_id=filed.borrower_id,
                          lender_id=filed.lender_id)
        if stage == "submitted":
            return world
        await walk.verify_parties(http, filed, officer)
        world.lender_email = filed.lender_email
        if stage == "verified":
            return world
        assert stage in ("scheduled", "drafted", "closed"), stage
        mediator, bank = self.side(MEDIATOR, scope), self.side(BANK, scope)
        (world.mediator_id, mediator_token), (world.bank_id, bank_token) = mediator, bank
        assert self.api.mailbox is not None
        world.session_id, world.devices = await walk.schedule_session(http, filed, officer, mediator, bank,
                                                                      self.api.mailbox)
        link = await walk.issue_link(http, filed, mediator_token, world.borrower_id, world.session_id)
        world.link_token = await walk.received_link(http, filed, link)
        link = await walk.issue_link(http, filed, mediator_token, world.lender_id, world.session_id)
        world.lender_link_id = link["link_id"]
        body = await http.call("POST", f"{filed.path}/sessions", token=mediator_token, expect=201,
                               json_body={"starts_at": future(72), "duration_minutes": 45, "mode": "chat"})
        (pending,) = [s["session_id"] for s in body["sessions"] if s["session_id"] != world.session_id]
        world.pending_session_id = pending
        world.agreement = await walk.draft_agreement(http, filed, mediator_token, AGREEMENT)
        if stage == "scheduled":
            # The standing cases have a signed agreement; "drafted" ones wait for signatures.
            for token, who in ((world.receipt, "borrower"), (bank_token, "bank")):
                await _expect(self.api, 201, "POST", f"{filed.path}/agreement/signatures", token=token,
                              json=_signature(world.agreement, world.devices[who]))
        record = await self.api.services.records.seal_and_file(
            b'{"test": true}', actor="test:setup", kind=RecordKind.CONSENT, case_id=world.case_id,
            session_id=world.session_id, participant_id=world.borrower_id, index=0)
        assert record is not None
        world.record_id = record.record_id
        if stage == "closed":
            await walk.close_case(http, filed, mediator_token)
        return world

    async def awaiting(self) -> str:
        """A mediator account awaiting a second administrator's approval, made apart from the matrix's one."""
        user = await self.api.services.accounts.create_staff(
            username=f"awaiting-{next(_names)}", display_name="Awaiting", role=MEDIATOR, password=STAFF_PASSWORD,
            actor="test:setup", by_administrator=True)
        assert user.awaiting_approval
        return user.user_id

    async def victim(self) -> str:
        """A staff account nobody in the matrix uses, to be disabled."""
        user = await self.api.services.accounts.create_staff(
            username=f"victim-{next(_names)}", display_name="Victim", role=MEDIATOR, password=STAFF_PASSWORD,
            actor="test:setup")
        return user.user_id


# How to call each route validly: the path ids (taken from the case the cell targets) and a body.
Builder = Callable[[Desk, CaseWorld], Awaitable[tuple[dict[str, str], Any]]]
REQUESTS: dict[Route, Builder] = {}


def request_for(method: str, path: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        REQUESTS[(method, path)] = builder
        return builder

    return register


def _path(route: Route, ids: dict[str, str]) -> str:
    """The route's path with the cell's ids filled in, and its query string (the "query" id) if any."""
    path = route[1].format(**ids) if "{" in route[1] else route[1]
    return f"{path}?{ids['query']}" if ids.get("query") else path


def _no_body(*routes: Route) -> None:
    async def build(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
        return {"case_id": world.case_id}, None

    for route in routes:
        REQUESTS[route] = build


_no_body(("GET", "/api/compliance/keys"), ("GET", "/api/compliance/recipients"))
_no_body(("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/api/openapi.json"),
         ("GET", "/api/audit/checkpoint"), ("GET", "/api/audit/checkpoints"),
         ("POST", "/api/auth/logout"), ("GET", "/api/auth/me"), ("GET", "/api/auth/session"),
         ("GET", "/api/staff"), ("GET", "/api/party/case"), ("GET", "/api/events"), ("GET", "/api/cases"),
         ("GET", "/api/cases/{case_id}"), ("POST", "/api/cases/{case_id}/accept"),
         ("GET", "/api/cases/{case_id}/join-links"), ("GET", "/api/cases/{case_id}/receipt"),
         ("POST", "/api/cases/{case_id}/receipt/revoke"))


@request_for("POST", "/api/auth/login")
async def _login(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {}, {"username": desk.login_username, "password": STAFF_PASSWORD}


@request_for("POST", "/api/staff")
async def _create_staff(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {}, {"username": f"new-staff-{next(_names)}", "display_name": "New Staff", "role": "mediator",
                "password": "a long enough password"}


@request_for("POST", "/api/staff/{user_id}/disable")
async def _disable_staff(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"user_id": await desk.victim()}, None


@request_for("POST", "/api/staff/{user_id}/approve")
async def _approve_staff(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"user_id": await desk.awaiting()}, None


@request_for("POST", "/api/applications")
async def _file(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {}, application()


@request_for("POST", "/api/cases/{case_id}/parties/{party_id}/verify")
async def _verify(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id, "party_id": world.borrower_id}, {"method": "passport", "reference": "seen"}


@request_for("POST", "/api/cases/{case_id}/reject")
async def _reject(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, {"reason": "not a consumer loan"}


@request_for("PUT", "/api/cases/{case_id}/assignments")
async def _assign(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, {"mediator_id": world.mediator_id, "bank_representative_id": world.bank_id}


@request_for("POST", "/api/cases/{case_id}/sessions")
async def _propose(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, {"starts_at": future(96), "duration_minutes": 30, "mode": "video"}


def _party_side(desk: Desk, world: CaseWorld) -> tuple[str, str, walk.Device] | None:
    """The cell's caller as a party side of ``world``: (token, "borrower"/"bank", its device), if it is one
    (the "own" side's cases only: elsewhere the cell is refused before any proof is read)."""
    if world.bank_id != desk.users[BANK][0]:
        return None
    if desk.caller == RECEIPT and world.devices:
        return world.receipt, "borrower", world.devices["borrower"]
    if desk.caller == JOIN_LINK and world.devices and world.link_token:
        return world.link_token, "borrower", world.devices["borrower"]
    if desk.caller == BANK and world.devices:
        return desk.token(BANK), "bank", world.devices["bank"]
    return None


@request_for("POST", "/api/cases/{case_id}/sessions/{session_id}/confirm")
async def _confirm(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    ids = {"case_id": world.case_id, "session_id": world.pending_session_id or ""}
    side = _party_side(desk, world)
    if side is None or desk.caller == JOIN_LINK:  # a join link confirms only its own session: refused first
        return ids, {}
    token, _, device = side
    return ids, {"proof": await walk.prove(desk.api.http, f"/api/cases/{world.case_id}", token, device,
                                           "confirm_session", world.pending_session_id)}


_no_body(("GET", "/api/cases/{case_id}/possession"))


@request_for("POST", "/api/cases/{case_id}/possession/codes")
async def _request_code(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, {"purpose": "enrol"}


@request_for("POST", "/api/cases/{case_id}/possession/enrolments")
async def _enrol(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    fresh = walk.Device(key=Ed25519PrivateKey.generate(), enrolment_id="", fingerprint="")
    body = {"code_id": "pcd_" + "0" * 32, "code": "00000000", "public_key": fresh.public_key}
    side = _party_side(desk, world)
    if side is not None:
        token, who, _ = side
        address = walk.BORROWER_EMAIL if who == "borrower" else world.lender_email
        assert desk.api.mailbox is not None
        sent = await walk.request_code(desk.api.http, f"/api/cases/{world.case_id}", token, purpose="enrol")
        body.update(code_id=sent["code_id"], code=await walk.read_code(desk.api.mailbox, address, sent["code_id"]))
    return {"case_id": world.case_id}, body


@request_for("POST", "/api/cases/{case_id}/possession/challenges")
async def _challenge(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, {"act": "confirm_session", "session_id": world.session_id}


async def _case_number(desk: Desk, world: CaseWorld) -> str:
    view = await _expect(desk.api, 200, "GET", "/api/party/case", token=world.receipt)
    return view["case_number"]


@request_for("POST", "/api/recovery/codes")
async def _recovery_code(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {}, {"case_number": await _case_number(desk, world), "contact": walk.BORROWER_EMAIL}


@request_for("POST", "/api/recovery/receipts")
async def _recover(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    """A fresh verified case's recovery, with the code the borrower reads in its mail."""
    number = await _case_number(desk, world)
    mailbox = desk.api.mailbox
    assert mailbox is not None
    before = len(mailbox.messages)
    await _expect(desk.api, 202, "POST", "/api/recovery/codes",
                  json={"case_number": number, "contact": walk.BORROWER_EMAIL})
    await desk.api.services.possession.close()  # sent after the answer: wait for it
    (mail,) = [m for m in mailbox.messages[before:] if "recovering access" in m.text]
    match = walk.CODE.search(mail.text)
    assert match is not None
    return {}, {"case_number": number, "contact": walk.BORROWER_EMAIL, "code": match.group(1)}


@request_for("POST", "/api/cases/{case_id}/sessions/{session_id}/cancel")
async def _cancel(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id, "session_id": world.session_id or ""}, None


@request_for("POST", "/api/cases/{case_id}/join-links")
async def _issue_link(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, {"party_id": world.borrower_id, "session_id": world.session_id}


@request_for("DELETE", "/api/cases/{case_id}/join-links/{link_id}")
async def _revoke_link(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id, "link_id": world.lender_link_id or ""}, None


@request_for("POST", "/api/cases/{case_id}/join-links/{link_id}/retry")
async def _retry_link(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id, "link_id": world.lender_link_id or ""}, None


_no_body(("GET", "/api/cases/{case_id}/records"), ("GET", "/api/cases/{case_id}/records/manifest"),
         ("GET", "/api/cases/{case_id}/agreement"), ("GET", "/api/cases/{case_id}/agreement/signed"),
         ("GET", "/api/cases/{case_id}/agreement/signed.pdf"),
         ("GET", "/api/feedback/summary"))


@request_for("PUT", "/api/cases/{case_id}/agreement")
async def _draft(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, AGREEMENT


@request_for("POST", "/api/cases/{case_id}/agreement/signatures")
async def _sign(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    side = _party_side(desk, world)
    return {"case_id": world.case_id}, _signature(world.agreement or {}, side[2] if side else None)


@request_for("POST", "/api/cases/{case_id}/feedback")
async def _feedback(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, {"rating": 4, "comment": "clear and fair"}


@request_for("PUT", "/api/staff/me/recipient")
async def _register_recipient(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {}, {"recipient": str(pyrage.x25519.Identity.generate().to_public())}


async def _proposal(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    """A pending key of a new officer, so each cell decides its own."""
    _, newcomer = await desk.api.staff(COMPLIANCE)
    proposal = await _expect(desk.api, 202, "PUT", "/api/staff/me/recipient", token=newcomer,
                             json={"recipient": str(pyrage.x25519.Identity.generate().to_public())})
    return {"proposal_id": proposal["proposal_id"]}, None


REQUESTS[("POST", "/api/compliance/keys/{proposal_id}/approve")] = _proposal
REQUESTS[("POST", "/api/compliance/keys/{proposal_id}/reject")] = _proposal


@request_for("POST", "/api/auth/password")
async def _change_password(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {}, {"current_password": STAFF_PASSWORD, "new_password": "another long passphrase"}


@request_for("GET", "/api/audit/consistency")
async def _consistency(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"query": "old_size=1&new_size=1"}, None


@request_for("GET", "/api/cases/{case_id}/records/{record_id}")
async def _download(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id, "record_id": world.record_id or ""}, None


@request_for("POST", "/api/recordings/{session_id}/segments")
async def _segment(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"session_id": world.session_id or ""}, None


@request_for("POST", "/api/cases/{case_id}/close")
async def _close(desk: Desk, world: CaseWorld) -> tuple[dict[str, str], Any]:
    return {"case_id": world.case_id}, {"outcome": "settled", "note": "agreement filed"}


# Refusals that come from a rule of the route rather than the caller's role, with their own error code.
DENY_CODES: dict[Route, set[str]] = {
    ("POST", "/api/compliance/keys/{proposal_id}/approve"): {"approver_not_in_force"},
}


# --- one cell ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    route: Route
    principal: str
    scope: str | None
    allow: bool
    token: str | None = None
    path: str = ""
    body: Any = None

    def __str__(self) -> str:
        where = f" on {self.scope} case" if self.scope else ""
        return f"{self.route[0]} {self.route[1]} as {self.principal}{where}"


async def prepare(desk: Desk, cell: Cell) -> None:
    """Pick the case the cell acts on (fresh if an allowed cell changes it), the token and a valid request."""
    assert desk.own is not None and desk.other is not None
    world = desk.own if cell.scope != OTHER else desk.other
    stage = FRESH_STAGE.get(cell.route)
    if cell.allow and stage is not None:
        world = await desk.new_case(stage, cell.scope or OWN)
    # The parties are always those of an "own" case: the cell's case when it is the own one.
    party_world = world if cell.scope == OWN else desk.own
    if cell.principal == JOIN_LINK and party_world.link_token is None:
        party_world = desk.own  # a join link exists only once a session is confirmed
    tokens = {ANONYMOUS: None, RECEIPT: party_world.receipt, JOIN_LINK: party_world.link_token}
    cell.token = tokens[cell.principal] if cell.principal in tokens else desk.token(cell.principal)
    desk.caller = cell.principal
    ids, cell.body = await REQUESTS[cell.route](desk, world)
    desk.caller = ""
    cell.path = _path(cell.route, ids)


# Routes that answer with an endless event stream: an allowed cell reads its first event, then hangs up.
STREAM_ROUTES: set[Route] = {("GET", "/api/events")}


async def _first_event(api: Api, cell: Cell) -> str | None:
    headers = {"Authorization": f"Bearer {cell.token}"} if cell.token else {}
    async with api.session.get(api.base + cell.path, headers=headers) as response:
        if response.status != 200 or response.content_type != "text/event-stream":
            return f"{cell}: expected allow (200 text/event-stream), got {response.status} {response.content_type}"
        first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        if b"event: ready" not in first:
            return f"{cell}: the stream did not open with a ready event: {first[:160]!r}"
    return None


async def check(api: Api, cell: Cell) -> str | None:
    """Call the cell's request; return why its outcome is wrong, or None."""
    if cell.allow and cell.route in STREAM_ROUTES:
        return await _first_event(api, cell)
    status, body = await api.call(cell.route[0], cell.path, token=cell.token, json=cell.body)
    shown = str(body)[:160]
    if cell.allow:
        if not 200 <= status < 300:
            return f"{cell}: expected allow (2xx), got {status} {shown}"
        return None
    want = 401 if cell.principal == ANONYMOUS else 403
    if status != want:
        return f"{cell}: expected deny ({want}), got {status} {shown}"
    codes = {"unauthorized"} if want == 401 else {"forbidden", "not_case_member", *DENY_CODES.get(cell.route, ())}
    if cell.principal == JOIN_LINK and cell.route in OTHER_SESSION_ROUTES and cell.scope == OWN:
        codes = {"other_session"}
    if not (isinstance(body, dict) and body.get("error") in codes and isinstance(body.get("message"), str)
            and body["message"]):
        return f"{cell}: deny body is not a JSON error with error in {sorted(codes)} and a message: {shown}"
    return None


def cells_of(route: Route) -> list[Cell]:
    scopes: tuple[str | None, ...] = (OWN, OTHER) if is_case_route(route) else (None,)
    return [Cell(route=route, principal=principal, scope=scope, allow=expected_allow(route, principal, scope))
            for principal in PRINCIPALS for scope in scopes
            if not (principal == JOIN_LINK and route in CLOSED_CASE_ROUTES)]


# --- tests -------------------------------------------------------------------------------------


def test_route_table_registered_endpoints_match_exactly() -> None:
    registered = set(REGISTERED)
    assert len(registered) == len(REGISTERED), "a (method, path) is registered twice"
    assert sorted(registered - set(EXPECTED)) == [], "routes without an authorization expectation"
    assert sorted(set(EXPECTED) - registered) == [], "expectations for routes that are not registered"
    assert sorted(registered - set(REQUESTS)) == [], "routes without a request builder"


def test_route_table_every_route_allows_someone_and_denies_someone() -> None:
    for route in EXPECTED:
        if EXPECTED[route] == EVERYONE:
            continue  # public by design
        if EXPECTED[route] == {RECORDER}:
            assert not any(cell.allow for cell in cells_of(route))
            continue  # the recorder's own route: every person is refused
        outcomes = {cell.allow for cell in cells_of(route)}
        assert outcomes == {True, False}, f"{route}: every cell has the same outcome {outcomes}"


@pytest.mark.parametrize("route", REGISTERED, ids=[f"{m} {p}" for m, p in REGISTERED])
async def test_endpoint_every_principal_and_case_gets_intended_outcome(api: Api, route: Route) -> None:
    assert route in EXPECTED, f"{route} has no authorization expectation: add it to EXPECTED"
    assert route in REQUESTS, f"{route} has no request builder: add one to REQUESTS"
    desk = await Desk.open(api)
    cells = cells_of(route)
    # Prepare every cell before calling any: a cell may end its caller's session (logout).
    for cell in cells:
        await prepare(desk, cell)
    wrong = [problem for cell in cells if (problem := await check(api, cell)) is not None]
    if wrong:
        pytest.fail(f"{len(wrong)} of {len(cells)} cells wrong:\n" + "\n".join(wrong), pytrace=False)


async def _refused_everywhere(desk: Desk, token: str, label: str) -> list[str]:
    """Call every non-public route with ``token``; return the calls that were not a 401 JSON error.

    Public routes serve a dead token's holder as anonymous (so a stale cookie never blocks signing in)."""
    assert desk.own is not None
    wrong = []
    for route in REGISTERED:
        if EXPECTED[route] == EVERYONE:
            continue
        ids, body = await REQUESTS[route](desk, desk.own)
        path = _path(route, ids)
        status, answer = await desk.api.call(route[0], path, token=token, json=body)
        if status != 401 or not (isinstance(answer, dict) and answer.get("error") == "bad_token"):
            shown = str(answer)[:160]
            wrong.append(f"{route[0]} {route[1]} with {label}: expected 401 bad_token, got {status} {shown}")
    return wrong


async def test_disabled_staff_token_on_every_endpoint_is_refused_401(api: Api) -> None:
    desk = await Desk.open(api)
    assert desk.own is not None
    # One disabled user of each role, the mediator and bank representative assigned to the own case first.
    doomed = {role: await api.staff(role) for role in STAFF}
    await _expect(api, 200, "PUT", f"/api/cases/{desk.own.case_id}/assignments", token=desk.token(CASE_OFFICER),
                  json={"mediator_id": doomed[MEDIATOR][0], "bank_representative_id": doomed[BANK][0]})
    for user_id, token in doomed.values():
        assert (await api.call("GET", "/api/auth/me", token=token))[0] == 200
        await _expect(api, 200, "POST", f"/api/staff/{user_id}/disable", token=desk.token(ADMIN))
    wrong = []
    for role, (_, token) in doomed.items():
        wrong += await _refused_everywhere(desk, token, f"disabled {role}")
    assert not wrong, "\n".join(wrong)
    # Nor can a disabled user sign in again.
    users = {u["user_id"]: u["username"] for u in
             (await _expect(api, 200, "GET", "/api/staff", token=desk.token(ADMIN)))["staff"]}
    status, body = await api.call("POST", "/api/auth/login",
                                  json={"username": users[doomed[CASE_OFFICER][0]], "password": STAFF_PASSWORD})
    assert status == 401 and body["error"] == "bad_credentials", body


async def test_disabled_flag_with_live_session_on_every_endpoint_is_refused_401(api: Api) -> None:
    # The disabled flag alone refuses the token, even if the user's sessions were somehow left open.
    desk = await Desk.open(api)
    doomed = {role: await api.staff(role) for role in STAFF}
    async with api.services.db.write() as session:
        await session.execute(update(StaffUser).where(StaffUser.user_id.in_([u for u, _ in doomed.values()]))
                              .values(disabled=True))
    wrong = []
    for role, (_, token) in doomed.items():
        wrong += await _refused_everywhere(desk, token, f"disabled {role} with a live session")
    assert not wrong, "\n".join(wrong)


async def test_revoked_join_link_on_every_endpoint_is_refused_401(api: Api) -> None:
    desk = await Desk.open(api)
    assert desk.own is not None and desk.own.session_id is not None
    case_path = f"/api/cases/{desk.own.case_id}"
    link = await _expect(api, 201, "POST", f"{case_path}/join-links", token=desk.token(MEDIATOR),
                         json={"party_id": desk.own.borrower_id, "session_id": desk.own.session_id})
    token = await _delivered_token(api, desk.own.receipt, link["link_id"])
    assert (await api.call("GET", "/api/party/case", token=token))[0] == 200
    await _expect(api, 200, "DELETE", f"{case_path}/join-links/{link['link_id']}", token=desk.token(CASE_OFFICER))
    wrong = await _refused_everywhere(desk, token, "revoked join link")
    assert not wrong, "\n".join(wrong)


async def test_revoked_receipt_on_every_endpoint_is_refused_401(api: Api) -> None:
    desk = await Desk.open(api)
    assert desk.own is not None
    assert (await api.call("GET", "/api/party/case", token=desk.own.receipt))[0] == 200
    revoked = await _expect(api, 200, "POST", f"/api/cases/{desk.own.case_id}/receipt/revoke",
                            token=desk.token(CASE_OFFICER))
    assert revoked["status"] == "revoked" and "rcp_" not in str(revoked), revoked
    wrong = await _refused_everywhere(desk, desk.own.receipt, "revoked receipt")
    assert not wrong, "\n".join(wrong)


async def test_expired_join_link_on_every_endpoint_is_refused_401(api: Api) -> None:
    desk = await Desk.open(api)
    assert desk.own is not None and desk.own.link_token is not None
    assert (await api.call("GET", "/api/party/case", token=desk.own.link_token))[0] == 200
    # Move the link's expiry into the past in the case record (no waiting for a clock).
    async with api.services.db.write() as session:
        link_ids = (await session.execute(
            select(JoinLink.link_id).where(JoinLink.case_id == desk.own.case_id,
                                           JoinLink.party_id == desk.own.borrower_id))).scalars().all()
        assert len(link_ids) == 1, link_ids
        await session.execute(update(JoinLink).where(JoinLink.link_id == link_ids[0])
                              .values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    _, listed = await api.call("GET", f"/api/cases/{desk.own.case_id}/join-links", token=desk.token(CASE_OFFICER))
    assert {entry["link_id"]: entry["status"] for entry in listed["links"]}[link_ids[0]] == "expired"
    wrong = await _refused_everywhere(desk, desk.own.link_token, "expired join link")
    assert not wrong, "\n".join(wrong)


async def test_closed_case_join_link_on_every_endpoint_is_refused_401(api: Api) -> None:
    desk = await Desk.open(api)
    assert desk.own is not None and desk.own.link_token is not None
    await _expect(api, 200, "POST", f"/api/cases/{desk.own.case_id}/close", token=desk.token(MEDIATOR),
                  json={"outcome": "withdrawn"})
    wrong = await _refused_everywhere(desk, desk.own.link_token, "join link of a closed case")
    assert not wrong, "\n".join(wrong)


# --- the "acts as a party" column ---------------------------------------------------------------------------
# Beside the routes, every way a staff member could stand in a party's place: read the party's own case view
# (where its links are delivered), confirm a session for the borrower, sign the agreement, enter a room as a
# party (without naming a session, as a link does) or in the party's session, and consent there. Each cell is
# how it fails: "403" (the route refuses the role), a room refusal code ("bad_session", "not_a_participant"),
# "forbidden" (the room's request table refuses the role), "no_room" (it never gets in), or, for the two roles
# that do take part, "as_itself": it acts under its own identity (its user id, its staff role), never a party's;
# the bank representative signs and confirms for the lender only ("lender_only"). Obtaining a party's credential
# through any response, page, log line, audit entry or the outbox is walked for every role by
# tests/server/test_party_credentials.py::test_staff_every_role_finds_no_party_credential_in_api_pages_logs_audit_or_outbox.
_NOT_IN_ROOMS = {"party_case_view": "403", "confirm_as_borrower": "403", "sign_agreement": "403",
                 "enter_as_party": "bad_session", "enter_party_session": "not_a_participant", "consent": "no_room"}
ACTS_AS_PARTY: dict[str, dict[str, str]] = {
    CASE_OFFICER: _NOT_IN_ROOMS,
    MEDIATOR: {"party_case_view": "403", "confirm_as_borrower": "403", "sign_agreement": "403",
               "enter_as_party": "bad_session", "enter_party_session": "as_itself", "consent": "forbidden"},
    BANK: {"party_case_view": "403", "confirm_as_borrower": "403", "sign_agreement": "lender_only",
           "enter_as_party": "bad_session", "enter_party_session": "as_itself", "consent": "as_itself"},
    COMPLIANCE: _NOT_IN_ROOMS,
    ADMIN: _NOT_IN_ROOMS,
}


async def _acts_as_party(desk: Desk, role: str, act: str) -> str:
    """What happens when ``role`` tries ``act`` on the own case: the outcome as ACTS_AS_PARTY names it."""
    api, world, (user_id, token) = desk.api, desk.own, desk.users[role]
    assert world is not None and world.session_id is not None and world.agreement is not None
    case_path = f"/api/cases/{world.case_id}"
    if act == "party_case_view":
        return str((await api.call("GET", "/api/party/case", token=token))[0])
    if act == "confirm_as_borrower":
        status, _ = await api.call("POST", f"{case_path}/sessions/{world.pending_session_id}/confirm", token=token,
                                   json={"party_id": world.borrower_id})
        return str(status)
    if act == "sign_agreement":
        status, _ = await api.call("POST", f"{case_path}/agreement/signatures", token=token,
                                   json=_signature(world.agreement))
        # The body names no party: whoever signs with a staff session signs for the lender, in its own name.
        named = {"party_id", "party", "signer", "role"} & set(SignatureIn.model_fields)
        return "lender_only" if status != 403 and not named and role == BANK else str(status)
    access = RoomAccess(api.services.db, api.services.credentials, lambda _digest: None)
    auth = {"token": token} if act == "enter_as_party" else {"token": token, "session_id": world.session_id}
    try:
        identity = await access.enter(auth, {})
    except Refused as refused:
        return "no_room" if act == "consent" else refused.code
    if identity.participant_id != user_id or identity.role != role or \
            identity.participant_id in (world.borrower_id, world.lender_id):
        return f"entered as {identity.role} {identity.participant_id}"
    if act == "consent":
        return "as_itself" if role in ROOM_REQUESTS["give_consent"].senders else "forbidden"
    return "as_itself"


async def test_acts_as_party_every_staff_role_is_refused_or_acts_as_itself(api: Api) -> None:
    desk = await Desk.open(api)
    assert set(ACTS_AS_PARTY) == set(STAFF)
    wrong = []
    for role, acts in ACTS_AS_PARTY.items():
        for act, expected in acts.items():
            got = await _acts_as_party(desk, role, act)
            if got != expected:
                wrong.append(f"{role} {act}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)
    # Nothing a staff member tried confirmed the pending session for the borrower.
    assert desk.own is not None
    case = await _expect(api, 200, "GET", f"/api/cases/{desk.own.case_id}", token=desk.token(CASE_OFFICER))
    assert [s["confirmed_by"] for s in case["sessions"] if s["session_id"] == desk.own.pending_session_id] in (
        [[]], [[desk.own.lender_id]])
