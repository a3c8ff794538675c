"""Media: each member's microphone and camera state, the WebRTC signaling relay between admitted members (mesh),
and, when the rooms run on Janus, publishing through it and answering its subscription offers (signaling/sfu.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling import payloads
from signaling.errors import RoomError
from signaling.janus import JanusError, JanusLost
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


def _sfu_room(engine: RoomEngine, turn: Turn) -> None:
    if turn.room.mode != "video":
        raise RoomError("chat_only", "this is a chat-only session; no media is exchanged")
    if engine.sfu is None:
        raise RoomError("no_sfu", "this server's rooms use the mesh: send your media with signal")


async def publish_media(engine: RoomEngine, turn: Turn, payload: payloads.PublishMedia) -> dict[str, Any]:
    """The member's offer goes to Janus; its answer comes back in the acknowledgement as ``answer``.

    The Janus round trip runs after the room is saved, outside its lock; the placement it uses is recorded first."""
    _sfu_room(engine, turn)
    check_signal_payload("offer", payload.offer)
    sfu, room, member, sid = engine.sfu, turn.room, turn.member, turn.sid
    assert sfu is not None
    if not sfu.may_publish(room.session_id, member.participant_id):
        raise RoomError("rate_limited", "publish_media at most once a second")
    room.janus = url = sfu.place(room)
    result: dict[str, Any] = {}

    async def publish() -> None:
        try:
            result["answer"] = await sfu.publish(room.session_id, url, member.participant_id, sid, payload.offer)
        except (JanusLost, JanusError) as exc:
            raise RoomError("sfu_unavailable", f"the media server did not take your media ({exc}); "
                                               "try again in a moment") from None

    turn.after_save.append(publish)
    return result


async def answer_media(engine: RoomEngine, turn: Turn, payload: payloads.AnswerMedia) -> None:
    """The member's answer to the last ``media_offer``: its subscription starts (or is updated) at Janus."""
    _sfu_room(engine, turn)
    check_signal_payload("answer", payload.answer)
    sfu, session_id, participant_id, sid = engine.sfu, turn.room.session_id, turn.member.participant_id, turn.sid
    assert sfu is not None

    async def answer() -> None:
        try:
            taken = await sfu.answer(session_id, participant_id, sid, payload.answer)
        except (JanusLost, JanusError) as exc:
            raise RoomError("sfu_unavailable", f"the media server did not take your answer ({exc})") from None
        if not taken:
            raise RoomError("not_published", "no media offer is waiting for this socket's answer; publish first")

    turn.after_save.append(answer)


async def media_candidate(engine: RoomEngine, turn: Turn, payload: payloads.MediaCandidate) -> None:
    _sfu_room(engine, turn)
    check_signal_payload("ice_candidate", payload.candidate)
    sfu, session_id, participant_id, sid = engine.sfu, turn.room.session_id, turn.member.participant_id, turn.sid
    assert sfu is not None

    async def trickle() -> None:
        try:
            taken = await sfu.trickle(session_id, participant_id, sid, payload.target, payload.candidate)
        except (JanusLost, JanusError) as exc:
            raise RoomError("sfu_unavailable", f"the media server did not take your candidate ({exc})") from None
        if not taken:
            raise RoomError("not_published", f"no {payload.target} connection of this socket at the media server")

    turn.after_save.append(trickle)


async def media_layout(engine: RoomEngine, turn: Turn, payload: payloads.MediaLayout) -> None:
    """The sizes of the member's remote tiles: each video it receives comes in the simulcast layer that fits its
    tile (signaling/sfu.py, ``substream_for``). Only the layers of what the server subscribed it to change."""
    _sfu_room(engine, turn)
    sfu, session_id, participant_id, sid = engine.sfu, turn.room.session_id, turn.member.participant_id, turn.sid
    assert sfu is not None
    if len({feed.participant_id for feed in payload.feeds}) != len(payload.feeds):
        raise RoomError("invalid_payload", "media_layout: each participant at most once")
    if not sfu.publishes(session_id, participant_id, sid):  # refused before it counts against the budget
        raise RoomError("not_published", "no media of this socket at the media server; publish first")
    if not sfu.may_lay_out(session_id, participant_id):
        raise RoomError("rate_limited", "media_layout at most twice a second")
    tiles = {feed.participant_id: (feed.width, feed.height) for feed in payload.feeds}

    async def lay_out() -> None:
        try:
            taken = await sfu.set_layout(session_id, participant_id, sid, tiles)
        except (JanusLost, JanusError) as exc:
            raise RoomError("sfu_unavailable", f"the media server did not take your layout ({exc})") from None
        if not taken:
            raise RoomError("not_published", "no media of this socket at the media server; publish first")

    turn.after_save.append(lay_out)
async def record_media(engine: RoomEngine, turn: Turn, payload: payloads.RecordMedia) -> None:
    """The recorder's ports for Janus's forwarded RTP: from now on this node keeps its forwarders (signaling/sfurecorder.py).

    Only the ports come from the worker; the address Janus sends to is this node's setting, never the worker's."""
    _sfu_room(engine, turn)
    sfu, session_id, participant_id, sid = engine.sfu, turn.room.session_id, turn.member.participant_id, turn.sid
    assert sfu is not None
    if payload.rtp_port == payload.rtcp_port:
        raise RoomError("invalid_payload", "record_media: rtp_port and rtcp_port are two different ports")

    async def register() -> None:
        sfu.recording.register(session_id, participant_id, sid, payload.rtp_port, payload.rtcp_port)

    turn.after_save.append(register)


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
