"""RFC 6962 / RFC 9162 Merkle tree hashing, audit proofs and a compact range for the audit log."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

# The verifier's half lives with the offline compliance tool, which must not import the server.
from recording.merkleproof import leaf_hash, node_hash, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
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
