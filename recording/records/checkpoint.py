"""Signed checkpoints of the audit log: the exact message signed, the key's id, loading it, checking signatures.

Spec: docs/records.md ("Checkpoint message"). The server signs with it (server/audit.py); both
verifiers check with it (the JS verifier, web_client/src/lib/compliance/checkpoint.js, mirrors it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recording.records.problems import Problem

__all__ = [
    "CHECKPOINT_CONTEXT",
    "Checkpoint",
    "CheckpointVerifier",
    "checkpoint_message",
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
