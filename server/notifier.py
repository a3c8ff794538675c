"""Messages to parties (receipt, schedule, join link) and the embedded notifier that files them."""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Notice
from server.tokens import new_id

log = logging.getLogger("mediation.notifier")

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def receipt_key(receipt_token: str) -> X25519PrivateKey:
    """The X25519 key a receipt token stands for; derived, never stored."""
    return X25519PrivateKey.from_private_bytes(_hkdf(receipt_token.encode(), b"mediation receipt key v1"))


def receipt_public_key(receipt_token: str) -> bytes:
    return receipt_key(receipt_token).public_key().public_bytes(*_RAW)


def seal_to_receipt(public_key: bytes, plaintext: bytes) -> bytes:
    """Ephemeral X25519 + HKDF + ChaCha20-Poly1305: ``ephemeral_pub || nonce || ciphertext``."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(*_RAW)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public_key))
    key = _hkdf(shared + ephemeral_public + public_key, b"mediation notice v1")
    nonce = os.urandom(12)
    return ephemeral_public + nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, ephemeral_public)


def open_with_receipt(receipt_token: str, sealed: bytes) -> bytes:
    private = receipt_key(receipt_token)
    public_key = private.public_key().public_bytes(*_RAW)
    ephemeral_public, nonce, ciphertext = sealed[:32], sealed[32:44], sealed[44:]
    shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    key = _hkdf(shared + ephemeral_public + public_key, b"mediation notice v1")
    return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, ephemeral_public)


class Notifier(Protocol):
    """Delivers a message to a party inside the caller's transaction."""

    async def notify(
        self,
        session: AsyncSession,
        *,
        case_id: str,
        party_id: str,
        kind: str,
        text: str,
        secret: str | None = None,
        sealed_to: bytes | None = None,
    ) -> None: ...


class CaseViewNotifier:
    """Embedded default: files the notice in the party's case view and logs that it was sent.

    A secret (a join link) is never logged; it is kept only sealed to the party's receipt key,
    and dropped if the party has none (the issuing staff member hands it over instead).
    """

    async def notify(
        self,
        session: AsyncSession,
        *,
        case_id: str,
        party_id: str,
        kind: str,
        text: str,
        secret: str | None = None,
        sealed_to: bytes | None = None,
    ) -> None:
        sealed = seal_to_receipt(sealed_to, secret.encode()) if secret and sealed_to else None
        session.add(
            Notice(
                notice_id=new_id("ntc"), case_id=case_id, party_id=party_id, kind=kind, text=text,
                sealed_secret=sealed, created_at=dt.datetime.now(dt.timezone.utc),
            )
        )
        log.info(
            "notice sent",
            extra={"case_id": case_id, "party_id": party_id, "kind": kind, "with_link": secret is not None},
        )
