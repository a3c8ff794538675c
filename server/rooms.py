"""The case record's side of live rooms: entry (through server.roomaccess), sealing and auditing room events."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import json
import logging
from typing import Protocol

from server.audit import AuditLog
from server.chatcommit import ChatCommits
from server.chatjournal import ChatJournal
from server.database import Database
from server.errors import ApiError, is_database_unavailable
from server.possession import Possession, Proof
from server.models import (
    Assignment,
    AuditEntry,
    Consent,
    Party,
    StaffUser,
)
from server.provenance import credential_detail
from recording.records.canonical import canonical_json
from recording.records.gaps import FiledSegment
from recording.records.kinds import RecordKind
from recording.records.transcript import RoomEntry, build_transcript
from server.records import CaseRecords, Filing
from signaling.consent import NOTICE_HASHES, NOTICES
from server.joinlinks import JoinLinks, RevokeReason
from server.roomaccess import RoomAccess
from server.tokens import new_id
from recording.records.storage import RecordExistsError
from signaling.errors import RoomError
from signaling.identity import Identity, Refused, SequenceTaken, Unavailable, UnknownRecipient

log = logging.getLogger("mediation.rooms")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Recorders(Protocol):
    """Starts and stops the recording peer of a session."""

    async def start(self, identity: Identity) -> None: ...

    async def stop(self, session_id: str, reason: str) -> None: ...

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

    def __init__(self, db: Database, audit: AuditLog, records: CaseRecords, recorders: Recorders,
                 access: RoomAccess, links: JoinLinks, journal: ChatJournal, chat: ChatCommits,
                 possession: Possession) -> None:
        self._db = db
        self._possession = possession
        self._journal = journal
        self._chat = chat
        self._access = access
        self._links = links
        self._audit = audit
        self._records = records
        self._recorders = recorders

    @_needs_case_record
    async def authenticate(self, auth: Any, environ: dict[str, Any]) -> Identity:
        return await self._access.enter(auth, environ)

    @_needs_case_record
    async def authorize(self, identity: Identity) -> None:
        await self._access.check(identity)

    @_needs_case_record
    async def authorize_many(self, identities: Sequence[Identity]) -> list[Refused | None]:
        return await self._access.check_many(identities)

    async def audit(self, identity: Identity, action: str, detail: dict[str, Any]) -> None:
        actor = "system" if identity.role == "system" else f"{identity.role}:{identity.participant_id}"
        async with self._db.write() as session:
            # A party's act (joining, consenting) names the link it acted with and how that link reached it.
            how = await credential_detail(session, via="join_link" if identity.link_id else None,
                                          link_id=identity.link_id)
            await self._audit.append(session, actor=actor, action=f"room_{action}", case_id=identity.case_id,
                                     detail={"session_id": identity.session_id, **detail, **how})

    @_needs_case_record
    async def participant_removed(self, identity: Identity, target_participant_id: str) -> None:
        async with self._db.write() as session:
            await self._links.revoke(session, case_id=identity.case_id, session_id=identity.session_id,
                                     party_id=target_participant_id, reason=RevokeReason.REMOVED,
                                     revoked_by=identity.participant_id, actor=_actor(identity))

    @_needs_case_record
    async def room_opened(self, identity: Identity) -> bool:
        sealed = bool(await self._records.recipients(identity.case_id))
        if not sealed:
            log.warning("room opened with no recipients: its chat will not be recorded",
                        extra={"case_id": identity.case_id, "session_id": identity.session_id})
        return sealed

    @_needs_case_record
    async def chat_message(self, identity: Identity, message: dict[str, Any]) -> None:
        # An end-to-end encrypted message is filed as its ciphertext with its KID and length: no text here.
        body = {k: message[k] for k in ("seq", "sent_at", "participant_id", "name", "role", "text", "channel",
                                        "kid", "ciphertext", "length") if k in message}
        filing = Filing(plaintext=json.dumps(body, ensure_ascii=False).encode(), kind=RecordKind.CHAT_MESSAGE,
                        case_id=identity.case_id, session_id=identity.session_id, index=message["seq"],
                        actor=_actor(identity))
        try:
            # Sealed, stored, journalled (the transcript holds every sealed message, whatever crashes when)
            # and audited with the messages of other rooms that arrived meanwhile; durable on return.
            await self._chat.file(filing, body)
        except (RecordExistsError, IntegrityError):
            raise SequenceTaken(f"chat message {message['seq']} of {identity.session_id} is sealed already") from None

    @_needs_case_record
    async def key_sealed(self, identity: Identity, sealed: bytes, recipients: list[str],
                         detail: dict[str, Any]) -> int:
        # The browser sealed it (docs/records.md, "End-to-end encryption keys"); only recipients in the statement
        # in force are accepted, so the audit entry's recipients never name a key nobody approved.
        in_force = set(await self._records.recipients(identity.case_id))
        strangers = [r for r in recipients if r not in in_force]
        if strangers:
            raise UnknownRecipient(f"not a recipient in force: {strangers[0]}")
        record = await self._records.file_sealed_key(
            sealed, actor=_actor(identity), recipients=recipients, case_id=identity.case_id,
            session_id=identity.session_id, participant_id=identity.participant_id, detail=detail)
        return int(record.index or 0)

    @_needs_case_record
    async def prove_possession(self, identity: Identity, act: str, proof: dict[str, str] | None) -> dict[str, Any]:
        try:
            return await self._possession.prove_member(identity.role, identity.participant_id, identity.case_id,
                                                       act, identity.session_id,
                                                       Proof(**proof) if proof is not None else None)
        except ApiError as exc:
            raise RoomError(exc.code, exc.message) from None

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

    async def session_ended(self, identity: Identity) -> None:
        """Seal the transcript once the recorder has filed its last segment, so its counts are final; then
        shred the chat journal it was built from.

        Built only from durable state: the room's audit entries and the chat journal (one entry per sealed
        chat message), never from the room store, so a node that crashed mid-session loses nothing from it."""
        await self._recorders.wait_stopped(identity.session_id)
        async with self._db.read() as session:
            # The latest events may still be pending (seq NULL): they come last, in the order appended.
            entries = (await session.execute(
                select(AuditEntry).where(AuditEntry.case_id == identity.case_id)
                .order_by(AuditEntry.seq.is_(None), AuditEntry.seq, AuditEntry.entry_id)
            )).scalars().all()
        session_entries = [(entry, detail) for entry in entries
                           if (entry.action.startswith("room_") or entry.action == "record_sealed")
                           and (detail := json.loads(entry.detail)).get("session_id") == identity.session_id]
        room = [RoomEntry(at=entry.recorded_at.isoformat(), actor=entry.actor,
                          action=entry.action.removeprefix("room_"), detail=detail)
                for entry, detail in session_entries if entry.action.startswith("room_")]
        # What each filed segment holds: the transcript's recording gaps are measured from it.
        segments = [segment for entry, detail in session_entries if entry.action == "record_sealed"
                    and (segment := FiledSegment.from_detail(detail)) is not None]
        messages = await self._journal.messages(identity.session_id)
        transcript = build_transcript(
            case_id=identity.case_id, session_id=identity.session_id, ended_at=_now().isoformat(), entries=room,
            messages=messages, names=await self._names(identity.case_id),
            recordings=await self._records.segment_counts(identity.case_id, identity.session_id),
            segments=segments)
        await self._records.seal_and_file(
            canonical_json(transcript), actor=_actor(identity), kind=RecordKind.TRANSCRIPT,
            case_id=identity.case_id, session_id=identity.session_id)
        await self._journal.shred(identity.session_id)

    async def _names(self, case_id: str) -> dict[str, tuple[str, str]]:
        async with self._db.read() as session:
            parties = (await session.execute(select(Party).where(Party.case_id == case_id))).scalars().all()
            staff = (await session.execute(
                select(StaffUser).join(Assignment, Assignment.user_id == StaffUser.user_id)
                .where(Assignment.case_id == case_id))).scalars().all()
        names = {p.party_id: (p.name, p.role) for p in parties}
        names.update({u.user_id: (u.display_name, u.role) for u in staff})
        return names


def _actor(identity: Identity) -> str:
    return "system" if identity.role == "system" else f"{identity.role}:{identity.participant_id}"
