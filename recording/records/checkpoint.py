"""Signed checkpoints of the audit log: the exact messages signed, key ids, signed notes, cosignatures, pins.

Spec: docs/records.md ("Audit log, tree and checkpoints"). The server signs with it (server/audit.py),
the witness cosigns with it (server/witness.py); every verifier checks with it (the JS verifier,
web_client/src/lib/compliance/checkpoint.js, mirrors it).

Two signed forms of one tree head: the v1 checkpoint message (its signature rides in every manifest
entry), and the C2SP tlog-checkpoint body in a C2SP signed note, signed by the same key and cosigned
by witnesses (C2SP tlog-cosignature), which is what nodes compare, witnesses keep and verifiers pin.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import re
import struct
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from recording.records import merkle
from recording.records.problems import Problem

__all__ = [
    "CHECKPOINT_CONTEXT",
    "Checkpoint",
    "CheckpointVerifier",
    "NoteError",
    "Pin",
    "SignedNote",
    "TreeHead",
    "Witness",
    "add_signature",
    "check_pinned",
    "checkpoint_body",
    "checkpoint_message",
    "cosign",
    "cosignature_message",
    "count_cosignatures",
    "parse_checkpoint_body",
    "parse_note",
    "parse_vkey",
    "sign_note",
    "verify_note",
    "vkey",
    "key_id",
    "load_public_key",
    "normalized_time",
    "public_key_pem",
]

CHECKPOINT_CONTEXT = b"mediation-audit-checkpoint/v1\n"


def normalized_time(value: str | dt.datetime) -> str:
    """Return a time as Python's isoformat() renders it (so "Z" and "+00:00" sign alike); ValueError without offset."""
    parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return parsed.isoformat()


def checkpoint_message(tree_size: int, root_hash: bytes, signed_at: str | dt.datetime) -> bytes:
    """Return the exact bytes signed for a checkpoint: context line, then size, root and time, one per line."""
    return CHECKPOINT_CONTEXT + f"{tree_size}\n{root_hash.hex()}\n{normalized_time(signed_at)}\n".encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return the 16-hex-digit id of an audit key: SHA-256 of the raw public key, first 8 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parse a PEM Ed25519 public key; raise ValueError saying what it is otherwise."""
    try:
        loaded = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key but {type(loaded).__name__}")
    return loaded


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """Return the key as a PEM SubjectPublicKeyInfo block, as manifests and the API publish it."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root_hash: bytes
    signed_at: str
    key_id: str
    signature: bytes

    def describe(self) -> str:
        return f"checkpoint of size {self.tree_size} signed {self.signed_at} by key {self.key_id}"


class CheckpointVerifier:
    """Checks checkpoint signatures against trusted keys, once each, and notices forks."""

    def __init__(self, trusted: Mapping[str, Ed25519PublicKey]) -> None:
        self._trusted = dict(trusted)
        self._results: dict[Checkpoint, Problem | None] = {}
        self._roots: dict[int, Checkpoint] = {}
        self.forks: list[Problem] = []

    def check(self, checkpoint: Checkpoint) -> Problem | None:
        """Return None if the checkpoint is validly signed by a trusted key, else what is wrong."""
        if checkpoint not in self._results:
            self._results[checkpoint] = self._verify(checkpoint)
        return self._results[checkpoint]

    def _verify(self, checkpoint: Checkpoint) -> Problem | None:
        public = self._trusted.get(checkpoint.key_id)
        if public is None:
            return Problem("checkpoint_untrusted_key",
                           f"{checkpoint.describe()}: key {checkpoint.key_id} is not a trusted audit key "
                           f"(trusted: {', '.join(sorted(self._trusted)) or 'none'})")
        try:
            public.verify(checkpoint.signature,
                          checkpoint_message(checkpoint.tree_size, checkpoint.root_hash, checkpoint.signed_at))
        except InvalidSignature:
            return Problem("checkpoint_bad_signature",
                           f"{checkpoint.describe()}: BAD SIGNATURE - the checkpoint was not signed by the audit key")
        seen = self._roots.setdefault(checkpoint.tree_size, checkpoint)
        if seen.root_hash != checkpoint.root_hash:
            # Two validly signed heads of one size with different roots: the log was forked.
            self.forks.append(Problem(
                "audit_fork",
                f"two signed checkpoints of size {checkpoint.tree_size} have different roots "
                f"({seen.root_hash.hex()[:16]}… and {checkpoint.root_hash.hex()[:16]}…): "
                "the audit log was rewritten"))
        return None


# --- C2SP signed notes, tlog-checkpoint bodies and tlog-cosignatures ---------------------------------

SIGNATURE_ED25519 = 0x01  # C2SP signed-note: a note signature by an Ed25519 key
SIGNATURE_COSIGNATURE_V1 = 0x04  # C2SP tlog-cosignature: timestamped cosignature/v1
_EM_DASH = "\u2014"
_NAME = re.compile(r"^[^\s+]+$")
_MAX_NOTE = 64 * 1024


