"""The case bundle a compliance officer downloads: its manifest format, and checking objects against the audit log.

Spec: docs/records.md ("Case bundle manifest"); the JS verifier mirrors it in
web_client/src/lib/compliance/manifest.js.

A bundle is a directory holding `manifest.json` and each sealed object's ciphertext at its
storage key (`<bundle>/cases/<case_id>/…/0000/000000.webm.age`). The manifest:

    {
      "format": "mediation-case-bundle/v1",
      "case_id": "cas_…",
      "exported_at": "<ISO 8601 with offset>",
      "audit_public_key_pem": "-----BEGIN PUBLIC KEY-----\\n…",  # the server's Ed25519 key, or null
      "objects": [
        {
          "key": "cases/cas_…/sessions/ses_…/recordings/pty_…/0000/000000.webm.age",
          "kind": "recording_segment",      # | chat_message | transcript | consent | agreement
          "session_id": "ses_…",            # null for an agreement
          "participant_id": "pty_…",        # null where the kind has none
          "index": 0,                       # null for a transcript; see kinds.FIRST_INDEX
          "part": 0,                        # recording segments only, else null
          "sha256": "<64 hex: SHA-256 of the ciphertext>",
          "size": 1234,                     # bytes of ciphertext
          "created_at": "<ISO 8601>",       # optional, informative
          "recipients": ["age1…", …],       # optional, informative
          "audit_seq": 17,                  # the audit entry's seq = its leaf index
          "audit_entry": "<base64 of the entry's canonical JSON, the exact bytes hashed>",
          "inclusion": {
            "leaf_hash": "<64 hex>",
            "proof": ["<64 hex>", …],       # RFC 6962 audit path, leaf side first
            "tree_size": 42,
            "root_hash": "<64 hex>",
            "checkpoint_signature": "<128 hex: Ed25519>",
            "signed_at": "<ISO 8601 with offset, as the checkpoint was signed>",
            "key_id": "<16 hex: SHA-256 of the raw public key, first 8 bytes>"
          }
        }, …
      ]
    }

Unknown fields are refused: a v1 reader must not skip what a later format means. The audit
entry's `detail` should be `SealedObject.audit_detail()`; it must at least carry `key` (or
`storage_key`) and `sha256` equal to the object's, and any of `kind`, `session_id`,
`participant_id`, `index`, `part` and `size` it carries must match too. That binds the ciphertext
and its place in the joined recording to the signed log. A recording segment's entry also carries
what media it holds (`media`, `clock_zero_ms`, `final`: docs/records.md, "Recording gaps"); the
transcript's gaps are computed from those fields, which are signed with the entry. (Age does not authenticate who
encrypted: anyone holding the public keys can produce a valid ciphertext, so only the audit
log vouches for an object.)
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from recording.records import merkle
from recording.records.checkpoint import Checkpoint, normalized_time
from recording.records.kinds import RecordKind, check_id, record_key
from recording.records.problems import Problem
from recording.records.sealing import SealedObject

__all__ = [
    "BUNDLE_FORMAT",
    "BundleError",
    "BundleObject",
    "Manifest",
    "MalformedEntry",
    "build_manifest",
    "check_audit_entry",
    "manifest_object",
    "parse_manifest",
]

BUNDLE_FORMAT = "mediation-case-bundle/v1"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_TOP_FIELDS = {"format", "case_id", "exported_at", "audit_public_key_pem", "objects"}
_OBJECT_FIELDS = {
    "key", "kind", "session_id", "participant_id", "index", "part", "sha256", "size", "created_at", "recipients",
    "audit_seq", "audit_entry", "inclusion",
}
_INCLUSION_FIELDS = {"leaf_hash", "proof", "tree_size", "root_hash", "checkpoint_signature", "signed_at", "key_id"}


class BundleError(Exception):
    """The manifest cannot be read at all (problem code manifest_error)."""

    code = "manifest_error"


class _Malformed(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class BundleObject:
    """One manifest entry, with its fields checked for shape (not yet for truth)."""

    position: int
    key: str
    kind: RecordKind
    session_id: str | None
    participant_id: str | None
    index: int | None
    part: int | None
    sha256: str
    size: int
    created_at: str | None
    recipients: tuple[str, ...]
    audit_seq: int
    audit_entry: bytes
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    checkpoint: Checkpoint

    def describe(self) -> str:
        return f"{self.kind} {self.key!r}"


@dataclasses.dataclass(frozen=True)
class MalformedEntry:
    """A manifest entry that could not be read; `hint` is whatever of it was readable."""

    position: int
    problem: str
    hint: Mapping[str, Any]


@dataclasses.dataclass
class Manifest:
    case_id: str
    exported_at: str
    audit_public_key_pem: str | None
    objects: list[BundleObject]
    malformed: list[MalformedEntry]


def _int(entry: Mapping[str, Any], name: str, *, minimum: int = 0, optional: bool = False) -> int | None:
    value = entry.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _Malformed(f"field {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _str(entry: Mapping[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = entry.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Malformed(f"field {name!r} must be a string, got {value!r}")
    return value


def _hex(entry: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> bytes:
    value = entry.get(name)
    if not isinstance(value, str) or not pattern.match(value):
        raise _Malformed(f"field {name!r} must be lowercase hex of the right length, got {value!r}")
    return bytes.fromhex(value)


def _exact_fields(entry: object, allowed: set[str], what: str) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise _Malformed(f"{what} is not a JSON object")
    missing = sorted(allowed - {"created_at", "recipients"} - entry.keys())
    unknown = sorted(entry.keys() - allowed)
    if missing:
        raise _Malformed(f"{what} lacks field(s) {missing}")
    if unknown:
        raise _Malformed(f"{what} has unknown field(s) {unknown}")
    return entry


def _parse_checkpoint(raw: object) -> tuple[bytes, tuple[bytes, ...], Checkpoint]:
    entry = _exact_fields(raw, _INCLUSION_FIELDS, "inclusion")
    proof = entry["proof"]
    if not isinstance(proof, list) or not all(isinstance(p, str) and _HEX64.match(p) for p in proof):
        raise _Malformed(f"inclusion field 'proof' must be a list of 64-hex hashes, got {proof!r}")
    signed_at = _str(entry, "signed_at")
    try:
        normalized_time(signed_at)
    except ValueError:
        raise _Malformed(f"inclusion field 'signed_at' is not an ISO 8601 time with offset: {signed_at!r}") from None
    key_id = _str(entry, "key_id")
    if not _KEY_ID.match(key_id):
        raise _Malformed(f"inclusion field 'key_id' must be 16 hex digits, got {key_id!r}")
    checkpoint = Checkpoint(
        tree_size=_int(entry, "tree_size", minimum=1), root_hash=_hex(entry, "root_hash", _HEX64),
        signed_at=signed_at, key_id=key_id, signature=_hex(entry, "checkpoint_signature", _HEX128),
    )
    return _hex(entry, "leaf_hash", _HEX64), tuple(bytes.fromhex(p) for p in proof), checkpoint


def _parse_object(position: int, raw: object, case_id: str) -> BundleObject:
    entry = _exact_fields(raw, _OBJECT_FIELDS, "entry")
    kind_text = _str(entry, "kind")
    try:
        kind = RecordKind(kind_text)
    except ValueError:
        raise _Malformed(f"unknown kind {kind_text!r}") from None
    key = _str(entry, "key")
    session_id = _str(entry, "session_id", optional=True)
    participant_id = _str(entry, "participant_id", optional=True)
    index = _int(entry, "index", optional=True)
    part = _int(entry, "part", optional=True)
    try:
        expected = record_key(kind, case_id=case_id, session_id=session_id, participant_id=participant_id,
                              index=index, part=part)
    except ValueError as exc:
        raise _Malformed(str(exc)) from None
    # The key is where the file is read from and the join order: it must be exactly what the
    # other fields say, so a renamed file cannot slip into another slot.
    if key != expected:
        raise _Malformed(f"key {key!r} does not match its kind, case, session, participant, part and index "
                         f"({expected!r})")
    sha256 = _str(entry, "sha256")
    if not _HEX64.match(sha256):
        raise _Malformed(f"field 'sha256' must be 64 lowercase hex digits, got {sha256!r}")
    recipients = entry.get("recipients", [])
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise _Malformed(f"field 'recipients' must be a list of strings, got {recipients!r}")
    try:
        audit_entry = base64.b64decode(_str(entry, "audit_entry"), validate=True)
    except binascii.Error:
        raise _Malformed("field 'audit_entry' is not base64") from None
    leaf_hash, proof, checkpoint = _parse_checkpoint(entry["inclusion"])
    return BundleObject(
        position=position, key=key, kind=kind, session_id=session_id, participant_id=participant_id, index=index,
        part=part, sha256=sha256, size=_int(entry, "size"), created_at=_str(entry, "created_at", optional=True),
        recipients=tuple(recipients), audit_seq=_int(entry, "audit_seq"), audit_entry=audit_entry,
        leaf_hash=leaf_hash, proof=proof, checkpoint=checkpoint,
    )


def parse_manifest(raw: bytes) -> Manifest:
    """Read a manifest; raise BundleError if unusable as a whole, list bad entries in `malformed`."""
    try:
        top = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"manifest is not valid JSON: {exc}") from None
    try:
        top = _exact_fields(top, _TOP_FIELDS, "manifest")
        if top["format"] != BUNDLE_FORMAT:
            raise _Malformed(f"format is {top['format']!r}, this tool reads {BUNDLE_FORMAT!r}")
        case_id = _str(top, "case_id")
        check_id("case_id", case_id)
        exported_at = _str(top, "exported_at")
        pem = _str(top, "audit_public_key_pem", optional=True)
        if not isinstance(top["objects"], list):
            raise _Malformed("field 'objects' is not a list")
    except (_Malformed, ValueError) as exc:
        raise BundleError(f"manifest: {exc}") from None
    objects: list[BundleObject] = []
    malformed: list[MalformedEntry] = []
    for position, entry in enumerate(top["objects"]):
        try:
            objects.append(_parse_object(position, entry, case_id))
        except _Malformed as exc:
            hint = {k: entry.get(k) for k in ("key", "kind", "session_id", "participant_id", "index", "part")
                    if isinstance(entry, Mapping)}
            malformed.append(MalformedEntry(position, str(exc), hint))
    return Manifest(case_id=case_id, exported_at=exported_at, audit_public_key_pem=pem,
                    objects=objects, malformed=malformed)


def check_audit_entry(obj: BundleObject, case_id: str) -> list[Problem]:
    """Return what is wrong with the object's audit entry and its binding to the object (nothing: [])."""
    problems: list[Problem] = []
    seq = obj.audit_seq
    recomputed = merkle.leaf_hash(obj.audit_entry)
    if recomputed != obj.leaf_hash:
        problems.append(Problem("audit_leaf_mismatch", f"audit entry {seq} does not hash to the manifest's leaf hash"))
    if not merkle.verify_inclusion(recomputed, seq, obj.checkpoint.tree_size, obj.proof, obj.checkpoint.root_hash):
        problems.append(Problem("audit_not_included",
                                f"audit entry {seq} is NOT in the audit log: its inclusion proof fails "
                                f"against the {obj.checkpoint.describe()}"))
    try:
        entry = json.loads(obj.audit_entry)
    except (ValueError, UnicodeDecodeError):
        return problems + [Problem("audit_entry_not_json", f"audit entry {seq} is not JSON")]
    if not isinstance(entry, dict):
        return problems + [Problem("audit_entry_not_object", f"audit entry {seq} is not a JSON object")]
    if entry.get("seq") != seq:
        problems.append(Problem("audit_seq_mismatch",
                                f"audit entry has seq {entry.get('seq')!r}, the manifest says {seq}"))
    if entry.get("case_id") != case_id:
        problems.append(Problem("audit_wrong_case",
                                f"audit entry {seq} belongs to case {entry.get('case_id')!r}, not {case_id!r}"))
    detail = entry.get("detail")
    if not isinstance(detail, dict):
        return problems + [Problem("audit_no_detail", f"audit entry {seq} has no detail object")]
    if "key" not in detail and "storage_key" in detail:
        detail = {**detail, "key": detail["storage_key"]}  # the name entries written before v1 use
    expected: dict[str, Any] = {
        "key": obj.key, "sha256": obj.sha256, "kind": obj.kind.value, "session_id": obj.session_id,
        "participant_id": obj.participant_id, "index": obj.index, "part": obj.part, "size": obj.size,
    }
    for name, value in expected.items():
        if name in ("key", "sha256") and name not in detail:
            problems.append(Problem("audit_field_absent", f"audit entry {seq} does not record the object's {name}"))
        elif name in detail and detail[name] != value:
            problems.append(Problem("audit_field_mismatch",
                                    f"audit entry {seq} records {name} {detail[name]!r}, the manifest says {value!r}"))
    return problems


