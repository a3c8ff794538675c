"""The one walk of a case, over the public HTTP API, in stages: submitted, verified, scheduled, drafted, closed.

Staff never see a party's link: the walk issues it as the mediator, then reads it as the party does,
the borrower from its case view (with its receipt), the lender from its mail.

Every test and benchmark that needs a case walks here (to a scheduled session, or stopped at a stage),
whether its server runs in the test's process (tests/conftest.py), as a subprocess node
(tests/server/test_api_fuzz.py) or as nodes behind a proxy (tests/deploy, bench).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import itertools
import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.mailbox import Mailbox, MailboxThread, link_token
from tests.support.nodes import ADMIN, ADMIN_PASSWORD, SECOND_ADMIN, SECOND_ADMIN_PASSWORD

STAFF_PASSWORD = "a long enough password"

_names = itertools.count()
# The second administrator's session token per server base URL (Http.second_admin).
_second_admins: dict[str, str] = {}

# Where a party reads its mail: a Mailbox on the test's loop, or one on its own thread.
Inbox = Mailbox | MailboxThread

# Makes a staff member of a role and signs them in: (user_id, token).
MakeStaff = Callable[[str], Awaitable[tuple[str, str]]]


def application(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "borrower": {"name": "Li Wei", "email": "li.wei@example.cn", "phone": "+86 138 0013 8000"},
        "lender": "Example Commercial Bank",
        "loan_reference": "LN-2026-0042",
        "currency": "CNY",
        "principal_minor": 12_000_000,
        "overdue_minor": 1_450_000,
        "days_overdue": 75,
        "proposal": "I can pay 2,000 a month from March.",
    }
    body.update(overrides)
    return body


def future(hours: int = 48) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)).isoformat()


class Http:
    """JSON over HTTP; ``request`` returns (status, parsed body), ``call`` also checks the status it expects."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def request(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
                      data: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + path, json=json_body, data=data,
                                        headers=headers) as response:
            if response.content_type in ("application/octet-stream", "application/pdf"):
                return response.status, await response.read()
            text = await response.text()
            return response.status, json.loads(text) if text and response.content_type == "application/json" else text

    async def call(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
                   expect: int = 200) -> Any:
        status, body = await self.request(method, path, token=token, json_body=json_body)
        assert status == expect, f"{method} {path}: {status} {body}"
        return body

    async def login(self, username: str, password: str) -> str:
        return (await self.call("POST", "/api/auth/login", json_body={"username": username,
                                                                        "password": password}))["token"]

    async def staff(self, admin: str, role: str) -> tuple[str, str]:
        """A new staff account of ``role`` made by the administrator, signed in: (user_id, token). An account
        that waits for a second administrator is approved by the operator's other one (``SECOND_ADMIN``, made
        with ``create_admin`` independently of ``ADMIN``)."""
        username = f"{role.replace('_', '-')}-{os.getpid()}-{next(_names)}"
        made = await self.call("POST", "/api/staff", token=admin, expect=201, json_body={
            "username": username, "display_name": username.title(), "role": role, "password": STAFF_PASSWORD})
        if made["awaiting_approval"]:
            await self.call("POST", f"/api/staff/{made['user_id']}/approve", token=await self.second_admin())
        return made["user_id"], await self.login(username, STAFF_PASSWORD)

    async def second_admin(self) -> str:
        """The operator's second administrator, signed in once per server."""
        if self.base not in _second_admins:
            _second_admins[self.base] = await self.login(SECOND_ADMIN, SECOND_ADMIN_PASSWORD)
        return _second_admins[self.base]


# The stages of the walk, in order; each step below takes a case one stage further.
STAGES = ("submitted", "verified", "scheduled", "drafted", "closed")


@dataclasses.dataclass
class Filed:
    """A case as the borrower filed it: its receipt and its two parties."""

    case_id: str
    receipt: str
    borrower_id: str
    lender_id: str
    lender_email: str = ""  # the lender's contact, recorded when the case officer verified it

    @property
    def path(self) -> str:
        return f"/api/cases/{self.case_id}"


