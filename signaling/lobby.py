"""Who is in the room: entering, the lobby and admission, leaving, dropping and the reconnect grace."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from signaling import devices, payloads
from signaling.caucus import end_caucus
from signaling.consent import PARTY_ROLES, halt_recording, notice_view
from signaling.errors import RoomError
from signaling.ice import ice_servers
from signaling.identity import Identity, Refused
from signaling.roomstate import ADMITTED, LOBBY, Member, Room
from signaling.turns import Turn, system_identity
from signaling.views import in_caucus, room_view, waiting_view

if TYPE_CHECKING:
    from signaling.engine import RoomEngine


def check_entry(room: Room, identity: Identity) -> None:
    """Raise Refused when ``identity`` may not enter ``room`` now (at connect and at join_room)."""
    if room.ended:
        raise Refused("session_ended", "this session has ended")
    if identity.participant_id in room.removed:
        raise Refused("removed", "the mediator removed you from this session")
    if room.locked and identity.participant_id not in room.members and identity.role != "mediator":
        raise Refused("room_locked", "the mediator has locked the room")


async def join_room(engine: RoomEngine, turn: Turn, payload: payloads.JoinRoom) -> dict[str, Any]:
    room, member, identity = turn.room, turn.member, turn.identity
    try:
        check_entry(room, identity)
    except Refused as exc:
        raise RoomError(exc.code, exc.message) from None
    if not room.opened:
        room.sealed = await engine.hooks.room_opened(identity)
        room.opened = True
    if member.role == "recorder" and not room.recording:
        raise RoomError("forbidden", "no recording is running in this room")
    returning = identity.participant_id in room.members
    second_device = returning and devices.must_wait(member, turn.sid, payload.resume)
    key, key_hash = devices.resume_key()
    if second_device:
        # One live presence per party: this connection waits for the mediator (signaling/devices.py).
        devices.wait(engine, turn, key_hash, payload.public_key)
    else:
        if returning and member.sid is not None and member.sid != turn.sid:
            # The mediator's (or recorder's) newer connection is its presence; the older one is closed.
            turn.send(member.sid, "error", {"code": "replaced", "message": "you joined from another window",
                                            "event": "join_room"})
            turn.disconnects.append(member.sid)
            turn.audit("participant_replaced", role=member.role, replaced_sid=member.sid, device_sid=turn.sid)
        member.sid, member.node, member.connected, member.disconnected_at = turn.sid, engine.node_id, True, None
        member.resume_hash = key_hash
        # A new key pair per join: a rejoin changes the key, so senders rotate and the security code changes.
        member.public_key = payload.public_key if member.role != "recorder" else None
        if member.role in ("mediator", "recorder"):
            member.status = ADMITTED  # the mediator's control survives its reconnects
        room.members[member.participant_id] = member
        turn.roster_changed = True
        turn.audit("participant_rejoined" if returning else "participant_joined", role=member.role,
                   end_to_end=member.role == "recorder" or member.public_key is not None)
    settings = engine.settings
    return {
        "participant_id": member.participant_id, "role": member.role, "name": member.name,
        "status": LOBBY if second_device else member.status, "second_device": second_device, "resume_key": key,
        "mode": room.mode, "media": engine.media_mode, "case_id": room.case_id, "session_id": room.session_id,
        "ice_servers": ice_servers(settings.stun_urls, settings.turn_urls, settings.turn_secret,
                                   member.participant_id, settings.turn_ttl_seconds),
        "room": waiting_view(room, member) if second_device else room_view(room, member),
        "records_sealed": room.sealed, "recording_notice": notice_view(),
        "schedule": {"case_number": identity.case_number, "starts_at": identity.starts_at,
                     "duration_minutes": identity.duration_minutes},
    }


async def leave_room(engine: RoomEngine, turn: Turn, _payload: payloads.Empty) -> dict[str, Any]:
    leave(engine, turn)
    return {}


def leave(engine: RoomEngine, turn: Turn, **detail: Any) -> None:
    """The sender leaves: off the roster (the mediator only steps out, keeping control); its socket closes."""
    member = turn.member
    if devices.waiting(turn.room, member.participant_id, turn.sid):
        devices.leave(turn)  # a second device: the party's present one stays
        return
    if in_caucus(turn.room, member):
        end_caucus(turn, reason="member_left")
    if member.role == "mediator":
        member.connected, member.sid, member.node, member.disconnected_at = False, None, None, time.time()
        _parties_to_lobby(turn)
    else:
        del turn.room.members[member.participant_id]
        devices.enter_lobby(turn, member)
    connection = engine.connections.get(turn.sid)
    if connection is not None:
        connection.joined = False
    turn.roster_changed = True
    turn.disconnects.append(turn.sid)
    turn.audit("participant_left", **detail)


def _parties_to_lobby(turn: Turn) -> None:
    for other in turn.room.members.values():
        if other.role != "mediator" and other.status == ADMITTED:
            other.status = LOBBY
            turn.send(other.sid, "returned_to_lobby", {"reason": "mediator_left"})


async def admit(engine: RoomEngine, turn: Turn, payload: payloads.Target) -> None:
    target = turn.target(payload.participant_id)
    if target.status != LOBBY:
        raise RoomError("not_in_lobby", f"{target.name} is not waiting in the lobby")
    target.status = ADMITTED
    turn.send(target.sid, "admitted", {})
    if turn.room.recording and target.role in PARTY_ROLES and target.participant_id not in turn.room.consents:
        await halt_recording(engine, turn, reason="consent_missing")
    turn.roster_changed = True
    turn.isolation_changed = bool(turn.room.caucus)
    turn.audit("participant_admitted", participant_id=target.participant_id, role=target.role)


async def refuse(engine: RoomEngine, turn: Turn, payload: payloads.Refuse) -> None:
    target = turn.target(payload.participant_id)
    if target.status != LOBBY:
        raise RoomError("not_in_lobby", f"{target.name} is not waiting in the lobby")
    del turn.room.members[target.participant_id]
    turn.send(target.sid, "refused", {"reason": payload.reason})
    if target.sid:
        turn.disconnects.append(target.sid)
    devices.close_waiting(turn, target.participant_id, "refused", {"reason": payload.reason})
    turn.roster_changed = True
    turn.audit("participant_refused", participant_id=target.participant_id, reason=payload.reason)


async def return_to_lobby(engine: RoomEngine, turn: Turn, payload: payloads.Target) -> None:
    target = turn.other(payload.participant_id)
    if target.status != ADMITTED:
        raise RoomError("not_admitted", f"{target.name} is not in the room")
    if in_caucus(turn.room, target):
        end_caucus(turn, reason="member_left")
    target.status = LOBBY
    turn.send(target.sid, "returned_to_lobby", {"reason": "mediator"})
    turn.roster_changed = True
    turn.audit("participant_returned_to_lobby", participant_id=target.participant_id)


async def departed(engine: RoomEngine, turn: Turn, _payload: Any) -> None:
    """The sender's socket closed."""
    if devices.waiting(turn.room, turn.member.participant_id, turn.sid):
        devices.leave(turn)
        turn.disconnects.clear()  # closed already
        return
    if turn.member.sid != turn.sid:
        return  # an older socket of a participant who has already reconnected
    gone(engine, turn, turn.member)


