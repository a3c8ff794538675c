"""Opening a downloaded case bundle: verify every object, decrypt it, and write what it holds.

Spec: docs/records.md. Run by the officer's command line (recording/compliance/cli.py):

    python -m recording.compliance open --identity KEYFILE --bundle DIR --out OUTDIR [--audit-public-key PEM]

Every object is checked before its plaintext is used, in the order docs/records.md gives: the
checkpoint's Ed25519 signature, the audit entry's inclusion in it and its binding to the object
(key, SHA-256, size, ...), the file's size and SHA-256, then age decryption. An object failing
any check contributes nothing to the outputs. Every problem is reported with its code;
an output that misses anything is written with an ".INCOMPLETE" suffix (or not at all), and
the exit status is 0 only if everything verified: 1 if the bundle has problems, 2 if the tool
could not start (arguments, identity file, output directory).

Outputs, all 0600 in 0700 directories under OUTDIR (which must be new or empty):

    REPORT.txt                                 every problem and warning, and the result
    <session_id>/<participant_id>-<part:04d>.webm   each recording part's segments joined in index order,
                                               then indexed (Cues, Duration) for seeking: seekable.py
    <session_id>/transcript.txt, transcript.json
    <session_id>/chat.txt, chat/<seq:08d>.json
    <session_id>/consents/<participant_id>/<index:04d>.json
    agreements/<version:04d>.json
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pyrage

from recording.compliance import e2eekeys
from recording.compliance.seekable import NotSeekableError, write_seekable
from recording.compliance.pinning import EVIDENCE_FILE, check_evidence, read_pin, write_pin
from recording.records import transcript
from recording.records.checkpoint import CheckpointVerifier, Witness, key_id, load_public_key
from recording.records.gaps import FiledSegment
from recording.records.kinds import FIRST_INDEX, RecordKind
from recording.records.manifest import BundleError, BundleObject, Manifest, check_audit_entry, parse_manifest
from recording.records.problems import Problem

__all__ = ["Report", "SetupError", "load_identities", "open_bundle", "report_gaps"]

INCOMPLETE = ".INCOMPLETE"
_DIR_MODE = 0o700
_FILE_MODE = 0o600
# Keys first: the chat of transcripts and messages is decrypted with them. Then transcripts: the segment
# counts they declare decide whether a recording is complete.
_KIND_ORDER = [RecordKind.E2EE_KEY, RecordKind.TRANSCRIPT, RecordKind.CHAT_MESSAGE, RecordKind.CONSENT, RecordKind.AGREEMENT,
               RecordKind.RECORDING_SEGMENT]

Group = tuple[str, ...]


class SetupError(Exception):
    """The tool cannot start: bad arguments, identity file or output directory."""


def load_identities(path: Path) -> list[pyrage.x25519.Identity]:
    """Read age X25519 identities from an identity file; errors never quote the file's lines."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SetupError(f"cannot read identity file {str(path)!r}: {exc.strerror}") from None
    if raw.startswith((b"age-encryption.org/v1", b"-----BEGIN AGE ENCRYPTED FILE-----")):
        raise SetupError(f"identity file {str(path)!r} is itself encrypted; decrypt it with `age -d` first")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SetupError(f"identity file {str(path)!r} is not a text file") from None
    identities = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("AGE-PLUGIN-"):
            raise SetupError(f"identity file {str(path)!r} line {number} is a plugin identity, not supported here")
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise SetupError(
                f"identity file {str(path)!r} line {number} is not an age X25519 identity (AGE-SECRET-KEY-1…)"
            ) from None
    if not identities:
        raise SetupError(f"identity file {str(path)!r} holds no identity")
    return identities


