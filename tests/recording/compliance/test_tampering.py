"""The officer's tool reports each tampering of the shared table with exactly the codes the page reports.

The table (tests/fixtures/tampering.json) and the sealed bundle it tampers with
(web_client/test/fixtures/compliance-bundle.json) are read by web_client/test/compliance-tampering.test.mjs
too: the two verifiers of docs/records.md are held to the same problem codes.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization

from recording.compliance.open import open_bundle
from recording.records import merkle
from recording.records.canonical import canonical_json
from recording.records.checkpoint import checkpoint_message
from recording.records.manifest import BundleError
from recording.records.problems import PROBLEM_CODES

ROOT = Path(__file__).resolve().parents[3]
TABLE = json.loads((ROOT / "tests" / "fixtures" / "tampering.json").read_text())
BUNDLE = json.loads((ROOT / "web_client" / "test" / "fixtures" / "compliance-bundle.json").read_text())


def _select(manifest: dict[str, Any], selector: dict[str, Any], *, every: bool = False) -> list[dict[str, Any]]:
    chosen = [entry for entry in manifest["objects"] if all(entry.get(k) == v for k, v in selector.items())]
    if not chosen or (len(chosen) > 1 and not every):
        raise AssertionError(f"selector {selector} picks {len(chosen)} objects")
    return chosen


def _set(target: dict[str, Any], path: list[str], op: dict[str, Any]) -> None:
    for name in path[:-1]:
        target = target[name]
    if op.get("delete"):
        del target[path[-1]]
    else:
        target[path[-1]] = op["value"]


def _tamper(manifest: dict[str, Any], files: dict[str, bytes], op: dict[str, Any]) -> None:
    """Apply one operation of the table to the manifest and the files (key -> ciphertext)."""
    name = op["op"]
    if name == "set_manifest":
        _set(manifest, op["path"], op)
        return
    for entry in _select(manifest, op["object"], every=op.get("all", False)):
        key = entry["key"]
        if name == "flip_byte":
            data = bytearray(files[key])
            data[op["offset"]] ^= 1
            files[key] = bytes(data)
        elif name == "cut_bytes":
            files[key] = files[key][:-op["count"]]
        elif name == "append_bytes":
            files[key] += bytes.fromhex(op["hex"])
        elif name == "replace_bytes":
            files[key] = bytes.fromhex(op["hex"])
        elif name == "reseal":
            files[key] = pyrage.encrypt(op["text"].encode(), [pyrage.x25519.Recipient.from_str(op["recipient"])])
        elif name == "copy_file":
            files[key] = files[_select(manifest, op["from"])[0]["key"]]
        elif name in ("remove_file", "remove_object"):
            del files[key]
        if name in ("remove_entry", "remove_object"):
            manifest["objects"].remove(entry)
        elif name == "duplicate_entry":
            manifest["objects"].append(copy.deepcopy(entry))
        elif name == "set_entry":
            _set(entry, op["path"], op)
        elif name == "fork_checkpoint":
            inclusion = entry["inclusion"]
            inclusion["root_hash"] = op["root_hash"]
            signer = serialization.load_der_private_key(base64.b64decode(BUNDLE["audit_private_key_pkcs8"]), None)
            inclusion["checkpoint_signature"] = signer.sign(checkpoint_message(
                inclusion["tree_size"], bytes.fromhex(op["root_hash"]), inclusion["signed_at"])).hex()
        elif name == "edit_audit_entry":
            audit = json.loads(base64.b64decode(entry["audit_entry"]))
            _set(audit, op["path"], op)
            raw = canonical_json(audit)
            entry["audit_entry"] = base64.b64encode(raw).decode()
            if op["rehash"]:
                entry["inclusion"]["leaf_hash"] = merkle.leaf_hash(raw).hex()


def _codes(case: dict[str, Any], tmp_path: Path) -> list[str]:
    manifest = json.loads(BUNDLE["manifest"])
    files = {key: base64.b64decode(value) for key, value in BUNDLE["objects"].items()}
    for op in case["ops"]:
        _tamper(manifest, files, op)
    bundle = tmp_path / "bundle"
    for key, data in files.items():
        (bundle / key).parent.mkdir(parents=True, exist_ok=True)
        (bundle / key).write_bytes(data)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))
    pinned = tmp_path / "audit.pem"
    pinned.write_text(json.loads(BUNDLE["manifest"])["audit_public_key_pem"])
    identities = [pyrage.x25519.Identity.from_str(line) for line in BUNDLE["identity"].splitlines()
                  if line.startswith("AGE-SECRET-KEY-")]
    try:
        report = open_bundle(bundle, identities, [pinned], tmp_path / "out")
    except BundleError as exc:
        return [exc.code]
    return report.codes


@pytest.mark.parametrize("case", TABLE["cases"], ids=[case["name"] for case in TABLE["cases"]])
def test_tampering_table_reported_with_its_codes(case: dict[str, Any], tmp_path: Path) -> None:
    assert set(case["codes"]) <= PROBLEM_CODES
    assert _codes(case, tmp_path) == sorted(case["codes"])


def test_tampering_table_names_unique_and_covers_most_codes() -> None:
    names = [case["name"] for case in TABLE["cases"]]
    assert len(names) == len(set(names))
    covered = {code for case in TABLE["cases"] for code in case["codes"]}
    # Codes the table cannot reach from a bundle alone: the page's transport and browser, a
    # manifest of another case than the page asked for, a record sealed and audited correctly
    # but unreadable (it would need the audit key: bad_transcript, bad_chat_message,
    # transcript_no_recordings; test_open.py covers them), a fork (two signed heads), and a
    # missing audit key (the page pins an id, the tool a key: they differ by design). A gap is
    # named by a sealed transcript, so recording_gap has its own shared table, tests/fixtures/gaps.json.
    unreachable = {"download_failed", "ed25519_unsupported", "manifest_wrong_case", "bad_transcript",
                   "bad_chat_message", "transcript_no_recordings", "audit_fork", "no_audit_key",
                   "audit_key_unusable", "checkpoint_unverifiable", "recording_gap"}
    assert PROBLEM_CODES - unreachable - covered == set()
