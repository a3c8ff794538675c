"""Checking that a leaf is in an RFC 6962 Merkle tree: the verifier's half only (RFC 9162 §2.1.3.2)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["leaf_hash", "node_hash", "verify_inclusion"]

_HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Return whether `proof` shows `leaf` (a leaf hash) at `index` in the tree of `tree_size` with `root`.

    RFC 9162 §2.1.3.2, step for step. Returns False, never raises, for an index outside the
    tree, a proof of the wrong length, or hashes that are not 32 bytes.
    """
    if not 0 <= index < tree_size:
        return False
    if len(leaf) != _HASH_SIZE or len(root) != _HASH_SIZE or any(len(p) != _HASH_SIZE for p in proof):
        return False
    fn, sn = index, tree_size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False  # the proof is longer than the path to the root
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
