"""The RFC 6962 / RFC 9162 Merkle tree of the audit log: hashing, proofs, their verification, compact ranges.

The server builds trees and proofs from it; both verifiers check proofs with it (the JS verifier,
web_client/src/lib/compliance/merkle.js, mirrors verify_inclusion step for step). Spec: docs/records.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "TreeLevels",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

_HASH_SIZE = 32

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split_point(n: int) -> int:
    """Return the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """Return MTH(D[lo:hi]).

    Pairs nodes level by level and promotes a lone rightmost node unchanged, which
    yields the same tree as RFC 6962 §2.1's largest-power-of-two split, in O(hi - lo).
    """
    if hi <= lo:
        return EMPTY_ROOT
    level = [leaf_hashes[i] for i in range(lo, hi)]
    while len(level) > 1:
        paired = [node_hash(left, right) for left, right in zip(level[::2], level[1::2])]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of the given leaf hashes (RFC 6962 §2.1)."""
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path for leaf `index` (RFC 6962 §2.1.1 PATH), leaf-side first.

    Raises ValueError if index is not in [0, len(leaf_hashes)).
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"index {index} out of range for tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split_point(hi - lo)
        if index < mid:
            path.append(_subtree_root(leaf_hashes, mid, hi))
            hi = mid
        else:
            path.append(_subtree_root(leaf_hashes, lo, mid))
            lo = mid
    path.reverse()
    return path


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the proof that the first `old_size` leaves prefix the tree (RFC 6962 §2.1.2 PROOF).

    The proof is empty when old_size is 0 or equals the tree size.
    Raises ValueError if old_size is not in [0, len(leaf_hashes)].
    """
    size = len(leaf_hashes)
    if not 0 <= old_size <= size:
        raise ValueError(f"old_size {old_size} out of range for tree of size {size}")
    if old_size in (0, size):
        return []
    # Iterative SUBPROOF(m, D[lo:hi], b): `m` is relative to `lo`.
    path: list[bytes] = []
    lo, hi, m = 0, size, old_size
    whole_old_tree = True
    while m != hi - lo:
        k = _split_point(hi - lo)
        if m <= k:
            path.append(_subtree_root(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree_root(leaf_hashes, lo, lo + k))
            lo += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        path.append(_subtree_root(leaf_hashes, lo, hi))
    path.reverse()
    return path


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


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether `proof` shows the tree (`old_size`, `old_root`) is a prefix of (`new_size`, `new_root`).

    RFC 9162 §2.1.4.2, extended as in Certificate Transparency: equal sizes need an empty
    proof and equal roots; old_size 0 needs an empty proof and old_root == EMPTY_ROOT.
    Returns False, never raises, for out-of-range sizes, proofs of the wrong length and
    hashes that are not 32 bytes.
    """
    if not 0 <= old_size <= new_size:
        return False
    if len(old_root) != _HASH_SIZE or len(new_root) != _HASH_SIZE:
        return False
    if any(len(p) != _HASH_SIZE for p in proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class CompactRange:
    """Frontier of perfect-subtree roots covering leaves [0, size); O(log n) state and root."""

    __slots__ = ("_size", "_peaks")

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[bytes] = []

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Sequence[bytes]) -> CompactRange:
        """Return a compact range over the given leaf hashes."""
        compact = cls()
        for h in leaf_hashes:
            compact.append(h)
        return compact

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash, merging completed subtrees (amortised O(1))."""
        self._peaks.append(leaf_hash)
        carry = self._size
        while carry & 1:
            right = self._peaks.pop()
            self._peaks[-1] = node_hash(self._peaks[-1], right)
            carry >>= 1
        self._size += 1

    def root(self) -> bytes:
        """Return MTH of the leaves appended so far in O(log n)."""
        if not self._peaks:
            return EMPTY_ROOT
        acc = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            acc = node_hash(peak, acc)
        return acc


class TreeLevels:
    """All levels of a tree, for O(log n) inclusion proofs of every leaf (one pass builds them all)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])  # an unpaired right edge is promoted unchanged
            self.levels.append(above)

    def proof(self, index: int) -> list[bytes]:
        """Return the audit path of leaf `index`, leaf side first (as inclusion_proof does)."""
        path = []
        for level in self.levels[:-1]:
            sibling = index - 1 if index % 2 else index + 1
            if sibling < len(level):
                path.append(level[sibling])
            index //= 2
        return path
