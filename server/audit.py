"""The append-only audit log: RFC 6962 Merkle leaves in the case record, checkpoints signed with Ed25519.

The tree, the checkpoint message and canonical JSON are the record format's (recording/records,
spec in docs/records.md); this module keeps the log in the case record and signs its heads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from recording.records import merkle
from recording.records.canonical import canonical_json
from recording.records.checkpoint import (
    NoteError,
    Pin,
    SignedNote,
    Witness,
    check_pinned,
    TreeHead,
    checkpoint_body,
    checkpoint_message,
    key_id,
    parse_note,
    sign_note,
    verify_note,
)
from server.database import Database
from server.datadir import private_directory
from server.models import AuditCheckpoint, AuditEntry
from server.witnesses import WitnessClient

log = logging.getLogger("mediation.audit")

# Any fixed 64-bit number; it names the lock that lets one sequencer at a time, across all nodes,
# number entries on PostgreSQL.
_PG_SEQUENCE_LOCK = 0x6D656469_61756474
# Pending entries numbered per sequencing transaction: bounds how long that transaction holds the lock.
SEQUENCE_BATCH = 1000
# A failing background step (database down) is retried at most this far apart.
_MAX_RETRY_DELAY = 5.0


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read the server's audit key, creating it (0600, exclusively) on first start."""
    if not path.exists():
        private_directory(path.parent, tighten=False)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            log.info("created audit signing key", extra={"key_id": key_id(key.public_key())})
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"audit key file {path} does not hold an Ed25519 private key")
    return loaded


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def default_origin(public_key: Ed25519PublicKey) -> str:
    """The log's origin line when none is configured: stable for one audit key."""
    return f"mediation.invalid/audit/{key_id(public_key)}"


def head_copy_paths(key_path: Path, records_dir: Path, beside_key: str = "") -> list[Path]:
    """Where a node keeps the latest signed note outside the database: beside its key, and in the records storage."""
    return [Path(beside_key) if beside_key else key_path.with_suffix(".checkpoint"),
            records_dir / "audit-checkpoint.note"]


