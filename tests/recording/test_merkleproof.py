"""The compliance tool's own inclusion check agrees with the server's Merkle tree on every shape."""

from __future__ import annotations

from server import merkle
from recording import merkleproof


def _leaves(n: int) -> list[bytes]:
    return [merkleproof.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def test_merkleproof_hashes_match_the_server() -> None:
    assert merkleproof.leaf_hash(b"x") == merkle.leaf_hash(b"x")
    assert merkleproof.node_hash(b"a" * 32, b"b" * 32) == merkle.node_hash(b"a" * 32, b"b" * 32)


def test_merkleproof_every_server_proof_verifies_for_sizes_1_to_40() -> None:
    for size in range(1, 41):
        leaves = _leaves(size)
        root = merkle.root_from_leaf_hashes(leaves)
        for index in range(size):
            proof = merkle.inclusion_proof(leaves, index)
            assert merkleproof.verify_inclusion(leaves[index], index, size, proof, root), (size, index)


def test_merkleproof_any_altered_input_fails() -> None:
    leaves = _leaves(13)
    root = merkle.root_from_leaf_hashes(leaves)
    proof = merkle.inclusion_proof(leaves, 5)
    other = merkleproof.leaf_hash(b"forged")
    assert not merkleproof.verify_inclusion(other, 5, 13, proof, root)
    assert not merkleproof.verify_inclusion(leaves[5], 4, 13, proof, root)
    assert not merkleproof.verify_inclusion(leaves[5], 5, 6, proof, root)  # the path has another shape
    assert not merkleproof.verify_inclusion(leaves[5], 5, 13, proof[:-1], root)
    assert not merkleproof.verify_inclusion(leaves[5], 5, 13, [*proof, proof[0]], root)
    for position in range(len(proof)):
        bent = list(proof)
        bent[position] = bytes([bent[position][0] ^ 1]) + bent[position][1:]
        assert not merkleproof.verify_inclusion(leaves[5], 5, 13, bent, root)


def test_merkleproof_out_of_range_or_misshapen_input_is_false_not_an_error() -> None:
    leaves = _leaves(4)
    root = merkle.root_from_leaf_hashes(leaves)
    proof = merkle.inclusion_proof(leaves, 1)
    assert not merkleproof.verify_inclusion(leaves[1], 4, 4, proof, root)
    assert not merkleproof.verify_inclusion(leaves[1], -1, 4, proof, root)
    assert not merkleproof.verify_inclusion(leaves[1], 0, 0, [], root)
    assert not merkleproof.verify_inclusion(leaves[1][:31], 1, 4, proof, root)
    assert not merkleproof.verify_inclusion(leaves[1], 1, 4, [p[:31] for p in proof], root)
