"""The audit log's Merkle tree: RFC 6962 known answers, exhaustive proof round-trips and tamper detection."""

from __future__ import annotations

import functools
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recording.records.merkle import (
    TreeLevels,
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# Certificate Transparency's RFC 6962 reference tree (leaf inputs, roots, proofs).
CT_LEAF_DATA = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_LEAF_HASHES = [leaf_hash(d) for d in CT_LEAF_DATA]
CT_EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# (leaf index, tree size, audit path)
CT_INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, consistency proof)
CT_CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

MAX_SIZE = 40
LEAVES = [leaf_hash(f"audit-entry-{i}".encode()) for i in range(MAX_SIZE + 1)]
ROOTS = [root_from_leaf_hashes(LEAVES[:n]) for n in range(MAX_SIZE + 2)]


@functools.cache
def _inclusion(index: int, size: int) -> tuple[bytes, ...]:
    return tuple(inclusion_proof(LEAVES[:size], index))


@functools.cache
def _consistency(old_size: int, new_size: int) -> tuple[bytes, ...]:
    return tuple(consistency_proof(LEAVES[:new_size], old_size))


def _flip(h: bytes, pos: int = 0) -> bytes:
    return h[:pos] + bytes([h[pos] ^ 0x01]) + h[pos + 1 :]


def _all_inclusion_cases() -> list[tuple[int, int]]:
    return [(i, n) for n in range(1, MAX_SIZE + 1) for i in range(n)]


def _all_consistency_cases() -> list[tuple[int, int]]:
    return [(m, n) for n in range(1, MAX_SIZE + 1) for m in range(1, n + 1)]


# --- hashing primitives and known answers ---------------------------------------------


def test_empty_root_no_leaves_equals_sha256_of_empty_string() -> None:
    assert EMPTY_ROOT.hex() == CT_EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT
    assert CompactRange().size == 0


def test_leaf_hash_empty_input_matches_ct_vector() -> None:
    assert leaf_hash(b"").hex() == CT_ROOTS[1]
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()


def test_node_hash_two_ct_leaves_matches_ct_size_two_root() -> None:
    assert node_hash(CT_LEAF_HASHES[0], CT_LEAF_HASHES[1]).hex() == CT_ROOTS[2]


def test_leaf_hash_and_node_hash_same_bytes_are_domain_separated() -> None:
    left, right = CT_LEAF_HASHES[0], CT_LEAF_HASHES[1]
    assert leaf_hash(left + right) != node_hash(left, right)


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_root_from_leaf_hashes_ct_vectors_match_known_root(size: int) -> None:
    assert root_from_leaf_hashes(CT_LEAF_HASHES[:size]).hex() == CT_ROOTS[size]


def test_compact_range_ct_vectors_match_known_root_after_each_append() -> None:
    compact = CompactRange()
    for size, h in enumerate(CT_LEAF_HASHES, start=1):
        compact.append(h)
        assert compact.size == size
        assert compact.root().hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION_PROOFS)
def test_inclusion_proof_ct_vectors_match_known_path_and_verify(
    index: int, size: int, expected: list[str]
) -> None:
    proof = inclusion_proof(CT_LEAF_HASHES[:size], index)
    assert [p.hex() for p in proof] == expected
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(CT_LEAF_HASHES[index], index, size, proof, root)


@pytest.mark.parametrize(("old_size", "new_size", "expected"), CT_CONSISTENCY_PROOFS)
def test_consistency_proof_ct_vectors_match_known_proof_and_verify(
    old_size: int, new_size: int, expected: list[str]
) -> None:
    proof = consistency_proof(CT_LEAF_HASHES[:new_size], old_size)
    assert [p.hex() for p in proof] == expected
    old_root = bytes.fromhex(CT_ROOTS[old_size])
    new_root = bytes.fromhex(CT_ROOTS[new_size])
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)


# --- inclusion proofs -----------------------------------------------------------------


def test_inclusion_proof_every_index_sizes_1_to_40_verifies() -> None:
    for index, size in _all_inclusion_cases():
        proof = _inclusion(index, size)
        assert verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size]), (index, size)


def test_verify_inclusion_flipped_byte_anywhere_fails() -> None:
    for index, size in _all_inclusion_cases():
        proof = list(_inclusion(index, size))
        leaf, root = LEAVES[index], ROOTS[size]
        assert not verify_inclusion(_flip(leaf), index, size, proof, root)
        assert not verify_inclusion(leaf, index, size, proof, _flip(root, 31))
        for k in range(len(proof)):
            tampered = [*proof[:k], _flip(proof[k], k % 32), *proof[k + 1 :]]
            assert not verify_inclusion(leaf, index, size, tampered, root), (index, size, k)


