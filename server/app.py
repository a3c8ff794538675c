"""The composition root: builds the aiohttp application, its HTTP API and its rooms, from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import socketio
from aiohttp import web

from server import __version__
from server.accounts import Accounts
from server.agreements import Agreements
from server.api import router
from server.audit import AuditLog, load_or_create_signing_key
from server.cases import CaseDesk
from server.credentials import Credentials
from server.database import Database
from server.errors import error_middleware
from server.joinlinks import JoinLinks
from server.metrics import Metrics
from server.notifier import CaseViewNotifier
from server.proxies import client_address_middleware
from server.ratelimit import SlidingWindow
from server.recorders import ProcessRecorders
from server.records import CaseRecords
from server.roomaccess import RoomAccess
from server.rooms import RoomHooks
from server.routing import openapi_document
from server.services import SERVICES, Services
from server.settings import Settings
from recording.storage import DirectoryStorage
from signaling.fanout import RedisFanout
from signaling.namespace import RoomNamespace, RoomSettings
from signaling.roomstate import MemoryRoomStore, RoomStore

log = logging.getLogger("mediation.app")

# Where this node's own workers (the recorder) reach it; tests that bind port 0 set it once bound.
OWN_URL = web.AppKey("own_url", dict)

WEB_CLIENT = Path(__file__).resolve().parents[1] / "web_client"

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Pages: our own scripts and styles only, no inline code; media from the camera and peers.
_PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
             "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
             "form-action 'self'; frame-ancestors 'none'")


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    for name, value in _COMMON_HEADERS.items():
        response.headers.setdefault(name, value)
    page = not (request.path.startswith("/api/") or request.path in ("/metrics", "/healthz", "/readyz"))
    response.headers.setdefault("Content-Security-Policy", _PAGE_CSP if page else _API_CSP)
    if not page:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _room_store(settings: Settings) -> RoomStore:
    if settings.redis_url:
        from signaling.redisstate import RedisRoomStore

        # A turn's lock is extended while it runs, however slow; a node that dies holding one (or a
        # Redis restart that keeps one) holds the room for at most lock_ttl.
        return RedisRoomStore(settings.redis_url, lock_ttl=5.0, lock_wait=20.0)
    return MemoryRoomStore()


def create_app(settings: Settings) -> web.Application:
    """An app whose services start and stop with it (aiohttp cleanup contexts)."""
    metrics = Metrics()
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[client_address_middleware(settings.trusted_proxies), security_headers,
                                       metrics.middleware(), error_middleware])
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.effective_database_url)
    signing_key = load_or_create_signing_key(settings.audit_key_path)
    audit = AuditLog(db, signing_key)
    records = CaseRecords(settings, db, audit, DirectoryStorage(settings.records_dir), on_filed=metrics.record_sealed)
    own_url = {"value": settings.internal_url or f"http://{settings.host}:{settings.port}"}
    recorders = ProcessRecorders(lambda: own_url["value"], records.recipients)
    links = JoinLinks(audit, settings.join_link_ttl_seconds)
    credentials = Credentials(db, settings.allowed_origins, recorders.participant)
    services = Services(
        settings=settings, db=db, audit=audit, accounts=Accounts(settings, db, audit), credentials=credentials,
        cases=CaseDesk(settings, db, audit, CaseViewNotifier(), links), metrics=metrics,
        application_limit=SlidingWindow(settings.applications_per_minute, 60.0), records=records,
        recorders=recorders, agreements=Agreements(db, audit, signing_key, records),
    )
    services.openapi = openapi_document(router.endpoints, title="Mediation session server", version=__version__)
    app[SERVICES] = services
    app[OWN_URL] = own_url

    store = _room_store(settings)
    access = RoomAccess(db, credentials, recorders.participant)
    rooms = RoomNamespace(RoomHooks(db, audit, records, recorders, access, links), store, RoomSettings(
        stun_urls=settings.stun_urls, turn_urls=settings.turn_urls, turn_secret=settings.turn_secret.reveal(),
        turn_ttl_seconds=settings.turn_ttl_seconds, reconnect_grace_seconds=settings.reconnect_grace_seconds,
    ), on_error=metrics.room_error, on_node_lost=metrics.node_lost)
    metrics.observe_rooms(rooms.census, recorders.running)
    manager = RedisFanout(settings.redis_url, on_resubscribed=rooms.resync) if settings.redis_url else None
    origins = [o for o in (*settings.allowed_origins, settings.public_url.rstrip("/")) if o] or None
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, cors_allowed_origins=origins,
                               max_http_buffer_size=256 * 1024, logger=False, engineio_logger=False)
    sio.register_namespace(rooms)
    sio.attach(app, socketio_path="socket.io")

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await db.migrate()
        rooms.start()
        sequencer = asyncio.create_task(audit.run_sequencer(settings.audit_sequence_seconds),
                                        name="audit-sequencer")
        checkpoints = asyncio.create_task(audit.run_checkpoints(settings.audit_checkpoint_seconds),
                                          name="audit-checkpoints")
        lag = asyncio.create_task(metrics.sample_loop_lag(), name="event-loop-lag")
        log.info("started", extra={"database": "sqlite" if db.is_sqlite else "postgresql",
                                   "rooms": "redis" if settings.redis_url else "in-process",
                                   "audit_key_id": audit.key_id})
        try:
            yield
        finally:
            for task in (lag, checkpoints, sequencer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await rooms.close()
            if manager is not None:
                await manager.close()
            await recorders.close()
            await store.close()
            try:
                await audit.checkpoint()  # sequences what this node's last writes queued, then signs
            except Exception:  # noqa: BLE001 - shutting down; the next start checkpoints
                log.exception("final audit checkpoint failed")
            await db.close()

    async def close_sockets(_app: web.Application) -> None:
        # Open room sockets would hold the shutdown for aiohttp's whole timeout. Closed at the engine.io
        # level (not as a socket.io disconnect, which tells clients not to come back), each is marked
        # disconnected here and its client reconnects at once, through the proxy, to another node.
        if sio.eio.sockets:  # engine.io's disconnect-all fails when there is nothing to close
            await sio.eio.disconnect()

    app.on_shutdown.append(close_sockets)
    app.cleanup_ctx.append(lifetime)
    router.install(app, services.credentials.authenticate, services.cases.check_member, settings.max_body_bytes)
    _add_pages(app, Path(settings.web_client_dir) if settings.web_client_dir else WEB_CLIENT)
    return app


# Each page of the browser client: its path and its HTML file in the web client folder.
PAGES = {"/": "index.html", "/apply": "apply.html", "/case": "case.html", "/desk": "desk.html",
         "/compliance": "compliance.html", "/room": "room.html"}


PUBLIC_FOLDERS = ("css", "js", "vendor", "dist", "img")


def _add_pages(app: web.Application, root: Path) -> None:
    def page(name: str):
        async def serve(_request: web.Request) -> web.StreamResponse:
            path = root / name
            if not path.is_file():
                raise web.HTTPNotFound(text=f"page {name} is not installed")
            return web.FileResponse(path)

        return serve

    for path, name in PAGES.items():
        app.router.add_get(path, page(name))
    # Only what pages load is public: never node_modules, sources or tests.
    for folder in PUBLIC_FOLDERS:
        if (root / folder).is_dir():
            app.router.add_static(f"/static/{folder}/", root / folder, follow_symlinks=False, show_index=False)
    for name in ("favicon.svg",):
        if (root / name).is_file():
            app.router.add_get(f"/static/{name}", page(name))
    if not root.is_dir():
        log.warning("no web client to serve", extra={"web_client_dir": str(root)})