async def file_case(http: Http, officer: str, body: dict[str, Any] | None = None) -> Filed:
    """Stage "submitted": the borrower files ``body`` (``application()`` by default); the officer reads the parties."""
    receipt = await http.call("POST", "/api/applications", json_body=application() if body is None else body,
                              expect=201)
    case = await http.call("GET", f"/api/cases/{receipt['case_id']}", token=officer)
    parties = {p["role"]: p["party_id"] for p in case["parties"]}
    return Filed(case_id=receipt["case_id"], receipt=receipt["receipt_token"], borrower_id=parties["borrower"],
                 lender_id=parties["lender"])


async def verify_parties(http: Http, case: Filed, officer: str) -> None:
    """Stage "verified": the officer verifies both parties' identity; the lender's with the bank's mediation
    mailbox, where its links will go."""
    await http.call("POST", f"{case.path}/parties/{case.borrower_id}/verify", token=officer,
                    json_body={"method": "id_card", "reference": "checked at desk"})
    case.lender_email = f"mediation.{case.case_id[-12:]}@bank.example"
    await http.call("POST", f"{case.path}/parties/{case.lender_id}/verify", token=officer,
                    json_body={"method": "bank_authorization", "reference": "bank's mandate letter",
                               "email": case.lender_email})


BORROWER_EMAIL = "li.wei@example.cn"  # application()'s borrower contact, verified by verify_parties
CODE = re.compile(r"\b([0-9]{8})\b")


@dataclasses.dataclass
class Device:
    """A party's device as a test holds it: the Ed25519 key a browser would keep non-extractable, enrolled
    with a code read from the party's mail."""

    key: Ed25519PrivateKey
    enrolment_id: str
    fingerprint: str

    @property
    def public_key(self) -> str:
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return b64url(raw)

    def sign(self, data: bytes) -> str:
        return b64url(self.key.sign(data))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def read_code(mailbox: Inbox, address: str, code_id: str) -> str:
    """The one-time code ``code_id`` as its party reads it in its mail."""
    mail = await mailbox.wait_for(address, code_id)
    match = CODE.search(mail.text)
    assert match is not None, f"no code in the mail for {code_id}"
    return match.group(1)


async def request_code(http: Http, case_path: str, token: str, *, purpose: str, act: str | None = None,
                       session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"purpose": purpose}
    if act is not None:
        body["act"] = act
    if session_id is not None:
        body["session_id"] = session_id
    return await http.call("POST", f"{case_path}/possession/codes", token=token, json_body=body, expect=201)


async def enrol_device(http: Http, case_path: str, token: str, mailbox: Inbox, address: str) -> Device:
    """Enrol a fresh device key for the party ``token`` acts for: a code to ``address`` (its verified contact),
    read from ``mailbox``, sent back with the public key."""
    sent = await request_code(http, case_path, token, purpose="enrol")
    code = await read_code(mailbox, address, sent["code_id"])
    key = Ed25519PrivateKey.generate()
    device = Device(key=key, enrolment_id="", fingerprint="")
    enrolled = await http.call("POST", f"{case_path}/possession/enrolments", token=token, expect=201,
                               json_body={"code_id": sent["code_id"], "code": code, "public_key": device.public_key})
    device.enrolment_id, device.fingerprint = enrolled["enrolment_id"], enrolled["fingerprint"]
    return device


async def prove(http: Http, case_path: str, token: str, device: Device, act: str,
                session_id: str | None = None) -> dict[str, str]:
    """A possession proof for ``act``: the enrolled device signs a fresh challenge."""
    body: dict[str, Any] = {"act": act}
    if session_id is not None:
        body["session_id"] = session_id
    challenge = await http.call("POST", f"{case_path}/possession/challenges", token=token, json_body=body,
                                expect=201)
    to_sign = base64.urlsafe_b64decode(challenge["to_sign"] + "=" * (-len(challenge["to_sign"]) % 4))
    return {"challenge_id": challenge["challenge_id"], "signature": device.sign(to_sign)}


