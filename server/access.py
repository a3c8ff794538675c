"""Who is calling and what each role may touch; checked on the server for every route."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

STAFF_ROLES = ("case_officer", "mediator", "bank_representative", "compliance_officer", "administrator")
PARTY_ROLES = ("borrower", "lender")
ANONYMOUS = "anonymous"
PARTY = "party"

RECORDER = "recorder"

Kind = Literal["anonymous", "staff", "party", "recorder"]


@dataclasses.dataclass(frozen=True)
class Principal:
    """The authenticated caller: a staff member, a party of one case, or nobody."""

    kind: Kind
    role: str  # a staff role, a party role, or "anonymous"
    subject_id: str | None = None  # user_id or party_id
    case_id: str | None = None  # a party's own case
    # For a party holding a join link: the link and session it is bound to.
    link_id: str | None = None
    session_id: str | None = None
    via: str | None = None  # "session", "receipt", "join_link" or "recorder"
    # The token's kind and SHA-256 ("jln:<hex>"), so a long-lived socket can have it checked again.
    credential: str | None = dataclasses.field(default=None, repr=False)
    # When the credential stops working by itself (a staff session's or a join link's expiry), if it does.
    expires_at: dt.datetime | None = None

    @property
    def grant(self) -> str:
        """The name used in route permissions: a staff role, "party" or "anonymous"."""
        if self.kind == "party":
            return PARTY
        return RECORDER if self.kind == "recorder" else self.role

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.kind == "anonymous":
            return ANONYMOUS
        return f"{self.role}:{self.subject_id}"


NOBODY = Principal(kind="anonymous", role=ANONYMOUS)

# Staff roles whose reach covers every case; the others see only cases they are assigned to.
ALL_CASE_ROLES = frozenset({"case_officer", "compliance_officer"})
ASSIGNED_ROLES = frozenset({"mediator", "bank_representative"})


def case_member(principal: Principal, case_id: str, assigned: dict[str, str]) -> bool:
    """Whether ``principal`` belongs to the case; ``assigned`` maps assignment role to user_id."""
    if principal.kind == "party":
        return principal.case_id == case_id
    if principal.kind != "staff":
        return False
    if principal.role in ALL_CASE_ROLES:
        return True
    if principal.role in ASSIGNED_ROLES:
        return assigned.get(principal.role) == principal.subject_id
    return False  # administrators manage accounts, not cases
