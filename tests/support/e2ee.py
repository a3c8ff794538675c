"""The browsers' end-to-end encryption in Python, so test clients chat in encrypted rooms.

The same derivations as ``web_client/src/lib/e2ee/keys.js`` (docs/protocol.md, "End-to-end encryption"):
an X25519 device key per join, base keys wrapped member to member, chat under HKDF-derived AES-256-GCM keys.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import unicodedata

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from recording.records.sealing import seal
from recording.compliance.e2eekeys import (
    SessionKey, b64url_decode, b64url_encode, chat_aad, chat_key, decrypt_chat,
)

WRAP_INFO = b"mediation key wrap v1"


def wrap_aad(session_id: str, sender: tuple[str, str], recipient: tuple[str, str], channel: str, epoch: int,
             kid: int) -> bytes:
    """What a wrapped key's tag covers: session, sender and recipient (participant id, public key), channel,
    epoch and KID. The sender is identified: only it (or the recipient) holds the ECDH secret."""
    return "\n".join(["mediation key wrap v1", session_id, *sender, *recipient, channel, str(epoch),
                      str(kid)]).encode()


def normalise(text: str) -> str:
    """As the browser sends text: NFC, CRLF to LF, trimmed (docs/protocol.md, "Chat text")."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()


@dataclasses.dataclass
class DeviceKeys:
    """One join's key pair and the base keys it made and received."""

    session_id: str
    private: X25519PrivateKey = dataclasses.field(default_factory=X25519PrivateKey.generate)
    participant_id: str = ""
    sending: dict[str, SessionKey] = dataclasses.field(default_factory=dict)  # channel -> current key
    received: dict[int, SessionKey] = dataclasses.field(default_factory=dict)
    epochs: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def public_key(self) -> str:
        return b64url_encode(self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def _wrap_key(self, peer_public: str) -> bytes:
        shared = self.private.exchange(X25519PublicKey.from_public_bytes(b64url_decode(peer_public)))
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=WRAP_INFO).derive(shared)

    def new_send_key(self, channel: str) -> SessionKey:
        epoch = self.epochs.get(channel, -1) + 1
        self.epochs[channel] = epoch
        key = SessionKey(kid=secrets.randbelow(2**48), participant_id=self.participant_id, channel=channel,
                         epoch=epoch, base_key=os.urandom(32))
        self.sending[channel] = key
        return key

    def wrap(self, key: SessionKey, to: str, to_public: str) -> str:
        aad = wrap_aad(self.session_id, (self.participant_id, self.public_key), (to, to_public), key.channel,
                       key.epoch, key.kid)
        nonce = os.urandom(12)
        return b64url_encode(nonce + AESGCM(self._wrap_key(to_public)).encrypt(nonce, key.base_key, aad))

    def share_payload(self, key: SessionKey, members: dict[str, str]) -> dict:
        """``share_keys``'s payload for ``members`` (participant id → public key)."""
        return {"channel": key.channel, "epoch": key.epoch, "kid": key.kid,
                "keys": [{"participant_id": pid, "wrapped": self.wrap(key, pid, public)}
                         for pid, public in members.items()]}

    def unwrap(self, notice: dict) -> SessionKey:
        """The base key a ``keys_shared`` notice carries; raises InvalidTag if it was not made for this key."""
        aad = wrap_aad(self.session_id, (notice["participant_id"], notice["public_key"]),
                       (self.participant_id, self.public_key), notice["channel"], notice["epoch"], notice["kid"])
        data = b64url_decode(notice["wrapped"])
        base = AESGCM(self._wrap_key(notice["public_key"])).decrypt(data[:12], data[12:], aad)
        key = SessionKey(kid=notice["kid"], participant_id=notice["participant_id"], channel=notice["channel"],
                         epoch=notice["epoch"], base_key=base)
        self.received[key.kid] = key
        return key

    def encrypt(self, channel: str, text: str) -> dict:
        """``send_chat``'s payload for ``text`` under this device's current key of ``channel``."""
        key = self.sending[channel]
        nonce = os.urandom(12)
        sealed = AESGCM(chat_key(key.base_key, key.kid)).encrypt(
            nonce, normalise(text).encode(), chat_aad(self.session_id, self.participant_id, channel, key.kid))
        return {"ciphertext": b64url_encode(nonce + sealed), "kid": key.kid, "channel": channel}

    def key_document(self, key: SessionKey) -> bytes:
        """The plaintext of the key's e2ee_key record, as the page seals it (docs/records.md)."""
        return json.dumps({"type": "mediation-e2ee-key/v1", "session_id": self.session_id,
                           "participant_id": self.participant_id, "public_key": self.public_key,
                           "channel": key.channel, "epoch": key.epoch, "kid": key.kid,
                           "base_key": b64url_encode(key.base_key)},
                          sort_keys=True, separators=(",", ":")).encode()

    def file_payload(self, key: SessionKey, recipients: list[str]) -> dict:
        """``file_key``'s payload: the key sealed to ``recipients``."""
        return {"channel": key.channel, "epoch": key.epoch, "kid": key.kid, "recipients": recipients,
                "sealed": b64url_encode(seal(self.key_document(key), recipients))}

    def decrypt(self, message: dict) -> str:
        """The text of a delivered ``chat_message``, under a key this device made or received."""
        kid = message["kid"]
        key = self.received.get(kid) or next(k for k in self.sending.values() if k.kid == kid)
        if key.participant_id != message["participant_id"] or key.channel != message["channel"]:
            raise ValueError(f"KID {kid} is not {message['participant_id']}'s key for {message['channel']}")
        return decrypt_chat(key, self.session_id, message["ciphertext"])
