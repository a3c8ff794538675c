"""The case state machine: which action is legal in which state, and where it leads."""

from __future__ import annotations

from server.errors import Conflict

SUBMITTED, ACCEPTED, SCHEDULED, REJECTED, CLOSED = "submitted", "accepted", "scheduled", "rejected", "closed"
STATES = (SUBMITTED, ACCEPTED, SCHEDULED, REJECTED, CLOSED)

# action -> states it may be taken from. A target state of None leaves the state as it is.
ALLOWED: dict[str, tuple[str, ...]] = {
    "verify_party": (SUBMITTED,),
    "accept": (SUBMITTED,),
    "reject": (SUBMITTED,),
    "assign": (ACCEPTED, SCHEDULED),
    "propose_session": (ACCEPTED, SCHEDULED),
    "confirm_session": (ACCEPTED, SCHEDULED),
    "cancel_session": (ACCEPTED, SCHEDULED),
    "issue_link": (SCHEDULED,),
    "revoke_link": (ACCEPTED, SCHEDULED, CLOSED),
    "close": (ACCEPTED, SCHEDULED),
    "draft_agreement": (SCHEDULED,),
    "sign_agreement": (SCHEDULED,),
    "give_feedback": (CLOSED,),
}

TARGET: dict[str, str] = {
    "accept": ACCEPTED,
    "reject": REJECTED,
    "close": CLOSED,
}


def require(case_id: str, state: str, action: str) -> str:
    """Return the state after ``action``; raise Conflict (409) if the action is illegal now."""
    allowed = ALLOWED.get(action)
    if allowed is None:
        raise ValueError(f"unknown case action {action!r}")
    if state not in allowed:
        raise Conflict(
            f'case {case_id} is in state "{state}"; cannot {action.replace("_", " ")} '
            f"(allowed in: {', '.join(allowed)})",
            code="illegal_transition",
            state=state,
        )
    return TARGET.get(action, state)


def overdue_bucket(days_overdue: int) -> str:
    """short < 30 days, medium 30-90, long > 90."""
    if days_overdue < 30:
        return "short"
    if days_overdue <= 90:
        return "medium"
    return "long"
