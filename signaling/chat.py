"""Chat: messages (ciphertext, or text in a room that is not end-to-end encrypted) sealed, numbered and
delivered to their channel; history; typing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signaling import e2ee, payloads
from signaling.consent import now_iso
from signaling.errors import RoomError
from signaling.identity import SequenceTaken
from signaling.roomstate import ADMITTED
from signaling.views import channel_of, end_to_end, live_recipients, public_message, visible_history

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn


async def send_chat(engine: RoomEngine, turn: Turn, payload: payloads.SendChat) -> dict[str, Any]:
    member, room = turn.member, turn.room
    if member.chat_muted:
        raise RoomError("chat_muted", "the mediator has muted your chat")
    channel = channel_of(room, member)
    if payload.channel is not None and payload.channel != channel:
        raise RoomError("wrong_channel", f"you are in the {channel} channel, not the {payload.channel} channel")
    if payload.text is not None and (payload.ciphertext is not None or payload.kid is not None):
        raise RoomError("invalid_payload", "send_chat: give text or ciphertext, not both")
    content: dict[str, Any]
    if payload.text is None:
        if not member.public_key:
            raise RoomError("no_device_key", "join with a device key to send encrypted messages")
        # The node keeps only the ciphertext and what it can see anyway: who, when, where, how long.
        content = _ciphertext(payload)
    else:
        if end_to_end(room):
            raise RoomError("encryption_required", "this room is end-to-end encrypted: send ciphertext")
        content = {"text": _plain_text(payload.text)}
    admitted = [m.participant_id for m in room.members.values() if m.status == ADMITTED]
    audience = list(room.caucus or []) if channel == "caucus" else admitted
    draft = {"sent_at": now_iso(), "participant_id": member.participant_id, "name": member.name,
             "role": member.role, **content, "channel": channel, "audience": audience}
    if room.sealed:
        # Sealed into the case record before it is stored, seen or acknowledged: if sealing
        # fails, nothing of the message exists anywhere.
        await _seal(engine, turn, draft)
    message = await engine.store.append_chat(room.session_id, draft)
    delivered = public_message(message)
    for recipient in live_recipients(room, channel):
        turn.send(recipient.sid, "chat_message", delivered)
    return {"seq": message["seq"], "sent_at": message["sent_at"]}


def _ciphertext(payload: payloads.SendChat) -> dict[str, Any]:
    """{kid, ciphertext, length} of an encrypted ``send_chat``, its shape checked (docs/protocol.md)."""
    if payload.ciphertext is None:
        raise RoomError("invalid_payload", "send_chat: give text or ciphertext")
    if not e2ee.valid_kid(payload.kid):
        raise RoomError("invalid_kid", f"an encrypted message names its key: a KID from 0 to 2^48 - 1, "
                                       f"not {payload.kid}")
    limit = payloads.MAX_CHAT_CIPHERTEXT_BYTES
    if len(payload.ciphertext) > (limit * 4 + 2) // 3:
        raise RoomError("message_too_long", f"encrypted messages are limited to {limit} bytes")
    data = e2ee.decode_base64url(payload.ciphertext)
    if data is None:
        raise RoomError("invalid_ciphertext", "the ciphertext is not unpadded base64url")
    if len(data) > limit:
        raise RoomError("message_too_long", f"encrypted messages are limited to {limit} bytes")
    if len(data) <= payloads.CHAT_NONCE_BYTES + payloads.CHAT_TAG_BYTES:
        raise RoomError("empty_message", "the ciphertext holds no message")
    return {"kid": payload.kid, "ciphertext": payload.ciphertext, "length": len(data)}


def _plain_text(value: str) -> str:
    """The text of a message sent in the clear (a room that is not end-to-end encrypted), normalised."""
    try:
        text = payloads.normalise_text(value)
    except ValueError as exc:
        raise RoomError("invalid_payload", f"send_chat: text {exc}") from None
    if not text:
        raise RoomError("empty_message", "the message is empty")
    if len(text) > payloads.MAX_CHAT_CHARS:
        raise RoomError("message_too_long", f"messages are limited to {payloads.MAX_CHAT_CHARS} characters")
    return text


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
