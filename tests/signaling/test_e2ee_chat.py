"""End-to-end encrypted chat through real clients: keys relayed only to channel members, ciphertext checked."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from sqlalchemy import select

from server.models import AuditEntry
from signaling.payloads import MAX_CHAT_CIPHERTEXT_BYTES
from tests.signaling.conftest import Session
from tests.signaling.peer import Participant
from recording.compliance.e2eekeys import b64url_encode, decrypt_chat, parse_key_record
from tests.recording.agekeys import age_binary, generate
from tests.support.e2ee import DeviceKeys

CANARY = "canary-7f3c: we could settle at 41,250"


async def _encrypted_trio(room: Session) -> list[tuple[Participant, DeviceKeys]]:
    session_id = room.journey.session_id
    trio = [(room.mediator(), DeviceKeys(session_id)), (room.bank(), DeviceKeys(session_id)),
            (room.borrower(), DeviceKeys(session_id))]
    mediator = trio[0][0]
    await mediator.join(trio[0][1])
    for peer, keys in trio[1:]:
        assert (await peer.join(keys))["status"] == "lobby"
        assert (await mediator.request("admit", {"participant_id": peer.participant_id}))["ok"]
        await peer.wait_for("admitted")
    return trio


def _members(trio: list[tuple[Participant, DeviceKeys]], *, but: DeviceKeys) -> dict[str, str]:
    return {keys.participant_id: keys.public_key for _, keys in trio if keys is not but}


async def _share(peer: Participant, keys: DeviceKeys, channel: str, members: dict[str, str]) -> dict:
    result = await peer.request("share_keys", keys.share_payload(keys.new_send_key(channel), members))
    assert result["ok"], result
    return result


async def test_e2ee_chat_delivers_ciphertext_members_decrypt(room: Session) -> None:
    trio = await _encrypted_trio(room)
    (mediator, m_keys), (bank, b_keys), (borrower, r_keys) = trio
    state = await bank.wait_for("room_state", lambda s: len(s["participants"]) == 3)
    assert state["end_to_end"] is True
    assert {p["participant_id"]: p["public_key"] for p in state["participants"]} == _members(trio, but=None)
    shared = await _share(borrower, r_keys, "main", _members(trio, but=r_keys))
    assert sorted(shared["delivered"]) == sorted([mediator.participant_id, bank.participant_id])
    for peer, keys in ((mediator, m_keys), (bank, b_keys)):
        keys.unwrap(await peer.wait_for("keys_shared", lambda n: n["participant_id"] == borrower.participant_id))
    sent = await borrower.request("send_chat", r_keys.encrypt("main", CANARY))
    assert sent["ok"], sent
    for peer, keys in ((mediator, m_keys), (bank, b_keys)):
        message = await peer.wait_for("chat_message", lambda m: m["seq"] == sent["seq"])
        assert "text" not in message and message["kid"] == r_keys.sending["main"].kid
        assert message["length"] == len(base64.urlsafe_b64decode(message["ciphertext"] + "=="))
        assert keys.decrypt(message) == CANARY
    history = await mediator.request("chat_history", {})
    assert CANARY not in repr(history) and m_keys.decrypt(history["messages"][-1]) == CANARY


async def test_e2ee_room_refuses_plaintext(room: Session) -> None:
    (_, _), (bank, _), _ = await _encrypted_trio(room)
    refused = await bank.request("send_chat", {"text": "in the clear"})
    assert refused["error"] == "encryption_required"


@pytest.mark.parametrize(("change", "code"), [
    ({"ciphertext": "not base64!"}, "invalid_ciphertext"),
    ({"ciphertext": "AAAA="}, "invalid_ciphertext"),
    ({"ciphertext": "AAAA+AAA/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "invalid_ciphertext"),  # base64, not -url
    ({"ciphertext": "A" * 45}, "invalid_ciphertext"),  # 45 characters are no whole number of bytes
    ({"ciphertext": base64.urlsafe_b64encode(bytes(MAX_CHAT_CIPHERTEXT_BYTES + 1)).decode().rstrip("=")},
     "message_too_long"),
    ({"ciphertext": "A" * (MAX_CHAT_CIPHERTEXT_BYTES * 2)}, "message_too_long"),
    ({"ciphertext": base64.urlsafe_b64encode(bytes(28)).decode().rstrip("=")}, "empty_message"),
    ({"kid": 2**48}, "invalid_kid"),
    ({"kid": -1}, "invalid_kid"),
    ({"kid": None}, "invalid_kid"),
    ({"kid": "7"}, "invalid_payload"),
    ({"kid": 1.5}, "invalid_payload"),
    ({"channel": "caucus"}, "wrong_channel"),
    ({"channel": "side"}, "invalid_payload"),
    ({"text": "both"}, "invalid_payload"),
    ({"nonce": "AAAA"}, "invalid_payload"),
])
async def test_send_chat_ciphertext_invalid_is_refused_with_code(room: Session, change: dict, code: str) -> None:
    (mediator, m_keys), (bank, b_keys), (borrower, r_keys) = trio = await _encrypted_trio(room)
    await _share(borrower, r_keys, "main", _members(trio, but=r_keys))
    payload = {**r_keys.encrypt("main", "hello"), **change}
    refused = await borrower.request("send_chat", payload)
    assert refused["ok"] is False and refused["error"] == code, refused
    assert (await borrower.wait_for("error", lambda e: e["event"] == "send_chat"))["code"] == code
    assert (await borrower.request("send_chat", r_keys.encrypt("main", "and now a good one")))["ok"]
    assert [m["seq"] for m in (await mediator.request("chat_history", {}))["messages"]] == [1]


async def test_share_keys_invalid_is_refused_with_code(room: Session) -> None:
    (mediator, _), (bank, b_keys), trio_borrower = trio = await _encrypted_trio(room)
    key = b_keys.new_send_key("main")
    good = b_keys.share_payload(key, _members(trio, but=b_keys))
    for change, code in (({"channel": "caucus"}, "wrong_channel"), ({"kid": 2**48}, "invalid_kid"),
                         ({"keys": [{"participant_id": mediator.participant_id, "wrapped": "*"}]},
                          "invalid_ciphertext"),
                         ({"keys": [{"participant_id": mediator.participant_id, "wrapped": "AAAA"}]},
                          "invalid_ciphertext"),
                         ({"keys": []}, "invalid_payload"), ({"epoch": -1}, "invalid_payload")):
        refused = await bank.request("share_keys", {**good, **change})
        assert refused["ok"] is False and refused["error"] == code, (change, refused)


async def test_caucus_key_never_reaches_member_outside(room: Session) -> None:
    (mediator, m_keys), (bank, b_keys), (borrower, r_keys) = trio = await _encrypted_trio(room)
    assert (await mediator.request("open_caucus", {"participant_id": borrower.participant_id}))["ok"]
    await borrower.wait_for("caucus_started")
    mark = len(bank.events)
    # Even a sender that names the member outside: the node relays a caucus key only inside the caucus.
    shared = await _share(mediator, m_keys, "caucus", _members(trio, but=m_keys))
    assert shared["delivered"] == [borrower.participant_id]
    r_keys.unwrap(await borrower.wait_for("keys_shared", lambda n: n["channel"] == "caucus"))
    sent = await mediator.request("send_chat", m_keys.encrypt("caucus", "private: " + CANARY))
    assert sent["ok"]
    assert r_keys.decrypt(await borrower.wait_for("chat_message", lambda m: m["seq"] == sent["seq"])) \
        == "private: " + CANARY
    # The member outside cannot send in the caucus channel either, nor share keys there.
    b_keys.new_send_key("main")
    outside = await bank.request("send_chat", {**b_keys.encrypt("main", "x"), "channel": "caucus"})
    assert outside["error"] == "wrong_channel"
    assert (await mediator.request("close_caucus", {}))["ok"]
    await bank.wait_for("caucus_ended")
    assert not [data for name, data in bank.events[mark:] if name == "keys_shared"]
    assert CANARY not in repr(bank.events)


async def test_browser_without_device_key_makes_room_not_end_to_end(room: Session) -> None:
    session_id = room.journey.session_id
    mediator, m_keys = room.mediator(), DeviceKeys(session_id)
    await mediator.join(m_keys)
    borrower = room.borrower()
    joined = await borrower.join()  # no public key: this browser cannot encrypt
    assert joined["status"] == "lobby"
    lobby = await mediator.wait_for("room_state", lambda s: len(s["participants"]) == 2)
    assert lobby["end_to_end"] is True  # the lobby does not count until the mediator admits it
    assert [p["public_key"] for p in lobby["participants"] if p["role"] == "borrower"] == [None]
    assert (await mediator.request("admit", {"participant_id": borrower.participant_id}))["ok"]
    state = await mediator.wait_for("room_state", lambda s: not s["end_to_end"])
    assert state["end_to_end"] is False
    assert (await borrower.request("send_chat", {"text": "in the clear, as everyone sees"}))["ok"]
    refused = await borrower.request("send_chat", {"ciphertext": "AAAA", "kid": 1})
    assert refused["error"] == "no_device_key"
    # The fallback is on the record: the transcript's join events come from these entries.
    async with room.api.services.db.read() as session:
        joins = [json.loads(detail) for detail in (await session.execute(select(AuditEntry.detail).where(
            AuditEntry.case_id == room.journey.case_id,
            AuditEntry.action == "room_participant_joined"))).scalars()]
    assert sorted(d["end_to_end"] for d in joins) == [False, True]


async def test_file_key_files_the_sealed_key_which_opens_the_stored_ciphertext(room: Session, tmp_path) -> None:
    _, compliance = await room.api.staff("compliance_officer")
    officer = generate(tmp_path / "officer")
    await room.api.approve_key(compliance, officer.recipient)
    (mediator, m_keys), (bank, b_keys), (borrower, r_keys) = trio = await _encrypted_trio(room)
    key = r_keys.new_send_key("main")
    stranger = generate(tmp_path / "stranger")
    refused = await borrower.request("file_key", r_keys.file_payload(key, [officer.recipient, stranger.recipient]))
    assert refused["error"] == "unknown_recipient"
    bad = {**r_keys.file_payload(key, [officer.recipient]), "sealed": b64url_encode(b"plain bytes")}
    assert (await borrower.request("file_key", bad))["error"] == "invalid_ciphertext"
    filed = await borrower.request("file_key", r_keys.file_payload(key, [officer.recipient]))
    assert filed == {"ok": True, "index": 0}
    assert (await borrower.request("share_keys", r_keys.share_payload(key, _members(trio, but=r_keys))))["ok"]
    sent = await borrower.request("send_chat", r_keys.encrypt("main", CANARY))
    assert sent["ok"]
    records = room.api.services.records
    listed = {record.kind: record for record, _ in await records.list(room.journey.case_id)}
    assert listed["e2ee_key"].participant_id == borrower.participant_id and listed["e2ee_key"].index == 0
    # What the node stored: the message as ciphertext, its key sealed to the officer; the officer opens both.
    opened = {}
    for kind in ("e2ee_key", "chat_message"):
        data = await records._storage.get(listed[kind].storage_key)  # noqa: SLF001 - the bytes as stored
        assert CANARY.encode() not in data
        opened[kind] = subprocess.run([age_binary("age"), "-d", "-i", str(officer.identity_file)], input=data,
                                      check=True, capture_output=True, timeout=30).stdout
    session_key = parse_key_record(opened["e2ee_key"], session_id=room.journey.session_id,
                                   participant_id=borrower.participant_id)
    message = json.loads(opened["chat_message"])
    assert "text" not in message and CANARY not in opened["chat_message"].decode()
    assert decrypt_chat(session_key, room.journey.session_id, message["ciphertext"]) == CANARY


async def test_file_key_in_a_room_sealed_to_nobody_is_refused(room: Session) -> None:
    (_, _), (bank, b_keys), _ = await _encrypted_trio(room)
    key = b_keys.new_send_key("main")
    recipient = "age1" + "q" * 58
    payload = {"channel": "main", "epoch": 0, "kid": key.kid, "recipients": [recipient],
               "sealed": b64url_encode(b"age-encryption.org/v1\n-> X25519 x\n")}
    assert (await bank.request("file_key", payload))["error"] == "not_recorded"