def manifest_object(
    sealed: SealedObject,
    *,
    audit_seq: int,
    audit_entry: bytes,
    proof: Sequence[bytes],
    tree_size: int,
    root_hash: bytes,
    signed_at: dt.datetime,
    key_id: str,
    signature: bytes,
) -> dict[str, Any]:
    """Return one manifest entry for a sealed object, its audit entry and a signed checkpoint that holds it."""
    return {
        "key": sealed.key,
        "kind": sealed.kind.value,
        "session_id": sealed.session_id,
        "participant_id": sealed.participant_id,
        "index": sealed.index,
        "part": sealed.part,
        "sha256": sealed.sha256,
        "size": sealed.size,
        "created_at": sealed.created_at.isoformat(),
        "recipients": list(sealed.recipients),
        "audit_seq": audit_seq,
        "audit_entry": base64.b64encode(audit_entry).decode(),
        "inclusion": {
            "leaf_hash": merkle.leaf_hash(audit_entry).hex(),
            "proof": [p.hex() for p in proof],
            "tree_size": tree_size,
            "root_hash": root_hash.hex(),
            "checkpoint_signature": signature.hex(),
            "signed_at": normalized_time(signed_at),
            "key_id": key_id,
        },
    }


def build_manifest(
    *, case_id: str, objects: Sequence[Mapping[str, Any]], audit_public_key_pem: str, exported_at: dt.datetime
) -> bytes:
    """Return manifest.json's bytes for a bundle of `objects` (each from manifest_object)."""
    manifest = {
        "format": BUNDLE_FORMAT,
        "case_id": case_id,
        "exported_at": exported_at.isoformat(),
        "audit_public_key_pem": audit_public_key_pem,
        "objects": list(objects),
    }
    return json.dumps(manifest, indent=1, ensure_ascii=False).encode() + b"\n"