def gone(engine: RoomEngine, turn: Turn, member: Member, **detail: Any) -> None:
    """``member``'s socket is gone: mark it disconnected and start its reconnect grace; a caucus it is in ends."""
    member.connected, member.sid, member.node, member.disconnected_at = False, None, None, time.time()
    turn.roster_changed = True
    room = turn.room
    if member.role == "recorder":
        # The recording peer died: segments sealed so far stay on the record; the mediator may
        # start a new recording.
        del room.members[member.participant_id]
        if room.recording:
            room.recording = False
            for other in room.members.values():
                turn.send(other.sid, "recording_stopped", {"reason": "recorder_lost"})
            turn.audit("recording_stopped", reason="recorder_lost")
        return
    if member.role == "mediator":
        end_caucus(turn, reason="mediator_left")
        _parties_to_lobby(turn)
    elif in_caucus(room, member):
        end_caucus(turn, reason="member_left")
    turn.audit("participant_disconnected", **detail)
    engine.tasks.own(expire_later(engine, room.session_id, member.participant_id, member.disconnected_at))
    devices.resume(turn, member)


async def expire_later(engine: RoomEngine, session_id: str, participant_id: str, since: float) -> None:
    """Take a disconnected member off the roster once its reconnect grace has passed, unless it came back."""
    await asyncio.sleep(max(0.0, since + engine.settings.reconnect_grace_seconds - time.time()))
    turn = None
    async with engine.store.transaction(session_id) as room:
        if room is None:
            return
        member = room.members.get(participant_id)
        if member is None or member.connected or member.disconnected_at != since:
            return
        turn = Turn.begin(room, member, system_identity(room), "")
        del room.members[participant_id]
        turn.roster_changed = True
    await engine.runner.flush(turn)