class NoteError(ValueError):
    """A signed note, checkpoint body or verifier key is malformed; the message says where."""


@dataclasses.dataclass(frozen=True)
class TreeHead:
    """A checkpoint body's content: the log's origin, its size and its root hash."""

    origin: str
    tree_size: int
    root_hash: bytes

    def describe(self) -> str:
        return f"checkpoint {self.origin} size {self.tree_size} root {self.root_hash.hex()[:16]}…"


@dataclasses.dataclass(frozen=True)
class SignedNote:
    """A note's text (ending in a newline) and its signature lines as (name, key hash, signature payload)."""

    text: str
    signatures: tuple[tuple[str, bytes, bytes], ...]

    def render(self) -> str:
        lines = [f"{_EM_DASH} {name} {base64.b64encode(key_hash + payload).decode()}\n"
                 for name, key_hash, payload in self.signatures]
        return self.text + "\n" + "".join(lines)

    @property
    def head(self) -> TreeHead:
        return parse_checkpoint_body(self.text)


def checkpoint_body(origin: str, tree_size: int, root_hash: bytes) -> str:
    """Return a C2SP tlog-checkpoint body: origin, size in decimal, base64 root, each line ending in a newline."""
    if not origin or "\n" in origin:
        raise NoteError(f"origin {origin!r} must be one non-empty line")
    if len(root_hash) != 32:
        raise NoteError(f"root hash has {len(root_hash)} bytes, not 32")
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n"


def parse_checkpoint_body(text: str) -> TreeHead:
    """Read a tlog-checkpoint body (extension lines allowed and ignored); NoteError saying what is wrong."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint body has at least three lines, each ending in a newline")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size):
        raise NoteError(f"the checkpoint's tree size {size[:30]!r} is not a decimal number")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise NoteError(f"the checkpoint's root hash {root[:60]!r} is not base64") from None
    if len(root_hash) != 32:
        raise NoteError(f"the checkpoint's root hash has {len(root_hash)} bytes, not 32")
    return TreeHead(origin, int(size), root_hash)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def note_key_hash(name: str, public_key: Ed25519PublicKey, signature_type: int = SIGNATURE_ED25519) -> bytes:
    """Return the 4-byte key hash: SHA-256(name || "\\n" || type || public key), first 4 bytes (C2SP signed-note)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + _raw(public_key)).digest()[:4]


def vkey(name: str, public_key: Ed25519PublicKey, signature_type: int = SIGNATURE_ED25519) -> str:
    """Return the verifier key string `<name>+<key hash hex>+<base64(type || public key)>`."""
    if not _NAME.match(name):
        raise NoteError(f"key name {name!r} may not be empty or hold spaces or '+'")
    encoded = base64.b64encode(bytes([signature_type]) + _raw(public_key)).decode()
    return f"{name}+{note_key_hash(name, public_key, signature_type).hex()}+{encoded}"


@dataclasses.dataclass(frozen=True)
class Witness:
    """A verifier key: a log's (type 0x01) or a witness's (type 0x04) name and Ed25519 key."""

    name: str
    public_key: Ed25519PublicKey
    signature_type: int

    @property
    def key_hash(self) -> bytes:
        return note_key_hash(self.name, self.public_key, self.signature_type)


def parse_vkey(text: str) -> Witness:
    """Parse a verifier key as `vkey` renders it; NoteError if it is malformed or its hash is wrong."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not _NAME.match(parts[0]):
        raise NoteError(f"verifier key {text[:80]!r} is not <name>+<hash>+<key>")
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raise NoteError(f"verifier key {parts[0]!r}: its key is not base64") from None
    if len(raw) != 33 or raw[0] not in (SIGNATURE_ED25519, SIGNATURE_COSIGNATURE_V1):
        raise NoteError(f"verifier key {parts[0]!r}: not an Ed25519 or cosignature/v1 key")
    witness = Witness(parts[0], Ed25519PublicKey.from_public_bytes(raw[1:]), raw[0])
    if witness.key_hash.hex() != parts[1].lower():
        raise NoteError(f"verifier key {parts[0]!r}: key hash {parts[1]!r} does not match its key")
    return witness


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> SignedNote:
    """Return the note signed by `name`'s Ed25519 key (C2SP signed-note)."""
    key_hash = note_key_hash(name, private_key.public_key())
    return SignedNote(text, ((name, key_hash, private_key.sign(text.encode())),))


