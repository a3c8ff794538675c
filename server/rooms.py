"""The case record's side of live rooms: who may connect to which session, and auditing room events."""

from __future__ import annotations

import datetime as dt
import functools
import re
from http.cookies import CookieError, SimpleCookie
from typing import Any

from sqlalchemy import select

import json
import logging
from typing import Protocol

from server.accounts import COOKIE_NAME
from server.audit import AuditLog
from server.database import Database
from server.errors import is_database_unavailable
from server.models import (
    Assignment,
    AuditEntry,
    Case,
    Consent,
    JoinLink,
    Party,
    ScheduledSession,
    StaffSession,
    StaffUser,
)
from recording.records.canonical import canonical_json
from recording.records.kinds import RecordKind
from recording.records.transcript import RoomEntry, build_transcript
from server.records import CaseRecords
from signaling.consent import NOTICE_HASHES, NOTICES
from server.tokens import new_id
from server.tokens import hash_token, token_kind
from recording.records.storage import RecordExistsError
from signaling.identity import Identity, Refused, SequenceTaken, Unavailable

log = logging.getLogger("mediation.rooms")

_SESSION_ID = re.compile(r"^ses_[0-9a-f]{32}$")
ROOM_ROLES = ("mediator", "bank_representative")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _cookie_token(environ: dict[str, Any]) -> str | None:
    raw = environ.get("HTTP_COOKIE")
    if not isinstance(raw, str):
        return None
    try:
        cookie = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = cookie.get(COOKIE_NAME)
    return morsel.value if morsel is not None else None


class Recorders(Protocol):
    """Starts and stops the recording peer of a session."""

    async def start(self, identity: Identity) -> None: ...

    async def stop(self, session_id: str, reason: str) -> None: ...

    async def authenticate(self, token: str) -> Identity | None: ...

    async def wait_stopped(self, session_id: str) -> None: ...


def _needs_case_record(hook):
    """The database not answering becomes signaling's Unavailable: the client is told to retry."""

    @functools.wraps(hook)
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return await hook(*args, **kwargs)
        except Exception as exc:
            if is_database_unavailable(exc):
                raise Unavailable(f"the case record did not answer: {type(exc).__name__}") from exc
            raise

    return run


