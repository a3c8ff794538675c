"""Whether a principal may enter a session's room now, or still act in it: the one question signaling asks.

Asked at the handshake with the presented token, and again during the socket's life with the
credential it resolved, so a revoked link, a disabled account, a lost assignment, a cancelled
session or a closed case stops a socket that is already open.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from server.access import Principal
from server.credentials import CredentialRefused, Credentials, RecorderLookup, handshake_cookie
from server.database import Database
from server.joinlinks import RevokeReason
from server.models import Assignment, Case, Party, ScheduledSession, StaffUser
from server.tokens import token_kind
from signaling.identity import Identity, Refused

_SESSION_ID = re.compile(r"^ses_[0-9a-f]{32}$")
# Staff roles that take part in mediation rooms (a party's role comes from its link).
ROOM_ROLES = ("mediator", "bank_representative")


def _refusal(exc: CredentialRefused) -> Refused:
    if exc.reason == RevokeReason.REMOVED:
        return Refused("removed", exc.message)
    return Refused("bad_token", exc.message)


class RoomAccess:
    """Maps a credential and a session to the room Identity it may use there, or a Refused with its code."""

    def __init__(self, db: Database, credentials: Credentials, recorder_lookup: RecorderLookup) -> None:
        self._db = db
        self._credentials = credentials
        self._recorder_lookup = recorder_lookup

    async def enter(self, auth: Any, environ: dict[str, Any]) -> Identity:
        """Resolve a socket handshake's ``{token, session_id}`` (or the staff cookie) to its Identity."""
        if auth is None:
            auth = {}
        if not isinstance(auth, dict) or set(auth) - {"token", "session_id"}:
            raise Refused("bad_token", "auth must be {token, session_id}")
        token = auth.get("token") or handshake_cookie(environ)
        session_id = auth.get("session_id")
        if not isinstance(token, str) or token_kind(token) is None:
            raise Refused("bad_token", "a join link or a staff sign-in is needed to enter a room")
        if session_id is not None and (not isinstance(session_id, str) or not _SESSION_ID.match(session_id)):
            raise Refused("bad_session", "session_id is not a valid session id")
        try:
            principal = await self._credentials.resolve(token)
        except CredentialRefused as exc:
            raise _refusal(exc) from None
        return await self._admit(principal, session_id)

    async def check(self, identity: Identity) -> None:
        """Refused if the credential ``identity`` entered with no longer lets it into its session."""
        try:
            principal = await self._credentials.resolve_again(identity.credential)
        except CredentialRefused as exc:
            raise _refusal(exc) from None
        _same_participant(identity, await self._admit(principal, identity.session_id))

    async def _admit(self, principal: Principal, session_id: str | None) -> Identity:
        if principal.kind == "recorder":
            return self._recorder(principal, session_id)
        if principal.via == "join_link":
            return await self._party(principal, session_id)
        if principal.kind == "staff":
            return await self._staff(principal, session_id)
        raise Refused("bad_token", "a receipt does not open a room; use your personal join link")

    def _recorder(self, principal: Principal, session_id: str | None) -> Identity:
        _, _, digest = (principal.credential or "").partition(":")
        recorder = self._recorder_lookup(bytes.fromhex(digest))
        if recorder is None or (session_id is not None and session_id != recorder.session_id):
            raise Refused("bad_token", "this recorder credential is not valid")
        return dataclasses.replace(recorder, credential=principal.credential or "")

    async def _party(self, principal: Principal, session_id: str | None) -> Identity:
        if session_id is not None and session_id != principal.session_id:
            raise Refused("bad_session", "this join link belongs to another session")
        async with self._db.read() as session:
            row = (await session.execute(
                select(Party, ScheduledSession, Case)
                .join(ScheduledSession, ScheduledSession.case_id == Party.case_id)
                .join(Case, Case.case_id == Party.case_id)
                .where(Party.party_id == principal.subject_id, ScheduledSession.session_id == principal.session_id)
            )).one_or_none()
        return _party_identity(principal, *(row or (None, None, None)))

    async def _staff(self, principal: Principal, session_id: str | None) -> Identity:
        if session_id is None:
            raise Refused("bad_session", "staff must name the session_id to join")
        _check_room_role(principal)
        async with self._db.read() as session:
            # The account read in the same statement (one round trip less per staff handshake).
            row = (await session.execute(
                select(ScheduledSession, Case, Assignment, StaffUser)
                .join(Case, Case.case_id == ScheduledSession.case_id)
                .outerjoin(Assignment, (Assignment.case_id == ScheduledSession.case_id)
                           & (Assignment.role == principal.role))
                .outerjoin(StaffUser, StaffUser.user_id == principal.subject_id)
                .where(ScheduledSession.session_id == session_id)
            )).one_or_none()
        if row is None:
            raise Refused("bad_session", f"no session {session_id}")
        scheduled, case, assignment, user = row
        _check_assignment(principal, assignment)
        return _staff_identity(principal, scheduled, case, user)

    async def check_many(self, identities: Sequence[Identity]) -> list[Refused | None]:
        """``check`` of every identity, in one read of a few queries whatever their number: each's refusal,
        or None if its credential still admits it. Several sockets of one credential are asked about once."""
        async with self._db.read() as session:
            principals = await self._credentials.resolve_many(session, {i.credential for i in identities})
            party_ids = {p.subject_id for p in principals.values() if isinstance(p, Principal) and p.via == "join_link"}
            staff_ids = {p.subject_id for p in principals.values() if isinstance(p, Principal) and p.kind == "staff"}
            session_ids = {i.session_id for i in identities}
            sessions = {scheduled.session_id: (scheduled, case) for scheduled, case in (await session.execute(
                select(ScheduledSession, Case).join(Case, Case.case_id == ScheduledSession.case_id)
                .where(ScheduledSession.session_id.in_(session_ids))
            )).all()}
            parties = {party.party_id: party for party in (await session.execute(
                select(Party).where(Party.party_id.in_(party_ids))
            )).scalars()} if party_ids else {}
            assignments = {(a.case_id, a.role): a for a in (await session.execute(
                select(Assignment).where(Assignment.case_id.in_({s.case_id for s, _ in sessions.values()}))
            )).scalars()} if staff_ids and sessions else {}
            users = {user.user_id: user for user in (await session.execute(
                select(StaffUser).where(StaffUser.user_id.in_(staff_ids))
            )).scalars()} if staff_ids else {}
        answers: list[Refused | None] = []
        for identity in identities:
            try:
                principal = principals[identity.credential]
                if isinstance(principal, CredentialRefused):
                    raise _refusal(principal)
                scheduled, case = sessions.get(identity.session_id, (None, None))
                if principal.kind == "recorder":
                    current = self._recorder(principal, identity.session_id)
                elif principal.via == "join_link":
                    if identity.session_id != principal.session_id:
                        raise Refused("bad_session", "this join link belongs to another session")
                    party = parties.get(principal.subject_id or "")
                    if party is not None and scheduled is not None and party.case_id != scheduled.case_id:
                        party = None
                    current = _party_identity(principal, party, scheduled, case)
                elif principal.kind == "staff":
                    _check_room_role(principal)
                    if scheduled is None:
                        raise Refused("bad_session", f"no session {identity.session_id}")
                    _check_assignment(principal, assignments.get((scheduled.case_id, principal.role)))
                    current = _staff_identity(principal, scheduled, case, users.get(principal.subject_id or ""))
                else:
                    raise Refused("bad_token", "a receipt does not open a room; use your personal join link")
                _same_participant(identity, current)
                answers.append(None)
            except Refused as refused:
                answers.append(refused)
        return answers


