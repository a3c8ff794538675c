"""Recording consent and the recording itself: the notice every party accepts, start and stop."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING

from signaling import payloads
from signaling.errors import RoomError
from signaling.roomstate import ADMITTED

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn

PARTY_ROLES = frozenset({"borrower", "lender", "bank_representative"})

NOTICES = {
    "zh-CN": (
        "本次调解将被录音录像，聊天记录也将被保存。所有记录在采集时即以合规官的公钥加密，"
        "服务器无法解密。记录仅用于调解存证和合规审查。您可以随时撤回同意，录制将立即停止。"
    ),
    "en": (
        "This mediation session will be recorded (audio, video and chat). Every record is encrypted "
        "as it is captured to the compliance officers' public keys; the server cannot decrypt it. "
        "Records serve only as evidence of the mediation and for compliance review. You may withdraw "
        "your consent at any time and the recording stops at once."
    ),
}


def notice_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


NOTICE_HASHES = {notice_sha256(text): language for language, text in NOTICES.items()}


def notice_view() -> list[dict[str, str]]:
    """The notice in every language with the hash a party sends back when it consents."""
    return [{"language": language, "text": text, "sha256": notice_sha256(text)} for language, text in NOTICES.items()]


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


# The codes Hooks.prove_possession refuses a consent change with (docs/protocol.md, "Possession proofs").
POSSESSION_CODES = ("possession_required", "possession_invalid", "code_wrong", "code_expired", "code_spent",
                    "party_act_only")


def _proof(proof: payloads.Proof | None) -> dict[str, str] | None:
    return proof.model_dump(exclude_none=True) if proof is not None else None


async def give_consent(engine: RoomEngine, turn: Turn, payload: payloads.GiveConsent) -> None:
    member = turn.member
    if payload.notice_sha256 not in NOTICE_HASHES:
        raise RoomError("unknown_notice", "that is not the recording notice this server shows")
    # The party's possession factor, checked and spent by the case record; a RoomError if missing or wrong.
    evidence = await engine.hooks.prove_possession(turn.identity, "give_consent", _proof(payload.proof))
    turn.room.consents[member.participant_id] = {"notice_sha256": payload.notice_sha256, "at": now_iso()}
    turn.roster_changed = True
    turn.audit("consent_given", notice_sha256=payload.notice_sha256, **evidence)
    await engine.hooks.consent_changed(turn.identity, payload.notice_sha256)


async def withdraw_consent(engine: RoomEngine, turn: Turn, payload: payloads.WithdrawConsent) -> None:
    member, room = turn.member, turn.room
    if member.participant_id not in room.consents:
        raise RoomError("no_consent", "you have not given consent")
    evidence = await engine.hooks.prove_possession(turn.identity, "withdraw_consent", _proof(payload.proof))
    del room.consents[member.participant_id]
    turn.roster_changed = True
    turn.audit("consent_withdrawn", **evidence)
    await engine.hooks.consent_changed(turn.identity, None)
    if room.recording:
        await halt_recording(engine, turn, reason="consent_withdrawn")


async def start_recording(engine: RoomEngine, turn: Turn, _payload: payloads.Empty) -> None:
    room = turn.room
    if room.recording:
        raise RoomError("recording_active", "the session is already being recorded")
    if room.mode != "video":
        raise RoomError("chat_only", "a chat-only session has no media to record; its chat is sealed")
    if not room.sealed:
        raise RoomError("no_recipients", "no compliance officer key is registered; nothing can be sealed")
    missing = [m.name for m in room.members.values()
               if m.status == ADMITTED and m.role in PARTY_ROLES and m.participant_id not in room.consents]
    if missing:
        raise RoomError("consent_missing", f"waiting for consent from {', '.join(sorted(missing))}")
    room.recording = True
    turn.roster_changed = True
    for member in room.members.values():
        turn.send(member.sid, "recording_started", {})
    turn.audit("recording_started")
    await engine.hooks.start_recorder(turn.identity)


async def stop_recording(engine: RoomEngine, turn: Turn, _payload: payloads.Empty) -> None:
    if not turn.room.recording:
        raise RoomError("not_recording", "no recording is running")
    await halt_recording(engine, turn, reason="mediator")


async def halt_recording(engine: RoomEngine, turn: Turn, *, reason: str) -> None:
    """Stop the running recording: everyone is told why, and the recording peer leaves the room."""
    room = turn.room
    room.recording = False
    turn.roster_changed = True
    for member in room.members.values():
        turn.send(member.sid, "recording_stopped", {"reason": reason})
    for member in list(room.members.values()):
        if member.role == "recorder":
            del room.members[member.participant_id]
            if member.sid:
                turn.disconnects.append(member.sid)
    turn.audit("recording_stopped", reason=reason)
    await engine.hooks.stop_recorder(turn.identity, reason)