class RoomHooks:
    """Implements signaling's Hooks against the case record, its sealed records and the audit log."""

    def __init__(self, db: Database, audit: AuditLog, records: CaseRecords, recorders: Recorders) -> None:
        self._db = db
        self._audit = audit
        self._records = records
        self._recorders = recorders

    @_needs_case_record
    async def authenticate(self, auth: Any, environ: dict[str, Any]) -> Identity:
        if auth is None:
            auth = {}
        if not isinstance(auth, dict) or set(auth) - {"token", "session_id"}:
            raise Refused("bad_token", "auth must be {token, session_id}")
        token = auth.get("token") or _cookie_token(environ)
        session_id = auth.get("session_id")
        if not isinstance(token, str) or (token_kind(token) is None and not token.startswith("rtk_")):
            raise Refused("bad_token", "a join link or a staff sign-in is needed to enter a room")
        if session_id is not None and (not isinstance(session_id, str) or not _SESSION_ID.match(session_id)):
            raise Refused("bad_session", "session_id is not a valid session id")
        if isinstance(token, str) and token.startswith("rtk_"):
            identity = await self._recorders.authenticate(token)
            if identity is None or (session_id is not None and session_id != identity.session_id):
                raise Refused("bad_token", "this recorder credential is not valid")
            return identity
        kind = token_kind(token)
        if kind == "jln":
            return await self._by_link(token, session_id)
        if kind == "stf":
            return await self._by_staff(token, session_id)
        raise Refused("bad_token", "a receipt does not open a room; use your personal join link")

    async def _by_link(self, token: str, session_id: str | None) -> Identity:
        now = _now()
        async with self._db.read() as session:
            row = (await session.execute(
                select(JoinLink, Party, ScheduledSession, Case)
                .join(Party, Party.party_id == JoinLink.party_id)
                .join(ScheduledSession, ScheduledSession.session_id == JoinLink.session_id)
                .join(Case, Case.case_id == JoinLink.case_id)
                .where(JoinLink.token_hash == hash_token(token))
            )).one_or_none()
        if row is None:
            raise Refused("bad_token", "this join link is not valid")
        link, party, scheduled, case = row
        if link.revoked_at is not None:
            raise Refused("bad_token", "this join link has been revoked")
        if link.expires_at <= now:
            raise Refused("bad_token", "this join link has expired")
        if session_id is not None and session_id != link.session_id:
            raise Refused("bad_session", "this join link belongs to another session")
        self._check_session(scheduled, case)
        return Identity(participant_id=party.party_id, role=party.role, name=party.name, case_id=case.case_id,
                        session_id=scheduled.session_id, mode=scheduled.mode, link_id=link.link_id,
                        **_schedule(scheduled, case))

    async def _by_staff(self, token: str, session_id: str | None) -> Identity:
        now = _now()
        if session_id is None:
            raise Refused("bad_session", "staff must name the session_id to join")
        async with self._db.read() as session:
            row = (await session.execute(
                select(StaffSession, StaffUser).join(StaffUser, StaffUser.user_id == StaffSession.user_id)
                .where(StaffSession.token_hash == hash_token(token))
            )).one_or_none()
            if row is None or row[0].revoked_at is not None or row[0].expires_at <= now or row[1].disabled:
                raise Refused("bad_token", "the staff session has expired or was ended; sign in again")
            user = row[1]
            if user.role not in ROOM_ROLES:
                raise Refused("not_a_participant", f'role "{user.role}" does not take part in mediation rooms')
            scheduled = await session.get(ScheduledSession, session_id)
            if scheduled is None:
                raise Refused("bad_session", f"no session {session_id}")
            case = await session.get(Case, scheduled.case_id)
            assignment = await session.get(Assignment, (scheduled.case_id, user.role))
        if assignment is None or assignment.user_id != user.user_id:
            raise Refused("not_a_participant", f"you are not the {user.role.replace('_', ' ')} of this case")
        self._check_session(scheduled, case)
        return Identity(participant_id=user.user_id, role=user.role, name=user.display_name,
                        case_id=scheduled.case_id, session_id=scheduled.session_id, mode=scheduled.mode,
                        **_schedule(scheduled, case))

    @staticmethod
    def _check_session(scheduled: ScheduledSession, case: Case | None) -> None:
        if scheduled.state != "confirmed":
            raise Refused("bad_session", f'session {scheduled.session_id} is "{scheduled.state}", not confirmed')
        if case is None or case.state != "scheduled":
            state = case.state if case else "missing"
            raise Refused("bad_session", f'the case is "{state}"; its sessions are closed')

    async def audit(self, identity: Identity, action: str, detail: dict[str, Any]) -> None:
        actor = "system" if identity.role == "system" else f"{identity.role}:{identity.participant_id}"
        async with self._db.write() as session:
            await self._audit.append(session, actor=actor, action=f"room_{action}", case_id=identity.case_id,
                                     detail={"session_id": identity.session_id, **detail})

    @_needs_case_record
    async def participant_removed(self, identity: Identity, target_participant_id: str) -> None:
        now = _now()
        async with self._db.write() as session:
            links = (await session.execute(
                select(JoinLink).where(JoinLink.session_id == identity.session_id,
                                       JoinLink.party_id == target_participant_id,
                                       JoinLink.revoked_at.is_(None))
            )).scalars().all()
            for link in links:
                link.revoked_at, link.revoked_by = now, identity.participant_id
                await self._audit.append(session, actor=f"{identity.role}:{identity.participant_id}",
                                         action="link_revoked", case_id=identity.case_id,
                                         detail={"link_id": link.link_id, "reason": "removed_from_room"})

    @_needs_case_record
    async def room_opened(self, identity: Identity) -> bool:
        sealed = bool(await self._records.recipients(identity.case_id))
        if not sealed:
            log.warning("room opened with no recipients: its chat will not be recorded",
                        extra={"case_id": identity.case_id, "session_id": identity.session_id})
        return sealed

    @_needs_case_record
    async def chat_message(self, identity: Identity, message: dict[str, Any]) -> None:
        body = {k: message[k] for k in ("seq", "sent_at", "participant_id", "name", "role", "text", "channel")}
        try:
            await self._records.seal_and_file(
                json.dumps(body, ensure_ascii=False).encode(), actor=_actor(identity), kind=RecordKind.CHAT_MESSAGE,
                case_id=identity.case_id, session_id=identity.session_id, index=message["seq"])
        except RecordExistsError:
            raise SequenceTaken(f"chat message {message['seq']} of {identity.session_id} is sealed already") from None

    @_needs_case_record
    async def consent_changed(self, identity: Identity, notice_sha256: str | None) -> None:
        now = _now()
        async with self._db.write() as session:
            if notice_sha256 is not None:
                session.add(Consent(consent_id=new_id("con"), case_id=identity.case_id,
                                    session_id=identity.session_id, participant_id=identity.participant_id,
                                    notice_sha256=notice_sha256, given_at=now))
            else:
                consent = (await session.execute(
                    select(Consent).where(Consent.session_id == identity.session_id,
                                          Consent.participant_id == identity.participant_id,
                                          Consent.withdrawn_at.is_(None))
                    .order_by(Consent.given_at.desc()).limit(1)
                )).scalar_one_or_none()
                if consent is not None:
                    consent.withdrawn_at = now
        language = NOTICE_HASHES.get(notice_sha256 or "")
        evidence = {"participant_id": identity.participant_id, "role": identity.role, "name": identity.name,
                    "case_id": identity.case_id, "session_id": identity.session_id,
                    "action": "given" if notice_sha256 else "withdrawn", "notice_sha256": notice_sha256,
                    "notice_language": language, "notice_text": NOTICES.get(language or ""), "at": now.isoformat()}
        index = await self._records.next_index(identity.case_id, identity.session_id, RecordKind.CONSENT,
                                               identity.participant_id)
        await self._records.seal_and_file(
            json.dumps(evidence, ensure_ascii=False).encode(), actor=_actor(identity), kind=RecordKind.CONSENT,
            case_id=identity.case_id, session_id=identity.session_id, participant_id=identity.participant_id,
            index=index)

    async def start_recorder(self, identity: Identity) -> None:
        await self._recorders.start(identity)

    async def stop_recorder(self, identity: Identity, reason: str) -> None:
        await self._recorders.stop(identity.session_id, reason)

    async def session_ended(self, identity: Identity, messages: list[dict[str, Any]],
                            deleted: dict[str, dict[str, Any]]) -> None:
        """Seal the transcript once the recorder has filed its last segment, so its counts are final."""
        await self._recorders.wait_stopped(identity.session_id)
        async with self._db.read() as session:
            # The latest events may still be pending (seq NULL): they come last, in the order appended.
            entries = (await session.execute(
                select(AuditEntry).where(AuditEntry.case_id == identity.case_id)
                .order_by(AuditEntry.seq.is_(None), AuditEntry.seq, AuditEntry.entry_id)
            )).scalars().all()
        room = [RoomEntry(at=entry.recorded_at.isoformat(), actor=entry.actor,
                          action=entry.action.removeprefix("room_"), detail=detail)
                for entry in entries
                if entry.action.startswith("room_")
                and (detail := json.loads(entry.detail)).get("session_id") == identity.session_id]
        transcript = build_transcript(
            case_id=identity.case_id, session_id=identity.session_id, ended_at=_now().isoformat(), entries=room,
            messages=messages, names=await self._names(identity.case_id),
            recordings=await self._records.segment_counts(identity.case_id, identity.session_id))
        await self._records.seal_and_file(
            canonical_json(transcript), actor=_actor(identity), kind=RecordKind.TRANSCRIPT,
            case_id=identity.case_id, session_id=identity.session_id)

    async def _names(self, case_id: str) -> dict[str, tuple[str, str]]:
        async with self._db.read() as session:
            parties = (await session.execute(select(Party).where(Party.case_id == case_id))).scalars().all()
            staff = (await session.execute(
                select(StaffUser).join(Assignment, Assignment.user_id == StaffUser.user_id)
                .where(Assignment.case_id == case_id))).scalars().all()
        names = {p.party_id: (p.name, p.role) for p in parties}
        names.update({u.user_id: (u.display_name, u.role) for u in staff})
        return names


def _schedule(scheduled: ScheduledSession, case: Case | None) -> dict[str, Any]:
    return {"case_number": case.case_number if case else "", "starts_at": scheduled.starts_at.isoformat(),
            "duration_minutes": scheduled.duration_minutes}


def _actor(identity: Identity) -> str:
    return "system" if identity.role == "system" else f"{identity.role}:{identity.participant_id}"