def test_verify_inclusion_wrong_index_fails() -> None:
    for index, size in _all_inclusion_cases():
        proof = _inclusion(index, size)
        for other in range(size):
            if other != index:
                assert not verify_inclusion(LEAVES[index], other, size, proof, ROOTS[size])


def test_verify_inclusion_other_leaf_at_same_index_fails() -> None:
    for index, size in _all_inclusion_cases():
        proof = _inclusion(index, size)
        impostor = LEAVES[(index + 1) % (MAX_SIZE + 1)]
        assert not verify_inclusion(impostor, index, size, proof, ROOTS[size])


def test_verify_inclusion_wrong_size_with_different_path_shape_fails() -> None:
    # A claimed size whose audit path has a different length cannot verify; sizes sharing
    # the same path shape are indistinguishable by design (the signed tree head binds size).
    checked = 0
    for index, size in _all_inclusion_cases():
        proof = _inclusion(index, size)
        for claimed in range(0, MAX_SIZE + 2):
            if claimed == size:
                continue
            if index < claimed and len(_inclusion(index, claimed)) == len(proof):
                continue
            assert not verify_inclusion(LEAVES[index], index, claimed, proof, ROOTS[size])
            checked += 1
    assert checked > 10_000


def test_verify_inclusion_truncated_or_extended_proof_fails() -> None:
    extra = leaf_hash(b"extra")
    for index, size in _all_inclusion_cases():
        proof = list(_inclusion(index, size))
        leaf, root = LEAVES[index], ROOTS[size]
        assert not verify_inclusion(leaf, index, size, [*proof, extra], root)
        assert not verify_inclusion(leaf, index, size, [extra, *proof], root)
        assert not verify_inclusion(leaf, index, size, [*proof, root], root)
        if proof:
            assert not verify_inclusion(leaf, index, size, proof[:-1], root)
            assert not verify_inclusion(leaf, index, size, proof[1:], root)


@pytest.mark.parametrize(("index", "size"), [(5, 5), (7, 5), (-1, 5), (0, 0), (0, -1)])
def test_verify_inclusion_index_or_size_out_of_range_returns_false(index: int, size: int) -> None:
    assert verify_inclusion(LEAVES[0], index, size, [], ROOTS[1]) is False


def test_verify_inclusion_hashes_of_wrong_length_return_false() -> None:
    proof = list(_inclusion(3, 8))
    leaf, root = LEAVES[3], ROOTS[8]
    assert verify_inclusion(leaf, 3, 8, proof, root)
    assert verify_inclusion(leaf[:31], 3, 8, proof, root) is False
    assert verify_inclusion(leaf, 3, 8, proof, root + b"\x00") is False
    assert verify_inclusion(leaf, 3, 8, [proof[0][:31], *proof[1:]], root) is False
    assert verify_inclusion(b"", 0, 1, [], b"") is False


