"""How a party's credential reached the party: named in the audit entry of every act it takes with it.

A join link is named by its id, who issued it and the channels it was delivered over; a receipt by
an id derived from its stored hash (it went to whoever filed the application, in the filing's answer).
None of it is a secret.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import JoinLink, LinkDelivery


def receipt_id(receipt_hash: bytes) -> str:
    """A receipt's public name, derived from the hash under which it is stored (the receipt stays secret)."""
    return "rct_" + hashlib.sha256(b"mediation receipt id v1\x00" + receipt_hash).hexdigest()[:32]


async def credential_detail(session: AsyncSession, *, via: str | None, link_id: str | None = None,
                            credential: str | None = None) -> dict[str, Any]:
    """The ``credential`` object of a party act's audit entry; empty for staff, who act as themselves."""
    if via == "join_link" and link_id is not None:
        link = await session.get(JoinLink, link_id)
        channels = (await session.execute(
            select(LinkDelivery.channel).where(LinkDelivery.link_id == link_id, LinkDelivery.status == "sent")
        )).scalars().all()
        return {"credential": {"kind": "join_link", "link_id": link_id,
                               "issued_by": link.issued_by if link is not None else None,
                               "delivered_via": sorted(set(channels))}}
    if via == "receipt" and credential is not None and credential.startswith("rcp:"):
        return {"credential": {"kind": "receipt", "receipt_id": receipt_id(bytes.fromhex(credential[4:])),
                               "issued_by": "application", "delivered_via": ["application_response"]}}
    return {}