class HeadCopies:
    """The latest signed checkpoint note, kept in files outside the database (each replaced atomically, 0600)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def read(self) -> list[tuple[str, str]]:
        """Return (where, note text) for every copy that exists; an unreadable copy is reported as its error."""
        found = []
        for path in self.paths:
            try:
                found.append((str(path), path.read_text(encoding="utf-8")))
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError) as exc:
                found.append((str(path), f"unreadable: {exc}"))
        return found

    def write(self, note: str) -> None:
        """Replace every copy; one that cannot be written is logged (the others, and the database, still hold)."""
        for path in self.paths:
            try:
                self._write(path, note)
            except OSError:
                log.exception("cannot keep the signed checkpoint in %s", path, extra={"path": str(path)})

    @staticmethod
    def _write(path: Path, note: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f"{path.name}.~tmp-{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(note)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


@dataclasses.dataclass(frozen=True)
class AuditDraft:
    """One entry for ``AuditLog.append_many``."""

    actor: str
    action: str
    case_id: str | None = None
    detail: dict[str, Any] | None = None


class AuditLog:
    """Queues entries inside the caller's transaction, sequences them into the tree, signs checkpoints.

    Appending takes no lock, so writers on every node proceed in parallel. Sequencing (numbering the
    committed pending entries and hashing their leaves) runs in its own short transaction, one at a
    time across all nodes; it is the only writer of ``seq``.
    """

    def __init__(self, db: Database, signing_key: Ed25519PrivateKey, *, origin: str = "",
                 copies: Sequence[Path] = (), witnesses: WitnessClient | None = None,
                 on_refused: Callable[[bool], None] | None = None) -> None:
        self._db = db
        self._key = signing_key
        self.public_key = signing_key.public_key()
        self.key_id = key_id(self.public_key)
        self.origin = origin or default_origin(self.public_key)
        self.copies = HeadCopies(copies)
        self.witnesses = witnesses
        self._on_refused = on_refused
        self._range = merkle.CompactRange()
        self._leaves: list[bytes] = []
        self._consistent: set[tuple[int, bytes]] = set()  # signed heads this node proved its tree extends
        self._lock = asyncio.Lock()
        # Set once the tree is not an extension of a signed head; the node then never signs again
        # (until an operator has restored the log and restarted it) and /readyz fails.
        self.refusal: str | None = None

    async def append(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        case_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Queue one entry in the caller's write transaction; returns its ``entry_id`` (not its seq).

        The entry joins the tree at the first sequencing after the caller commits; if the caller
        rolls back, it never existed and leaves no gap in the tree.
        """
        entry = AuditEntry(recorded_at=_now(), actor=actor, action=action, case_id=case_id,
                           detail=canonical_json(detail or {}).decode())
        session.add(entry)
        await session.flush()
        return entry.entry_id

    async def append_many(self, session: AsyncSession, drafts: Sequence[AuditDraft]) -> list[int]:
        """Queue several entries in the caller's write transaction, as ``append`` each; their entry_ids in order."""
        recorded_at = _now()
        entries = [AuditEntry(recorded_at=recorded_at, actor=draft.actor, action=draft.action, case_id=draft.case_id,
                              detail=canonical_json(draft.detail or {}).decode()) for draft in drafts]
        session.add_all(entries)
        await session.flush()
        return [entry.entry_id for entry in entries]

    async def sequence(self) -> int:
        """Give every committed pending entry the next seq and its leaf; returns how many were sequenced."""
        total = 0
        while True:
            async with self._db.read() as session:
                waiting = (await session.execute(
                    select(AuditEntry.entry_id).where(AuditEntry.seq.is_(None)).limit(1))).first()
            if waiting is None:
                return total  # idle: no lock taken
            done = await self._sequence_batch()
            total += done
            if done < SEQUENCE_BATCH:
                # Entries committed since are left to the next call, so a busy log cannot keep us here.
                return total

    async def _sequence_batch(self) -> int:
        async with self._db.write() as session:
            if not self._db.is_sqlite:
                # Held to this transaction's end: the next sequencer, on any node, starts from our seqs.
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SEQUENCE_LOCK})
            # On SQLite the caller holds Database.write's lock, which serialises this process's sequencers;
            # the unique seq refuses what another process might race in.
            last = (await session.execute(select(func.max(AuditEntry.seq)))).scalar_one()
            rows = (await session.execute(
                select(AuditEntry.entry_id, AuditEntry.recorded_at, AuditEntry.actor, AuditEntry.action,
                       AuditEntry.case_id, AuditEntry.detail)
                .where(AuditEntry.seq.is_(None)).order_by(AuditEntry.entry_id).limit(SEQUENCE_BATCH)
            )).all()
            seq = 0 if last is None else last + 1
            changes = []
            for entry_id, recorded_at, actor, action, case_id, detail in rows:
                canonical = canonical_json({
                    "seq": seq,
                    "recorded_at": recorded_at.isoformat(),
                    "actor": actor,
                    "action": action,
                    "case_id": case_id,
                    "detail": json.loads(detail),
                })
                changes.append({"entry_id": entry_id, "seq": seq, "canonical": canonical,
                                "leaf_hash": merkle.leaf_hash(canonical)})
                seq += 1
            if changes:
                await session.execute(update(AuditEntry), changes)
        return len(changes)

    async def checkpoint(self) -> AuditCheckpoint | None:
        """Sequence what is pending, then sign the tree head if the tree grew and extends every signed head.

        Returns the new checkpoint, or None when there is nothing new, another node signed this size
        first, or the node refuses (then ``refusal`` says why; see ``check_consistency``).
        """
        async with self._lock:
            await self.sequence()
            latest = await self._catch_up()
            if not self._consistent_with(latest):
                return None
            size = self._range.size
            if size == 0 or (latest is not None and latest.tree_size >= size):
                return None
            signed_at = _now()
            root = self._range.root()
            note = sign_note(checkpoint_body(self.origin, size, root), self.origin, self._key)
            checkpoint = AuditCheckpoint(
                tree_size=size, root_hash=root, signed_at=signed_at, key_id=self.key_id,
                signature=self._key.sign(checkpoint_message(size, root, signed_at)), note=note.render(),
            )
            try:
                async with self._db.write() as session:
                    session.add(checkpoint)
            except IntegrityError:
                return None  # another node signed this size first
            self._consistent.add((size, root))
            self.copies.write(note.render())
            if self.witnesses is not None:
                cosigned = await self.witnesses.cosign(note, self.consistency_proof)
                if cosigned != note:
                    checkpoint.note = cosigned.render()
                    async with self._db.write() as session:
                        await session.execute(update(AuditCheckpoint)
                                              .where(AuditCheckpoint.tree_size == size)
                                              .values(note=checkpoint.note))
                    self.copies.write(checkpoint.note)
            return checkpoint

    async def check_consistency(self) -> bool:
        """Load the tree and compare it with every signed head the node knows; False (and ``refusal``) if it refuses."""
        async with self._lock:
            return self._consistent_with(await self._catch_up())

    async def _catch_up(self) -> AuditCheckpoint | None:
        """Append the sequenced leaves this node has not seen; return the latest checkpoint in the database."""
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(AuditEntry.seq, AuditEntry.leaf_hash)
                    .where(AuditEntry.seq >= self._range.size)
                    .order_by(AuditEntry.seq)
                )
            ).all()
            latest = (await session.execute(
                select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1))).scalar_one_or_none()
        for seq, leaf in rows:
            if seq != self._range.size or leaf is None:
                # Entries are only ever appended: a hole means a database writer removed or emptied one.
                self._refuse(f"the log has a gap: entry {self._range.size} is missing or has no leaf "
                             f"(next found: {seq}): entries were deleted")
                break
            self._range.append(leaf)
            self._leaves.append(leaf)
        return latest

    async def history(self, after: int, limit: int) -> list[AuditCheckpoint]:
        """Signed checkpoints of a tree size above ``after``, smallest first."""
        async with self._db.read() as session:
            return list((await session.execute(
                select(AuditCheckpoint).where(AuditCheckpoint.tree_size > after)
                .order_by(AuditCheckpoint.tree_size).limit(limit))).scalars().all())

    async def proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof between two sizes of the tree as the database holds it; ValueError out of range."""
        if old_size > new_size:
            raise ValueError(f"old_size {old_size} is larger than new_size {new_size}")
        async with self._lock:
            await self._catch_up()
            return self.consistency_proof(old_size, new_size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 6962 proof that this node's tree of ``old_size`` prefixes its tree of ``new_size`` (default: all)."""
        size = len(self._leaves) if new_size is None else new_size
        if size > len(self._leaves):
            raise ValueError(f"new size {size} is beyond this node's tree of {len(self._leaves)} entries")
        return merkle.consistency_proof(self._leaves[:size], old_size)

    def _consistent_with(self, latest: AuditCheckpoint | None) -> bool:
        """Whether this node's tree extends the latest signed head in the database and in each outside copy."""
        if self.refusal is not None:
            return False
        heads: list[tuple[str, TreeHead | None, str]] = []
        if latest is not None:
            message = checkpoint_message(latest.tree_size, latest.root_hash, latest.signed_at)
            try:
                self.public_key.verify(latest.signature, message)
            except InvalidSignature:
                heads.append(("the database", None,
                              f"its latest checkpoint (size {latest.tree_size}) is not signed by this log's key"))
            else:
                heads.append(("the database", TreeHead(self.origin, latest.tree_size, latest.root_hash), ""))
        for where, text in self.copies.read():
            try:
                note = parse_note(text)
                head = note.head
            except NoteError as exc:
                heads.append((where, None, f"the copy is not a signed checkpoint note ({exc})"))
                continue
            if head.origin != self.origin or not verify_note(note, self.origin, self.public_key):
                heads.append((where, None, f"the copy is not signed by this log ({head.origin!r}, key {self.key_id})"))
                continue
            heads.append((where, head, ""))
        size = self._range.size
        for where, head, fault in heads:
            if head is None:
                return self._refuse(f"the signed checkpoint kept in {where} cannot be checked: {fault}")
            if (head.tree_size, head.root_hash) in self._consistent:
                continue
            if head.tree_size > size:
                return self._refuse(
                    f"the latest signed checkpoint kept in {where} has {head.tree_size} entries but the log "
                    f"holds only {size}: entries were removed")
            proof = self.consistency_proof(head.tree_size)
            if not merkle.verify_consistency(head.tree_size, size, head.root_hash, self._range.root(), proof):
                return self._refuse(
                    f"the log of {size} entries is not consistent with the signed checkpoint kept in {where} "
                    f"(size {head.tree_size}, root {head.root_hash.hex()[:16]}…): entries were edited, "
                    "removed or reordered")
            self._consistent.add((head.tree_size, head.root_hash))
        return True

    def _refuse(self, reason: str) -> bool:
        if self.refusal is not None:
            return False
        self.refusal = f"refusing to sign audit checkpoints: {reason}"
        log.error(self.refusal, extra={"audit_key_id": self.key_id, "tree_size": self._range.size})
        if self._on_refused is not None:
            self._on_refused(True)
        return False

    async def run_sequencer(self, interval: float) -> None:
        """Sequence every ``interval`` seconds until cancelled; see _repeat for failures."""
        await _repeat(self.sequence, interval, "audit sequencing failed")

    async def run_checkpoints(self, interval: float) -> None:
        """Checkpoint every ``interval`` seconds until cancelled; see _repeat for failures."""
        await _repeat(self.checkpoint, interval, "audit checkpoint failed")


