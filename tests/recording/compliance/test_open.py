"""The officer's tool opens an untouched bundle completely, and reports every kind of tampering loudly."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import av
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recording.compliance.cli import main
from recording.compliance.pinning import EVIDENCE_FILE, evidence
from recording.records import merkle
from recording.records.canonical import canonical_json
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
from recording.records.manifest import check_audit_entry, parse_manifest
from recording.records.sealing import seal
from tests.recording.agekeys import generate
from tests.recording.casebundle import (
    BORROWER,
    CASE,
    MEDIATOR,
    SEGMENTS,
    SESSION,
    CaseBundle,
    build,
    edit_manifest,
    find,
    transcript_without_recordings,
)

ROOT = Path(__file__).resolve().parents[3]


@dataclasses.dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    out: Path

    @property
    def report(self) -> str:
        path = self.out / "REPORT.txt"
        return path.read_text() if path.exists() else ""

    def files(self) -> set[str]:
        if not self.out.exists():
            return set()
        return {str(p.relative_to(self.out)) for p in self.out.rglob("*") if p.is_file()}

    def presented_complete(self) -> set[str]:
        """Outputs that claim to be whole: everything but the report and files marked INCOMPLETE."""
        return {f for f in self.files() if f != "REPORT.txt" and not f.endswith(".INCOMPLETE")}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> CaseBundle:
    root = tmp_path_factory.mktemp("case")
    return asyncio.run(build(root / "bundle", root / "work"))


@pytest.fixture
def bundle(pristine: CaseBundle, tmp_path: Path) -> Path:
    """A private copy of the pristine bundle, free to tamper with."""
    return Path(shutil.copytree(pristine.directory, tmp_path / "bundle"))


def open_bundle(pristine: CaseBundle, bundle: Path, *, identity: Path | None = None, pinned: bool = True,
                out: Path | None = None) -> Run:
    out = out or bundle.parent / "out"
    argv = ["open", "--identity", str(identity or pristine.officer.identity_file), "--bundle", str(bundle),
            "--out", str(out)]
    if pinned:
        argv += ["--audit-public-key", str(pristine.audit_public_key)]
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(argv)
    return Run(code, stdout.getvalue(), stderr.getvalue(), out)


def segment_path(bundle: Path, participant_id: str, index: int, part: int = 0) -> Path:
    return bundle / f"cases/{CASE}/sessions/{SESSION}/recordings/{participant_id}/{part:04d}/{index:06d}.webm.age"


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def assert_failed(run: Run, *needles: str) -> None:
    """Non-zero exit, the result called incomplete, and every needle in the report and the output."""
    assert run.code == 1, run.stdout + run.stderr
    assert "RESULT: INCOMPLETE" in run.report and "RESULT: INCOMPLETE" in run.stdout
    assert "problem(s) found" in run.stderr
    for needle in needles:
        assert needle in run.report, (needle, run.report)


def test_compliance_untouched_bundle_opens_complete_and_playable(pristine: CaseBundle, bundle: Path) -> None:
    run = open_bundle(pristine, bundle)
    assert run.code == 0, run.stdout + run.stderr
    assert "RESULT: COMPLETE - all 18 objects verified" in run.report
    assert "WARNINGS" not in run.report
    assert run.files() == {
        "REPORT.txt", f"{SESSION}/{MEDIATOR}-0000.webm", f"{SESSION}/{BORROWER}-0000.webm",
        f"{SESSION}/{BORROWER}-0001.webm", f"{SESSION}/transcript.json",
        f"{SESSION}/transcript.txt", f"{SESSION}/chat.txt", f"{SESSION}/chat/00000001.json",
        f"{SESSION}/chat/00000002.json", f"{SESSION}/chat/00000003.json",
        f"{SESSION}/consents/{BORROWER}/0000.json", "agreements/0001.json",
    }
    for participant_id, part, frames in ((MEDIATOR, 0, 30), (BORROWER, 0, 24), (BORROWER, 1, 18)):
        joined = run.out / SESSION / f"{participant_id}-{part:04d}.webm"
        assert joined.read_bytes() == pristine.recordings[(participant_id, part)]
        with av.open(str(joined)) as container:
            assert [s.codec_context.name for s in container.streams] == ["vp8", "opus"]
            assert sum(1 for _ in container.decode(video=0)) == frames
        with av.open(str(joined)) as container:
            assert sum(1 for _ in container.decode(audio=0)) > 0
    for path in run.out.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert stat.S_IMODE(run.out.stat().st_mode) == 0o700


def test_compliance_transcript_is_readable_and_complete(pristine: CaseBundle, bundle: Path) -> None:
    run = open_bundle(pristine, bundle)
    text = (run.out / SESSION / "transcript.txt").read_text()
    for expected in [
        "Started 2026-03-01 10:00:00 UTC",
        "Li Wei (borrower)  [pty_borrower01]",
        "[10:00:05] Li Wei (borrower) joined (lobby)",
        "[10:00:09] Mo Mediator (mediator) admitted Li Wei (borrower)",
        "[10:00:20] Li Wei (borrower) consented to recording",
        "[10:01:00] #1 Li Wei (borrower): I can pay 2,000 a month.\n             From March.",
        "deleted message #2 by Bo Bank (bank_representative)",
        "[10:03:00] Mo Mediator (mediator) opened a private caucus with Mo Mediator (mediator), Li Wei (borrower)",
        "[10:04:00] [caucus] #3 Mo Mediator (mediator): Just between us",
        "[10:10:00] the caucus ended",
        "muted the chat of Bo Bank (bank_representative)",
        "[10:38:20] Bo Bank (bank_representative) left: network",
        "[10:40:00] the session ended",
    ]:
        assert expected in text, expected
    # A party's terminal escapes and bidi overrides are shown, never obeyed.
    assert "\x1b" not in text and "\u202e" not in text and "\\u001b[2J" in text and "\\u202e" in text
    assert json.loads((run.out / SESSION / "transcript.json").read_bytes()) == pristine.transcript
    chat = (run.out / SESSION / "chat.txt").read_text()
    assert "#2 Bo Bank (bank_representative)" in chat and "(deleted by usr_mediator01" in chat
    assert json.loads((run.out / SESSION / "chat/00000003.json").read_bytes())["channel"] == "caucus"


def test_compliance_command_line_runs_as_a_module(pristine: CaseBundle, bundle: Path) -> None:
    out = bundle.parent / "cli-out"
    result = subprocess.run(
        [sys.executable, "-m", "recording.compliance", "open", "--identity", str(pristine.officer.identity_file),
         "--bundle", str(bundle), "--out", str(out), "--audit-public-key", str(pristine.audit_public_key)],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: COMPLETE" in result.stdout
    assert (out / SESSION / f"{BORROWER}-0001.webm").exists()


def test_compliance_flipped_byte_is_a_hash_mismatch(pristine: CaseBundle, bundle: Path) -> None:
    flip_byte(segment_path(bundle, BORROWER, 2), -20)
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"recordings/{BORROWER}/0000/000002.webm.age", "SHA-256 MISMATCH")
    assert f"{SESSION}/{BORROWER}-0000.webm.INCOMPLETE" in run.files()
    assert run.presented_complete() >= {f"{SESSION}/{MEDIATOR}-0000.webm", f"{SESSION}/{BORROWER}-0001.webm",
                                        f"{SESSION}/transcript.txt"}
    assert f"{SESSION}/{BORROWER}-0000.webm" not in run.files()


def test_compliance_flipped_byte_with_manifest_hash_fixed_fails_decryption(pristine: CaseBundle,
                                                                           bundle: Path) -> None:
    path = segment_path(bundle, BORROWER, 2)
    flip_byte(path, -20)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    edit_manifest(bundle, lambda m: find(m, "recording_segment", BORROWER, 2).update(sha256=digest))
    run = open_bundle(pristine, bundle)
    assert_failed(run, "DECRYPTION AUTHENTICATION FAILED", f"records sha256 '{pristine_sha(pristine, 2)}'")
    assert "SHA-256 MISMATCH" not in run.report
    assert f"{SESSION}/{BORROWER}-0000.webm" not in run.presented_complete()


def pristine_sha(pristine: CaseBundle, index: int) -> str:
    manifest = json.loads((pristine.directory / "manifest.json").read_bytes())
    return find(manifest, "recording_segment", BORROWER, index)["sha256"]


@pytest.mark.parametrize(
    ("keep", "decryption"),
    [(-7, "DECRYPTION AUTHENTICATION FAILED: the ciphertext was altered or cut short"),
     (40, "DECRYPTION FAILED: the ciphertext ends before its header does")],
    ids=["payload", "header"],
)
def test_compliance_truncated_file_reported(pristine: CaseBundle, bundle: Path, keep: int, decryption: str) -> None:
    path = segment_path(bundle, MEDIATOR, 1)
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"TRUNCATED: the file has {len(data[:keep])} bytes, the manifest says {len(data)}", decryption)
    assert f"{SESSION}/{MEDIATOR}-0000.webm.INCOMPLETE" in run.files()
    assert f"{SESSION}/{MEDIATOR}-0000.webm" not in run.files()


def test_compliance_missing_file_reported(pristine: CaseBundle, bundle: Path) -> None:
    segment_path(bundle, MEDIATOR, 0).unlink()
    run = open_bundle(pristine, bundle)
    assert_failed(run, "MISSING: the bundle has no file "
                       f"cases/{CASE}/sessions/{SESSION}/recordings/{MEDIATOR}/0000/000000.webm.age")
    assert f"{SESSION}/{MEDIATOR}-0000.webm" not in run.presented_complete()


def test_compliance_segment_removed_from_bundle_is_a_gap(pristine: CaseBundle, bundle: Path) -> None:
    segment_path(bundle, BORROWER, 1).unlink()
    edit_manifest(bundle, lambda m: m["objects"].remove(find(m, "recording_segment", BORROWER, 1)))
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"recording_segment {SESSION}/{BORROWER}/0000: index(es) 1 MISSING from the bundle "
                       "(present: 0, 2-3)")
    partial = (run.out / SESSION / f"{BORROWER}-0000.webm.INCOMPLETE").read_bytes()
    original = pristine.recordings[(BORROWER, 0)]
    assert partial != original and len(partial) < len(original)
    assert f"{SESSION}/{MEDIATOR}-0000.webm" in run.presented_complete()


def test_compliance_last_segment_removed_is_caught_by_the_transcript(pristine: CaseBundle, bundle: Path) -> None:
    last = SEGMENTS - 1
    segment_path(bundle, MEDIATOR, last).unlink()
    edit_manifest(bundle, lambda m: m["objects"].remove(find(m, "recording_segment", MEDIATOR, last)))
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"recording_segment {SESSION}/{MEDIATOR}/0000: index(es) {last} MISSING")
    assert f"{SESSION}/{MEDIATOR}-0000.webm.INCOMPLETE" in run.files()


def test_compliance_transcript_removed_leaves_recordings_unvouched(pristine: CaseBundle, bundle: Path) -> None:
    (bundle / f"cases/{CASE}/sessions/{SESSION}/transcript.json.age").unlink()
    edit_manifest(bundle, lambda m: m["objects"].remove(find(m, "transcript")))
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"session {SESSION} has no verified transcript")
    assert run.presented_complete() == {
        f"{SESSION}/chat/0000000{n}.json" for n in (1, 2, 3)} | {f"{SESSION}/consents/{BORROWER}/0000.json",
                                                                 "agreements/0001.json"}
    assert {f"{SESSION}/{MEDIATOR}-0000.webm.INCOMPLETE", f"{SESSION}/chat.txt.INCOMPLETE"} <= run.files()


def test_compliance_every_segment_of_a_participant_removed_is_reported(pristine: CaseBundle,
                                                                       bundle: Path) -> None:
    def drop(manifest: dict[str, Any]) -> None:
        manifest["objects"] = [o for o in manifest["objects"] if o["participant_id"] != BORROWER
                               or o["kind"] != "recording_segment"]

    edit_manifest(bundle, drop)
    run = open_bundle(pristine, bundle)
    for part in (0, 1):
        assert_failed(run, f"recording_segment {SESSION}/{BORROWER}/{part:04d}: index(es) 0-3 MISSING from the "
                           "bundle (present: none)",
                      f"recording {SESSION}/{BORROWER}/{part:04d}: no segment verified, nothing written")
    assert not any(name.startswith(f"{SESSION}/{BORROWER}-0000.webm") for name in run.files())


def test_compliance_object_listed_twice_is_used_neither_time(pristine: CaseBundle, bundle: Path) -> None:
    edit_manifest(bundle, lambda m: m["objects"].append(find(m, "chat_message", index=1)))
    run = open_bundle(pristine, bundle)
    assert_failed(run, "chat/00000001.json.age': listed 2 times in the manifest")
    assert "#1 MISSING: listed more than once" in (run.out / SESSION / "chat.txt.INCOMPLETE").read_text()


def test_compliance_two_signed_roots_for_one_size_reported_as_a_fork(pristine: CaseBundle, bundle: Path) -> None:
    # Whoever holds the audit key re-signs a rewritten tree: its checkpoint contradicts the other one.
    def fork(manifest: dict[str, Any]) -> None:
        inclusion = find(manifest, "consent")["inclusion"]
        inclusion["root_hash"] = "ee" * 32
        message = checkpoint_message(inclusion["tree_size"], bytes.fromhex(inclusion["root_hash"]),
                                     inclusion["signed_at"])
        inclusion["checkpoint_signature"] = pristine.signing_key.sign(message).hex()

    edit_manifest(bundle, fork)
    run = open_bundle(pristine, bundle)
    assert_failed(run, "have different roots", "the audit log was rewritten")


def test_compliance_whole_recording_part_removed_is_caught_by_the_transcript(pristine: CaseBundle,
                                                                             bundle: Path) -> None:
    def drop(manifest: dict[str, Any]) -> None:
        manifest["objects"] = [o for o in manifest["objects"] if o["part"] != 1]

    edit_manifest(bundle, drop)
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"recording_segment {SESSION}/{BORROWER}/0001: index(es) 0-3 MISSING")
    assert run.presented_complete() >= {f"{SESSION}/{BORROWER}-0000.webm", f"{SESSION}/{MEDIATOR}-0000.webm"}


def test_compliance_segment_not_in_the_audit_log_is_refused(pristine: CaseBundle, bundle: Path) -> None:
    # A valid age ciphertext to the right officer, slipped in by someone who can write the store:
    # age does not say who encrypted, so only the audit log can refuse it.
    path = segment_path(bundle, BORROWER, 2)
    forged = seal(b"a different recording", [pristine.officer.recipient])
    path.write_bytes(forged)

    def substitute(manifest: dict[str, Any]) -> None:
        entry = find(manifest, "recording_segment", BORROWER, 2)
        entry.update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
        audit = json.loads(base64.b64decode(entry["audit_entry"]))
        audit["detail"].update(sha256=entry["sha256"], size=entry["size"])
        canonical = canonical_json(audit)
        entry["audit_entry"] = base64.b64encode(canonical).decode()
        entry["inclusion"]["leaf_hash"] = merkle.leaf_hash(canonical).hex()

    edit_manifest(bundle, substitute)
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"recordings/{BORROWER}/0000/000002.webm.age",
                  "is NOT in the audit log: its inclusion proof fails")
    assert "DECRYPTION" not in run.report  # it decrypts fine; the log alone refuses it
    assert f"{SESSION}/{BORROWER}-0000.webm.INCOMPLETE" in run.files()


def test_compliance_reordered_segments_are_refused(pristine: CaseBundle, bundle: Path) -> None:
    first, second = segment_path(bundle, MEDIATOR, 1), segment_path(bundle, MEDIATOR, 2)
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)

    def swap(manifest: dict[str, Any]) -> None:
        one, two = find(manifest, "recording_segment", MEDIATOR, 1), find(manifest, "recording_segment", MEDIATOR, 2)
        for field in ("sha256", "size", "audit_seq", "audit_entry", "inclusion"):
            one[field], two[field] = two[field], one[field]

    edit_manifest(bundle, swap)
    run = open_bundle(pristine, bundle)
    assert_failed(run, "records key", f"recordings/{MEDIATOR}/0000/000002.webm.age', the manifest says")
    assert f"{SESSION}/{MEDIATOR}-0000.webm" not in run.presented_complete()


def test_compliance_forged_checkpoint_signature_refused(pristine: CaseBundle, bundle: Path) -> None:
    def forge(manifest: dict[str, Any]) -> None:
        for entry in manifest["objects"]:
            signature = entry["inclusion"]["checkpoint_signature"]
            entry["inclusion"]["checkpoint_signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]

    edit_manifest(bundle, forge)
    run = open_bundle(pristine, bundle)
    assert_failed(run, "BAD SIGNATURE - the checkpoint was not signed by the audit key")
    assert run.presented_complete() == set()
    assert "verified and opened: 0" in run.report


def _resign_with(bundle: Path, attacker: Ed25519PrivateKey) -> None:
    def resign(manifest: dict[str, Any]) -> None:
        manifest["audit_public_key_pem"] = public_key_pem(attacker.public_key())
        for entry in manifest["objects"]:
            inclusion = entry["inclusion"]
            message = checkpoint_message(inclusion["tree_size"], bytes.fromhex(inclusion["root_hash"]),
                                         inclusion["signed_at"])
            inclusion.update(checkpoint_signature=attacker.sign(message).hex(),
                             key_id=key_id(attacker.public_key()))

    edit_manifest(bundle, resign)


def test_compliance_bundle_resigned_with_another_key_refused_when_key_pinned(pristine: CaseBundle,
                                                                            bundle: Path) -> None:
    attacker = Ed25519PrivateKey.generate()
    _resign_with(bundle, attacker)
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"key {key_id(attacker.public_key())} is not a trusted audit key")
    assert "which is not one you pinned" in run.report
    assert run.presented_complete() == set()


def test_compliance_unpinned_audit_key_is_trusted_only_with_a_loud_warning(pristine: CaseBundle,
                                                                         bundle: Path) -> None:
    _resign_with(bundle, Ed25519PrivateKey.generate())
    run = open_bundle(pristine, bundle, pinned=False)
    assert run.code == 0
    assert "AUDIT KEY NOT PINNED" in run.report and "AUDIT KEY NOT PINNED" in run.stdout


def test_compliance_checkpoint_time_written_with_z_still_verifies(pristine: CaseBundle, bundle: Path) -> None:
    def zulu(manifest: dict[str, Any]) -> None:
        for entry in manifest["objects"]:
            entry["inclusion"]["signed_at"] = entry["inclusion"]["signed_at"].replace("+00:00", "Z")

    edit_manifest(bundle, zulu)
    assert open_bundle(pristine, bundle).code == 0


def test_compliance_chat_message_removed_marks_chat_incomplete(pristine: CaseBundle, bundle: Path) -> None:
    (bundle / f"cases/{CASE}/sessions/{SESSION}/chat/00000002.json.age").unlink()
    edit_manifest(bundle, lambda m: m["objects"].remove(find(m, "chat_message", index=2)))
    run = open_bundle(pristine, bundle)
    assert_failed(run, f"chat_message {SESSION}: index(es) 2 MISSING")
    chat = (run.out / SESSION / "chat.txt.INCOMPLETE").read_text()
    assert chat.splitlines()[1].startswith("INCOMPLETE") and "#2 MISSING: not in the bundle" in chat
    assert f"{SESSION}/chat.txt" not in run.files()
    assert f"{SESSION}/transcript.txt" in run.presented_complete()  # the transcript itself is whole


def test_compliance_malformed_manifest_entry_reported(pristine: CaseBundle, bundle: Path) -> None:
    edit_manifest(bundle, lambda m: find(m, "chat_message", index=3).update(surprise=True))
    run = open_bundle(pristine, bundle)
    assert_failed(run, "manifest entry #", "has unknown field(s) ['surprise']")
    assert f"{SESSION}/chat.txt.INCOMPLETE" in run.files()


def test_compliance_identity_not_among_recipients_reported(pristine: CaseBundle, bundle: Path) -> None:
    stranger = generate(bundle.parent / "stranger")
    run = open_bundle(pristine, bundle, identity=stranger.identity_file)
    assert_failed(run, "NOT SEALED TO YOUR KEY",
                  "the manifest does not list your public key among its recipients")
    assert run.presented_complete() == set()


def test_compliance_bad_identity_file_stops_without_echoing_it(pristine: CaseBundle, bundle: Path) -> None:
    identity = bundle.parent / "broken.txt"
    identity.write_text("# created: today\nAGE-SECRET-KEY-1NOTREALLYAKEYBUTSECRETLOOKING\n")
    run = open_bundle(pristine, bundle, identity=identity)
    assert run.code == 2
    assert "line 2 is not an age X25519 identity" in run.stderr
    assert "NOTREALLY" not in run.stderr + run.stdout
    assert not run.out.exists()


def test_compliance_output_directory_not_empty_refused(pristine: CaseBundle, bundle: Path) -> None:
    out = bundle.parent / "out"
    out.mkdir()
    (out / "earlier.webm").write_bytes(b"old")
    run = open_bundle(pristine, bundle, out=out)
    assert run.code == 2 and "is not an empty directory" in run.stderr
    assert os.listdir(out) == ["earlier.webm"]


def test_compliance_unreadable_manifest_opens_nothing(pristine: CaseBundle, bundle: Path) -> None:
    (bundle / "manifest.json").write_text("{not json")
    run = open_bundle(pristine, bundle)
    assert run.code == 1 and "manifest is not valid JSON" in run.stderr
    assert not run.out.exists()



def test_compliance_audit_detail_storage_key_accepted_missing_key_refused(pristine: CaseBundle) -> None:
    manifest = parse_manifest((pristine.directory / "manifest.json").read_bytes())
    obj = manifest.objects[0]
    entry = json.loads(obj.audit_entry)
    entry["detail"]["storage_key"] = entry["detail"].pop("key")
    renamed = canonical_json(entry)
    renamed_obj = dataclasses.replace(obj, audit_entry=renamed, leaf_hash=merkle.leaf_hash(renamed))
    problems = [p.message for p in check_audit_entry(renamed_obj, CASE)]
    assert not [p for p in problems if "key" in p and "inclusion" not in p], problems
    entry["detail"].pop("storage_key")
    dropped = canonical_json(entry)
    problems = [p.message for p in check_audit_entry(dataclasses.replace(obj, audit_entry=dropped), CASE)]
    assert f"audit entry {obj.audit_seq} does not record the object's key" in problems


def test_compliance_transcript_without_segment_counts_leaves_recordings_unvouched(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("no-counts")
    built = asyncio.run(build(root / "bundle", root / "work", transcript=transcript_without_recordings()))
    run = open_bundle(built, built.directory, out=root / "out")
    assert_failed(run, f"the transcript of session {SESSION} does not declare the segments recorded")
    assert run.presented_complete() >= {f"{SESSION}/transcript.txt", f"{SESSION}/chat.txt"}
    assert {f"{SESSION}/{MEDIATOR}-0000.webm.INCOMPLETE", f"{SESSION}/{BORROWER}-0001.webm.INCOMPLETE"} <= run.files()
    text = (run.out / SESSION / "transcript.txt").read_text()
    assert "Recordings: the transcript does not say what was recorded" in text
    assert "Mo Mediator (mediator) admitted Li Wei (borrower)" in text
    assert "#1 Li Wei (borrower): I can pay 2,000 a month." in text
    # Without segment counts, a part missing before a present one still shows as a gap.
    edit_manifest(built.directory, lambda m: m.update(objects=[o for o in m["objects"]
                                                               if o["participant_id"] != BORROWER or o["part"] != 0]))
    run = open_bundle(built, built.directory, out=root / "out-again")
    assert_failed(run, f"recording {SESSION}/{BORROWER}: part(s) 0 MISSING from the bundle")


def _evidence(pristine: CaseBundle, bundle: Path, witness: Ed25519PrivateKey, old_size: int | None) -> None:
    """Write the checkpoint.json fetch would: the manifest checkpoint's note, cosigned, and the proof from a pin."""
    inclusion = json.loads((bundle / "manifest.json").read_text())["objects"][0]["inclusion"]
    note = sign_note(checkpoint_body("o.example/log", inclusion["tree_size"], bytes.fromhex(inclusion["root_hash"])),
                     "o.example/log", pristine.signing_key)
    note = add_signature(note, cosign(note.text, "w.example", witness, 1764633600))
    (bundle / EVIDENCE_FILE).unlink(missing_ok=True)
    (bundle / EVIDENCE_FILE).write_bytes(evidence(note.render(), "", [], 0, old_size, []))


