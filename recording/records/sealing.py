"""Sealing in the age v1 format to X25519 recipients, in memory, with no key that opens them; and storing the result.

Spec: docs/records.md ("Sealed objects"). Records, recording segments (sealed by the recorder's
worker) and the secrets filed for parties (server/notifier.py) are all sealed here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import pyrage
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from recording.records.canonical import canonical_json
from recording.records.kinds import RecordKind, record_key
from recording.records.storage import RecordStorage

__all__ = [
    "AGE_HEADER", "SealRequest", "SealedObject", "Sealer", "open_sealed", "parse_recipient", "seal", "x25519_identity",
    "x25519_recipient",
]

# An age X25519 recipient is Bech32 (BIP 173) with HRP "age" over a 32-byte Curve25519 point:
# "age1" + 52 data characters + 6 checksum characters, all lowercase (the age CLI refuses
# uppercase, so we do too rather than store a key other tools reject).
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_RECIPIENT = re.compile(rf"^age1[{_BECH32_CHARSET}]{{58}}$")
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# Anything that looks like private key material is refused without ever being echoed back.
_SECRET_MARKERS = ("age-secret-key-", "private key", "age-plugin-")
_ECHO_LIMIT = 80
# Any fixed scalar detects small-order points: X25519 clamps scalars to multiples of the
# cofactor 8, so a point of order 1, 2, 4 or 8 always yields the all-zero shared secret.
_PROBE_KEY = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def _quote(text: str) -> str:
    """Render a rejected public value for an error message, shortened if long."""
    return repr(text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "…")


def _bech32_polymod(values: Sequence[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _bech32_payload(text: str) -> bytes | None:
    """Return the 8-bit payload of a lowercase "age1…" Bech32 string, or None if its checksum fails."""
    hrp, data_part = text[:3], text[4:]
    values = [_BECH32_CHARSET.index(c) for c in data_part]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _bech32_polymod(expanded + values) != 1:
        return None
    accumulator, bits, out = 0, 0, bytearray()
    for value in values[:-6]:
        accumulator = (accumulator << 5) | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    if bits >= 5 or accumulator & ((1 << bits) - 1):
        return None  # BIP 173: padding must be fewer than 5 bits, all zero
    return bytes(out)


def parse_recipient(text: str) -> str:
    """Return the canonical form of an age X25519 recipient ("age1…"); raise ValueError otherwise.

    Surrounding whitespace is dropped (keys are pasted). Private keys pasted by mistake are
    refused with a message that does not repeat them. Small-order points are refused: sealing
    to one would give a stanza anyone can open (and the age crate aborts on it).
    """
    if not isinstance(text, str):
        raise ValueError(f"an age recipient must be a string, not {type(text).__name__}")
    candidate = text.strip()
    lowered = candidate.lower()
    if any(marker in lowered for marker in _SECRET_MARKERS):
        raise ValueError(
            "this is a private key, not a recipient: give the public key (\"age1…\", "
            "printed by `age-keygen -y`) and keep the private key to yourself"
        )
    if not candidate:
        raise ValueError("an age recipient is empty")
    if candidate.startswith("AGE1"):
        raise ValueError(f"age recipient {_quote(candidate)} must be lowercase")
    if not _RECIPIENT.match(candidate):
        raise ValueError(
            f"{_quote(candidate)} is not an age X25519 recipient (expected \"age1\" followed by 58 "
            f"lowercase Bech32 characters, 62 in all; got {len(candidate)} characters)"
        )
    point = _bech32_payload(candidate)
    if point is None or len(point) != 32:
        raise ValueError(f"age recipient {_quote(candidate)} has a bad checksum (mistyped or truncated?)")
    try:
        _PROBE_KEY.exchange(X25519PublicKey.from_public_bytes(point))
    except ValueError:
        raise ValueError(f"age recipient {_quote(candidate)} is a small-order point and cannot be sealed to") from None
    try:
        pyrage.x25519.Recipient.from_str(candidate)
    except pyrage.RecipientError as exc:  # our checks passed but the library disagrees
        raise ValueError(f"age recipient {_quote(candidate)} is refused by the age library: {exc}") from None
    return candidate


def seal(plaintext: bytes, recipients: Sequence[str]) -> bytes:
    """Encrypt `plaintext` in memory to every recipient; return age v1 binary ciphertext.

    Anyone holding one of the recipients' private keys can decrypt; the caller holds none.
    Duplicate recipients are sealed to once. Raises ValueError for an empty or malformed list.
    """
    if not isinstance(plaintext, bytes):
        raise TypeError(f"plaintext must be bytes, not {type(plaintext).__name__}")
    if isinstance(recipients, (str, bytes)):
        # A lone string is a Sequence[str] of characters; never seal to "a", "g", "e"...
        raise ValueError("recipients must be a list of age recipients, not a single string")
    if not recipients:
        raise ValueError("refusing to seal to no recipients: the record could never be opened")
    canonical = list(dict.fromkeys(parse_recipient(r) for r in recipients))
    parsed = [pyrage.x25519.Recipient.from_str(r) for r in canonical]
    return pyrage.encrypt(plaintext, parsed)


def _bech32_encode(hrp: str, payload: bytes) -> str:
    """Return `payload` as lowercase Bech32 (BIP 173) with human-readable part `hrp`."""
    values, accumulator, bits = [], 0, 0
    for byte in payload:
        accumulator = (accumulator << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            values.append((accumulator >> bits) & 31)
    if bits:
        values.append((accumulator << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _bech32_polymod(expanded + values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)


def x25519_recipient(public_key: bytes) -> str:
    """Return the age recipient ("age1…") of a raw 32-byte X25519 public key."""
    if len(public_key) != 32:
        raise ValueError(f"an X25519 public key is 32 bytes, not {len(public_key)}")
    return parse_recipient(_bech32_encode("age", public_key))


def x25519_identity(secret: bytes) -> pyrage.x25519.Identity:
    """Return the age identity of a raw 32-byte X25519 private key (for keys derived, never stored)."""
    if len(secret) != 32:
        raise ValueError(f"an X25519 private key is 32 bytes, not {len(secret)}")
    return pyrage.x25519.Identity.from_str(_bech32_encode("age-secret-key-", secret).upper())


def open_sealed(ciphertext: bytes, identities: Sequence[pyrage.x25519.Identity]) -> bytes:
    """Decrypt age v1 ciphertext with `identities`; raise ValueError if none opens it or it was altered."""
    try:
        return pyrage.decrypt(ciphertext, list(identities))
    except pyrage.DecryptError as exc:
        raise ValueError(f"cannot open the sealed data: {exc}") from None


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


@dataclasses.dataclass(frozen=True)
class SealRequest:
    """One plaintext for `Sealer.seal_many`, with the metadata its key is made from."""

    plaintext: bytes
    kind: RecordKind
    case_id: str
    session_id: str | None
    participant_id: str | None = None
    index: int | None = None


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

    async def seal_many(self, items: Sequence[SealRequest], recipients: Sequence[str]) -> list[SealedObject | Exception]:
        """Seal and store each item as `seal` does, to the same recipients, in one pass over the storage.

        Each item is its own age file under its own key, exactly as `seal` would have made it; per item
        the result is its SealedObject or the error it met (ValueError, RecordExistsError, StorageError),
        and one item's failure leaves the others stored.
        """
        canonical = _recipient_tuple(recipients)
        if not canonical:
            raise ValueError("refusing to seal to no recipients: the records could never be opened")
        outcomes: list[SealedObject | Exception | None] = [None] * len(items)
        keyed: list[tuple[int, str]] = []
        for position, item in enumerate(items):
            try:
                if not isinstance(item.plaintext, bytes):
                    raise TypeError(f"plaintext must be bytes, not {type(item.plaintext).__name__}")
                keyed.append((position, record_key(item.kind, case_id=item.case_id, session_id=item.session_id,
                                                   participant_id=item.participant_id, index=item.index)))
            except (TypeError, ValueError) as exc:
                outcomes[position] = exc
        # The recipients are parsed once for the batch, not once per item (a Bech32 decode and a point
        # check each: more than the encryption of a chat message).
        parsed = [pyrage.x25519.Recipient.from_str(r) for r in canonical]

        def seal_all() -> list[tuple[bytes, str]]:
            sealed = []
            for position, _ in keyed:
                ciphertext = pyrage.encrypt(items[position].plaintext, parsed)
                sealed.append((ciphertext, hashlib.sha256(ciphertext).hexdigest()))
            return sealed

        sealed = await asyncio.to_thread(seal_all)
        stored = await self._storage.put_many([(key, ciphertext) for (_, key), (ciphertext, _) in zip(keyed, sealed)])
        created_at = self._clock()
        for (position, key), (ciphertext, digest), failure in zip(keyed, sealed, stored):
            item = items[position]
            outcomes[position] = failure if failure is not None else SealedObject(
                key=key, kind=RecordKind(item.kind), case_id=item.case_id, session_id=item.session_id,
                participant_id=item.participant_id, index=item.index, part=None, sha256=digest,
                size=len(ciphertext), created_at=created_at, recipients=canonical)
        return [outcome for outcome in outcomes if outcome is not None]

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
