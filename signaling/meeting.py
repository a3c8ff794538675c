"""Meeting basics held by the server: one screen share at a time, and the queue of raised hands.

Both live in the room (``Room.screen_share``, ``Room.hands``) and reach members in ``room_state``
(``signaling/views.py`` shows each viewer only what its side of a caucus may see). A share ends when
its sharer stops it, the mediator stops it, a caucus opens or closes, or the sharer is no longer admitted
and connected; a hand is lowered by its party, by the mediator, or when the party is no longer admitted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from signaling import payloads
from signaling.errors import RoomError
from signaling.roomstate import ADMITTED, Room
from signaling.views import left_out

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn


def sharer_of(room: Room) -> str | None:
    return room.screen_share["participant_id"] if room.screen_share else None


async def start_screen_share(engine: RoomEngine, turn: Turn, payload: payloads.StartScreenShare) -> None:
    room, member = turn.room, turn.member
    if room.mode != "video":
        raise RoomError("chat_only", "this is a chat-only session; no screen is shared")
    if engine.sfu is not None:
        raise RoomError("share_unsupported", "this server's media server forwards cameras only; screens are "
                                             "shared in mesh rooms")
    if left_out(room, member):
        # Those left out of a caucus share with nobody the room could see: the mediator is inside.
        raise RoomError("caucus_active", "a private caucus is in progress; share your screen after it")
    sharer = sharer_of(room)
    if sharer is not None and sharer != member.participant_id and sharer in room.members:
        raise RoomError("share_active", "someone else is sharing a screen; ask them or the mediator to stop it")
    if sharer == member.participant_id and room.screen_share == {"participant_id": sharer,
                                                                  "stream_id": payload.stream_id}:
        return
    room.screen_share = {"participant_id": member.participant_id, "stream_id": payload.stream_id}
    turn.roster_changed = True
    if sharer != member.participant_id:
        turn.audit("screen_share_started", participant_id=member.participant_id)


async def stop_screen_share(engine: RoomEngine, turn: Turn, payload: payloads.StopScreenShare) -> None:
    room, member = turn.room, turn.member
    target_id = payload.participant_id or member.participant_id
    if target_id != member.participant_id:
        if member.role != "mediator":
            raise RoomError("forbidden", "only the mediator may stop someone else's screen share")
        turn.target(target_id)
    if sharer_of(room) != target_id:
        raise RoomError("not_sharing", "that participant is not sharing a screen")
    end_share(turn, reason="self" if target_id == member.participant_id else "mediator")


def end_share(turn: Turn, *, reason: str) -> None:
    """End the current share, if any; its sharer is told unless it stopped the share itself."""
    room = turn.room
    sharer_id = sharer_of(room)
    if sharer_id is None:
        return
    room.screen_share = None
    sharer = room.members.get(sharer_id)
    if sharer is not None and reason != "self":
        turn.send(sharer.sid, "screen_share_stopped", {"reason": reason})
    turn.roster_changed = True
    turn.audit("screen_share_stopped", participant_id=sharer_id, reason=reason)


async def raise_hand(engine: RoomEngine, turn: Turn, payload: payloads.RaiseHand) -> None:
    room, participant_id = turn.room, turn.member.participant_id
    if payload.raised == (participant_id in room.hands):
        return
    if payload.raised:
        room.hands.append(participant_id)
    else:
        room.hands.remove(participant_id)
    turn.roster_changed = True


async def lower_hand(engine: RoomEngine, turn: Turn, payload: payloads.Target) -> None:
    room = turn.room
    target = turn.other(payload.participant_id)
    if target.participant_id not in room.hands:
        raise RoomError("hand_not_raised", f"{target.name} has not raised a hand")
    room.hands.remove(target.participant_id)
    turn.send(target.sid, "hand_lowered", {})
    turn.roster_changed = True


def prune(turn: Turn) -> None:
    """Drop the hands of members no longer admitted and a share whose sharer is gone (after every turn)."""
    room = turn.room
    kept = [pid for pid in room.hands if _admitted(room, pid)]
    if kept != room.hands:
        room.hands = kept
        turn.roster_changed = True
    sharer = sharer_of(room)
    if sharer is not None and not (_admitted(room, sharer) and room.members[sharer].connected):
        end_share(turn, reason="left")


def _admitted(room: Room, participant_id: str) -> bool:
    member = room.members.get(participant_id)
    return member is not None and member.status == ADMITTED