async def _repeat(step: Callable[[], Awaitable[object]], interval: float, failure: str) -> None:
    """Run ``step`` every ``interval`` seconds; a failure is logged and retried, backing off to 5 s."""
    delay = interval
    while True:
        await asyncio.sleep(delay)
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - logged; the next tick retries
            log.exception(failure)
            delay = max(interval, min(delay * 2, _MAX_RETRY_DELAY))
        else:
            delay = interval


@dataclasses.dataclass
class VerificationReport:
    entries: int = 0
    # Appended and committed but not yet sequenced: not in the tree, so nothing vouches for them yet.
    pending: int = 0
    checkpoints: int = 0
    unsigned_tail: int = 0
    inclusion_proofs_checked: int = 0
    consistency_proofs_checked: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    # The latest checkpoint's signed note, which becomes the verifier's pin when the log verified.
    latest_note: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.checkpoints > 0


async def verify_log(db: Database, trusted_keys: dict[str, Ed25519PublicKey], *, pin: Pin | None = None,
                     witnesses: Sequence[Witness] = (), quorum: int = 0) -> VerificationReport:
    """Recompute every leaf and root; check signatures, inclusion of every entry and consistency.

    With a pin (the head a verifier accepted last) the entries must still hash to it, and the latest
    checkpoint's signed note must extend it and carry ``quorum`` cosignatures of ``witnesses``.
    """
    report = VerificationReport()
    async with db.read() as session:
        entries = (await session.execute(
            select(AuditEntry).where(AuditEntry.seq.is_not(None)).order_by(AuditEntry.seq))).scalars().all()
        report.pending = (await session.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.seq.is_(None)))).scalar_one()
        checkpoints = (
            await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size))
        ).scalars().all()
    report.entries = len(entries)
    report.checkpoints = len(checkpoints)
    leaves: list[bytes] = []
    for position, entry in enumerate(entries):
        if entry.seq != position:
            report.problems.append(f"entry at position {position} has seq {entry.seq}: an entry is missing or moved")
        canonical = entry.canonical or b""
        recomputed = merkle.leaf_hash(canonical)
        if recomputed != entry.leaf_hash:
            report.problems.append(f"entry {entry.seq}: stored leaf hash does not match its content")
        try:
            body = json.loads(canonical)
        except ValueError:
            report.problems.append(f"entry {entry.seq}: content is not valid JSON")
            body = {}
        try:
            detail = json.loads(entry.detail)
        except ValueError:
            detail = entry.detail  # cannot equal a decoded object: reported below
        expected = {"seq": entry.seq, "actor": entry.actor, "action": entry.action, "case_id": entry.case_id,
                    "recorded_at": entry.recorded_at.isoformat(), "detail": detail}
        for name, value in expected.items():
            if not isinstance(body, dict) or body.get(name) != value:
                report.problems.append(f"entry {entry.seq}: column {name} ({value!r}) differs from the hashed content")
        leaves.append(recomputed)
    _check_pinned_entries(report, leaves, pin)
    if not checkpoints:
        report.problems.append("no signed checkpoint: nothing vouches for the log")
        return report
    tree = merkle.TreeLevels(leaves) if leaves else None
    previous: AuditCheckpoint | None = None
    for checkpoint in checkpoints:
        public = trusted_keys.get(checkpoint.key_id)
        if public is None:
            report.problems.append(f"checkpoint {checkpoint.tree_size}: signed by unknown key {checkpoint.key_id}")
        else:
            try:
                public.verify(
                    checkpoint.signature,
                    checkpoint_message(checkpoint.tree_size, checkpoint.root_hash, checkpoint.signed_at),
                )
            except InvalidSignature:
                report.problems.append(f"checkpoint {checkpoint.tree_size}: bad signature")
        if checkpoint.tree_size > len(leaves):
            report.problems.append(
                f"checkpoint {checkpoint.tree_size}: log holds only {len(leaves)} entries: entries were deleted"
            )
            previous = checkpoint
            continue
        root = merkle.root_from_leaf_hashes(leaves[: checkpoint.tree_size])
        if root != checkpoint.root_hash:
            report.problems.append(
                f"checkpoint {checkpoint.tree_size}: root {checkpoint.root_hash.hex()[:16]}… does not match "
                f"the entries (recomputed {root.hex()[:16]}…): entries were edited, removed or reordered"
            )
        if previous is not None and previous.tree_size <= len(leaves):
            proof = merkle.consistency_proof(leaves[: checkpoint.tree_size], previous.tree_size)
            report.consistency_proofs_checked += 1
            if not merkle.verify_consistency(
                previous.tree_size, checkpoint.tree_size, previous.root_hash, checkpoint.root_hash, proof
            ):
                report.problems.append(
                    f"checkpoints {previous.tree_size} and {checkpoint.tree_size} are not consistent"
                )
        previous = checkpoint
    latest = checkpoints[-1]
    if tree is not None and latest.tree_size <= len(leaves):
        # Inclusion proofs are taken against the tree of the latest checkpoint's size.
        signed = merkle.TreeLevels(leaves[: latest.tree_size]) if latest.tree_size != len(leaves) else tree
        for index in range(latest.tree_size):
            report.inclusion_proofs_checked += 1
            if not merkle.verify_inclusion(
                leaves[index], index, latest.tree_size, signed.proof(index), latest.root_hash
            ):
                report.problems.append(f"entry {index}: not included in checkpoint {latest.tree_size}")
    report.unsigned_tail = max(0, len(leaves) - latest.tree_size)
    _check_pin(report, leaves, latest, trusted_keys, pin, witnesses, quorum)
    return report


