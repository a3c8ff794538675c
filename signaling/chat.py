"""Chat: messages sealed, numbered and delivered to their channel; history; typing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling import payloads
from signaling.consent import now_iso
from signaling.errors import RoomError
from signaling.identity import SequenceTaken
from signaling.roomstate import ADMITTED
from signaling.views import channel_of, live_recipients, public_message, visible_history

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn


async def send_chat(engine: RoomEngine, turn: Turn, payload: payloads.SendChat) -> dict[str, Any]:
    member, room = turn.member, turn.room
    if member.chat_muted:
        raise RoomError("chat_muted", "the mediator has muted your chat")
    try:
        text = payloads.normalise_text(payload.text)
    except ValueError as exc:
        raise RoomError("invalid_payload", f"send_chat: text {exc}") from None
    if not text:
        raise RoomError("empty_message", "the message is empty")
    if len(text) > payloads.MAX_CHAT_CHARS:
        raise RoomError("message_too_long", f"messages are limited to {payloads.MAX_CHAT_CHARS} characters")
    channel = channel_of(room, member)
    admitted = [m.participant_id for m in room.members.values() if m.status == ADMITTED]
    audience = list(room.caucus or []) if channel == "caucus" else admitted
    draft = {"sent_at": now_iso(), "participant_id": member.participant_id, "name": member.name,
             "role": member.role, "text": text, "channel": channel, "audience": audience}
    if room.sealed:
        # Sealed into the case record before it is stored, seen or acknowledged: if sealing
        # fails, nothing of the message exists anywhere.
        await _seal(engine, turn, draft)
    message = await engine.store.append_chat(room.session_id, draft)
    delivered = public_message(message)
    for recipient in live_recipients(room, channel):
        turn.send(recipient.sid, "chat_message", delivered)
    return {"seq": message["seq"], "sent_at": message["sent_at"]}


async def _seal(engine: RoomEngine, turn: Turn, draft: dict[str, Any]) -> None:
    """Seal the message under the number the store gives next (callers hold the room's turn)."""
    while True:
        seq = await engine.store.next_seq(turn.room.session_id)
        try:
            await engine.hooks.chat_message(turn.identity, {**draft, "seq": seq})
            return
        except SequenceTaken:
            # An earlier message got this number sealed, then its node or the store failed before
            # storing it: the number stays with that sealed copy, and this message takes the next.
            await engine.store.skip_seq(turn.room.session_id)


async def chat_history(engine: RoomEngine, turn: Turn, _payload: payloads.Empty) -> dict[str, Any]:
    messages = await engine.store.chat_messages(turn.room.session_id)
    return {"messages": visible_history(turn.room, turn.member, messages)}


async def typing(engine: RoomEngine, turn: Turn, payload: payloads.Typing) -> None:
    room, member = turn.room, turn.member
    for recipient in live_recipients(room, channel_of(room, member)):
        if recipient.participant_id != member.participant_id:
            turn.send(recipient.sid, "typing", {"participant_id": member.participant_id, "active": payload.active})