@pytest.mark.parametrize(
    ("size", "index", "message"),
    [
        (5, 7, "index 7 out of range for tree of size 5"),
        (5, 5, "index 5 out of range for tree of size 5"),
        (5, -1, "index -1 out of range for tree of size 5"),
        (0, 0, "index 0 out of range for tree of size 0"),
    ],
)
def test_inclusion_proof_index_out_of_range_raises_value_error_naming_index(
    size: int, index: int, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        inclusion_proof(LEAVES[:size], index)


# --- consistency proofs ---------------------------------------------------------------


def test_consistency_proof_every_pair_sizes_1_to_40_verifies() -> None:
    for old_size, new_size in _all_consistency_cases():
        proof = _consistency(old_size, new_size)
        assert verify_consistency(
            old_size, new_size, ROOTS[old_size], ROOTS[new_size], proof
        ), (old_size, new_size)


def test_consistency_proof_equal_sizes_is_empty() -> None:
    for size in range(MAX_SIZE + 1):
        assert _consistency(size, size) == ()


def test_verify_consistency_equal_sizes_requires_empty_proof_and_equal_roots() -> None:
    assert verify_consistency(8, 8, ROOTS[8], ROOTS[8], [])
    assert not verify_consistency(8, 8, ROOTS[8], ROOTS[7], [])
    assert not verify_consistency(8, 8, ROOTS[8], ROOTS[8], [ROOTS[8]])


def test_consistency_proof_from_empty_tree_is_empty_and_verifies() -> None:
    for size in range(MAX_SIZE + 1):
        assert _consistency(0, size) == ()
        assert verify_consistency(0, size, EMPTY_ROOT, ROOTS[size], [])


def test_verify_consistency_from_empty_tree_with_bad_root_or_proof_fails() -> None:
    assert not verify_consistency(0, 5, ROOTS[1], ROOTS[5], [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [ROOTS[5]])
    assert not verify_consistency(0, 0, EMPTY_ROOT, ROOTS[1], [])


def test_verify_consistency_flipped_byte_anywhere_fails() -> None:
    for old_size, new_size in _all_consistency_cases():
        proof = list(_consistency(old_size, new_size))
        old_root, new_root = ROOTS[old_size], ROOTS[new_size]
        assert not verify_consistency(old_size, new_size, _flip(old_root), new_root, proof)
        assert not verify_consistency(old_size, new_size, old_root, _flip(new_root, 31), proof)
        for k in range(len(proof)):
            tampered = [*proof[:k], _flip(proof[k], k % 32), *proof[k + 1 :]]
            assert not verify_consistency(
                old_size, new_size, old_root, new_root, tampered
            ), (old_size, new_size, k)


def test_verify_consistency_truncated_or_extended_proof_fails() -> None:
    extra = leaf_hash(b"extra")
    for old_size, new_size in _all_consistency_cases():
        proof = list(_consistency(old_size, new_size))
        old_root, new_root = ROOTS[old_size], ROOTS[new_size]
        assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, extra])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [extra, *proof])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [old_root, *proof])
        if proof:
            assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
            assert not verify_consistency(old_size, new_size, old_root, new_root, proof[1:])


def test_verify_consistency_wrong_sizes_with_different_proof_shape_fails() -> None:
    # As for inclusion: only claimed sizes whose proof has a different length must fail.
    checked = 0
    for old_size, new_size in _all_consistency_cases():
        proof = _consistency(old_size, new_size)
        old_root, new_root = ROOTS[old_size], ROOTS[new_size]
        claims = [(m, new_size) for m in range(-1, MAX_SIZE + 2)]
        claims += [(old_size, n) for n in range(-1, MAX_SIZE + 2)]
        for claimed_old, claimed_new in claims:
            if (claimed_old, claimed_new) == (old_size, new_size):
                continue
            in_range = 0 <= claimed_old <= claimed_new <= len(LEAVES)
            if in_range and len(_consistency(claimed_old, claimed_new)) == len(proof):
                continue
            assert not verify_consistency(claimed_old, claimed_new, old_root, new_root, proof)
            checked += 1
    assert checked > 10_000


def test_verify_consistency_swapped_roots_fails() -> None:
    for old_size, new_size in _all_consistency_cases():
        if old_size == new_size:
            continue
        proof = _consistency(old_size, new_size)
        assert not verify_consistency(old_size, new_size, ROOTS[new_size], ROOTS[old_size], proof)


@pytest.mark.parametrize(("old_size", "new_size"), [(6, 5), (-1, 5), (-2, -1), (1, 0)])
def test_verify_consistency_sizes_out_of_range_returns_false(old_size: int, new_size: int) -> None:
    assert verify_consistency(old_size, new_size, ROOTS[5], ROOTS[5], []) is False


def test_verify_consistency_hashes_of_wrong_length_return_false() -> None:
    proof = list(_consistency(3, 7))
    assert verify_consistency(3, 7, ROOTS[3], ROOTS[7], proof)
    assert verify_consistency(3, 7, ROOTS[3][:31], ROOTS[7], proof) is False
    assert verify_consistency(3, 7, ROOTS[3], ROOTS[7] + b"\x00", proof) is False
    assert verify_consistency(3, 7, ROOTS[3], ROOTS[7], [*proof[:-1], proof[-1][:31]]) is False
    assert verify_consistency(0, 0, b"", b"", []) is False


@pytest.mark.parametrize(
    ("size", "old_size", "message"),
    [
        (5, 6, "old_size 6 out of range for tree of size 5"),
        (5, -1, "old_size -1 out of range for tree of size 5"),
        (0, 1, "old_size 1 out of range for tree of size 0"),
    ],
)
def test_consistency_proof_old_size_out_of_range_raises_value_error_naming_size(
    size: int, old_size: int, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        consistency_proof(LEAVES[:size], old_size)


# --- compact range --------------------------------------------------------------------


def test_compact_range_sizes_0_to_300_root_matches_root_from_leaf_hashes() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(300)]
    compact = CompactRange()
    assert compact.root() == root_from_leaf_hashes([])
    for size, h in enumerate(leaves, start=1):
        compact.append(h)
        assert compact.size == size
        assert compact.root() == root_from_leaf_hashes(leaves[:size]), size


