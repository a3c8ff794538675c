"""Sealed records on the case: who they are sealed to, filing them, and audited compliance access."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import select

from recording.sealing import parse_recipient, seal
from recording.storage import RecordStorage
from server import merkle
from server.access import Principal
from server.audit import AuditLog, checkpoint_message, public_key_pem
from server.database import Database
from server.errors import Conflict, NotFound, ValidationFailed
from server.models import AuditCheckpoint, AuditEntry, SealedRecord, StaffUser
from server.settings import Settings
from server.tokens import new_id


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def record_key(case_id: str, session_id: str | None, kind: str, name: str) -> str:
    base = f"cases/{case_id}" + (f"/sessions/{session_id}" if session_id else "")
    return f"{base}/{kind}/{name}"


class CaseRecords:
    """Seals plaintext in memory to the case's recipients, stores only ciphertext, audits every access."""

    def __init__(self, settings: Settings, db: Database, audit: AuditLog, storage: RecordStorage) -> None:
        self._settings = settings
        self._db = db
        self._audit = audit
        self._storage = storage

    async def recipients(self, case_id: str) -> list[str]:
        """The compliance officers' age recipients, plus the operator's escrow key if configured."""
        async with self._db.read() as session:
            keys = (await session.execute(
                select(StaffUser.age_recipient).where(StaffUser.role == "compliance_officer",
                                                      StaffUser.disabled.is_(False),
                                                      StaffUser.age_recipient.is_not(None))
                .order_by(StaffUser.user_id)
            )).scalars().all()
        recipients = list(keys)
        if self._settings.escrow_recipient:
            recipients.append(self._settings.escrow_recipient)
        return recipients

    async def register_recipient(self, principal: Principal, text: str) -> StaffUser:
        try:
            recipient = parse_recipient(text)
        except ValueError as exc:
            raise ValidationFailed(f"recipient: {exc}", field="recipient") from None
        async with self._db.write() as session:
            user = await session.get(StaffUser, principal.subject_id)
            if user is None:
                raise NotFound("no such staff user")
            user.age_recipient = recipient
            await self._audit.append(session, actor=principal.actor, action="recipient_registered",
                                     detail={"recipient": recipient})
        return user

    async def seal_and_file(self, *, case_id: str, session_id: str | None, kind: str, name: str,
                            plaintext: bytes, actor: str, participant_id: str | None = None,
                            index: int | None = None) -> SealedRecord | None:
        """Encrypt in memory and file; None if the case has nobody to seal to (nothing is stored)."""
        recipients = await self.recipients(case_id)
        if not recipients:
            return None
        return await self.file_ciphertext(
            case_id=case_id, session_id=session_id, kind=kind, name=name, ciphertext=seal(plaintext, recipients),
            recipients=recipients, actor=actor, participant_id=participant_id, index=index)

    async def file_ciphertext(self, *, case_id: str, session_id: str | None, kind: str, name: str,
                              ciphertext: bytes, recipients: list[str], actor: str,
                              participant_id: str | None = None, index: int | None = None,
                              part: int | None = None) -> SealedRecord:
        """Store ciphertext sealed elsewhere (the recorder) and enter it on the case and in the audit log."""
        key = record_key(case_id, session_id, kind, name)
        digest = hashlib.sha256(ciphertext).hexdigest()
        await self._storage.put(key, ciphertext)
        record = SealedRecord(record_id=new_id("rec"), case_id=case_id, session_id=session_id, kind=kind,
                              storage_key=key, sha256=digest, size=len(ciphertext), recipients=recipients,
                              created_at=_now())
        async with self._db.write() as session:
            session.add(record)
            await session.flush()
            record.audit_seq = await self._audit.append(
                session, actor=actor, action="record_sealed", case_id=case_id,
                detail={"record_id": record.record_id, "kind": kind, "sha256": digest, "size": len(ciphertext),
                        "storage_key": key, "session_id": session_id, "participant_id": participant_id,
                        "index": index, "part": part, "recipients": recipients},
            )
        return record

    async def list(self, case_id: str) -> list[SealedRecord]:
        async with self._db.read() as session:
            return list((await session.execute(
                select(SealedRecord).where(SealedRecord.case_id == case_id)
                .order_by(SealedRecord.created_at, SealedRecord.storage_key)
            )).scalars())

    async def download(self, principal: Principal, case_id: str, record_id: str) -> tuple[SealedRecord, bytes]:
        async with self._db.read() as session:
            record = await session.get(SealedRecord, record_id)
        if record is None or record.case_id != case_id:
            raise NotFound(f"case {case_id} has no record {record_id}", field="record_id")
        data = await self._storage.get(record.storage_key)
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise Conflict(f"record {record_id} in storage does not match its hash on the case record",
                           code="record_corrupt")
        async with self._db.write() as session:
            await self._audit.append(session, actor=principal.actor, action="record_downloaded", case_id=case_id,
                                     detail={"record_id": record_id, "sha256": record.sha256})
        return record, data

    async def manifest(self, principal: Principal, case_id: str) -> dict[str, Any]:
        """Every sealed object of the case with an inclusion proof against a signed checkpoint."""
        checkpoint = await self._audit.checkpoint()
        async with self._db.read() as session:
            if checkpoint is None:
                checkpoint = (await session.execute(
                    select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
                )).scalar_one_or_none()
            records = list((await session.execute(
                select(SealedRecord).where(SealedRecord.case_id == case_id).order_by(SealedRecord.created_at)
            )).scalars())
            leaves = list((await session.execute(
                select(AuditEntry.leaf_hash).where(AuditEntry.seq < (checkpoint.tree_size if checkpoint else 0))
                .order_by(AuditEntry.seq)
            )).scalars())
            entries = {e.seq: e for e in (await session.execute(
                select(AuditEntry).where(AuditEntry.seq.in_([r.audit_seq for r in records if r.audit_seq is not None]))
            )).scalars()}
        objects = []
        for record in records:
            entry = entries.get(record.audit_seq) if record.audit_seq is not None else None
            detail = json.loads(entry.canonical)["detail"] if entry is not None else {}
            item: dict[str, Any] = {
                "record_id": record.record_id, "key": record.storage_key, "kind": record.kind,
                "sha256": record.sha256, "size": record.size, "session_id": record.session_id,
                "participant_id": detail.get("participant_id"), "index": detail.get("index"),
                "part": detail.get("part"),
                "created_at": record.created_at.isoformat(), "recipients": record.recipients,
                "audit_seq": record.audit_seq, "proof": None,
            }
            if entry is not None and checkpoint is not None and entry.seq < checkpoint.tree_size:
                item["proof"] = {
                    "canonical": base64.b64encode(entry.canonical).decode(),
                    "leaf_hash": entry.leaf_hash.hex(),
                    "path": [h.hex() for h in merkle.inclusion_proof(leaves, entry.seq)],
                }
            objects.append(item)
        async with self._db.write() as session:
            await self._audit.append(session, actor=principal.actor, action="records_listed", case_id=case_id,
                                     detail={"objects": len(objects)})
        return {
            "case_id": case_id,
            "checkpoint": None if checkpoint is None else {
                "tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash.hex(),
                "signed_at": checkpoint.signed_at.isoformat(), "key_id": checkpoint.key_id,
                "signature": checkpoint.signature.hex(),
                "message": base64.b64encode(checkpoint_message(checkpoint.tree_size, checkpoint.root_hash,
                                                               checkpoint.signed_at)).decode(),
            },
            "audit_public_key_pem": public_key_pem(self._audit.public_key),
            "objects": objects,
        }
