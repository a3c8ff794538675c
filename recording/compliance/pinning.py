"""The bundle's checkpoint evidence checked against the officer's pinned checkpoint and the witnesses' quorum.

Spec: docs/records.md ("Pinning"). `fetch` writes `checkpoint.json` (the note of the manifest's
checkpoint with its cosignatures, and the consistency proof from the officer's pin); `open` checks
it before trusting any inclusion proof, and moves the pin forward only when it passed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recording.records.checkpoint import NoteError, Pin, Witness, check_pinned, parse_note, verify_note
from recording.records.manifest import Manifest
from recording.records.problems import Problem

__all__ = ["EVIDENCE_FILE", "EVIDENCE_FORMAT", "check_evidence", "evidence", "read_pin", "write_pin"]

EVIDENCE_FILE = "checkpoint.json"
EVIDENCE_FORMAT = "mediation-checkpoint-evidence/v1"


def evidence(note: str, log_vkey: str, witness_keys: Sequence[str], quorum: int,
             old_size: int | None, proof: Sequence[bytes]) -> bytes:
    """Render checkpoint.json."""
    consistency = None if old_size is None else {"old_size": old_size,
                                                 "proof": [base64.b64encode(p).decode() for p in proof]}
    return json.dumps({"format": EVIDENCE_FORMAT, "note": note, "log_vkey": log_vkey,
                       "witness_keys": list(witness_keys), "witness_quorum": quorum,
                       "consistency": consistency}, indent=1).encode()


def read_pin(path: Path | None) -> Pin | None:
    """The pinned checkpoint in `path`, None if there is none yet; ValueError if the file is not one."""
    if path is None or not path.exists():
        return None
    return Pin.parse(path.read_text(encoding="utf-8"))


def write_pin(path: Path, note: str) -> None:
    """Replace the pin with an accepted checkpoint note (0600, atomically)."""
    temporary = path.with_name(path.name + ".~tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(note)
    os.replace(temporary, path)


def _load(bundle: Path) -> tuple[dict[str, Any] | None, Problem | None]:
    try:
        raw = (bundle / EVIDENCE_FILE).read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, Problem("checkpoint_note_malformed", f"cannot read {EVIDENCE_FILE}: {exc.strerror}")
    try:
        held = json.loads(raw)
    except ValueError as exc:
        return None, Problem("checkpoint_note_malformed", f"{EVIDENCE_FILE} is not JSON: {exc}")
    if not isinstance(held, dict) or held.get("format") != EVIDENCE_FORMAT or not isinstance(held.get("note"), str):
        return None, Problem("checkpoint_note_malformed", f"{EVIDENCE_FILE} is not {EVIDENCE_FORMAT}")
    return held, None


def check_evidence(bundle: Path, manifest: Manifest, trusted: Mapping[str, Ed25519PublicKey], pin: Pin | None,
                   witnesses: Sequence[Witness], quorum: int) -> tuple[list[Problem], list[Problem], str | None]:
    """Return (problems, warnings, the note to pin when it passed)."""
    held, fault = _load(bundle)
    warnings = [] if pin is not None or held is None else [Problem(
        "checkpoint_not_pinned", "NO PINNED CHECKPOINT: consistency with a checkpoint you accepted before was not "
        "checked; pass --pin FILE (this bundle's checkpoint is pinned in it when it passes)")]
    if fault is not None:
        return [fault], warnings, None
    if held is None:
        if pin is not None or quorum:
            return [Problem("no_checkpoint_note", f"the bundle has no {EVIDENCE_FILE}: nothing shows its checkpoint "
                                                  "extends your pin or is witnessed (fetch it with --pin)")], \
                warnings, None
        return [], warnings, None
    try:
        note = parse_note(held["note"])
        head = note.head
    except NoteError as exc:
        return [Problem("checkpoint_note_malformed", f"the checkpoint note is malformed: {exc}")], warnings, None
    log_key = next((key for key in trusted.values() if verify_note(note, head.origin, key)), None)
    proof: list[bytes] = []
    problems: list[Problem] = []
    consistency = held.get("consistency")
    if pin is not None:
        try:
            if not isinstance(consistency, dict) or consistency.get("old_size") != pin.head.tree_size:
                raise ValueError(f"its consistency proof is not from your pinned size {pin.head.tree_size}")
            proof = [base64.b64decode(p, validate=True) for p in consistency["proof"]]
        except (ValueError, TypeError, KeyError, binascii.Error) as exc:
            problems.append(Problem("checkpoint_inconsistent", f"{head.describe()}: {exc}"))
    if log_key is None:
        problems.append(Problem("checkpoint_note_bad_signature",
                                f"{head.describe()}: no valid signature by a trusted audit key named {head.origin!r}"))
        problems += [p for p in check_pinned(pin, note, next(iter(trusted.values())), proof, witnesses, quorum)
                     if p.code != "checkpoint_note_bad_signature"] if trusted else []
    else:
        problems += check_pinned(pin, note, log_key, proof, witnesses, quorum)
    others = {(o.checkpoint.tree_size, o.checkpoint.root_hash) for o in manifest.objects} - \
        {(head.tree_size, head.root_hash)}
    if others:
        sizes = ", ".join(str(size) for size, _ in sorted(others))
        problems.append(Problem("checkpoint_inconsistent",
                                f"objects are proved against checkpoint(s) of size {sizes}, not the note's "
                                f"{head.describe()}"))
    return problems, warnings, None if problems else note.render()
