"""End-to-end encryption keys as compliance opens them: the key records browsers seal, and chat decryption.

A browser seals each base key it makes to the compliance recipients and files it as an ``e2ee_key`` record
(docs/records.md, "End-to-end encryption keys"); with them an officer decrypts the session's chat, which the
nodes stored only as ciphertext. The derivations are docs/protocol.md's, "End-to-end encryption".
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["CHAT_INFO", "KeyRecordError", "SessionKey", "chat_aad", "chat_key", "decrypt_chat",
           "parse_key_record", "reveal", "session_keys"]

CHAT_INFO = b"mediation chat v1"
NONCE_BYTES = 12
MAX_KID = 2**48 - 1
CHANNELS = ("main", "caucus")


class KeyRecordError(ValueError):
    """A key record that does not parse, or a message that does not decrypt under its key."""


@dataclasses.dataclass(frozen=True)
class SessionKey:
    kid: int
    participant_id: str
    channel: str
    epoch: int
    base_key: bytes

    def __repr__(self) -> str:  # the key itself never prints
        return (f"SessionKey(kid={self.kid}, participant_id={self.participant_id!r}, channel={self.channel!r}, "
                f"epoch={self.epoch})")


def b64url_decode(value: str) -> bytes:
    if not isinstance(value, str) or "=" in value:
        raise KeyRecordError("not unpadded base64url")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise KeyRecordError("not unpadded base64url") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def chat_key(base_key: bytes, kid: int) -> bytes:
    """HKDF-SHA256(base key, salt empty, info "mediation chat v1" || KID as 8 bytes big-endian), 32 bytes."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=CHAT_INFO + kid.to_bytes(8, "big")).derive(base_key)


def chat_aad(session_id: str, participant_id: str, channel: str, kid: int) -> bytes:
    """What each message's tag also covers: its session, sender, channel and key."""
    return f"mediation chat v1\n{session_id}\n{participant_id}\n{channel}\n{kid}".encode()


def decrypt_chat(key: SessionKey, session_id: str, ciphertext: str) -> str:
    """The text of one encrypted chat message (its ``ciphertext`` field); KeyRecordError if it does not open."""
    data = b64url_decode(ciphertext)
    if len(data) <= NONCE_BYTES:
        raise KeyRecordError("ciphertext shorter than its nonce")
    aead = AESGCM(chat_key(key.base_key, key.kid))
    try:
        plain = aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:],
                             chat_aad(session_id, key.participant_id, key.channel, key.kid))
    except InvalidTag:
        raise KeyRecordError(f"message under KID {key.kid} does not decrypt: altered, or not this key's") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyRecordError(f"message under KID {key.kid} is not UTF-8") from None


def parse_key_record(plaintext: bytes, *, session_id: str | None = None,
                     participant_id: str | None = None) -> SessionKey:
    """The key in one decrypted ``e2ee_key`` record, checked against where the record was filed."""
    try:
        doc: Any = json.loads(plaintext)
    except ValueError:
        raise KeyRecordError("not JSON") from None
    if not isinstance(doc, dict) or doc.get("type") != "mediation-e2ee-key/v1":
        raise KeyRecordError("not a mediation-e2ee-key/v1 document")
    kid, epoch, channel = doc.get("kid"), doc.get("epoch"), doc.get("channel")
    if not isinstance(kid, int) or isinstance(kid, bool) or not 0 <= kid <= MAX_KID:
        raise KeyRecordError(f"kid {kid!r} is not an integer from 0 to 2^48 - 1")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise KeyRecordError(f"epoch {epoch!r} is not a non-negative integer")
    if channel not in CHANNELS:
        raise KeyRecordError(f"channel {channel!r} is neither main nor caucus")
    if session_id is not None and doc.get("session_id") != session_id:
        raise KeyRecordError(f"the key names session {doc.get('session_id')!r}, filed under {session_id!r}")
    if participant_id is not None and doc.get("participant_id") != participant_id:
        raise KeyRecordError(f"the key names participant {doc.get('participant_id')!r}, filed under {participant_id!r}")
    base_key = b64url_decode(doc.get("base_key", ""))
    if len(base_key) != 32:
        raise KeyRecordError("base_key is not 32 bytes")
    return SessionKey(kid=kid, participant_id=str(doc.get("participant_id")), channel=channel, epoch=epoch,
                      base_key=base_key)


def session_keys(records: Iterable[tuple[bytes, Mapping[str, Any]]]) -> dict[int, SessionKey]:
    """KID → key for a session, from its decrypted key records as (plaintext, {session_id, participant_id}).

    A KID claimed by two different keys is refused: a browser never reuses one (docs/protocol.md)."""
    keys: dict[int, SessionKey] = {}
    for plaintext, where in records:
        key = parse_key_record(plaintext, session_id=where.get("session_id"),
                               participant_id=where.get("participant_id"))
        earlier = keys.get(key.kid)
        if earlier is not None and earlier != key:
            raise KeyRecordError(f"KID {key.kid} names two different keys")
        keys[key.kid] = key
    return keys


def reveal(messages: Iterable[dict[str, Any]], keys: Mapping[int, SessionKey], session_id: str) -> list[str]:
    """Give each encrypted message (``kid`` + ``ciphertext``, no ``text``) its text, in place; returns what
    could not be opened, one sentence per message. A key opens only its own sender's messages in its channel."""
    unopened = []
    for message in messages:
        if "text" in message or "ciphertext" not in message:
            continue
        kid, seq = message.get("kid"), message.get("seq")
        key = keys.get(kid) if isinstance(kid, int) else None
        if key is None:
            unopened.append(f"chat message {seq}: no key record for KID {kid!r}")
            continue
        if key.participant_id != message.get("participant_id") or key.channel != message.get("channel", "main"):
            unopened.append(f"chat message {seq}: KID {kid} is {key.participant_id}'s {key.channel} key, "
                            f"not {message.get('participant_id')}'s {message.get('channel')}")
            continue
        try:
            message["text"] = decrypt_chat(key, session_id, str(message["ciphertext"]))
        except KeyRecordError as exc:
            unopened.append(f"chat message {seq}: {exc}")
    return unopened
