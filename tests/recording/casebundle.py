"""A real case bundle for the compliance tool's tests.

WebM recordings encoded by PyAV (VP8 + Opus) are cut into segments and sealed with a key made
by `age-keygen`; every sealed object is entered in the server's own AuditLog on SQLite, a
checkpoint is signed, and the manifest is built from what the database then holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import av
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from recording.records import merkle
from recording.records.checkpoint import public_key_pem
from recording.records.kinds import RecordKind
from recording.records.manifest import build_manifest, manifest_object
from recording.records.sealing import SealedObject, Sealer
from recording.records.storage import DirectoryStorage
from server.audit import AuditLog
from server.database import Database
from server.models import AuditCheckpoint, AuditEntry
from tests.recording.agekeys import AgeKey, generate

CASE = "cas_00c0ffee"
SESSION = "ses_0000beef"
MEDIATOR = "usr_mediator01"
BORROWER = "pty_borrower01"
BANK = "usr_bankrep001"
SEGMENTS = 4  # per recording part
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)


def at(seconds: int) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


@dataclasses.dataclass
class CaseBundle:
    directory: Path  # the pristine bundle: copy it before tampering
    officer: AgeKey
    audit_public_key: Path
    signing_key: Ed25519PrivateKey
    recordings: dict[tuple[str, int], bytes]  # (participant_id, part) -> the WebM before it was cut and sealed
    transcript: dict[str, Any]


def make_webm(frames: int, shade: int) -> bytes:
    """A small real WebM: 64x48 VP8 at 15 fps and mono Opus, `frames` video frames long."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as container:
        video = container.add_stream("libvpx", rate=15)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("libopus", rate=48000)
        audio.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for n, plane in enumerate(frame.planes):
                plane.update(bytes([(shade + i * 9 + n * 40) % 256]) * plane.buffer_size)
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for i in range(frames * 50 // 15):  # 20 ms frames covering the same time
            sound = av.AudioFrame(format="s16", layout="mono", samples=960)
            sound.planes[0].update(bytes((i * 7 + k) % 251 for k in range(1920)))
            sound.sample_rate = 48000
            sound.pts = i * 960
            for packet in audio.encode(sound):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return buffer.getvalue()


def _cut(data: bytes, pieces: int) -> list[bytes]:
    step = -(-len(data) // pieces)
    return [data[i:i + step] for i in range(0, len(data), step)]


def _transcript() -> dict[str, Any]:
    return {
        "format": "mediation-transcript/v1", "case_id": CASE, "session_id": SESSION,
        "started_at": at(0), "ended_at": at(2400),
        "participants": [
            {"participant_id": MEDIATOR, "name": "Mo Mediator", "role": "mediator"},
            {"participant_id": BORROWER, "name": "Li Wei", "role": "borrower"},
            {"participant_id": BANK, "name": "Bo Bank", "role": "bank_representative"},
        ],
        # The borrower reconnected once: its second part is a new WebM stream.
        "recordings": {MEDIATOR: {"parts": [SEGMENTS]}, BORROWER: {"parts": [SEGMENTS, SEGMENTS]}},
        "events": [
            {"at": at(0), "type": "participant_joined", "participant_id": MEDIATOR, "status": "admitted"},
            {"at": at(5), "type": "participant_joined", "participant_id": BORROWER, "status": "lobby"},
            {"at": at(9), "type": "admitted", "participant_id": BORROWER, "by": MEDIATOR},
            {"at": at(12), "type": "participant_joined", "participant_id": BANK, "status": "lobby"},
            {"at": at(14), "type": "admitted", "participant_id": BANK, "by": MEDIATOR},
            {"at": at(20), "type": "consent_given", "participant_id": BORROWER, "notice_sha256": "ab" * 32},
            {"at": at(21), "type": "recording_started"},
            {"at": at(60), "type": "chat_message", "seq": 1, "participant_id": BORROWER, "channel": "main",
             "text": "I can pay 2,000 a month.\nFrom March."},
            {"at": at(120), "type": "chat_message", "seq": 2, "participant_id": BANK, "channel": "main",
             "text": "\x1b[2Jthat is \u202eodd"},
            {"at": at(150), "type": "message_deleted", "seq": 2, "by": MEDIATOR},
            {"at": at(180), "type": "caucus_started", "by": MEDIATOR, "members": [MEDIATOR, BORROWER]},
            {"at": at(240), "type": "chat_message", "seq": 3, "participant_id": MEDIATOR, "channel": "caucus",
             "text": "Just between us: is 2,000 realistic?"},
            {"at": at(600), "type": "caucus_ended", "by": MEDIATOR},
            {"at": at(660), "type": "chat_muted", "participant_id": BANK, "by": MEDIATOR, "muted": True},
            {"at": at(2300), "type": "participant_left", "participant_id": BANK, "reason": "network"},
            {"at": at(2400), "type": "session_ended", "by": MEDIATOR},
        ],
    }


def _chat(transcript: dict[str, Any]) -> list[dict[str, Any]]:
    names = {p["participant_id"]: p for p in transcript["participants"]}
    messages = []
    for event in transcript["events"]:
        if event["type"] == "chat_message":
            person = names[event["participant_id"]]
            messages.append({"seq": event["seq"], "sent_at": event["at"], "participant_id": person["participant_id"],
                             "name": person["name"], "role": person["role"], "text": event["text"],
                             "channel": event["channel"]})
    messages[1]["deleted"] = {"by": MEDIATOR, "at": at(150)}
    return messages


async def _seal_all(sealer: Sealer, officer: AgeKey, recordings: dict[tuple[str, int], bytes],
                    transcript: dict[str, Any], sealed_transcript: dict[str, Any]) -> list[SealedObject]:
    common = {"case_id": CASE, "session_id": SESSION, "recipients": [officer.recipient]}
    sealed = []
    for (participant_id, part), webm in recordings.items():
        for index, piece in enumerate(_cut(webm, SEGMENTS)):
            sealed.append(await sealer.seal(piece, kind=RecordKind.RECORDING_SEGMENT, participant_id=participant_id,
                                            part=part, index=index, **common))
    for message in _chat(transcript):
        sealed.append(await sealer.seal_json(message, kind=RecordKind.CHAT_MESSAGE, index=message["seq"],
                                             participant_id=message["participant_id"], **common))
    sealed.append(await sealer.seal_json({"participant_id": BORROWER, "given_at": at(20), "notice_sha256": "ab" * 32},
                                         kind=RecordKind.CONSENT, participant_id=BORROWER, index=0, **common))
    sealed.append(await sealer.seal_json(sealed_transcript, kind=RecordKind.TRANSCRIPT, **common))
    sealed.append(await sealer.seal_json({"instalments": [{"due": "2026-04-01", "amount_minor": 200000}]},
                                         kind=RecordKind.AGREEMENT, case_id=CASE, session_id=None, index=1,
                                         recipients=[officer.recipient]))
    return sealed


async def build(directory: Path, workspace: Path, *, transcript: dict[str, Any] | None = None) -> CaseBundle:
    """Seal, audit and write a complete bundle into `directory`; keys and the database go to `workspace`.

    `transcript` replaces the sealed transcript (the chat is still that of the standard one).
    """
    officer = generate(workspace / "officer")
    recordings = {(MEDIATOR, 0): make_webm(30, 10), (BORROWER, 0): make_webm(24, 150),
                  (BORROWER, 1): make_webm(18, 90)}
    standard = _transcript()
    transcript = transcript if transcript is not None else standard
    sealed = await _seal_all(Sealer(DirectoryStorage(directory)), officer, recordings, standard, transcript)

    signing_key = Ed25519PrivateKey.generate()
    db = Database(f"sqlite+aiosqlite:///{workspace / 'audit.db'}")
    try:
        await db.migrate()
        audit = AuditLog(db, signing_key)
        entry_ids = []
        for n, item in enumerate(sealed):
            async with db.write() as session:
                # Other cases' entries sit between ours, as in a real log.
                await audit.append(session, actor="system", action="case_filed", case_id=f"cas_other{n}")
                entry_ids.append(await audit.append(session, actor="recorder", action="record_sealed",
                                                    case_id=CASE, detail=item.audit_detail()))
        await audit.checkpoint()
        async with db.write() as session:  # an entry after the checkpoint: the unsigned tail
            await audit.append(session, actor="system", action="case_filed", case_id="cas_late")
        await audit.sequence()
        async with db.read() as session:
            entries = (await session.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars().all()
            checkpoint = (await session.execute(select(AuditCheckpoint))).scalar_one()
    finally:
        await db.close()

    seq_of = {e.entry_id: e.seq for e in entries}
    seqs = [seq_of[entry_id] for entry_id in entry_ids]
    leaves = [e.leaf_hash for e in entries][: checkpoint.tree_size]
    objects = [
        manifest_object(item, audit_seq=seq, audit_entry=entries[seq].canonical,
                        proof=merkle.inclusion_proof(leaves, seq), tree_size=checkpoint.tree_size,
                        root_hash=checkpoint.root_hash, signed_at=checkpoint.signed_at, key_id=checkpoint.key_id,
                        signature=checkpoint.signature)
        for item, seq in zip(sealed, seqs, strict=True)
    ]
    pem = public_key_pem(signing_key.public_key())
    (directory / "manifest.json").write_bytes(
        build_manifest(case_id=CASE, objects=objects, audit_public_key_pem=pem, exported_at=T0))
    audit_public_key = workspace / "audit-public.pem"
    audit_public_key.write_text(pem)
    return CaseBundle(directory=directory, officer=officer, audit_public_key=audit_public_key,
                      signing_key=signing_key, recordings=recordings, transcript=transcript)


def transcript_without_recordings() -> dict[str, Any]:
    """The standard session's transcript without its segment counts (`recordings`)."""
    transcript = _transcript()
    del transcript["recordings"]
    return transcript


def edit_manifest(directory: Path, change: Any) -> None:
    """Load the bundle's manifest, let `change(manifest)` alter it in place, write it back."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_bytes())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=1))


def find(manifest: dict[str, Any], kind: str, participant_id: str | None = None, index: int | None = None,
         part: int = 0) -> dict:
    for entry in manifest["objects"]:
        if entry["kind"] == kind and (participant_id is None or entry["participant_id"] == participant_id) \
                and (index is None or entry["index"] == index) and entry["part"] in (None, part):
            return entry
    raise LookupError(f"no {kind} {participant_id} {index} part {part} in the manifest")
