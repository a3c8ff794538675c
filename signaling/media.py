"""Media: each member's microphone and camera state, and the WebRTC signaling relay between admitted members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling import payloads
from signaling.errors import RoomError
from signaling.roomstate import ADMITTED
from signaling.views import isolated_from

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn

MAX_MLINE_INDEX = 64


async def media_state(engine: RoomEngine, turn: Turn, payload: payloads.MediaState) -> None:
    turn.member.audio, turn.member.video = payload.audio, payload.video
    # Members left out of a caucus see its members' media frozen: the turn sends them nothing for this.
    turn.roster_changed = True


async def signal(engine: RoomEngine, turn: Turn, payload: payloads.Signal) -> None:
    room, member = turn.room, turn.member
    if room.mode != "video":
        raise RoomError("chat_only", "this is a chat-only session; no media is exchanged")
    target = turn.other(payload.to)
    if target.status != ADMITTED or not target.connected:
        raise RoomError("not_admitted", f"{target.name} is not in the room")
    if payload.to in isolated_from(room, member):
        raise RoomError("isolated", "a private caucus is in progress; no media crosses it")
    check_signal_payload(payload.kind, payload.payload)
    turn.send(target.sid, "signal", {"from": member.participant_id, "kind": payload.kind,
                                     "payload": payload.payload})


def check_signal_payload(kind: str, payload: dict[str, Any]) -> None:
    """Offers and answers are ``{type, sdp}``; a candidate ``{candidate, sdpMid, sdpMLineIndex, usernameFragment?}``
    (what ``RTCIceCandidate.toJSON()`` gives; ``sdpMid`` and ``sdpMLineIndex`` may not both be null, as
    ``addIceCandidate`` requires), and the end of candidates ``{candidate: null}``."""
    if kind in ("offer", "answer"):
        if payload.get("type") != kind or not isinstance(payload.get("sdp"), str) or set(payload) - {"type", "sdp"}:
            raise RoomError("invalid_payload", f"signal: a {kind} payload is {{type: \"{kind}\", sdp: string}}")
        return
    allowed = {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"}
    candidate = payload.get("candidate")
    if set(payload) - allowed or "candidate" not in payload or not (candidate is None or isinstance(candidate, str)):
        raise RoomError("invalid_payload", "signal: an ice_candidate payload is {candidate, sdpMid, sdpMLineIndex}")
    fragment = payload.get("usernameFragment")
    if fragment is not None and not isinstance(fragment, str):
        raise RoomError("invalid_payload", "signal: usernameFragment must be a string")
    mid, index = payload.get("sdpMid"), payload.get("sdpMLineIndex")
    if mid is not None and not isinstance(mid, str) or index is not None and (
            not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < MAX_MLINE_INDEX):
        raise RoomError("invalid_payload", "signal: sdpMid must be a string and sdpMLineIndex a small integer")
    if candidate is not None and ("sdpMid" not in payload or "sdpMLineIndex" not in payload
                                  or mid is None and index is None):
        raise RoomError("invalid_payload", "signal: a candidate names its media line: sdpMid and sdpMLineIndex, "
                                           "not both null")