def test_compliance_open_with_pin_and_witness_keys_pins_then_requires_the_quorum(
        pristine: CaseBundle, bundle: Path, tmp_path: Path) -> None:
    witness, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pin = tmp_path / "pin"
    _evidence(pristine, bundle, witness, None)
    argv = ["--pin", str(pin), "--witness-key", vkey("w.example", witness.public_key(), SIGNATURE_COSIGNATURE_V1)]
    first = _open_with(pristine, bundle, tmp_path / "o1", argv)
    assert first.code == 0 and "checkpoint_not_pinned" in first.report and pin.exists(), first.report
    size = json.loads((bundle / "manifest.json").read_text())["objects"][0]["inclusion"]["tree_size"]
    _evidence(pristine, bundle, witness, size)
    again = _open_with(pristine, bundle, tmp_path / "o2", argv)
    assert again.code == 0 and "WARNINGS" not in again.report, again.report
    other = ["--pin", str(pin), "--witness-key", vkey("w2.example", stranger.public_key(), SIGNATURE_COSIGNATURE_V1)]
    refused = _open_with(pristine, bundle, tmp_path / "o3", other)
    assert refused.code == 1 and "[checkpoint_not_witnessed]" in refused.report, refused.report


def _open_with(pristine: CaseBundle, bundle: Path, out: Path, extra: list[str]) -> Run:
    argv = ["open", "--identity", str(pristine.officer.identity_file), "--bundle", str(bundle), "--out", str(out),
            "--audit-public-key", str(pristine.audit_public_key), *extra]
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(argv)
    return Run(code, stdout.getvalue(), stderr.getvalue(), out)