def parse_note(note: str) -> SignedNote:
    """Split a signed note into its text and signature lines; NoteError if it is not one."""
    if len(note) > _MAX_NOTE:
        raise NoteError(f"note of {len(note)} characters is longer than {_MAX_NOTE}")
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise NoteError("a signed note is text, a blank line, then signature lines each ending in a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        match = re.fullmatch(rf"{_EM_DASH} ([^\s+]+) ([A-Za-z0-9+/=]+)", line)
        if match is None:
            raise NoteError(f"signature line {line[:80]!r} is not '{_EM_DASH} <name> <base64>'")
        try:
            raw = base64.b64decode(match.group(2), validate=True)
        except binascii.Error:
            raise NoteError(f"signature line of {match.group(1)!r} is not base64") from None
        if len(raw) < 5:
            raise NoteError(f"signature line of {match.group(1)!r} is too short")
        signatures.append((match.group(1), raw[:4], raw[4:]))
    return SignedNote(text + "\n", tuple(signatures))


def verify_note(note: SignedNote, name: str, public_key: Ed25519PublicKey) -> bool:
    """Return whether the note carries a valid Ed25519 signature by `name`'s key."""
    key_hash = note_key_hash(name, public_key)
    for signer, hash_, payload in note.signatures:
        if signer == name and hash_ == key_hash and len(payload) == 64:
            try:
                public_key.verify(payload, note.text.encode())
            except InvalidSignature:
                continue
            return True
    return False


def cosignature_message(text: str, timestamp: int) -> bytes:
    """Return what a witness signs (C2SP tlog-cosignature): the cosignature/v1 header, then the checkpoint body."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def cosign(text: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> tuple[str, bytes, bytes]:
    """Return a witness's cosignature of a checkpoint body as a signature line's (name, key hash, payload)."""
    key_hash = note_key_hash(name, private_key.public_key(), SIGNATURE_COSIGNATURE_V1)
    signature = private_key.sign(cosignature_message(text, timestamp))
    return name, key_hash, struct.pack(">Q", timestamp) + signature


def add_signature(note: SignedNote, line: tuple[str, bytes, bytes]) -> SignedNote:
    """Return the note with one more signature line (replacing one by the same name and key hash)."""
    kept = tuple(s for s in note.signatures if (s[0], s[1]) != (line[0], line[1]))
    return SignedNote(note.text, (*kept, line))


def count_cosignatures(note: SignedNote, witnesses: Sequence[Witness]) -> list[str]:
    """Return the names of the given witnesses whose cosignature of this note verifies."""
    valid = []
    for witness in witnesses:
        for signer, hash_, payload in note.signatures:
            if signer != witness.name or hash_ != witness.key_hash or len(payload) != 72:
                continue
            (timestamp,) = struct.unpack(">Q", payload[:8])
            try:
                witness.public_key.verify(payload[8:], cosignature_message(note.text, timestamp))
            except InvalidSignature:
                continue
            valid.append(witness.name)
            break
    return valid


@dataclasses.dataclass(frozen=True)
class Pin:
    """What a verifier accepted last: a tree head it keeps (a local file, browser storage) and checks from."""

    head: TreeHead

    def render(self) -> str:
        return checkpoint_body(self.head.origin, self.head.tree_size, self.head.root_hash)

    @classmethod
    def parse(cls, text: str) -> Pin:
        """Read a pin: a checkpoint body, or a whole signed note (its text is the body)."""
        body = parse_note(text).text if "\n\n" in text else text
        return cls(parse_checkpoint_body(body))


def check_pinned(pin: Pin | None, note: SignedNote, log_key: Ed25519PublicKey, proof: Sequence[bytes],
                 witnesses: Sequence[Witness], quorum: int) -> list[Problem]:
    """Check a log's signed note against a verifier's pin: signature, cosignature quorum, consistency.

    Returns the problems (empty: the note may become the new pin). The note's key name is its origin.
    """
    problems = []
    try:
        head = note.head
    except NoteError as exc:
        return [Problem("checkpoint_note_malformed", f"the checkpoint note is malformed: {exc}")]
    if not verify_note(note, head.origin, log_key):
        problems.append(Problem("checkpoint_note_bad_signature",
                                f"{head.describe()}: no valid signature by the audit key named {head.origin!r}"))
    cosigned = count_cosignatures(note, witnesses)
    if len(cosigned) < quorum:
        problems.append(Problem("checkpoint_not_witnessed",
                                f"{head.describe()}: {len(cosigned)} valid witness cosignature(s) "
                                f"({', '.join(cosigned) or 'none'}), {quorum} required"))
    if pin is not None:
        old = pin.head
        if old.origin != head.origin:
            problems.append(Problem("checkpoint_inconsistent",
                                    f"{head.describe()}: another log than the pinned {old.origin!r}"))
        elif old.tree_size > head.tree_size:
            problems.append(Problem("checkpoint_inconsistent",
                                    f"{head.describe()} is smaller than the pinned size {old.tree_size}: "
                                    "entries were removed from the log"))
        elif not merkle.verify_consistency(old.tree_size, head.tree_size, old.root_hash, head.root_hash, proof):
            problems.append(Problem("checkpoint_inconsistent",
                                    f"{head.describe()} is not consistent with the pinned checkpoint of size "
                                    f"{old.tree_size} (root {old.root_hash.hex()[:16]}…): the log was rewritten"))
    return problems
