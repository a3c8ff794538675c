"""Sealed records on the case: sealing to the statement in force, filing them, and audited compliance access (docs/records.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from recording.records.checkpoint import public_key_pem
from recording.records.kinds import RecordKind
from recording.records.manifest import build_manifest, manifest_object
from recording.records.merkle import TreeLevels
from recording.records.sealing import SealedObject, Sealer, SealRequest, parse_recipient
from recording.records.storage import RecordExistsError, RecordNotFoundError, RecordStorage, StorageError
from server.access import Principal
from server.audit import AuditDraft, AuditLog
from server.database import Database
from server.errors import Conflict, NotFound
from server.models import AuditCheckpoint, AuditEntry, SealedRecord
from server.recipients import RecipientKeys
from server.settings import Settings
from server.tokens import new_id


@dataclasses.dataclass(frozen=True)
class Filing(SealRequest):
    """One plaintext to seal and file, and who filed it (the audit entry's actor)."""

    actor: str = "system"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class CaseRecords:
    """Seals plaintext in memory to the case's recipients, stores only ciphertext, audits every access."""

    def __init__(self, settings: Settings, db: Database, audit: AuditLog, storage: RecordStorage,
                 keys: RecipientKeys, on_filed: Callable[[str, int], None] | None = None) -> None:
        self._settings = settings
        self._keys = keys
        self._db = db
        self._audit = audit
        self._storage = storage
        self._on_filed = on_filed  # (kind, ciphertext bytes) of each record filed, for metrics
        self._sealer = Sealer(storage, clock=_now)

    async def recipients(self, case_id: str) -> list[str]:
        """The recipients of the signed statement in force (server.recipients): nobody else is sealed to."""
        return await self._keys.recipients()

    async def next_index(self, case_id: str, session_id: str, kind: RecordKind, participant_id: str) -> int:
        async with self._db.read() as session:
            count = (await session.execute(
                select(func.count()).select_from(SealedRecord).where(
                    SealedRecord.case_id == case_id, SealedRecord.session_id == session_id,
                    SealedRecord.kind == kind.value, SealedRecord.participant_id == participant_id)
            )).scalar_one()
        return int(count)

    async def seal_and_file(self, plaintext: bytes, *, actor: str, kind: RecordKind, case_id: str,
                            session_id: str | None, participant_id: str | None = None,
                            index: int | None = None,
                            also: Callable[[AsyncSession], Awaitable[None]] | None = None) -> SealedRecord | None:
        """Encrypt in memory and file; None if the case has nobody to seal to (nothing is stored).

        ``also`` writes rows that must exist exactly when the record is filed: it runs in the same transaction."""
        recipients = await self.recipients(case_id)
        if not recipients:
            return None
        sealed = await self._sealer.seal(plaintext, kind=kind, case_id=case_id, session_id=session_id,
                                         recipients=recipients, participant_id=participant_id, index=index)
        return await self._enter(sealed, actor, also=also)

    async def seal_and_file_many(
            self, items: Sequence[Filing],
            also: Callable[[AsyncSession, list[Filing]], Awaitable[None]] | None = None,
    ) -> list[SealedRecord | None | Exception]:
        """Seal and file each item as ``seal_and_file`` does, in one storage pass and one transaction.

        Each item is still its own sealed record with its own ``record_sealed`` audit entry; only the
        files' directory fsyncs, the thread hops and the database transaction are shared. Per item the
        result is its record, None (nobody to seal to) or the error it met: a key taken
        (RecordExistsError), or the transaction's own failure, which every item of it shares. ``also``
        writes, in the same transaction, rows for the items that are filed. If the transaction breaks a
        unique constraint, each item is filed again in a transaction of its own, so only the items that
        collide fail (with IntegrityError).
        """
        if not items:
            return []
        recipients = await self.recipients(items[0].case_id)
        if not recipients:
            return [None] * len(items)
        sealed = await self._sealer.seal_many(items, recipients)
        results: list[SealedRecord | None | Exception] = list(sealed)  # type: ignore[arg-type]
        ready = [(position, item, obj) for position, (item, obj) in enumerate(zip(items, sealed))
                 if isinstance(obj, SealedObject)]
        try:
            filed = await self._enter_many([(item.actor, obj) for _, item, obj in ready],
                                           [item for _, item, _ in ready], also)
        except IntegrityError:
            filed = []
            for _, item, obj in ready:
                try:
                    filed.extend(await self._enter_many([(item.actor, obj)], [item], also))
                except IntegrityError as exc:
                    filed.append(exc)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch, which raises it
            filed = [exc] * len(ready)  # type: ignore[list-item]
        for (position, _, _), outcome in zip(ready, filed):
            results[position] = outcome
        return results

    async def _enter_many(self, sealed: list[tuple[str, SealedObject]], items: list[Filing],
                          also: Callable[[AsyncSession, list[Filing]], Awaitable[None]] | None) -> list[SealedRecord]:
        records = [SealedRecord(record_id=new_id("rec"), case_id=obj.case_id, session_id=obj.session_id,
                                kind=obj.kind.value, participant_id=obj.participant_id, part=obj.part,
                                index=obj.index, storage_key=obj.key, sha256=obj.sha256, size=obj.size,
                                recipients=list(obj.recipients), created_at=obj.created_at)
                   for _, obj in sealed]
        async with self._db.write() as session:
            entry_ids = await self._audit.append_many(session, [
                AuditDraft(actor=actor, action="record_sealed", case_id=obj.case_id, detail=obj.audit_detail())
                for actor, obj in sealed])
            for record, entry_id in zip(records, entry_ids):
                record.audit_entry_id = entry_id
            session.add_all(records)
            if also is not None:
                await also(session, items)
        if self._on_filed is not None:
            for _, obj in sealed:
                self._on_filed(obj.kind.value, obj.size)
        return records

    async def file_ciphertext(self, ciphertext: bytes, *, actor: str, recipients: list[str], case_id: str,
                              session_id: str, participant_id: str, part: int, index: int,
                              media: dict[str, Any] | None = None) -> SealedRecord:
        """Store a recording segment sealed by the recorder and enter it on the case and in the audit log.

        ``media`` (the media time the segment holds, its clock and whether it ends the file) goes into
        the audit entry beside the object's fields: the transcript's gaps are computed from it. A segment
        is filed once: the same participant, part and index again is ``segment_exists`` (409).
        """
        try:
            sealed = await self._sealer.store(ciphertext, kind=RecordKind.RECORDING_SEGMENT, case_id=case_id,
                                              session_id=session_id, recipients=recipients,
                                              participant_id=participant_id, index=index, part=part)
            return await self._enter(sealed, actor, media or {})
        except (RecordExistsError, IntegrityError):
            raise Conflict(f"segment {index} of part {part} of participant {participant_id} is already filed",
                           code="segment_exists", field="index") from None

    async def file_sealed_key(self, ciphertext: bytes, *, actor: str, recipients: list[str], case_id: str,
                              session_id: str, participant_id: str, detail: dict[str, Any]) -> SealedRecord:
        """Store an end-to-end encryption key a browser sealed to ``recipients`` and enter it on the case.

        Numbered per participant from 0; ``detail`` (the key's KID, channel and epoch, as the browser
        declares them) goes into the audit entry."""
        index = await self.next_index(case_id, session_id, RecordKind.E2EE_KEY, participant_id)
        for _ in range(8):
            try:
                sealed = await self._sealer.store(ciphertext, kind=RecordKind.E2EE_KEY, case_id=case_id,
                                                  session_id=session_id, recipients=recipients,
                                                  participant_id=participant_id, index=index)
                return await self._enter(sealed, actor, detail)
            except (RecordExistsError, IntegrityError):
                index += 1  # taken: by a filing a crash left unentered, or another socket of this participant
        raise RecordExistsError(f"no free number for a key of participant {participant_id} after index {index}")

    async def _enter(self, sealed: SealedObject, actor: str, extra: dict[str, Any] | None = None,
                     also: Callable[[AsyncSession], Awaitable[None]] | None = None) -> SealedRecord:
        record = SealedRecord(record_id=new_id("rec"), case_id=sealed.case_id, session_id=sealed.session_id,
                              kind=sealed.kind.value, participant_id=sealed.participant_id, part=sealed.part,
                              index=sealed.index, storage_key=sealed.key, sha256=sealed.sha256, size=sealed.size,
                              recipients=list(sealed.recipients), created_at=sealed.created_at)
        async with self._db.write() as session:
            record.audit_entry_id = await self._audit.append(session, actor=actor, action="record_sealed",
                                                             case_id=sealed.case_id,
                                                             detail={**(extra or {}), **sealed.audit_detail()})
            session.add(record)
            if also is not None:
                await also(session)
        if self._on_filed is not None:
            self._on_filed(sealed.kind.value, sealed.size)
        return record

    async def next_part(self, case_id: str, session_id: str) -> int:
        """The first recording part a new recorder of the session may use: one past every part filed."""
        async with self._db.read() as session:
            top = (await session.execute(
                select(func.max(SealedRecord.part)).where(
                    SealedRecord.case_id == case_id, SealedRecord.session_id == session_id,
                    SealedRecord.kind == RecordKind.RECORDING_SEGMENT.value)
            )).scalar_one_or_none()
        return 0 if top is None else int(top) + 1

    async def segment_counts(self, case_id: str, session_id: str) -> dict[str, list[int]]:
        """participant_id -> segments filed in each recording part of a session."""
        async with self._db.read() as session:
            rows = (await session.execute(
                select(SealedRecord.participant_id, SealedRecord.part, func.count())
                .where(SealedRecord.case_id == case_id, SealedRecord.session_id == session_id,
                       SealedRecord.kind == RecordKind.RECORDING_SEGMENT.value)
                .group_by(SealedRecord.participant_id, SealedRecord.part)
            )).all()
        counts: dict[str, list[int]] = {}
        for participant_id, part, count in rows:
            parts = counts.setdefault(participant_id, [])
            parts.extend([0] * (part + 1 - len(parts)))
            parts[part] = int(count)
        return counts

    async def list(self, case_id: str) -> list[tuple[SealedRecord, int | None]]:
        """The case's records, each with its audit entry's seq (None while the entry is pending)."""
        async with self._db.read() as session:
            return [(record, seq) for record, seq in (await session.execute(
                select(SealedRecord, AuditEntry.seq)
                .join(AuditEntry, AuditEntry.entry_id == SealedRecord.audit_entry_id)
                .where(SealedRecord.case_id == case_id)
                .order_by(SealedRecord.created_at, SealedRecord.storage_key)
            )).all()]

    async def download(self, principal: Principal, case_id: str, record_id: str) -> tuple[SealedRecord, bytes]:
        async with self._db.read() as session:
            record = await session.get(SealedRecord, record_id)
        if record is None or record.case_id != case_id:
            raise NotFound(f"case {case_id} has no record {record_id}", field="record_id")
        try:
            data = await self._storage.get(record.storage_key)
        except RecordNotFoundError:
            raise NotFound(f"record {record_id} is on the case but its ciphertext {record.storage_key} is not in "
                           "storage", code="record_missing", field="record_id") from None
        except StorageError as exc:
            raise Conflict(f"record {record_id} cannot be read from storage: {exc}", code="record_unreadable") from None
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise Conflict(f"record {record_id} in storage does not match its hash on the case record",
                           code="record_corrupt")
        async with self._db.write() as session:
            await self._audit.append(session, actor=principal.actor, action="record_downloaded", case_id=case_id,
                                     detail={"record_id": record_id, "sha256": record.sha256})
        return record, data

    async def manifest(self, principal: Principal, case_id: str) -> bytes:
        """The case bundle's manifest: every sealed object with an inclusion proof to a signed checkpoint."""
        await self._audit.checkpoint()  # sequences first, so records filed until now can be included
        async with self._db.read() as session:
            checkpoint = (await session.execute(
                select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
            )).scalar_one_or_none()
            size = checkpoint.tree_size if checkpoint is not None else 0
            # Only records whose entry is sequenced inside the checkpoint have a proof; a record filed
            # since (pending, or sequenced after it) waits for the next manifest.
            filed = [(record, entry) for record, entry in (await session.execute(
                select(SealedRecord, AuditEntry)
                .join(AuditEntry, AuditEntry.entry_id == SealedRecord.audit_entry_id)
                .where(SealedRecord.case_id == case_id, AuditEntry.seq < size)
                .order_by(SealedRecord.created_at, SealedRecord.storage_key)
            )).all()]
            # A leaf erased by tampering keeps its place (as no bytes), so the verifier sees the root differ.
            leaves = [leaf or b"" for leaf in (await session.execute(
                select(AuditEntry.leaf_hash).where(AuditEntry.seq < size).order_by(AuditEntry.seq)
            )).scalars()]
        tree = TreeLevels(leaves) if leaves else None
        objects = []
        for record, entry in filed:
            if checkpoint is None or entry.seq is None or entry.canonical is None:
                continue  # seq < size already left out pending entries; no content means a damaged row
            sealed = SealedObject(
                key=record.storage_key, kind=RecordKind(record.kind), case_id=record.case_id,
                session_id=record.session_id, participant_id=record.participant_id, index=record.index,
                part=record.part, sha256=record.sha256, size=record.size, created_at=record.created_at,
                recipients=tuple(record.recipients))
            objects.append(manifest_object(
                sealed, audit_seq=entry.seq, audit_entry=entry.canonical,
                proof=tree.proof(entry.seq) if tree is not None else [], tree_size=checkpoint.tree_size,
                root_hash=checkpoint.root_hash, signed_at=checkpoint.signed_at, key_id=checkpoint.key_id,
                signature=checkpoint.signature))
        async with self._db.write() as session:
            await self._audit.append(session, actor=principal.actor, action="records_listed", case_id=case_id,
                                     detail={"objects": len(objects)})
        return build_manifest(case_id=case_id, objects=objects,
                              audit_public_key_pem=public_key_pem(self._audit.public_key), exported_at=_now())
