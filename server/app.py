"""The composition root: builds the aiohttp application from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from server import __version__
from server.accounts import Accounts
from server.api import router
from server.audit import AuditLog, load_or_create_signing_key
from server.cases import CaseDesk
from server.database import Database
from server.errors import error_middleware
from server.metrics import Metrics
from server.notifier import CaseViewNotifier
from server.ratelimit import SlidingWindow
from server.routing import openapi_document
from server.services import SERVICES, Services
from server.settings import Settings

log = logging.getLogger("mediation.app")

_API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    for name, value in _API_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(settings: Settings) -> web.Application:
    """An app whose services start and stop with it (aiohttp cleanup contexts)."""
    metrics = Metrics()
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[security_headers, metrics.middleware(), error_middleware])

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = Database(settings.effective_database_url)
        await db.migrate()
        audit = AuditLog(db, load_or_create_signing_key(settings.audit_key_path))
        accounts = Accounts(settings, db, audit)
        services = Services(
            settings=settings, db=db, audit=audit, accounts=accounts,
            cases=CaseDesk(settings, db, audit, CaseViewNotifier()), metrics=metrics,
            application_limit=SlidingWindow(settings.applications_per_minute, 60.0),
        )
        services.openapi = openapi_document(router.endpoints, title="Mediation session server", version=__version__)
        app[SERVICES] = services
        checkpoints = asyncio.create_task(audit.run_checkpoints(settings.audit_checkpoint_seconds),
                                          name="audit-checkpoints")
        log.info("started", extra={"database": "sqlite" if db.is_sqlite else "postgresql",
                                   "audit_key_id": audit.key_id})
        try:
            yield
        finally:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
            try:
                await audit.checkpoint()
            except Exception:  # noqa: BLE001 - shutting down; the next start checkpoints
                log.exception("final audit checkpoint failed")
            await db.close()

    app.cleanup_ctx.append(services_ctx)

    async def authenticate(request: web.Request):
        return await app[SERVICES].accounts.authenticate(request)

    async def check_member(principal, case_id: str) -> None:
        await app[SERVICES].cases.check_member(principal, case_id)

    router.install(app, authenticate, check_member, settings.max_body_bytes)
    return app