def _check_pinned_entries(report: VerificationReport, leaves: list[bytes], pin: Pin | None) -> None:
    if pin is not None:
        if pin.head.tree_size > len(leaves):
            report.problems.append(f"[checkpoint_inconsistent] the pinned checkpoint has {pin.head.tree_size} entries, "
                                   f"the log only {len(leaves)}: entries were removed")
        elif merkle.root_from_leaf_hashes(leaves[:pin.head.tree_size]) != pin.head.root_hash:
            report.problems.append(f"[checkpoint_inconsistent] the first {pin.head.tree_size} entries no longer hash "
                                   "to the pinned checkpoint's root: entries were edited, removed or reordered")


def _check_pin(report: VerificationReport, leaves: list[bytes], latest: AuditCheckpoint,
               trusted_keys: dict[str, Ed25519PublicKey], pin: Pin | None, witnesses: Sequence[Witness],
               quorum: int) -> None:
    if latest.note is None:
        if pin is not None or quorum:
            report.problems.append(f"[checkpoint_note_malformed] checkpoint {latest.tree_size} has no signed note "
                                   "to check against the pin and the witnesses")
        return
    try:
        note = parse_note(latest.note)
        head = note.head
    except NoteError as exc:
        report.problems.append(f"[checkpoint_note_malformed] checkpoint {latest.tree_size}: {exc}")
        return
    public = trusted_keys.get(latest.key_id)
    if public is None:
        return  # already reported as signed by an unknown key
    proof: list[bytes] = []
    if pin is not None and pin.head.tree_size <= min(head.tree_size, len(leaves)) and head.tree_size <= len(leaves):
        proof = merkle.consistency_proof(leaves[:head.tree_size], pin.head.tree_size)
        report.consistency_proofs_checked += 1
    for problem in check_pinned(pin, note, public, proof, witnesses, quorum):
        report.problems.append(f"[{problem.code}] {problem.message}")
    report.latest_note = latest.note