async def confirm(http: Http, case_path: str, token: str, device: Device, session_id: str,
                  expect: int = 200) -> Any:
    """The party confirms ``session_id`` with its enrolled device's proof."""
    proof = await prove(http, case_path, token, device, "confirm_session", session_id)
    return await http.call("POST", f"{case_path}/sessions/{session_id}/confirm", token=token,
                           json_body={"proof": proof}, expect=expect)


async def sign(http: Http, case_path: str, token: str, device: Device, expect: int = 201) -> Any:
    """The party signs the current agreement's canonical text with its enrolled device key."""
    current = await http.call("GET", f"{case_path}/agreement", token=token)
    return await http.call("POST", f"{case_path}/agreement/signatures", token=token, expect=expect, json_body={
        "version": current["version"], "public_key": device.public_key,
        "signature": device.sign(current["canonical"].encode())})


async def schedule_session(http: Http, case: Filed, officer: str, mediator: tuple[str, str],
                           bank: tuple[str, str], mailbox: Inbox) -> tuple[str, dict[str, Device]]:
    """Stage "scheduled": accept, assign ``mediator`` and ``bank`` ((user_id, token) each), propose a session,
    and both sides confirm it, each with a device enrolled by a code from its mail; returns the session_id
    and the devices ("borrower", "bank")."""
    (mediator_id, mediator_token), (bank_id, bank_token) = mediator, bank
    await http.call("POST", f"{case.path}/accept", token=officer)
    await http.call("PUT", f"{case.path}/assignments", token=officer,
                    json_body={"mediator_id": mediator_id, "bank_representative_id": bank_id})
    body = await http.call("POST", f"{case.path}/sessions", token=mediator_token, expect=201,
                           json_body={"starts_at": future(), "duration_minutes": 60, "mode": "video"})
    session_id = body["sessions"][0]["session_id"]
    devices = {"borrower": await enrol_device(http, case.path, case.receipt, mailbox, BORROWER_EMAIL),
               "bank": await enrol_device(http, case.path, bank_token, mailbox, case.lender_email)}
    for token, device in ((case.receipt, devices["borrower"]), (bank_token, devices["bank"])):
        confirmed = await confirm(http, case.path, token, device, session_id)
    assert confirmed["state"] == "scheduled", confirmed
    return session_id, devices


async def issue_link(http: Http, case: Filed, token: str, party_id: str, session_id: str) -> dict[str, Any]:
    """A join link for ``party_id`` to ``session_id``, issued with ``token``: the API's answer, which names
    the link (link_id, deliveries) and never carries its token."""
    issued = await http.call("POST", f"{case.path}/join-links", token=token, expect=201,
                             json_body={"party_id": party_id, "session_id": session_id})
    assert "token" not in issued and "url" not in issued, issued
    return issued


async def received_link(http: Http, case: Filed, issued: dict[str, Any], mailbox: Inbox | None = None) -> str:
    """The token of the ``issued`` link as its party receives it: the borrower in its case view (with its
    receipt), the lender in its mail (``mailbox``, the SMTP server the server sends to)."""
    if issued["party_id"] == case.borrower_id:
        view = await http.call("GET", "/api/party/case", token=case.receipt)
        notice = next(n for n in view["notices"] if n["link_id"] == issued["link_id"])
        return link_token(notice["link"])
    assert mailbox is not None, "the lender's link reaches it only by mail: give the SMTP server"
    mail = await mailbox.wait_for(case.lender_email, issued["link_id"])
    return link_token(mail.text)


async def draft_agreement(http: Http, case: Filed, mediator: str, terms: dict[str, Any]) -> dict[str, Any]:
    """Stage "drafted": the mediator files the agreement ``terms``; returns the document the parties sign."""
    return (await http.call("PUT", f"{case.path}/agreement", token=mediator, json_body=terms))["document"]


async def close_case(http: Http, case: Filed, token: str, outcome: str = "settled") -> None:
    """Stage "closed"."""
    await http.call("POST", f"{case.path}/close", token=token, json_body={"outcome": outcome})


