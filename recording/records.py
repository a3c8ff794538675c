"""Sealed objects: what each kind of record is called, and sealing plus storing one in a single step."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from recording.sealing import parse_recipient, seal
from recording.storage import RecordStorage, validate_key

__all__ = [
    "AGE_HEADER", "FIRST_INDEX", "RecordKind", "SealedObject", "Sealer", "canonical_json", "check_id", "record_key",
]

# Ids as the case record issues them ("cas_<hex>", "ses_<hex>", "pty_<hex>", "usr_<hex>"): they
# become path components of keys, so nothing else is accepted.
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class RecordKind(enum.StrEnum):
    RECORDING_SEGMENT = "recording_segment"
    CHAT_MESSAGE = "chat_message"
    TRANSCRIPT = "transcript"
    CONSENT = "consent"
    AGREEMENT = "agreement"


@dataclasses.dataclass(frozen=True)
class _KeyRule:
    template: str
    session: bool  # session_id required (else it must be None)
    participant: bool | None  # True required, False forbidden, None optional (not in the key)
    index_digits: int | None  # None: no index; else required, zero-padded to this width
    part: bool = False  # a recording part (a new WebM stream: after a reconnect, a caucus) is required


# The index sequences the compliance tool expects: segments count from 0 within each part
# (segment 0 holds the part's WebM header) and parts from 0; chat from 1 (the room's `seq`);
# consents from 0; agreement versions from 1.
FIRST_INDEX: dict[RecordKind, int] = {
    RecordKind.RECORDING_SEGMENT: 0,
    RecordKind.CHAT_MESSAGE: 1,
    RecordKind.CONSENT: 0,
    RecordKind.AGREEMENT: 1,
}

_PART_DIGITS = 4

_RULES: dict[RecordKind, _KeyRule] = {
    RecordKind.RECORDING_SEGMENT: _KeyRule(
        "cases/{case}/sessions/{session}/recordings/{participant}/{part}/{index}.webm.age", True, True, 6, part=True),
    RecordKind.CHAT_MESSAGE: _KeyRule("cases/{case}/sessions/{session}/chat/{index}.json.age", True, None, 8),
    RecordKind.TRANSCRIPT: _KeyRule("cases/{case}/sessions/{session}/transcript.json.age", True, False, None),
    RecordKind.CONSENT: _KeyRule(
        "cases/{case}/sessions/{session}/consents/{participant}/{index}.json.age", True, True, 4),
    # An agreement belongs to the case, not to one session: drafts and signatures come later.
    RecordKind.AGREEMENT: _KeyRule("cases/{case}/agreements/{index}.json.age", False, False, 4),
}


def check_id(name: str, value: object) -> str:
    """Return `value` if it is an id fit to be a key component; raise ValueError naming `name` otherwise."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"{name} {value!r} is not an id of the form [a-z0-9][a-z0-9_-]{{0,63}}")
    return value


def record_key(
    kind: RecordKind | str,
    *,
    case_id: str,
    session_id: str | None,
    participant_id: str | None = None,
    index: int | None = None,
    part: int | None = None,
) -> str:
    """Return the storage key of a record; raise ValueError if the fields do not fit the kind.

    recording_segment  cases/<case>/sessions/<session>/recordings/<participant>/<part:04d>/<index:06d>.webm.age
    chat_message       cases/<case>/sessions/<session>/chat/<seq:08d>.json.age
    transcript         cases/<case>/sessions/<session>/transcript.json.age
    consent            cases/<case>/sessions/<session>/consents/<participant>/<index:04d>.json.age
    agreement          cases/<case>/agreements/<version:04d>.json.age
    """
    try:
        kind = RecordKind(kind)
    except ValueError:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {[k.value for k in RecordKind]}") from None
    rule = _RULES[kind]
    fields = {"case": check_id("case_id", case_id)}
    if rule.session:
        fields["session"] = check_id("session_id", session_id)
    elif session_id is not None:
        raise ValueError(f"a {kind} belongs to the case, not to session {session_id!r}")
    if rule.participant is True:
        fields["participant"] = check_id("participant_id", participant_id)
    elif rule.participant is False and participant_id is not None:
        raise ValueError(f"a {kind} has no participant, got {participant_id!r}")
    elif participant_id is not None:
        check_id("participant_id", participant_id)
    if rule.index_digits is None:
        if index is not None:
            raise ValueError(f"a {kind} has no index, got {index!r}")
    else:
        first, limit = FIRST_INDEX[kind], 10**rule.index_digits
        # bool is an int; an index of True is a bug, not segment 1.
        if not isinstance(index, int) or isinstance(index, bool) or not first <= index < limit:
            raise ValueError(f"a {kind} needs an integer index in [{first}, {limit}), got {index!r}")
        fields["index"] = f"{index:0{rule.index_digits}d}"
    if rule.part:
        limit = 10**_PART_DIGITS
        if not isinstance(part, int) or isinstance(part, bool) or not 0 <= part < limit:
            raise ValueError(f"a {kind} needs an integer part in [0, {limit}), got {part!r}")
        fields["part"] = f"{part:0{_PART_DIGITS}d}"
    elif part is not None:
        raise ValueError(f"a {kind} has no part, got {part!r}")
    key = rule.template.format(**fields)
    validate_key(key)
    return key


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same object always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class SealedObject:
    """One stored ciphertext and what the case record and audit log say about it."""

    key: str
    kind: RecordKind
    case_id: str
    session_id: str | None  # None only for an agreement
    participant_id: str | None
    index: int | None
    part: int | None  # recording segments only
    sha256: str  # hex SHA-256 of the ciphertext exactly as stored
    size: int  # bytes of ciphertext
    created_at: dt.datetime
    recipients: tuple[str, ...]

    def audit_detail(self) -> dict[str, Any]:
        """The `detail` of this object's audit entry; the compliance tool checks it against the bundle.

        It commits to the key (hence case, session, participant, part and index: the order in
        which segments are joined) and to the ciphertext's hash and size.
        """
        return {
            "key": self.key,
            "kind": self.kind.value,
            "session_id": self.session_id,
            "participant_id": self.participant_id,
            "index": self.index,
            "part": self.part,
            "sha256": self.sha256,
            "size": self.size,
            "recipients": list(self.recipients),
        }


