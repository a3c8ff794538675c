"""The Sealer stores only ciphertext under descriptive keys and describes exactly what it stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyrage
import pytest

from recording.records.kinds import RecordKind, record_key
from recording.records.sealing import Sealer, seal
from recording.records.storage import DirectoryStorage, RecordExistsError
from tests.recording.agekeys import AgeKey, generate

CASE, SESSION, PARTY = "cas_0a1b", "ses_2c3d", "pty_4e5f"
FIXED = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def officer(tmp_path: Path) -> AgeKey:
    return generate(tmp_path / "keys")


def test_record_key_each_kind_has_its_documented_shape() -> None:
    ids = {"case_id": CASE, "session_id": SESSION}
    assert record_key("recording_segment", **ids, participant_id=PARTY, part=1, index=7) == \
        f"cases/{CASE}/sessions/{SESSION}/recordings/{PARTY}/0001/000007.webm.age"
    assert record_key("chat_message", **ids, participant_id=PARTY, index=12) == \
        f"cases/{CASE}/sessions/{SESSION}/chat/00000012.json.age"
    assert record_key("transcript", **ids) == f"cases/{CASE}/sessions/{SESSION}/transcript.json.age"
    assert record_key("consent", **ids, participant_id=PARTY, index=0) == \
        f"cases/{CASE}/sessions/{SESSION}/consents/{PARTY}/0000.json.age"
    assert record_key("agreement", case_id=CASE, session_id=None, index=2) == f"cases/{CASE}/agreements/0002.json.age"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "video"}, "unknown record kind 'video'"),
        ({"case_id": "../x"}, "case_id '../x'"),
        ({"participant_id": None}, "participant_id None"),
        ({"participant_id": "PTY"}, "participant_id 'PTY'"),
        ({"index": None}, "index in \\[0, 1000000\\), got None"),
        ({"index": -1}, "got -1"),
        ({"index": 10**6}, "got 1000000"),
        ({"index": True}, "got True"),
        ({"kind": "transcript"}, "has no participant"),
        ({"part": None}, "needs an integer part in \\[0, 10000\\), got None"),
        ({"part": 10_000}, "got 10000"),
        ({"kind": "consent", "part": 0}, "a consent has no part, got 0"),
        ({"kind": "chat_message", "index": 0}, "index in \\[1, "),
        ({"kind": "agreement", "participant_id": None}, "belongs to the case, not to session"),
    ],
)
def test_record_key_fields_that_do_not_fit_the_kind_refused(fields: dict, message: str) -> None:
    arguments = {"kind": "recording_segment", "case_id": CASE, "session_id": SESSION, "participant_id": PARTY,
                 "index": 0, "part": 0, **fields}
    with pytest.raises(ValueError, match=message):
        record_key(**arguments)


async def test_sealer_stores_only_ciphertext_and_describes_it(tmp_path: Path, officer: AgeKey) -> None:
    storage = DirectoryStorage(tmp_path / "records")
    plaintext = b"\x1aE\xdf\xa3 webm header and clusters " * 100
    sealed = await Sealer(storage, clock=lambda: FIXED).seal(
        plaintext, kind=RecordKind.RECORDING_SEGMENT, case_id=CASE, session_id=SESSION,
        participant_id=PARTY, part=0, index=0, recipients=[f" {officer.recipient} "])
    stored = await storage.get(sealed.key)
    assert plaintext[:40] not in stored
    assert sealed.key == f"cases/{CASE}/sessions/{SESSION}/recordings/{PARTY}/0000/000000.webm.age"
    assert sealed.sha256 == hashlib.sha256(stored).hexdigest() and sealed.size == len(stored)
    assert sealed.recipients == (officer.recipient,) and sealed.created_at == FIXED
    assert pyrage.decrypt(stored, [pyrage.x25519.Identity.from_str(officer.secret())]) == plaintext
    detail = sealed.audit_detail()
    assert detail["key"] == sealed.key and detail["sha256"] == sealed.sha256
    assert detail["index"] == 0 and detail["part"] == 0
    json.dumps(detail)  # it goes into an audit entry as is


async def test_sealer_json_is_canonical(tmp_path: Path, officer: AgeKey) -> None:
    storage = DirectoryStorage(tmp_path)
    sealed = await Sealer(storage).seal_json(
        {"text": "Grüße", "seq": 1}, kind="chat_message", case_id=CASE, session_id=SESSION, index=1,
        recipients=[officer.recipient])
    opened = pyrage.decrypt(await storage.get(sealed.key), [pyrage.x25519.Identity.from_str(officer.secret())])
    assert opened == '{"seq":1,"text":"Grüße"}'.encode()


async def test_sealer_same_record_twice_refused(tmp_path: Path, officer: AgeKey) -> None:
    sealer = Sealer(DirectoryStorage(tmp_path))
    await sealer.seal(b"a", kind="transcript", case_id=CASE, session_id=SESSION, recipients=[officer.recipient])
    with pytest.raises(RecordExistsError):
        await sealer.seal(b"b", kind="transcript", case_id=CASE, session_id=SESSION, recipients=[officer.recipient])


async def test_sealer_bad_recipient_stores_nothing(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    with pytest.raises(ValueError, match="'age1bogus'"):
        await Sealer(storage).seal(b"a", kind="transcript", case_id=CASE, session_id=SESSION,
                                   recipients=["age1bogus"])
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


async def test_sealer_store_files_ciphertext_sealed_elsewhere(tmp_path: Path, officer: AgeKey) -> None:
    storage = DirectoryStorage(tmp_path)
    ciphertext = seal(b"segment from the recorder's worker", [officer.recipient])
    stored = await Sealer(storage).store(ciphertext, kind="recording_segment", case_id=CASE, session_id=SESSION,
                                         participant_id=PARTY, part=2, index=5, recipients=[officer.recipient])
    assert await storage.get(stored.key) == ciphertext
    assert stored.sha256 == hashlib.sha256(ciphertext).hexdigest() and stored.part == 2


async def test_sealer_store_refuses_what_is_not_age_ciphertext(tmp_path: Path, officer: AgeKey) -> None:
    with pytest.raises(ValueError, match="not age v1 ciphertext"):
        await Sealer(DirectoryStorage(tmp_path / "records")).store(
            b"\x1aE\xdf\xa3 plaintext WebM", kind="recording_segment", case_id=CASE, session_id=SESSION,
            participant_id=PARTY, part=0, index=0, recipients=[officer.recipient])
    assert [p for p in (tmp_path / "records").rglob("*") if p.is_file()] == []
