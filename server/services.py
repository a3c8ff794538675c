"""The parts the composition root wires together, reachable from handlers through one app key."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web
from sqlalchemy import select

from server.accounts import Accounts
from server.agreements import Agreements
from server.audit import AuditLog
from server.cases import CaseDesk
from server.changes import ChangeFeed
from server.credentials import Credentials
from server.database import Database
from server.metrics import Metrics
from server.models import AuditCheckpoint
from server.possession import Possession
from server.ratelimit import SlidingWindow
from server.recorders import ProcessRecorders
from server.recipients import RecipientKeys
from server.records import CaseRecords
from server.settings import Settings


@dataclasses.dataclass
class Services:
    settings: Settings
    db: Database
    audit: AuditLog
    accounts: Accounts
    credentials: Credentials
    cases: CaseDesk
    metrics: Metrics
    application_limit: SlidingWindow
    records: CaseRecords
    recorders: ProcessRecorders
    agreements: Agreements
    recipient_keys: RecipientKeys
    changes: ChangeFeed
    possession: Possession
    openapi: dict[str, Any] = dataclasses.field(default_factory=dict)

    async def latest_checkpoint(self) -> AuditCheckpoint | None:
        async with self.db.read() as session:
            return (await session.execute(
                select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
            )).scalar_one_or_none()


SERVICES = web.AppKey("services", Services)