class _OutputDir:
    """OUTDIR: created 0700 (or adopted if empty); every file created exclusively, 0600."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(mode=_DIR_MODE, parents=True)
        except FileExistsError:
            if not root.is_dir() or any(root.iterdir()):
                raise SetupError(f"output directory {str(root)!r} exists and is not an empty directory; "
                                 "give a new one so no earlier result is mixed in") from None
            os.chmod(root, _DIR_MODE)
        except OSError as exc:
            raise SetupError(f"cannot create output directory {str(root)!r}: {exc.strerror}") from None

    def create(self, relative: str) -> BinaryIO:
        path = self.root / relative
        for parent in reversed(path.relative_to(self.root).parents):
            (self.root / parent).mkdir(mode=_DIR_MODE, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE)
        return os.fdopen(fd, "wb")

    def write(self, relative: str, data: bytes) -> None:
        with self.create(relative) as handle:
            handle.write(data)

    def rename(self, relative: str, new_relative: str) -> None:
        os.rename(self.root / relative, self.root / new_relative)


@dataclasses.dataclass
class Report:
    """Problems (each tied to the output it spoils, or to everything), warnings and outputs."""

    problems: list[tuple[Group | None, Problem]] = dataclasses.field(default_factory=list)
    warnings: list[Problem] = dataclasses.field(default_factory=list)
    outputs: list[str] = dataclasses.field(default_factory=list)
    verified: int = 0
    listed: int = 0
    # For the export (export.py): verified transcripts by session, and each recording written: its
    # output name and what its verified segments' audit entries say of its clock (gaps.FiledSegment).
    transcripts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    recordings: dict[Group, tuple[str, list[FiledSegment]]] = dataclasses.field(default_factory=dict)

    def problem(self, group: Group | None, code: str, message: str) -> None:
        self.problems.append((group, Problem(code, message)))

    def warning(self, code: str, message: str) -> None:
        self.warnings.append(Problem(code, message))

    @property
    def codes(self) -> list[str]:
        """The problem codes reported, sorted and without repeats (as the shared tampering table lists them)."""
        return sorted({problem.code for _, problem in self.problems})

    def spoiled(self, group: Group) -> bool:
        """Whether a problem touches this output: its own, its scope's, or everything's (None).

        Scopes: ("session", id) spoils every output of that session, ("recordings", id) every
        recording of that session.
        """
        for g, _ in self.problems:
            if g is None or g == group or (g[0] == "session" and group[1:2] == g[1:2]) \
                    or (g[0] == "recordings" and group[0] == "recording" and group[1:2] == g[1:2]):
                return True
        return False

    @property
    def complete(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"Objects listed: {self.listed}; verified and opened: {self.verified}", ""]
        if self.problems:
            lines.append(f"PROBLEMS ({len(self.problems)}):")
            lines += [f"  ! [{problem.code}] {problem.message}" for _, problem in self.problems]
            lines.append("")
        if self.warnings:
            lines.append(f"WARNINGS ({len(self.warnings)}):")
            lines += [f"  ~ [{warning.code}] {warning.message}" for warning in self.warnings]
            lines.append("")
        lines.append("Written:")
        lines += [f"  {name}" for name in self.outputs] or ["  nothing"]
        lines.append("")
        if self.complete:
            lines.append(f"RESULT: COMPLETE - all {self.verified} objects verified against the signed audit log "
                         "and opened")
        else:
            lines.append(f"RESULT: INCOMPLETE - {len(self.problems)} problem(s); outputs ending in {INCOMPLETE} are "
                         "partial, and anything listed above as not written is missing")
        return "\n".join(lines) + "\n"


def _group(kind: object, session_id: object, participant_id: object, index: object,
           part: object = None) -> Group | None:
    """Return the output an object belongs to, or None if the fields do not say."""
    if not isinstance(session_id, (str, type(None))) or not isinstance(participant_id, (str, type(None))):
        return None
    session = session_id or "-"
    if kind == RecordKind.RECORDING_SEGMENT and participant_id and isinstance(part, int):
        return ("recording", session, participant_id, f"{part:04d}")
    if kind == RecordKind.CHAT_MESSAGE:
        return ("chat", session)
    if kind == RecordKind.TRANSCRIPT:
        return ("transcript", session)
    if kind == RecordKind.CONSENT and participant_id:
        return ("consent", session, participant_id, str(index))
    if kind == RecordKind.E2EE_KEY and participant_id:
        return ("keys", session, participant_id, str(index))
    if kind == RecordKind.AGREEMENT:
        return ("agreement", str(index))
    return None


def _sequence_key(kind: RecordKind, session_id: str | None, participant_id: str | None,
                  part: int | None) -> Group:
    """The objects whose indices must run FIRST_INDEX, FIRST_INDEX + 1, … without a gap."""
    if kind == RecordKind.RECORDING_SEGMENT:
        return (kind.value, session_id or "-", participant_id or "-", f"{part or 0:04d}")
    if kind in (RecordKind.CONSENT, RecordKind.E2EE_KEY):
        return (kind.value, session_id or "-", participant_id or "-")
    return (kind.value, session_id or "-")


def _ranges(indices: Sequence[int]) -> str:
    """Render indices compactly: [0, 1, 2, 5] -> "0-2, 5"."""
    ordered = sorted(set(indices))
    if not ordered:
        return "none"
    parts, start, prev = [], ordered[0], ordered[0]
    for value in ordered[1:]:
        if value != prev + 1:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = value
        prev = value
    parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def _read_ciphertext(bundle: Path, obj: BundleObject) -> tuple[bytes | None, list[Problem]]:
    """Read an object's file (its key is validated, so it stays inside the bundle) and check size and hash."""
    path = bundle / obj.key
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, [Problem("not_on_case", f"MISSING: the bundle has no file {obj.key}")]
    except OSError as exc:
        return None, [Problem("download_failed", f"cannot read {obj.key}: {exc.strerror}")]
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, [Problem("download_failed", f"{obj.key} is not a regular file")]
        data = handle.read(obj.size + 1)  # never read more than one byte past what is expected
    problems = []
    if len(data) < obj.size:
        problems.append(Problem("truncated",
                                f"TRUNCATED: the file has {len(data)} bytes, the manifest says {obj.size}"))
    elif len(data) > obj.size:
        problems.append(Problem("too_long",
                                f"TOO LONG: the file has {info.st_size} bytes, the manifest says {obj.size}"))
    else:
        digest = hashlib.sha256(data).hexdigest()
        if digest != obj.sha256:
            problems.append(Problem("sha256_mismatch",
                                    f"SHA-256 MISMATCH: the file hashes to {digest}, the manifest says {obj.sha256}"))
    return data, problems