def test_compact_range_from_leaf_hashes_matches_incremental_appends() -> None:
    for size in range(MAX_SIZE + 1):
        compact = CompactRange.from_leaf_hashes(LEAVES[:size])
        assert compact.size == size
        assert compact.root() == ROOTS[size]


def test_compact_range_root_called_repeatedly_does_not_change_state() -> None:
    compact = CompactRange.from_leaf_hashes(LEAVES[:13])
    assert compact.root() == compact.root() == ROOTS[13]
    compact.append(LEAVES[13])
    assert compact.root() == ROOTS[14]


def test_root_from_leaf_hashes_over_a_million_leaves_matches_closed_form() -> None:
    x, y = leaf_hash(b"x"), leaf_hash(b"y")
    leaves = [x, y] * 2**19
    expected = node_hash(x, y)
    for _ in range(19):
        expected = node_hash(expected, expected)
    assert root_from_leaf_hashes(leaves) == expected


# --- tamper evidence (property-based) -------------------------------------------------

_entries = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


def _root_of(entries: list[bytes]) -> bytes:
    return root_from_leaf_hashes([leaf_hash(e) for e in entries])


@given(entries=_entries, data=st.data())
def test_root_single_leaf_modified_changes_root(entries: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(entries) - 1), label="index")
    replacement = data.draw(st.binary(max_size=12).filter(lambda b: b != entries[index]))
    modified = [*entries[:index], replacement, *entries[index + 1 :]]
    assert _root_of(modified) != _root_of(entries)


@given(entries=_entries, data=st.data())
def test_root_single_leaf_deleted_changes_root(entries: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(entries) - 1), label="index")
    shortened = [*entries[:index], *entries[index + 1 :]]
    assert _root_of(shortened) != _root_of(entries)


@given(entries=st.lists(st.binary(max_size=12), min_size=2, max_size=70, unique=True), data=st.data())
def test_root_two_distinct_leaves_swapped_changes_root(
    entries: list[bytes], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(entries) - 1), label="i")
    j = data.draw(st.integers(0, len(entries) - 1).filter(lambda k: k != i), label="j")
    swapped = list(entries)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert _root_of(swapped) != _root_of(entries)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"entry {i}".encode()) for i in range(n)]


def test_merkle_inclusion_every_proof_verifies_for_sizes_1_to_40() -> None:
    for size in range(1, 41):
        leaves = _leaves(size)
        root = root_from_leaf_hashes(leaves)
        for index in range(size):
            proof = inclusion_proof(leaves, index)
            assert verify_inclusion(leaves[index], index, size, proof, root), (size, index)


def test_merkle_inclusion_any_altered_input_fails() -> None:
    leaves = _leaves(13)
    root = root_from_leaf_hashes(leaves)
    proof = inclusion_proof(leaves, 5)
    other = leaf_hash(b"forged")
    assert not verify_inclusion(other, 5, 13, proof, root)
    assert not verify_inclusion(leaves[5], 4, 13, proof, root)
    assert not verify_inclusion(leaves[5], 5, 6, proof, root)  # the path has another shape
    assert not verify_inclusion(leaves[5], 5, 13, proof[:-1], root)
    assert not verify_inclusion(leaves[5], 5, 13, [*proof, proof[0]], root)
    for position in range(len(proof)):
        bent = list(proof)
        bent[position] = bytes([bent[position][0] ^ 1]) + bent[position][1:]
        assert not verify_inclusion(leaves[5], 5, 13, bent, root)


def test_merkle_inclusion_out_of_range_or_misshapen_input_is_false_not_an_error() -> None:
    leaves = _leaves(4)
    root = root_from_leaf_hashes(leaves)
    proof = inclusion_proof(leaves, 1)
    assert not verify_inclusion(leaves[1], 4, 4, proof, root)
    assert not verify_inclusion(leaves[1], -1, 4, proof, root)
    assert not verify_inclusion(leaves[1], 0, 0, [], root)
    assert not verify_inclusion(leaves[1][:31], 1, 4, proof, root)
    assert not verify_inclusion(leaves[1], 1, 4, [p[:31] for p in proof], root)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 33])
def test_merkle_levels_proofs_match_rfc6962_paths(size: int) -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(size)]
    levels = TreeLevels(leaves)
    for index in range(size):
        assert levels.proof(index) == inclusion_proof(leaves, index)
