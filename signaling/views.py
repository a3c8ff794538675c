"""What each member may see of a room: its roster view, its chat history, whom a caucus isolates it from."""

from __future__ import annotations

import dataclasses
from typing import Any

from signaling.roomstate import ADMITTED, LOBBY, Member, Room


def in_caucus(room: Room, member: Member) -> bool:
    return bool(room.caucus) and member.participant_id in (room.caucus or [])


def left_out(room: Room, member: Member) -> bool:
    """Whether ``member`` is admitted and outside the open caucus: nothing of the caucus may reach it."""
    return bool(room.caucus) and member.status == ADMITTED and member.participant_id not in (room.caucus or [])


def channel_of(room: Room, member: Member) -> str:
    return "caucus" if in_caucus(room, member) else "main"


def isolated_from(room: Room, member: Member) -> list[str]:
    """Whom ``member`` must neither send media to nor exchange signaling with, during a caucus.

    For a member left out, these are the caucus members: its mesh must close those connections, which
    tells it whom it lost anyway. Nothing else of the caucus reaches it (``room_view``)."""
    if not room.caucus:
        return []
    inside = member.participant_id in room.caucus
    return [m.participant_id for m in room.members.values()
            if m.status == ADMITTED and m.participant_id != member.participant_id
            and (m.participant_id in room.caucus) != inside]


def end_to_end(room: Room) -> bool:
    """Whether every admitted person (the recorder aside) joined with a device key: then chat is encrypted."""
    return all(m.public_key for m in room.members.values() if m.status == ADMITTED and m.role != "recorder")


def live_recipients(room: Room, channel: str) -> list[Member]:
    """Connected members who receive live traffic of ``channel`` right now."""
    admitted = [m for m in room.members.values() if m.status == ADMITTED and m.sid]
    if not room.caucus:
        return admitted
    if channel == "caucus":
        return [m for m in admitted if m.participant_id in room.caucus]
    return [m for m in admitted if m.participant_id not in room.caucus]


def public_message(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key != "audience"}


def visible_history(room: Room, viewer: Member, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages ``viewer`` may see: its channels only; deletions hidden from parties, marked for the mediator."""
    visible = []
    for message in messages:
        if viewer.participant_id not in message["audience"]:
            continue
        deleted = room.deleted.get(str(message["seq"]))
        if deleted is not None and viewer.role != "mediator":
            continue
        shown = public_message(message)
        if deleted is not None:
            shown["deleted"] = deleted
        visible.append(shown)
    return visible


def room_view(room: Room, viewer: Member) -> dict[str, Any]:
    """The room as ``viewer`` may see it: lobby members see only themselves; outsiders of a caucus see it frozen."""
    participants = []
    in_lobby = viewer.status != ADMITTED
    caucus = room.caucus or []
    viewer_outside = bool(caucus) and viewer.participant_id not in caucus
    for member in room.members.values():
        if in_lobby and member.participant_id != viewer.participant_id:
            continue
        entry = {
            "participant_id": member.participant_id, "role": member.role, "name": member.name,
            "status": member.status, "connected": member.connected, "audio": member.audio, "video": member.video,
            "chat_muted": member.chat_muted, "in_caucus": member.participant_id in caucus,
            "consented": member.participant_id in room.consents,
            # This join's device key (docs/protocol.md, "End-to-end encryption"); null: it cannot encrypt.
            "public_key": member.public_key,
            # Whether another device with this participant's credential waits for the mediator: shown to
            # the mediator and to the participant itself.
            "second_device_waiting": member.participant_id in room.waiting_devices
            and (viewer.role == "mediator" or viewer.participant_id == member.participant_id),
        }
        if viewer_outside and member.participant_id in caucus:
            # Nothing of the caucus crosses to those left out of it: not its members, not their presence.
            entry.update(connected=True, audio=False, video=False, in_caucus=False)
        participants.append(entry)
    view: dict[str, Any] = {
        "session_id": room.session_id, "mode": room.mode, "locked": room.locked, "ended": room.ended,
        "mediator_present": room.mediator_present(), "participants": participants,
        "caucus": {"active": bool(caucus)}, "recording": room.recording,
        "isolated_from": isolated_from(room, viewer) if viewer.status == ADMITTED else [],
        # Every admitted person joined with a device key: chat must be sent encrypted.
        "end_to_end": end_to_end(room),
    }
    if caucus and not viewer_outside and not in_lobby:
        view["caucus"]["members"] = list(caucus)
    view.update(meeting_view(room, viewer))
    return view


def meeting_view(room: Room, viewer: Member) -> dict[str, Any]:
    """The screen share and raised hands ``viewer`` may see: none in the lobby; across a caucus, nothing of its
    members (signaling/meeting.py ends a share when a caucus opens or closes)."""
    if viewer.status != ADMITTED:
        return {"screen_share": None, "hands": []}
    hidden = set(room.caucus or []) if bool(room.caucus) and viewer.participant_id not in (room.caucus or []) else set()

    def shown(participant_id: str) -> bool:
        member = room.members.get(participant_id)
        return (member is not None and member.status == ADMITTED and member.connected
                and participant_id not in hidden)

    share = room.screen_share
    return {"screen_share": dict(share) if share is not None and shown(share["participant_id"]) else None,
            "hands": [participant_id for participant_id in room.hands if shown(participant_id)]}


def waiting_view(room: Room, member: Member) -> dict[str, Any]:
    """The room as ``member``'s waiting second device sees it: the lobby, itself waiting there."""
    view = room_view(room, dataclasses.replace(member, status=LOBBY))
    for entry in view["participants"]:
        if entry["participant_id"] == member.participant_id:
            entry.update(status=LOBBY, connected=True, audio=False, video=False, in_caucus=False)
    view["second_device"] = True
    return view