def _decrypt(
    data: bytes, identities: list[pyrage.x25519.Identity], obj: BundleObject
) -> tuple[bytes | None, Problem | None]:
    """Return (plaintext, None) or (None, what went wrong, in words an officer can act on)."""
    try:
        return pyrage.decrypt(data, identities), None
    except pyrage.DecryptError as exc:
        message = str(exc)
    if "No matching keys" in message:
        ours = {str(i.to_public()) for i in identities}
        listed = "" if ours & set(obj.recipients) else \
            " (the manifest does not list your public key among its recipients)"
        return None, Problem("not_sealed_to_you", f"NOT SEALED TO YOUR KEY: none of your identities opens it{listed}")
    if message == "decryption error":
        return None, Problem("decrypt_auth_failed",
                             "DECRYPTION AUTHENTICATION FAILED: the ciphertext was altered or cut short after sealing")
    if "fill whole buffer" in message:
        return None, Problem("decrypt_failed",
                             "DECRYPTION FAILED: the ciphertext ends before its header does (truncated)")
    return None, Problem("decrypt_failed", f"DECRYPTION FAILED: {message}")


class _Opener:
    """One run of `open`: checks each object, routes verified plaintext to its output, then names outputs."""

    def __init__(self, bundle: Path, manifest: Manifest, identities: list[pyrage.x25519.Identity],
                 verifier: CheckpointVerifier, out: _OutputDir, report: Report) -> None:
        self.bundle, self.manifest, self.identities = bundle, manifest, identities
        self.verifier, self.out, self.report = verifier, out, report
        self.indices: dict[Group, list[int]] = defaultdict(list)  # _sequence_key -> indices listed
        self.parts: dict[tuple[str, str], set[int]] = defaultdict(set)  # (session, participant) -> parts listed
        self.transcripts: dict[str, dict[str, Any]] = {}  # session -> verified transcript (v1 form)
        self.chat: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.chat_missing: dict[str, dict[int, str]] = defaultdict(dict)
        self.recordings: dict[Group, tuple[str, BinaryIO]] = {}
        self.keys: dict[str, list[tuple[bytes, dict[str, Any]]]] = defaultdict(list)  # session -> key records

    def _listed(self, kind: RecordKind, session_id: str | None, participant_id: str | None, index: int,
                part: int | None) -> None:
        self.indices[_sequence_key(kind, session_id, participant_id, part)].append(index)
        if kind == RecordKind.RECORDING_SEGMENT:
            self.parts[(session_id or "-", participant_id or "-")].add(part or 0)

    def run(self) -> None:
        for entry in self.manifest.malformed:
            hint = entry.hint
            group = _group(hint.get("kind"), hint.get("session_id"), hint.get("participant_id"), hint.get("index"),
                           hint.get("part"))
            self.report.problem(group, "malformed_entry",
                                f"manifest entry #{entry.position} is malformed: {entry.problem}")
            # Its index still counts as listed: the entry is reported as malformed, not as a gap too.
            if group is not None and hint.get("kind") in FIRST_INDEX and isinstance(hint.get("index"), int):
                self._listed(RecordKind(hint["kind"]), hint.get("session_id"), hint.get("participant_id"),
                             hint["index"], hint.get("part") if isinstance(hint.get("part"), int) else None)
        keys = Counter(obj.key for obj in self.manifest.objects)
        objects = sorted(self.manifest.objects, key=lambda o: (
            _KIND_ORDER.index(o.kind), o.session_id or "", o.participant_id or "", o.part or 0,
            o.index if o.index is not None else -1))
        finished = False
        try:
            for obj in objects:
                if obj.index is not None:
                    self._listed(obj.kind, obj.session_id, obj.participant_id, obj.index, obj.part)
                group = _group(obj.kind, obj.session_id, obj.participant_id, obj.index, obj.part)
                if keys[obj.key] > 1:
                    self.report.problem(group, "listed_twice",
                                        f"{obj.describe()}: listed {keys[obj.key]} times in the manifest")
                    if obj.kind == RecordKind.CHAT_MESSAGE and obj.index is not None:
                        self.chat_missing[obj.session_id or "-"][obj.index] = "listed more than once"
                    continue
                plaintext = self._verify_and_open(obj, group)
                if plaintext is not None:
                    self.report.verified += 1
                    self._route(obj, group, plaintext)
            for fork in self.verifier.forks:
                self.report.problem(None, fork.code, fork.message)
            self._check_sequences()
            self._check_parts()
            self._check_gaps()
            self._finish_chat()
            finished = True
        finally:
            # Interrupted by an unexpected error, no joined file may look complete.
            self._finish_recordings(aborted=not finished)

    def _verify_and_open(self, obj: BundleObject, group: Group | None) -> bytes | None:
        problems = []
        signature_problem = self.verifier.check(obj.checkpoint)
        if signature_problem:
            problems.append(signature_problem)
        problems += check_audit_entry(obj, self.manifest.case_id)
        data, file_problems = _read_ciphertext(self.bundle, obj)
        problems += file_problems
        plaintext = None
        # Decrypted even when a check failed, to report every fault; then the plaintext is dropped. Not
        # when the file is too long: only its first size + 1 bytes were read.
        if data is not None and len(data) <= obj.size:
            plaintext, decrypt_problem = _decrypt(data, self.identities, obj)
            if decrypt_problem:
                problems.append(decrypt_problem)
        for problem in problems:
            self.report.problem(group, problem.code, f"{obj.describe()}: {problem.message}")
        if problems and obj.kind == RecordKind.CHAT_MESSAGE and obj.index is not None:
            self.chat_missing[obj.session_id or "-"][obj.index] = "failed verification (see problems)"
        return None if problems else plaintext

    def _write(self, name: str, data: bytes) -> None:
        self.out.write(name, data)
        self.report.outputs.append(name)

    def _route(self, obj: BundleObject, group: Group | None, plaintext: bytes) -> None:
        session = obj.session_id or "-"
        if obj.kind == RecordKind.TRANSCRIPT:
            self._write(f"{session}/transcript.json", plaintext)
            self._read_transcript(obj, group, session, plaintext)
        elif obj.kind == RecordKind.CHAT_MESSAGE:
            self._write(f"{session}/chat/{obj.index:08d}.json", plaintext)
            try:
                message = json.loads(plaintext)
                if not isinstance(message, dict):
                    raise ValueError("not an object")
            except ValueError:
                self.report.problem(group, "bad_chat_message",
                                    f"{obj.describe()}: decrypted, but is not a JSON chat message")
                self.chat_missing[session][obj.index] = "not a readable chat message"
            else:
                self.chat[session].append({**message, "seq": obj.index})
        elif obj.kind == RecordKind.CONSENT:
            self._write(f"{session}/consents/{obj.participant_id}/{obj.index:04d}.json", plaintext)
        elif obj.kind == RecordKind.E2EE_KEY:
            self.keys[session].append((plaintext, {"session_id": session, "participant_id": obj.participant_id}))
        elif obj.kind == RecordKind.AGREEMENT:
            self._write(f"agreements/{obj.index:04d}.json", plaintext)
        elif group is not None:
            if group not in self.recordings:
                name = f"{session}/{obj.participant_id}-{obj.part:04d}.webm.partial"
                self.recordings[group] = (name, self.out.create(name))
                self.report.recordings[group] = (name, [])
            self.recordings[group][1].write(plaintext)
            try:
                detail = json.loads(obj.audit_entry).get("detail") or {}  # verified above
            except (ValueError, AttributeError):
                detail = {}
            filed = FiledSegment.from_detail(detail) if isinstance(detail, dict) else None
            if filed is not None:
                self.report.recordings[group][1].append(filed)

    def _read_transcript(self, obj: BundleObject, group: Group | None, session: str, plaintext: bytes) -> None:
        try:
            doc = transcript.read_transcript(json.loads(plaintext))
            self._decrypt_chat(group, session, [e for e in doc["events"] if e.get("type") == "chat_message"])
            text = transcript.render_transcript(doc)
        except ValueError as exc:
            self.report.problem(group, "bad_transcript",
                                f"{obj.describe()}: decrypted, but cannot be read as a transcript: {exc}")
            return
        self.transcripts[session] = doc
        self._write(f"{session}/transcript.txt", text.encode())

    def _check_sequences(self) -> None:
        # What a verified transcript says was sealed must be there too: this alone catches
        # objects missing from the END of a sequence, which leave no gap.
        declared: dict[Group, int] = {}
        for session, doc in self.transcripts.items():
            for participant_id, counts in (transcript.declared_parts(doc) or {}).items():
                for part, count in enumerate(counts):
                    if count:
                        key = _sequence_key(RecordKind.RECORDING_SEGMENT, session, participant_id, part)
                        declared[key] = count
                        self.indices.setdefault(key, [])
            if transcript.chat_seqs(doc):
                self.indices.setdefault(_sequence_key(RecordKind.CHAT_MESSAGE, session, None, None), [])
        for key, indices in sorted(self.indices.items()):
            kind, session = RecordKind(key[0]), key[1]
            first = FIRST_INDEX[kind]
            end = max(max(indices, default=first - 1) + 1, first + declared.get(key, 0))
            if kind == RecordKind.CHAT_MESSAGE and session in self.transcripts:
                end = max(end, max(transcript.chat_seqs(self.transcripts[session]), default=0) + 1)
            missing = sorted(set(range(first, end)) - set(indices))
            if not missing:
                continue
            # A missing consent or agreement spoils no other output, but the result all the same.
            if kind == RecordKind.RECORDING_SEGMENT:
                group: Group | None = ("recording", *key[1:])
            else:
                group = _group(kind, session, key[2] if len(key) > 2 else None, None)
            self.report.problem(group, "missing_indices",
                                f"{kind} {'/'.join(key[1:])}: index(es) {_ranges(missing)} MISSING from the "
                                f"bundle (present: {_ranges(indices)})")
            if kind == RecordKind.CHAT_MESSAGE:
                for seq in missing:
                    self.chat_missing[session][seq] = "not in the bundle"

    def _check_parts(self) -> None:
        declared: dict[tuple[str, str], list[int]] = {}
        for session, doc in self.transcripts.items():
            for participant_id, counts in (transcript.declared_parts(doc) or {}).items():
                declared[(session, participant_id)] = counts
                self.parts.setdefault((session, participant_id), set())
        for (session, participant_id), listed in sorted(self.parts.items()):
            # Parts with a sequence to check: listed ones, and those the transcript declares (set up above).
            present = {int(key[3]) for key in self.indices
                       if key[:3] == (RecordKind.RECORDING_SEGMENT.value, session, participant_id)}
            expected = set(range(max(present | listed, default=-1) + 1))
            expected -= {part for part, count in enumerate(declared.get((session, participant_id), [])) if not count}
            missing = sorted(expected - present)
            if missing:
                self.report.problem(("recording-parts", session, participant_id), "missing_parts",
                                    f"recording {session}/{participant_id}: part(s) {_ranges(missing)} MISSING "
                                    "from the bundle")
        recorded = {session for session, _ in self.parts}
        for session in sorted({key[1] for key in self.indices if key[0] == RecordKind.CHAT_MESSAGE.value}
                              | recorded):
            if session not in self.transcripts:
                self.report.problem(("session", session), "no_transcript",
                                    f"session {session} has no verified transcript, so nothing vouches that its "
                                    "recordings and chat are whole (what is cut from the end leaves no gap)")
            elif session in recorded and transcript.declared_parts(self.transcripts[session]) is None:
                self.report.problem(("recordings", session), "transcript_no_recordings",
                                    f"the transcript of session {session} does not declare the segments recorded "
                                    "('recordings'), so nothing vouches that its recordings are whole")

    def _check_gaps(self) -> None:
        report_gaps(self.transcripts, self.report)
        self.report.transcripts = dict(self.transcripts)

    def _decrypt_chat(self, group: Group | None, session: str, messages: list[dict[str, Any]]) -> None:
        """End-to-end encrypted messages get their text from the session's key records (e2eekeys)."""
        try:
            keys = e2eekeys.session_keys(self.keys.get(session, []))
        except e2eekeys.KeyRecordError as exc:
            self.report.problem(group, "bad_key_record", f"session {session}: a key record is unusable: {exc}")
            keys = {}
        for problem in e2eekeys.reveal(messages, keys, session):
            self.report.problem(group, "undecryptable_chat", f"session {session}: {problem}")

    def _finish_chat(self) -> None:
        for session in sorted(set(self.chat) | set(self.chat_missing)):
            group = ("chat", session)
            self._decrypt_chat(group, session, self.chat.get(session, []))
            spoiled = self.report.spoiled(group)
            heading = f"Chat of session {session} of case {self.manifest.case_id}\n"
            if spoiled:
                heading += "INCOMPLETE: messages are missing or failed verification; see REPORT.txt\n"
            text = transcript.render_chat(self.chat.get(session, []), self.chat_missing.get(session, {}))
            self._write(f"{session}/chat.txt" + (INCOMPLETE if spoiled else ""), (heading + "\n" + text).encode())

    def _finish_recordings(self, *, aborted: bool) -> None:
        for group, (partial, handle) in sorted(self.recordings.items()):
            handle.close()
            spoiled = aborted or self.report.spoiled(group)
            final = partial.removesuffix(".partial") + (INCOMPLETE if spoiled else "")
            # The joined streaming file gets the Cues, Duration and sized Segment players seek by.
            try:
                with self.out.create(final) as target:
                    write_seekable(self.out.root / partial, target)
            except NotSeekableError as exc:
                self.report.warning("recording_not_indexed", f"{final}: {exc}; written as recorded (streaming, "
                                                             "without Cues or Duration)")
                os.remove(self.out.root / final)
                self.out.rename(partial, final)
            else:
                os.remove(self.out.root / partial)
            self.report.outputs.append(final)
            self.report.recordings[group] = (final, self.report.recordings[group][1])
        for key in sorted(self.indices):
            if key[0] == RecordKind.RECORDING_SEGMENT.value and ("recording", *key[1:]) not in self.recordings:
                self.report.warning("recording_nothing_verified",
                                    f"recording {'/'.join(key[1:])}: no segment verified, nothing written")


