"""Write the compliance page's Node test fixtures from the server's own Python code.

    .venv/bin/python -m tests.web.compliance_fixtures

Four JSON files under web_client/test/fixtures/, committed so `npm test` needs no Python:

- compliance-merkle.json: inclusion proofs from recording/records/merkle.py for trees of many sizes,
  with the roots they must verify against (the page's merkle.js must agree on every one).
- compliance-checkpoint.json: `signed_at` spellings and what recording/records/checkpoint.py's
  checkpoint_message makes of each (or that Python refuses it), and a checkpoint signed with a
  fresh Ed25519 key.
- compliance-consistency.json: consistency proofs from recording/records/merkle.py between many tree
  sizes, and a C2SP checkpoint note signed and cosigned by recording/records/checkpoint.py with the
  verifier keys to check it.
- compliance-bundle.json: a whole case bundle from tests/recording/casebundle.py (sealed with a
  key from age-keygen, audited and checkpointed by the server's AuditLog): the manifest, every
  ciphertext, the officer's identity and the transcript it holds.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recording.records import merkle
from recording.records.checkpoint import (
    SIGNATURE_COSIGNATURE_V1,
    add_signature,
    checkpoint_body,
    checkpoint_message,
    cosign,
    key_id,
    public_key_pem,
    sign_note,
    vkey,
)
from tests.recording import casebundle

FIXTURES = Path(__file__).resolve().parents[2] / "web_client" / "test" / "fixtures"

SIGNED_AT = [
    "2026-11-28T15:48:59.123456+00:00", "2026-11-28T15:48:59+00:00", "2026-11-28T15:48:59Z",
    "2026-11-28T15:48:59.1Z", "2026-11-28T15:48:59.1234567Z", "2026-11-28 15:48:59.000000+00:00",
    "2026-11-28T15:48:59-00:00", "2026-11-28T15:48+08:00", "2026-11-28T15+0530", "20261128T154859Z",
    "2026-11-28T15:48:59,5+00:00", "2026-11-28T15:48:59.123456+05:30:15", "2026-11-28T15:48:59.000001-11:59",
    "2026-11-28T15:48:59.123+00:00", "2024-02-29T00:00:00+00:00", "2026-11-28T15:48:59.000000+08:00",
    "2026-11-28T15:48:59.5-03:30", "2026-11-28T23:59:59.999999+14:00",
    # Refused by Python (no offset, or not a time): the page must refuse them too.
    "2026-11-28T15:48:59", "2026-11-28", "2026-02-29T00:00:00Z", "2026-11-28T24:00:00Z", "not a time",
    "2026-11-28T15:4859Z", "2026-13-01T00:00:00Z",
]


def _merkle() -> dict:
    cases = []
    for size in [*range(1, 18), 31, 32, 33, 64, 100, 127]:
        leaves = [merkle.leaf_hash(f"entry {n} of {size}".encode()) for n in range(size)]
        root = merkle.root_from_leaf_hashes(leaves)
        indices = range(size) if size <= 33 else sorted({0, 1, size // 2, size - 2, size - 1})
        for index in indices:
            proof = merkle.inclusion_proof(leaves, index)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
            cases.append({"size": size, "index": index, "leaf": leaves[index].hex(), "root": root.hex(),
                          "proof": [p.hex() for p in proof]})
    return {"leaf_data_hex": b"hello".hex(), "leaf_hash": merkle.leaf_hash(b"hello").hex(),
            "node_left": merkle.leaf_hash(b"a").hex(), "node_right": merkle.leaf_hash(b"b").hex(),
            "node_hash": merkle.node_hash(merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")).hex(),
            "inclusion": cases}


def _checkpoint() -> dict:
    spellings = []
    root = bytes(range(32))
    for value in SIGNED_AT:
        try:
            message = checkpoint_message(42, root, value).decode()
        except ValueError:
            message = None
        spellings.append({"signed_at": value, "message": message})
    key = Ed25519PrivateKey.generate()
    signed_at = dt.datetime(2026, 11, 28, 15, 48, 59, 120000, tzinfo=dt.timezone.utc)
    root_hash = merkle.leaf_hash(b"some root")
    signature = key.sign(checkpoint_message(7, root_hash, signed_at.isoformat()))
    return {"tree_size": 42, "root_hash": root.hex(), "spellings": spellings,
            "signed": {"public_key_pem": public_key_pem(key.public_key()), "key_id": key_id(key.public_key()),
                       "tree_size": 7, "root_hash": root_hash.hex(), "signed_at": signed_at.isoformat(),
                       "signature": signature.hex()}}


async def _bundle() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = await casebundle.build(Path(tmp) / "bundle", Path(tmp) / "work")
        manifest = (bundle.directory / "manifest.json").read_text()
        objects = {}
        for item in json.loads(manifest)["objects"]:
            objects[item["key"]] = base64.b64encode((bundle.directory / item["key"]).read_bytes()).decode()
        return {
            "case_id": casebundle.CASE, "session_id": casebundle.SESSION,
            "identity": bundle.officer.identity_file.read_text(), "recipient": bundle.officer.recipient,
            "manifest": manifest, "objects": objects, "transcript": bundle.transcript,
            # The audit key of this throwaway bundle, so tests can sign a forked checkpoint with it.
            "audit_private_key_pkcs8": base64.b64encode(bundle.signing_key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())).decode(),
            "recordings": {f"{pid}/{part}": base64.b64encode(data).decode()
                           for (pid, part), data in bundle.recordings.items()},
        }


def _consistency() -> dict:
    cases = []
    for size in [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 100]:
        leaves = [merkle.leaf_hash(f"entry {n}".encode()) for n in range(size)]
        for old in sorted({0, 1, 2, 3, 4, 7, 8, size // 2, size - 1, size} & set(range(size + 1))):
            proof = merkle.consistency_proof(leaves, old)
            old_root = merkle.root_from_leaf_hashes(leaves[:old])
            assert merkle.verify_consistency(old, size, old_root, merkle.root_from_leaf_hashes(leaves), proof)
            cases.append({"old_size": old, "new_size": size, "old_root": old_root.hex(),
                          "new_root": merkle.root_from_leaf_hashes(leaves).hex(), "proof": [p.hex() for p in proof]})
    log_key, witness_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    origin = "mediation.invalid/audit/vectors"
    note = sign_note(checkpoint_body(origin, 100, bytes.fromhex(cases[-1]["new_root"])), origin, log_key)
    note = add_signature(note, cosign(note.text, "witness.example/w1", witness_key, 1764633600))
    return {"consistency": cases, "note": note.render(), "log_vkey": vkey(origin, log_key.public_key()),
            "witness_vkey": vkey("witness.example/w1", witness_key.public_key(), SIGNATURE_COSIGNATURE_V1)}


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    outputs = {"compliance-merkle.json": _merkle(), "compliance-checkpoint.json": _checkpoint(),
               "compliance-consistency.json": _consistency(),
               "compliance-bundle.json": asyncio.run(_bundle())}
    for name, value in outputs.items():
        (FIXTURES / name).write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {FIXTURES / name}")


if __name__ == "__main__":
    main()
