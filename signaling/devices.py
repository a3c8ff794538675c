"""One live presence per party: a second device of a party already present waits until the mediator admits it.

A party (borrower, lender, bank representative) whose socket is live and on the roster cannot be
displaced by another connection with its credential: that connection waits apart, marked as a second
device, and takes the party's place only when the mediator admits it (the first device is then told
``device_replaced`` and closed) or when the first device's socket is gone, as a reconnect within the
grace would. The mediator's (and the recorder's) newer connection replaces the older at once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING, Any

from signaling import payloads
from signaling.consent import PARTY_ROLES, halt_recording
from signaling.errors import RoomError
from signaling.roomstate import ADMITTED, LOBBY, Device, Member, Room
from signaling.turns import Turn

if TYPE_CHECKING:
    from signaling.engine import RoomEngine

# Roles whose second device waits for the mediator; the others' newest connection is their presence.
ONE_PRESENCE = PARTY_ROLES


def resume_key() -> tuple[str, str]:
    """A new resume key for a device and the SHA-256 the room keeps of it."""
    key = secrets.token_hex(16)
    return key, hashlib.sha256(key.encode()).hexdigest()


def must_wait(member: Member, sid: str, resume: str | None) -> bool:
    """Whether a connection ``sid`` joining as ``member`` (on the roster) is a second device that must wait.

    Not when it presents the resume key of the device holding the place: that device reconnecting while
    its old socket still looks live (its node died, its heartbeat has not lapsed yet)."""
    if member.role not in ONE_PRESENCE or member.sid is None or member.sid == sid:
        return False
    if resume is not None and member.resume_hash is not None and hmac.compare_digest(
            member.resume_hash, hashlib.sha256(resume.encode()).hexdigest()):
        return False
    return True


def wait(engine: RoomEngine, turn: Turn, resume_hash: str, public_key: str | None = None) -> None:
    """The joining socket waits as ``turn.member``'s second device; an earlier waiting one is closed."""
    room, member = turn.room, turn.member
    earlier = room.waiting_devices.get(member.participant_id)
    if earlier is not None and earlier.sid != turn.sid:
        turn.send(earlier.sid, "error", {"code": "replaced", "message": "you joined from another window",
                                         "event": "join_room"})
        turn.disconnects.append(earlier.sid)
    room.waiting_devices[member.participant_id] = Device(sid=turn.sid, node=engine.node_id, since=time.time(),
                                                         link_id=turn.identity.link_id, resume_hash=resume_hash,
                                                         public_key=public_key)
    turn.roster_changed = True
    turn.audit("second_device_waiting", participant_id=member.participant_id, role=member.role,
               device_sid=turn.sid, link_id=turn.identity.link_id, present_sid=member.sid)


def waiting(room: Room, participant_id: str, sid: str) -> bool:
    device = room.waiting_devices.get(participant_id)
    return device is not None and device.sid == sid


async def admit_device(engine: RoomEngine, turn: Turn, payload: payloads.Target) -> None:
    """The waiting second device takes the party's place, admitted; the first device is told and closed."""
    room = turn.room
    target = turn.target(payload.participant_id)
    device = room.waiting_devices.pop(target.participant_id, None)
    if device is None:
        raise RoomError("no_second_device", f"no second device of {target.name} is waiting")
    replaced = target.sid
    if replaced is not None:
        turn.send(replaced, "device_replaced", {"reason": "second_device_admitted"})
        turn.disconnects.append(replaced)
    _take_place(target, device)
    was_admitted, target.status = target.status == ADMITTED, ADMITTED
    turn.send(device.sid, "admitted", {})
    if room.recording and not was_admitted and target.participant_id not in room.consents:
        await halt_recording(engine, turn, reason="consent_missing")
    turn.roster_changed = True
    turn.isolation_changed = bool(room.caucus)
    turn.audit("second_device_admitted", participant_id=target.participant_id, role=target.role,
               device_sid=device.sid, link_id=device.link_id, replaced_sid=replaced,
               admitted_by=turn.member.participant_id)


async def refuse_device(engine: RoomEngine, turn: Turn, payload: payloads.Refuse) -> None:
    room = turn.room
    target = turn.target(payload.participant_id)
    device = room.waiting_devices.pop(target.participant_id, None)
    if device is None:
        raise RoomError("no_second_device", f"no second device of {target.name} is waiting")
    turn.send(device.sid, "refused", {"reason": payload.reason})
    turn.disconnects.append(device.sid)
    turn.roster_changed = True
    turn.audit("second_device_refused", participant_id=target.participant_id, device_sid=device.sid,
               link_id=device.link_id, reason=payload.reason)


def leave(turn: Turn) -> None:
    """The waiting device that sent this turn leaves; the party's present device stays."""
    device = turn.room.waiting_devices.pop(turn.member.participant_id)
    turn.disconnects.append(device.sid)
    turn.roster_changed = True
    turn.audit("second_device_left", participant_id=turn.member.participant_id, device_sid=device.sid)


def resume(turn: Turn, member: Member) -> None:
    """``member``'s socket is gone: its waiting device, if any, takes its place as a reconnect would."""
    device = turn.room.waiting_devices.pop(member.participant_id, None)
    if device is None:
        return
    _take_place(member, device)
    if member.status == ADMITTED:
        turn.send(device.sid, "admitted", {})
    turn.roster_changed = True
    turn.audit("participant_rejoined", participant_id=member.participant_id, role=member.role,
               second_device=True, device_sid=device.sid, link_id=device.link_id)


def enter_lobby(turn: Turn, left: Member) -> None:
    """``left`` is off the roster: its waiting device, if any, enters the lobby in its stead."""
    room = turn.room
    device = room.waiting_devices.pop(left.participant_id, None)
    if device is None:
        return
    member = Member(participant_id=left.participant_id, role=left.role, name=left.name, status=LOBBY)
    _take_place(member, device)
    room.members[member.participant_id] = member
    turn.roster_changed = True
    turn.audit("participant_joined", participant_id=member.participant_id, role=member.role,
               second_device=True, device_sid=device.sid, link_id=device.link_id)


def close_waiting(turn: Turn, participant_id: str, event: str, data: Any) -> None:
    """Tell ``participant_id``'s waiting device ``event`` and close it (the party was refused or removed)."""
    device = turn.room.waiting_devices.pop(participant_id, None)
    if device is not None:
        turn.send(device.sid, event, data)
        turn.disconnects.append(device.sid)


def drop_on_node(room: Room, node_id: str) -> bool:
    """Forget the waiting devices whose socket was on the gone node ``node_id``; whether any was."""
    gone = [pid for pid, device in room.waiting_devices.items() if device.node == node_id]
    for pid in gone:
        del room.waiting_devices[pid]
    return bool(gone)


def _take_place(member: Member, device: Device) -> None:
    member.sid, member.node, member.connected, member.disconnected_at = device.sid, device.node, True, None
    member.resume_hash = device.resume_hash
    member.public_key = device.public_key
    member.audio = member.video = False