def report_gaps(transcripts: dict[str, dict[str, Any]], report: Report) -> None:
    """Report every gap the verified transcripts name (the recorder's measured losses) as `recording_gap`.

    Each spoils its participant's file, or the session's recordings when the gap does not say which.
    """
    for session, doc in sorted(transcripts.items()):
        for gap in transcript.recording_gaps_of(doc):
            participant_id, part = gap.get("participant_id"), gap.get("part")
            group: Group = (("recording", session, participant_id, f"{part:04d}")
                            if isinstance(participant_id, str) and isinstance(part, int) and not isinstance(part, bool)
                            and part >= 0 else ("recordings", session))
            report.problem(group, "recording_gap",
                           f"recording {session}/{transcript.clean_text(participant_id)}: MISSING media, "
                           + transcript.describe_gap(gap))


def open_bundle(bundle: Path, identities: list[pyrage.x25519.Identity], pinned: Sequence[Path],
                out: Path, *, pin: Path | None = None, witnesses: Sequence[Witness] = (),
                quorum: int = 0) -> Report:
    """Verify and open the bundle in `bundle` into `out`; return the report (also written to REPORT.txt).

    With `pin` (a file), the bundle's checkpoint must extend the one pinned there, which it then
    replaces if the checkpoint passed; `quorum` cosignatures of `witnesses` are required.
    """
    try:
        pinned_head = read_pin(pin)
    except (OSError, ValueError) as exc:
        raise SetupError(f"pin file {str(pin)!r} does not hold a checkpoint: {exc}") from None
    try:
        raw = (bundle / "manifest.json").read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {str(bundle / 'manifest.json')!r}: {exc.strerror}") from None
    manifest = parse_manifest(raw)
    report = Report(listed=len(manifest.objects) + len(manifest.malformed))
    trusted = _trusted_keys(manifest, pinned, report)
    output = _OutputDir(out)
    if report.listed == 0:
        report.problem(None, "nothing_listed", "the manifest lists no objects: there is nothing to verify")
    _warn_unlisted(bundle, manifest, report)
    problems, warnings, accepted = check_evidence(bundle, manifest, trusted, pinned_head, witnesses, quorum)
    for problem in problems:
        report.problem(None, problem.code, problem.message)
    report.warnings += warnings
    _Opener(bundle, manifest, identities, CheckpointVerifier(trusted), output, report).run()
    output.write("REPORT.txt", report.render().encode())
    if pin is not None and accepted is not None:
        write_pin(pin, accepted)
    return report