@dataclasses.dataclass
class Journey:
    """A case walked to "scheduled", with everyone who takes part in it."""

    case_id: str
    receipt: str
    borrower_id: str
    lender_id: str
    session_id: str
    officer: str
    mediator: str
    mediator_id: str
    bank: str
    bank_id: str
    lender_email: str = ""  # the lender's contact, recorded when the case officer verified it
    borrower_link: str = ""  # the borrower's join link, when the walk issued one
    # Each side's enrolled device ("borrower", "bank"), as its browser would keep it.
    devices: dict[str, Device] = dataclasses.field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/api/cases/{self.case_id}"

    def token_of(self, who: str) -> str:
        """The credential ``who`` ("borrower": its join link, else its receipt; "bank") acts with over HTTP."""
        if who == "borrower":
            return self.borrower_link or self.receipt
        return self.bank

    async def proof(self, http: Http, who: str, act: str) -> dict[str, str]:
        """``who``'s possession proof for a room act ("give_consent", "withdraw_consent") in the session."""
        return await prove(http, self.path, self.token_of(who), self.devices[who], act, self.session_id)

    def auth(self, who: str) -> dict[str, str]:
        """The room socket's ``auth`` for "borrower" (its join link) or a staff member ("mediator", "bank")."""
        if who == "borrower":
            return {"token": self.borrower_link}
        return {"token": getattr(self, who), "session_id": self.session_id}


async def walk_to_scheduled(http: Http, staff: MakeStaff, mailbox: Inbox, *, officer: str | None = None,
                            link: bool = False) -> Journey:
    """File, verify, accept, assign, propose and confirm: the case ends in state "scheduled".

    ``staff`` makes the officer (unless ``officer`` is given), the mediator and the bank representative;
    with ``link`` the mediator also issues the borrower's join link.
    """
    if officer is None:
        _, officer = await staff("case_officer")
    mediator_id, mediator = await staff("mediator")
    bank_id, bank = await staff("bank_representative")
    case = await file_case(http, officer)
    await verify_parties(http, case, officer)
    session_id, devices = await schedule_session(http, case, officer, (mediator_id, mediator), (bank_id, bank),
                                                 mailbox)
    journey = Journey(case_id=case.case_id, receipt=case.receipt, borrower_id=case.borrower_id,
                      lender_id=case.lender_id, session_id=session_id, officer=officer, mediator=mediator,
                      mediator_id=mediator_id, bank=bank, bank_id=bank_id, lender_email=case.lender_email,
                      devices=devices)
    if link:
        journey.borrower_link = await party_link(http, journey, journey.borrower_id)
    return journey


async def party_link(http: Http, journey: Journey, party_id: str, mailbox: Inbox | None = None) -> str:
    """The mediator issues ``party_id``'s join link; returns its token as the party receives it."""
    case = Filed(case_id=journey.case_id, receipt=journey.receipt, borrower_id=journey.borrower_id,
                 lender_id=journey.lender_id, lender_email=journey.lender_email)
    issued = await issue_link(http, case, journey.mediator, party_id, journey.session_id)
    return await received_link(http, case, issued, mailbox)


async def scheduled_case(http: Http, mailbox: Inbox, admin: str | None = None,
                         officer: str | None = None) -> Journey:
    """The walk on a deployed server (its party mail going to ``mailbox``): staff made by the administrator,
    the borrower's link issued."""
    admin = admin or await http.login(ADMIN, ADMIN_PASSWORD)
    return await walk_to_scheduled(http, functools.partial(http.staff, admin), mailbox, officer=officer, link=True)


async def approve_first_key(http: Http, admin: str, compliance: str, recipient: str) -> None:
    """The first compliance officer's key put in force as two-person control requires: proposed by the
    officer, approved by the operator's two administrators (``create_admin`` made both, independently)."""
    proposal = await http.call("PUT", "/api/staff/me/recipient", token=compliance, expect=202,
                               json_body={"recipient": recipient})
    for approver in (admin, await http.login(SECOND_ADMIN, SECOND_ADMIN_PASSWORD)):
        await http.call("POST", f"/api/compliance/keys/{proposal['proposal_id']}/approve", token=approver)