def _same_participant(identity: Identity, current: Identity) -> None:
    if current.participant_id != identity.participant_id or current.role != identity.role:
        raise Refused("bad_token", "this credential now stands for someone else")


def _party_identity(principal: Principal, party: Party | None, scheduled: ScheduledSession | None,
                    case: Case | None) -> Identity:
    if party is None or scheduled is None:
        raise Refused("bad_token", "this join link is not valid")
    _check_session(scheduled, case)
    return Identity(participant_id=party.party_id, role=party.role, name=party.name, case_id=scheduled.case_id,
                    session_id=scheduled.session_id, mode=scheduled.mode, link_id=principal.link_id,
                    credential=principal.credential or "", expires_at=_timestamp(principal),
                    **_schedule(scheduled, case))


def _check_room_role(principal: Principal) -> None:
    if principal.role not in ROOM_ROLES:
        raise Refused("not_a_participant", f'role "{principal.role}" does not take part in mediation rooms')


def _check_assignment(principal: Principal, assignment: Assignment | None) -> None:
    if assignment is None or assignment.user_id != principal.subject_id:
        raise Refused("not_a_participant", f"you are not the {principal.role.replace('_', ' ')} of this case")


def _staff_identity(principal: Principal, scheduled: ScheduledSession, case: Case | None,
                    user: StaffUser | None) -> Identity:
    if user is None:
        raise Refused("bad_token", "the staff session has expired or was ended; sign in again")
    _check_session(scheduled, case)
    return Identity(participant_id=user.user_id, role=user.role, name=user.display_name,
                    case_id=scheduled.case_id, session_id=scheduled.session_id, mode=scheduled.mode,
                    credential=principal.credential or "", expires_at=_timestamp(principal),
                    **_schedule(scheduled, case))


def _timestamp(principal: Principal) -> float | None:
    return principal.expires_at.timestamp() if principal.expires_at is not None else None


def _check_session(scheduled: ScheduledSession, case: Case | None) -> None:
    if scheduled.state != "confirmed":
        raise Refused("bad_session", f'session {scheduled.session_id} is "{scheduled.state}", not confirmed')
    if case is None or case.state != "scheduled":
        state = case.state if case else "missing"
        raise Refused("bad_session", f'the case is "{state}"; its sessions are closed')


def _schedule(scheduled: ScheduledSession, case: Case | None) -> dict[str, Any]:
    return {"case_number": case.case_number if case else "", "starts_at": scheduled.starts_at.isoformat(),
            "duration_minutes": scheduled.duration_minutes}

