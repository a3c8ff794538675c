"""The private caucus: the mediator with one party, nothing of it crossing to those left out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from signaling import meeting, payloads
from signaling.errors import RoomError
from signaling.roomstate import ADMITTED

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn


async def open_caucus(engine: RoomEngine, turn: Turn, payload: payloads.Target) -> None:
    room = turn.room
    if room.caucus:
        raise RoomError("caucus_active", "close the current caucus first")
    target = turn.other(payload.participant_id)
    if target.status != ADMITTED:
        raise RoomError("not_admitted", f"{target.name} is not in the room")
    room.caucus = [turn.member.participant_id, target.participant_id]
    # A screen shared to the whole room must not go on inside the caucus, nor one shared inside it after.
    meeting.end_share(turn, reason="caucus")
    for member in room.members.values():
        if member.status != ADMITTED:
            continue
        if member.participant_id in room.caucus:
            turn.send(member.sid, "caucus_started", {"members": list(room.caucus)})
        else:
            turn.send(member.sid, "caucus_in_progress", {})
    turn.roster_changed = turn.isolation_changed = True
    turn.audit("caucus_opened", participant_id=target.participant_id)


async def close_caucus(engine: RoomEngine, turn: Turn, _payload: payloads.Empty) -> None:
    if not turn.room.caucus:
        raise RoomError("no_caucus", "no caucus is open")
    end_caucus(turn, reason="mediator")


def end_caucus(turn: Turn, *, reason: str) -> None:
    """Close the caucus if one is open (its members may be leaving, dropping or sent to the lobby)."""
    room = turn.room
    if not room.caucus:
        return
    members = room.caucus
    room.caucus = None
    meeting.end_share(turn, reason="caucus")
    for member in room.members.values():
        if member.status == ADMITTED:
            turn.send(member.sid, "caucus_ended", {})
    turn.roster_changed = turn.isolation_changed = True
    turn.audit("caucus_closed", members=members, reason=reason)