def _trusted_keys(manifest: Manifest, pinned: Sequence[Path], report: Report) -> dict[str, Any]:
    trusted = {}
    for path in pinned:
        try:
            key = load_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise SetupError(f"audit public key {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
        trusted[key_id(key)] = key
    shipped = None
    if manifest.audit_public_key_pem:
        try:
            shipped = load_public_key(manifest.audit_public_key_pem.encode())
        except ValueError as exc:
            report.problem(None, "audit_key_unusable", f"the manifest's audit_public_key_pem is unusable: {exc}")
    if trusted:
        if shipped is not None and key_id(shipped) not in trusted:
            report.warning("audit_key_not_the_pinned_one",
                           f"the bundle ships audit key {key_id(shipped)}, which is not one you "
                                   f"pinned ({', '.join(sorted(trusted))}); only pinned keys are trusted")
    elif shipped is not None:
        trusted[key_id(shipped)] = shipped
        report.warning(
            "audit_key_not_pinned",
            f"AUDIT KEY NOT PINNED: trusting the key shipped inside the bundle (id {key_id(shipped)}). A bundle "
            "forged as a whole would pass; compare this id with the one the mediation body publishes, or pass "
            "--audit-public-key")
    else:
        report.problem(None, "no_audit_key",
                       "no audit public key: the manifest has none and no --audit-public-key was given")
    return trusted


def _warn_unlisted(bundle: Path, manifest: Manifest, report: Report) -> None:
    listed = {obj.key for obj in manifest.objects} | {"manifest.json", EVIDENCE_FILE}
    extra = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()
                   and str(p.relative_to(bundle)) not in listed)
    if extra:
        report.warning("listed_not_in_manifest",
                       f"{len(extra)} file(s) in the bundle are not in the manifest and were ignored: "
                       + ", ".join(extra[:10]) + (" …" if len(extra) > 10 else ""))
