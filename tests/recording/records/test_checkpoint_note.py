"""C2SP signed notes, tlog-checkpoint bodies, cosignatures and pins as recording/records/checkpoint.py makes them."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recording.records import merkle
from recording.records.checkpoint import (
    SIGNATURE_COSIGNATURE_V1,
    NoteError,
    Pin,
    add_signature,
    check_pinned,
    checkpoint_body,
    cosign,
    count_cosignatures,
    parse_checkpoint_body,
    parse_note,
    parse_vkey,
    sign_note,
    verify_note,
    vkey,
)

ORIGIN = "example.org/audit"


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(str(i).encode()) for i in range(n)]


def test_note_body_and_signature_line_follow_c2sp_byte_for_byte() -> None:
    key = Ed25519PrivateKey.generate()
    root = bytes(range(32))
    note = sign_note(checkpoint_body(ORIGIN, 7, root), ORIGIN, key).render()
    text, signature_line = note.split("\n\n")
    assert text == f"{ORIGIN}\n7\n{base64.b64encode(root).decode()}"
    assert signature_line.startswith(f"\u2014 {ORIGIN} ") and signature_line.endswith("\n")
    raw = base64.b64decode(signature_line.split(" ")[2])
    key_hash = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + _raw(key)).digest()[:4]
    assert raw[:4] == key_hash and len(raw) == 68
    key.public_key().verify(raw[4:], (text + "\n").encode())


def test_note_parse_of_rendered_note_verifies_and_edit_fails() -> None:
    key = Ed25519PrivateKey.generate()
    note = parse_note(sign_note(checkpoint_body(ORIGIN, 3, b"\x01" * 32), ORIGIN, key).render())
    assert verify_note(note, ORIGIN, key.public_key())
    assert note.head.tree_size == 3
    edited = parse_note(note.render().replace("\n3\n", "\n4\n"))
    assert not verify_note(edited, ORIGIN, key.public_key())
    assert not verify_note(note, "other.org/log", key.public_key())


@pytest.mark.parametrize("text", ["", "a\n1\n", "a\nx\nAAAA\n", "a\n1\nnot base64!\n", "\n1\n" + "A" * 44 + "\n"])
def test_checkpoint_body_malformed_is_refused(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint_body(text)


def test_cosignature_follows_tlog_cosignature_and_counts_only_valid_witnesses() -> None:
    log_key, w1, w2 = (Ed25519PrivateKey.generate() for _ in range(3))
    note = sign_note(checkpoint_body(ORIGIN, 5, b"\x02" * 32), ORIGIN, log_key)
    name, key_hash, payload = cosign(note.text, "w1.example", w1, 1700000000)
    message = b"cosignature/v1\ntime 1700000000\n" + note.text.encode()
    w1.public_key().verify(payload[8:], message)
    assert payload[:8] == (1700000000).to_bytes(8, "big")
    assert key_hash == hashlib.sha256(b"w1.example\n\x04" + _raw(w1)).digest()[:4]
    cosigned = parse_note(add_signature(note, (name, key_hash, payload)).render())
    witnesses = [parse_vkey(vkey("w1.example", w1.public_key(), SIGNATURE_COSIGNATURE_V1)),
                 parse_vkey(vkey("w2.example", w2.public_key(), SIGNATURE_COSIGNATURE_V1))]
    assert count_cosignatures(cosigned, witnesses) == ["w1.example"]
    forged = parse_note(add_signature(note, (name, key_hash, payload[:8] + bytes(64))).render())
    assert count_cosignatures(forged, witnesses) == []


def test_vkey_with_wrong_hash_is_refused() -> None:
    good = vkey("w.example", Ed25519PrivateKey.generate().public_key())
    name, _, key = good.split("+", 2)
    with pytest.raises(NoteError):
        parse_vkey(f"{name}+00000000+{key}")


def test_check_pinned_extension_passes_and_rewrite_is_inconsistent() -> None:
    key, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    wkey = parse_vkey(vkey("w.example", witness.public_key(), SIGNATURE_COSIGNATURE_V1))
    leaves = _leaves(20)
    pin = Pin.parse(checkpoint_body(ORIGIN, 13, merkle.root_from_leaf_hashes(leaves[:13])))
    note = sign_note(checkpoint_body(ORIGIN, 20, merkle.root_from_leaf_hashes(leaves)), ORIGIN, key)
    note = add_signature(note, cosign(note.text, "w.example", witness, 1))
    proof = merkle.consistency_proof(leaves, 13)
    assert check_pinned(pin, note, key.public_key(), proof, [wkey], 1) == []
    rewritten = leaves[:5] + [merkle.leaf_hash(b"forged")] + leaves[6:]
    forged = sign_note(checkpoint_body(ORIGIN, 20, merkle.root_from_leaf_hashes(rewritten)), ORIGIN, key)
    codes = [p.code for p in check_pinned(pin, forged, key.public_key(),
                                          merkle.consistency_proof(rewritten, 13), [wkey], 1)]
    assert codes == ["checkpoint_not_witnessed", "checkpoint_inconsistent"]
    shorter = sign_note(checkpoint_body(ORIGIN, 12, merkle.root_from_leaf_hashes(leaves[:12])), ORIGIN, key)
    assert [p.code for p in check_pinned(pin, shorter, key.public_key(), [], [], 0)] == ["checkpoint_inconsistent"]