# Every age v1 file starts so; anything else handed to `store` is refused as possible plaintext.
AGE_HEADER = b"age-encryption.org/v1\n"


def _recipient_tuple(recipients: Sequence[str]) -> tuple[str, ...]:
    if isinstance(recipients, (str, bytes)):
        raise ValueError("recipients must be a list of age recipients, not a single string")
    return tuple(dict.fromkeys(parse_recipient(r) for r in recipients))


class Sealer:
    """Seals plaintext to a case's recipients and stores the ciphertext; plaintext never reaches storage."""

    def __init__(self, storage: RecordStorage, *, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self._storage = storage
        self._clock = clock

    async def seal(
        self,
        plaintext: bytes,
        *,
        kind: RecordKind | str,
        case_id: str,
        session_id: str | None,
        recipients: Sequence[str],
        participant_id: str | None = None,
        index: int | None = None,
        part: int | None = None,
    ) -> SealedObject:
        """Seal `plaintext`, store it under its key, and return the SealedObject to enter in the record.

        Raises ValueError for bad metadata or recipients and RecordExistsError if the key is
        taken (a record is never replaced). The caller enters the result in the case record
        and the audit log, with `audit_detail()` as the entry's detail.
        """
        key = record_key(kind, case_id=case_id, session_id=session_id, participant_id=participant_id, index=index,
                         part=part)
        canonical = _recipient_tuple(recipients)
        ciphertext, digest = await asyncio.to_thread(_seal_and_hash, plaintext, canonical)
        await self._storage.put(key, ciphertext)
        return SealedObject(
            key=key, kind=RecordKind(kind), case_id=case_id, session_id=session_id,
            participant_id=participant_id, index=index, part=part, sha256=digest, size=len(ciphertext),
            created_at=self._clock(), recipients=canonical,
        )

    async def seal_json(self, value: Any, **metadata: Any) -> SealedObject:
        """Seal `value` as canonical JSON (chat messages, transcripts, consents, agreements)."""
        return await self.seal(canonical_json(value), **metadata)

    async def store(
        self,
        ciphertext: bytes,
        *,
        kind: RecordKind | str,
        case_id: str,
        session_id: str | None,
        recipients: Sequence[str],
        participant_id: str | None = None,
        index: int | None = None,
        part: int | None = None,
    ) -> SealedObject:
        """Store ciphertext sealed elsewhere (the recorder's worker) exactly like `seal` stores its own.

        `recipients` are those it was sealed to, as the caller knows them (age keeps no list a
        reader could check). Data that does not start with the age v1 header is refused, so
        plaintext handed over by mistake is never stored.
        """
        key = record_key(kind, case_id=case_id, session_id=session_id, participant_id=participant_id, index=index,
                         part=part)
        canonical = _recipient_tuple(recipients)
        if not canonical:
            raise ValueError("a sealed record needs the recipients it was sealed to")
        if not isinstance(ciphertext, bytes) or not ciphertext.startswith(AGE_HEADER):
            raise ValueError(f"refusing to store {key!r}: the data is not age v1 ciphertext")
        digest = await asyncio.to_thread(lambda: hashlib.sha256(ciphertext).hexdigest())
        await self._storage.put(key, ciphertext)
        return SealedObject(
            key=key, kind=RecordKind(kind), case_id=case_id, session_id=session_id,
            participant_id=participant_id, index=index, part=part, sha256=digest, size=len(ciphertext),
            created_at=self._clock(), recipients=canonical,
        )


def _seal_and_hash(plaintext: bytes, recipients: Sequence[str]) -> tuple[bytes, str]:
    ciphertext = seal(plaintext, recipients)
    return ciphertext, hashlib.sha256(ciphertext).hexdigest()
