"""The mediator's powers over others: mute, removal, the lock, deleting messages, ending the session."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from signaling import devices, payloads
from signaling.caucus import end_caucus
from signaling.consent import halt_recording, now_iso
from signaling.errors import RoomError
from signaling.views import in_caucus

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn

log = logging.getLogger("mediation.signaling")


async def mute_chat(engine: RoomEngine, turn: Turn, payload: payloads.MuteChat) -> None:
    target = turn.other(payload.participant_id)
    target.chat_muted = payload.muted
    turn.send(target.sid, "chat_muted", {"muted": payload.muted})
    turn.roster_changed = True
    turn.audit("chat_muted" if payload.muted else "chat_unmuted", participant_id=target.participant_id)


async def request_mute_media(engine: RoomEngine, turn: Turn, payload: payloads.RequestMuteMedia) -> None:
    target = turn.other(payload.participant_id)
    turn.send(target.sid, "mute_media_requested", {"audio": payload.audio, "video": payload.video})
    turn.audit("media_mute_requested", participant_id=target.participant_id, audio=payload.audio,
               video=payload.video)


async def remove_participant(engine: RoomEngine, turn: Turn, payload: payloads.Refuse) -> None:
    room = turn.room
    target = turn.other(payload.participant_id)
    if in_caucus(room, target):
        end_caucus(turn, reason="member_left")
    del room.members[target.participant_id]
    room.removed.append(target.participant_id)
    turn.send(target.sid, "removed", {"reason": payload.reason})
    if target.sid:
        turn.disconnects.append(target.sid)
    devices.close_waiting(turn, target.participant_id, "removed", {"reason": payload.reason})
    turn.roster_changed = True
    turn.audit("participant_removed", participant_id=target.participant_id, reason=payload.reason)
    await engine.hooks.participant_removed(turn.identity, target.participant_id)


async def lock_room(engine: RoomEngine, turn: Turn, payload: payloads.LockRoom) -> None:
    turn.room.locked = payload.locked
    turn.roster_changed = True
    turn.audit("room_locked" if payload.locked else "room_unlocked")


async def delete_message(engine: RoomEngine, turn: Turn, payload: payloads.DeleteMessage) -> None:
    room = turn.room
    messages = await engine.store.chat_messages(room.session_id)
    message = next((m for m in messages if m["seq"] == payload.seq), None)
    if message is None:
        raise RoomError("unknown_message", f"no message {payload.seq} in this room")
    if str(payload.seq) in room.deleted:
        raise RoomError("already_deleted", f"message {payload.seq} is already deleted")
    room.deleted[str(payload.seq)] = {"by": turn.member.participant_id, "at": now_iso()}
    for participant_id in message["audience"]:
        member = room.members.get(participant_id)
        if member is not None:
            turn.send(member.sid, "message_deleted", {"seq": payload.seq})
    turn.audit("message_deleted", seq=payload.seq, author=message["participant_id"])


async def end_session(engine: RoomEngine, turn: Turn, _payload: payloads.Empty) -> None:
    room = turn.room
    if room.recording:
        await halt_recording(engine, turn, reason="session_ended")
    room.ended, room.caucus = True, None
    identity, sealed = turn.identity, room.sealed

    async def finish() -> None:
        # Outside the room's lock: the transcript waits for the recorder's last segments.
        if sealed:
            try:
                await engine.hooks.session_ended(identity)
            except Exception:  # noqa: BLE001 - nobody waits on this; it must be loud
                log.exception("sealing the transcript failed", extra={"session_id": identity.session_id})
                return  # the session's key stays, so what the transcript needs can still be read
        try:
            # Destroy the session's key (crypto-shredding) once the transcript is sealed.
            await engine.store.shred(identity.session_id)
        except Exception:  # noqa: BLE001 - as above; the room's values expire with their keys' TTL
            log.exception("destroying the session's room-state key failed", extra={"session_id": identity.session_id})

    async def start_finishing() -> None:
        engine.tasks.finish(finish())

    turn.after_save.append(start_finishing)
    for member in room.members.values():
        if member.sid:
            turn.send(member.sid, "session_ended", {})
            turn.disconnects.append(member.sid)
    for participant_id in list(room.waiting_devices):
        devices.close_waiting(turn, participant_id, "session_ended", {})
    connection = engine.connections.get(turn.sid)
    if connection is not None:
        connection.joined = False
    turn.audit("session_ended")
