"""End-to-end encryption as the room sees it: device public keys, wrapped keys relayed, ciphertext checked.

The node never holds a chat key. It relays each sender's wrapped base keys only to the current members of
the sender's channel, and checks an encrypted message's shape (base64url, length, KID) before it is stored
and delivered (docs/protocol.md, "End-to-end encryption")."""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from signaling import payloads
from signaling.errors import RoomError
from signaling.identity import UnknownRecipient
from signaling.views import channel_of, live_recipients

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def decode_base64url(value: str) -> bytes | None:
    """The bytes of unpadded base64url ``value``, or None when it is not that."""
    if not _BASE64URL.fullmatch(value) or len(value) % 4 == 1:
        return None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None


def valid_kid(kid: int | None) -> bool:
    return kid is not None and 0 <= kid <= payloads.MAX_KID


async def share_keys(engine: RoomEngine, turn: Turn, payload: payloads.ShareKeys) -> dict[str, Any]:
    """Relay the sender's wrapped base key to those of the named members who are in its channel now."""
    room, member = turn.room, turn.member
    if not member.public_key:
        raise RoomError("no_device_key", "join with a device key to share keys")
    if payload.channel != channel_of(room, member):
        raise RoomError("wrong_channel", f"you are in the {channel_of(room, member)} channel, "
                                         f"not the {payload.channel} channel")
    if not valid_kid(payload.kid):
        raise RoomError("invalid_kid", f"a KID is an integer from 0 to 2^48 - 1, not {payload.kid}")
    for entry in payload.keys:
        wrapped = decode_base64url(entry.wrapped)
        if wrapped is None or len(wrapped) != payloads.MAX_WRAPPED_KEY_BYTES:
            raise RoomError("invalid_ciphertext",
                            f"a wrapped key is {payloads.MAX_WRAPPED_KEY_BYTES} bytes of unpadded base64url")
    # Only the channel's members now: a member outside a caucus never receives a caucus key from a node.
    members = {m.participant_id: m for m in live_recipients(room, payload.channel)
               if m.public_key and m.participant_id != member.participant_id}
    delivered = []
    for entry in payload.keys:
        target = members.get(entry.participant_id)
        if target is None:
            continue
        turn.send(target.sid, "keys_shared", {
            "participant_id": member.participant_id, "public_key": member.public_key,
            "channel": payload.channel, "epoch": payload.epoch, "kid": payload.kid, "wrapped": entry.wrapped,
            "to_public_key": target.public_key})
        delivered.append(target.participant_id)
    return {"delivered": delivered}


AGE_HEADER = b"age-encryption.org/v1\n"


async def file_key(engine: RoomEngine, turn: Turn, payload: payloads.FileKey) -> dict[str, Any]:
    """File the sender's base key, sealed in its browser to the compliance recipients, on the case.

    The node sees only the age ciphertext; the page files a key before it shares or uses it."""
    room, member = turn.room, turn.member
    if not member.public_key:
        raise RoomError("no_device_key", "join with a device key to file keys")
    if not room.sealed:
        raise RoomError("not_recorded", "this room's records are sealed to nobody: no key is filed")
    if not valid_kid(payload.kid):
        raise RoomError("invalid_kid", f"a KID is an integer from 0 to 2^48 - 1, not {payload.kid}")
    sealed = decode_base64url(payload.sealed)
    if sealed is None or not sealed.startswith(AGE_HEADER) or len(sealed) > payloads.MAX_SEALED_KEY_BYTES:
        raise RoomError("invalid_ciphertext",
                        f"sealed is an age file of at most {payloads.MAX_SEALED_KEY_BYTES} bytes, in base64url")
    try:
        index = await engine.hooks.key_sealed(turn.identity, sealed, list(payload.recipients),
                                              {"kid": payload.kid, "channel": payload.channel, "epoch": payload.epoch})
    except UnknownRecipient as exc:
        raise RoomError("unknown_recipient", str(exc)) from None
    return {"index": index}
