"""Messages to parties (receipt, schedule, join link): the case-view notifier, and the courier of join links.

A join link is the party's credential, so it goes only to the party: sealed into the party's case view
(to its receipt's key), and by e-mail and SMS to the contacts verified on the case when those channels
are configured. Each attempt is kept per link and channel (sent or failed, with the failure's class),
never with the token; staff see those rows, not the link.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncSession

from recording.records.sealing import open_sealed, seal, x25519_identity, x25519_recipient
from server.audit import AuditLog
from server.changes import changed
from server.channels import Channel, DeliveryFailed
from server.database import Database
from server.models import Case, JoinLink, LinkDelivery, Notice, Party
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
        link_id: str | None = None,
    ) -> None: ...


class CaseViewNotifier:
    """Embedded default: files the notice in the party's case view and logs that it was sent.

    A secret (a join link) is never logged; it is kept only sealed to the party's receipt key,
    and dropped if the party has none (it then reaches the party by e-mail or SMS, or not at all).
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
        link_id: str | None = None,
    ) -> None:
        sealed = seal_to_receipt(sealed_to, secret.encode()) if secret and sealed_to else None
        session.add(
            Notice(
                notice_id=new_id("ntc"), case_id=case_id, party_id=party_id, kind=kind, text=text,
                sealed_secret=sealed, link_id=link_id, created_at=dt.datetime.now(dt.timezone.utc),
            )
        )
        changed(session, case_id)  # the party's case view shows it without a reload
        log.info(
            "notice sent",
            extra={"case_id": case_id, "party_id": party_id, "kind": kind, "with_link": secret is not None},
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class _Outgoing:
    """A delivery filed as pending, and where it goes; held in memory only until it is attempted."""

    delivery_id: str
    channel: str
    address: str


class LinkCourier:
    """Delivers a join link to its party's verified contacts and records every attempt (never the token).

    ``file`` runs inside the issuing transaction: the case-view notice (sent at once) and a pending row
    per outside channel. ``send`` runs after that commit, so no SMTP server or gateway holds a database
    transaction open; the URL exists only in the caller's memory between the two.
    """

    def __init__(self, db: Database, audit: AuditLog, notifier: Notifier, channels: dict[str, Channel]) -> None:
        self._db = db
        self._audit = audit
        self._notifier = notifier
        self._channels = channels

    def routes(self, case: Case, party: Party) -> list[tuple[str, str]]:
        """(channel, address) the party's link can go to now; the case view only for a live receipt."""
        routes: list[tuple[str, str]] = []
        if party.role == "borrower" and case.receipt_revoked_at is None:
            routes.append(("case_view", ""))
        if party.verified_at is not None:
            if party.email and "email" in self._channels:
                routes.append(("email", party.email))
            if party.phone and "sms" in self._channels:
                routes.append(("sms", party.phone))
        return routes

    async def file(self, session: AsyncSession, *, case: Case, party: Party, link: JoinLink, url: str,
                   text: str) -> list[_Outgoing]:
        """File the link's deliveries in the caller's transaction; returns what ``send`` must still attempt."""
        now = _now()
        outgoing: list[_Outgoing] = []
        for channel, address in self.routes(case, party):
            row = LinkDelivery(delivery_id=new_id("dlv"), link_id=link.link_id, case_id=case.case_id,
                               channel=channel, status="pending", attempted_at=now)
            if channel == "case_view":
                await self._notifier.notify(session, case_id=case.case_id, party_id=party.party_id,
                                            kind="join_link", text=text, secret=url,
                                            sealed_to=case.receipt_public_key, link_id=link.link_id)
                row.status, row.finished_at = "sent", now
            else:
                outgoing.append(_Outgoing(row.delivery_id, channel, address))
            session.add(row)
            await session.flush()
            if row.status == "sent":
                await self._audit.append(session, actor="system", action="link_delivered", case_id=case.case_id,
                                         detail={"link_id": link.link_id, "channel": channel, "status": "sent"})
        return outgoing

    async def send(self, case_id: str, link_id: str, outgoing: list[_Outgoing], url: str, text: str) -> None:
        """Attempt each outside delivery once; each row ends "sent" or "failed" with its class, audited."""
        for item in outgoing:
            error: str | None = None
            try:
                await self._channels[item.channel].send(item.address, "Your mediation session link",
                                                        f"{text}\n\n{url}\n\nReference: {link_id}")
            except DeliveryFailed as exc:
                error = exc.error
            except Exception:
                # A fault in a channel must not keep the link from its other channels, nor leave it "pending".
                log.exception("join link delivery failed unexpectedly",
                              extra={"case_id": case_id, "link_id": link_id, "channel": item.channel})
                error = "internal"
            status = "failed" if error else "sent"
            log.info("join link delivery", extra={"case_id": case_id, "link_id": link_id, "channel": item.channel,
                                                  "status": status, "error": error})
            async with self._db.write() as session:
                row = await session.get(LinkDelivery, item.delivery_id)
                if row is None:
                    continue  # cannot happen: rows are never deleted
                row.status, row.error, row.finished_at = status, error, _now()
                detail = {"link_id": link_id, "channel": item.channel, "status": status}
                if error:
                    detail["error"] = error
                await self._audit.append(session, actor="system", action="link_delivered", case_id=case_id,
                                         detail=detail)
                changed(session, case_id)
