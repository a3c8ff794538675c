"""Messages to parties (receipt, schedule, join link) and the embedded notifier that files them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncSession

from recording.records.sealing import open_sealed, seal, x25519_identity, x25519_recipient
from server.models import Notice
from server.tokens import new_id

log = logging.getLogger("mediation.notifier")


def _receipt_secret(receipt_token: str) -> bytes:
    """The X25519 private key a receipt token stands for; derived, never stored."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mediation receipt key v1").derive(
        receipt_token.encode())


def receipt_public_key(receipt_token: str) -> bytes:
    """The raw X25519 public key of a receipt (kept on the case; sealed_to of its notices)."""
    private = X25519PrivateKey.from_private_bytes(_receipt_secret(receipt_token))
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal_to_receipt(public_key: bytes, plaintext: bytes) -> bytes:
    """Seal `plaintext` in age v1 to a receipt's public key, as records are sealed to compliance keys."""
    return seal(plaintext, [x25519_recipient(public_key)])


def open_with_receipt(receipt_token: str, sealed: bytes) -> bytes:
    """Open what seal_to_receipt sealed; raise ValueError if this receipt does not open it."""
    return open_sealed(sealed, [x25519_identity(_receipt_secret(receipt_token))])


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
