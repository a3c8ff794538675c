"""Room values at rest in a shared store: AES-GCM under per-session keys that are shredded when the session ends.

A session's key is HKDF-SHA256 of the nodes' shared room-state secret (never in the store) and a random
per-session salt (kept in the store beside the room). Every node holding the secret derives the same key;
the store, or its append-only file, alone opens nothing. Deleting the salt destroys the key: the
derivation cannot be repeated without it (docs/threat-model.md, "Room state at rest").
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES = 32
SALT_BYTES = 32
_NONCE_BYTES = 12
# The first byte of every stored value: sealed under the session's key, or a tombstone with no content.
SEALED, TOMBSTONE = b"\x01", b"\x00"
_INFO = b"mediation room state v1\x00"
_AD = b"mediation room state v1\x00"


class StateUnreadable(RuntimeError):
    """A stored value did not open: a wrong secret, a shredded key, or a value changed in the store."""


def derive_secret(material: bytes) -> bytes:
    """The room-state secret derived from another secret every node holds (domain-separated)."""
    return HKDF(algorithm=hashes.SHA256(), length=SECRET_BYTES, salt=None,
                info=b"mediation room state secret v1").derive(material)


def fingerprint(secret: bytes) -> bytes:
    """What nodes compare to find they hold the same secret; reveals nothing of it (HMAC as a PRF)."""
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(b"mediation room state secret check v1")
    return mac.finalize()


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


class SessionCipher:
    """One session's key; every value is bound (as associated data) to the name of the key that holds it."""

    def __init__(self, secret: bytes, session_id: str, salt: bytes) -> None:
        if len(secret) != SECRET_BYTES:
            raise ValueError(f"the room-state secret must be {SECRET_BYTES} bytes, not {len(secret)}")
        if len(salt) != SALT_BYTES:
            raise StateUnreadable(f"session {session_id}: its key salt is {len(salt)} bytes, not {SALT_BYTES}")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                   info=_INFO + session_id.encode()).derive(secret)
        self._aead = AESGCM(key)
        self.session_id = session_id

    def seal(self, name: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return SEALED + nonce + self._aead.encrypt(nonce, plaintext, _AD + name.encode())

    def open(self, name: str, value: bytes) -> bytes:
        if value[:1] != SEALED or len(value) < 1 + _NONCE_BYTES + 16:
            raise StateUnreadable(f"session {self.session_id}: value of {name} is not sealed room state")
        nonce, body = value[1:1 + _NONCE_BYTES], value[1 + _NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, _AD + name.encode())
        except Exception as exc:  # cryptography raises InvalidTag; any failure means the same here
            raise StateUnreadable(f"session {self.session_id}: value of {name} does not open with the "
                                  f"session's key ({type(exc).__name__})") from None
