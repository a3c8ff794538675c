"""The composition root: builds the aiohttp application, its HTTP API and its rooms, from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web
from sqlalchemy.exc import OperationalError

from server import __version__, jsonlog
from server.accounts import Accounts
from server.agreementpdf import AgreementPrinter
from server.agreements import Agreements
from server.api import router
from recording.records.checkpoint import parse_vkey
from server.audit import AuditLog, head_copy_paths, load_or_create_signing_key
from server.possession import Possession
from server.witnesses import WitnessClient
from server.cases import CaseDesk
from server.changes import ChangeFeed
from server.chatcommit import ChatCommits
from server.chatjournal import ChatJournal
from server.credentials import Credentials
from server.database import Database
from server.datadir import private_directory
from server.errors import error_middleware
from server.hashing import HashingPool
from server.joinlinks import JoinLinks
from server.metrics import Metrics
from server.channels import outside_channels
from server.notifier import CaseViewNotifier, LinkCourier
from server.proxies import client_address_middleware, peer_trust
from server.ratelimit import SlidingWindow
from server.recipients import RecipientKeys
from server.recorders import ProcessRecorders
from server.records import CaseRecords
from server.revocations import Revocations
from server.roomaccess import RoomAccess
from server.rooms import RoomHooks
from server.routing import openapi_document
from server.services import SERVICES, Services
from server.settings import Settings
from server.socketguard import GuardedServer, SocketBudgets, TransportErrors
from recording.records.storage import DirectoryStorage
from signaling.authority import Authority, LocalAuthority
from signaling.fanout import RedisFanout
from signaling.identity import Unavailable
from signaling.janus import JanusClient
from signaling.origins import Origins
from signaling.namespace import RoomNamespace, RoomSettings
from signaling.liveness import LocalLiveness, NodeLiveness
from signaling.partybudgets import LocalBudgets, PartyBudgets
from signaling.roomstate import MemoryRoomStore, RoomStore
from signaling.sealedstate import derive_secret

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
# Pages: our own scripts and styles only, no inline code; media from the camera and peers; workers
# (the media-encryption worker, dist/workers/) from our own origin only.
_PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
             "media-src 'self' blob:; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; "
             "form-action 'self'; frame-ancestors 'none'")


def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _COMMON_HEADERS.items():
        response.headers.setdefault(name, value)
    page = not (request.path.startswith("/api/") or request.path in ("/metrics", "/healthz", "/readyz"))
    response.headers.setdefault("Content-Security-Policy", _PAGE_CSP if page else _API_CSP)
    if not page:
        response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    _add_security_headers(request, response)
    return response


async def _stream_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """A streamed response (the change feed) sends its headers before any middleware sees it: add them here,
    as its headers are written (for other responses the middleware has set them already)."""
    _add_security_headers(request, response)


def _room_store(settings: Settings, secret: bytes) -> RoomStore:
    if settings.redis_url:
        from signaling.redisstate import RedisRoomStore

        # A turn's lock is extended while it runs, however slow; a node that dies holding one (or a
        # Redis restart that keeps one) holds the room for at most lock_ttl.
        return RedisRoomStore(settings.redis_connection_url(), secret=secret, lock_ttl=settings.room_lock_ttl_seconds,
                              lock_wait=settings.room_lock_wait_seconds,
                              rewrite_aof=settings.redis_rewrite_aof_on_shred)
    return MemoryRoomStore()


def _node_liveness(settings: Settings) -> NodeLiveness:
    if settings.redis_url:
        from signaling.redisliveness import RedisLiveness

        return RedisLiveness(settings.redis_connection_url(), wait=settings.room_lock_wait_seconds)
    return LocalLiveness()


def _party_budgets(settings: Settings) -> PartyBudgets:
    if settings.redis_url:
        from signaling.redisbudgets import RedisBudgets

        return RedisBudgets(settings.redis_connection_url(), wait=settings.room_lock_wait_seconds)
    return LocalBudgets()


def _authority(settings: Settings) -> Authority:
    if settings.redis_url:
        from signaling.redisauthority import RedisAuthority

        return RedisAuthority(settings.redis_connection_url(), wait=settings.room_lock_wait_seconds)
    return LocalAuthority()


def room_settings(settings: Settings) -> RoomSettings:
    """What the room engine takes from the server's settings."""
    return RoomSettings(
        stun_urls=settings.stun_urls, turn_urls=settings.turn_urls, turn_secret=settings.turn_secret.reveal(),
        turn_ttl_seconds=settings.turn_ttl_seconds, reconnect_grace_seconds=settings.reconnect_grace_seconds,
        chat_rate=settings.room_chat_rate, chat_burst=settings.room_chat_burst,
        signal_rate=settings.room_signal_rate, signal_burst=settings.room_signal_burst,
        flood_rate=settings.room_flood_rate, flood_burst=settings.room_flood_burst,
        connects_per_minute=settings.room_connects_per_minute,
        node_beat_seconds=settings.node_beat_seconds, node_timeout_seconds=settings.node_timeout_seconds,
        consent_burst=settings.room_consent_burst, consent_interval=settings.room_consent_seconds,
        presence_burst=settings.room_presence_burst, presence_interval=settings.room_presence_seconds,
        credential_recheck_seconds=settings.credential_recheck_seconds,
        janus_urls=settings.janus_urls, janus_api_secret=settings.janus_api_secret.reveal(),
        janus_admin_key=settings.janus_admin_key.reveal(), janus_video_bitrate=settings.janus_video_bitrate,
        recorder_rtp_host=settings.recorder_rtp_host,
    )


def _socket_origin_check(origins: Origins) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A room socket handshake from a browser origin not allowed gets 403 ``{code: "bad_origin", message}``."""

    @web.middleware
    async def socket_origin(request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and request.path.startswith("/socket.io/") and not origins.allows_request(
                origin, request):
            return web.json_response({"code": "bad_origin",
                                      "message": f"origin {origin[:200]} may not open room sockets"}, status=403)
        return await handler(request)

    return socket_origin


# --- resources: each one's start and stop together; create_app registers them in dependency order ---------

METRICS = web.AppKey("metrics", Metrics)
DATABASE = web.AppKey("database", Database)
ROOM_STORE = web.AppKey("room_store", RoomStore)
FANOUT = web.AppKey("fanout", RedisFanout | None)
AUDIT = web.AppKey("audit", AuditLog)
RECORDERS = web.AppKey("recorders", ProcessRecorders)
ROOMS = web.AppKey("rooms", RoomNamespace)
CHAT_COMMITS = web.AppKey("chat_commits", ChatCommits)
HASHING = web.AppKey("hashing", HashingPool)
JANUS = web.AppKey("janus", JanusClient)


@contextlib.asynccontextmanager
async def _stopping(resource: str) -> AsyncIterator[None]:
    """Log a failing stop with the resource's name; aiohttp still runs the other stops and re-raises."""
    try:
        yield
    except BaseException:
        log.exception("stopping %s failed", resource, extra={"resource": resource})
        raise


async def _finish(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait for it; what it died of, if anything, is raised."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def metrics_context(app: web.Application) -> AsyncIterator[None]:
    lag = asyncio.create_task(app[METRICS].sample_loop_lag(), name="event-loop-lag")
    yield
    async with _stopping("metrics"):
        await _finish(lag)


async def hashing_context(app: web.Application) -> AsyncIterator[None]:
    yield
    async with _stopping("password hashing"):
        app[HASHING].close()


async def database_context(app: web.Application) -> AsyncIterator[None]:
    db = app[DATABASE]
    await db.migrate()
    yield
    async with _stopping("database"):
        await db.close()


async def room_store_context(app: web.Application) -> AsyncIterator[None]:
    store = app[ROOM_STORE]
    check = getattr(store, "check_secret", None)  # shared stores only: nodes must seal alike
    if check is not None:
        try:
            await check()
        except Unavailable as exc:
            log.warning("could not compare the room-state secret with other nodes: %s", exc)
    yield
    async with _stopping("room store"):
        await app[ROOM_STORE].close()


async def fanout_context(app: web.Application) -> AsyncIterator[None]:
    yield
    manager = app[FANOUT]
    if manager is not None:
        async with _stopping("fan-out"):
            await manager.close()


async def audit_context(app: web.Application) -> AsyncIterator[None]:
    audit, settings = app[AUDIT], app[SERVICES].settings
    # Before anything is signed: a log rewritten while the node was down is found now, and /readyz fails.
    await audit.check_consistency()
    sequencer = asyncio.create_task(audit.run_sequencer(settings.audit_sequence_seconds), name="audit-sequencer")
    checkpoints = asyncio.create_task(audit.run_checkpoints(settings.audit_checkpoint_seconds),
                                      name="audit-checkpoints")
    yield
    async with _stopping("audit log"):
        try:
            await _finish(checkpoints)
            await _finish(sequencer)
        finally:
            await _last_checkpoint(audit)  # sequences what this node's last writes queued, then signs


async def _last_checkpoint(audit: AuditLog, attempts: int = 3) -> None:
    """Sign the last checkpoint at shutdown; SQLite may still be busy with a writer that is finishing (its
    busy timeout ran out): try again a moment later before giving up, which is logged and fails the stop."""
    for attempt in range(attempts):
        try:
            await audit.checkpoint()
            return
        except OperationalError as exc:
            if "database is locked" not in str(exc) or attempt + 1 == attempts:
                raise
            log.warning("last audit checkpoint waits for the database", extra={"attempt": attempt + 1})
            await asyncio.sleep(1.0)


async def recorders_context(app: web.Application) -> AsyncIterator[None]:
    yield
    async with _stopping("recorders"):
        await app[RECORDERS].close()  # their last segments are filed (and audited) before the audit log stops


async def chat_commits_context(app: web.Application) -> AsyncIterator[None]:
    app[CHAT_COMMITS].start()
    yield
    async with _stopping("chat commits"):
        await app[CHAT_COMMITS].close()  # after the rooms: the messages they queued are filed first


async def possession_context(app: web.Application) -> AsyncIterator[None]:
    yield
    async with _stopping("possession"):
        await app[SERVICES].possession.close()  # recovery codes still being sent, before the database closes


async def janus_context(app: web.Application) -> AsyncIterator[None]:
    """The Janus client: its connection pool opened before the rooms start, and after they stopped every
    session still open on an instance destroyed and every long poll ended."""
    client = app[JANUS]
    client.start()
    yield
    async with _stopping("janus"):
        await client.close()


async def rooms_context(app: web.Application) -> AsyncIterator[None]:
    rooms, settings = app[ROOMS], app[SERVICES].settings
    rooms.start()
    log.info("started", extra={"database": "sqlite" if app[DATABASE].is_sqlite else "postgresql",
                               "rooms": "redis" if settings.redis_url else "in-process",
                               "audit_key_id": app[AUDIT].key_id})
    yield
    async with _stopping("rooms"):
        await rooms.close()


def create_app(settings: Settings) -> web.Application:
    """An app whose resources each start and stop with it in their own cleanup context, in dependency order."""
    metrics = Metrics()
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[client_address_middleware(settings.trusted_proxies), security_headers,
                                       metrics.middleware(), error_middleware])
    private_directory(settings.data_dir)
    db = Database(settings.effective_database_url)
    signing_key = load_or_create_signing_key(settings.audit_key_path)
    witnesses = WitnessClient(settings.witness_urls, [parse_vkey(k) for k in settings.witness_keys],
                              settings.witness_quorum, settings.witness_timeout_seconds) \
        if settings.witness_urls else None
    audit = AuditLog(db, signing_key, origin=settings.audit_origin, witnesses=witnesses,
                     copies=head_copy_paths(settings.audit_key_path, settings.records_dir, settings.audit_checkpoint_file),
                     on_refused=metrics.audit_refused)
    keys = RecipientKeys(settings, db, audit, signing_key)
    records = CaseRecords(settings, db, audit, DirectoryStorage(settings.records_dir), keys,
                          on_filed=metrics.record_sealed)
    own_url = {"value": settings.internal_url or f"http://{settings.host}:{settings.port}"}
    recorders = ProcessRecorders(lambda: own_url["value"], records.recipients,
                                 segment_seconds=settings.recording_segment_seconds,
                                 stop_grace_seconds=settings.recording_stop_grace_seconds,
                                 first_part=records.next_part,
                                 log_level=settings.log_level, log_bytes_per_minute=settings.log_bytes_per_minute,
                                 rtp_host=settings.recorder_rtp_host)
    links = JoinLinks(audit, settings.join_link_ttl_seconds)
    # Sign-in's Argon2 in its own bounded pool: a flood of sign-ins is refused, sealing never waits on it.
    hashing = HashingPool(settings.password_hash_workers, settings.password_hash_queue,
                          on_refused=lambda: metrics.refused("password_hashing_busy"))
    credentials = Credentials(db, settings.allowed_origins, recorders.participant)
    notifier = CaseViewNotifier()
    channels = outside_channels(settings)
    courier = LinkCourier(db, audit, notifier, channels)
    possession = Possession(settings, db, audit, channels, signing_key.private_bytes_raw())
    cases = CaseDesk(settings, db, audit, notifier, links, courier, possession)
    authority = _authority(settings)
    # Changes to cases travel the revocations' path to every node, and from there to the pages' event streams.
    changes = ChangeFeed(authority, credentials, cases.check_member,
                         recheck_seconds=settings.credential_recheck_seconds)
    services = Services(
        settings=settings, db=db, audit=audit, accounts=Accounts(settings, db, audit, hashing), credentials=credentials,
        cases=cases, metrics=metrics,
        application_limit=SlidingWindow(settings.applications_per_minute, 60.0), records=records,
        recorders=recorders,
        agreements=Agreements(db, audit, signing_key, records, AgreementPrinter(settings.agreement_font), possession),
        recipient_keys=keys, changes=changes, possession=possession,
    )
    services.openapi = openapi_document(router.endpoints, title="Mediation session server", version=__version__)
    app[SERVICES] = services
    app[OWN_URL] = own_url

    # Shared by every node, never stored beside what it seals (docs/threat-model.md, "Room state at rest").
    room_secret = settings.room_state_secret() or derive_secret(signing_key.private_bytes_raw())
    store = _room_store(settings, room_secret)
    # Revocations recorded in a transaction are announced to every node once it commits, then its changes.
    db.after_commit(Revocations(authority).announce)
    db.after_commit(changes.announce)
    access = RoomAccess(db, credentials, recorders.participant)
    # The rooms own the liveness they are given and close it with themselves.
    journal = ChatJournal(db, room_secret)
    chat = ChatCommits(records, journal, on_batch=metrics.chat_batches.inc)
    hooks = RoomHooks(db, audit, records, recorders, access, links, journal, chat, possession)
    # Every Janus session of this node goes through one client, closed by its own context after the rooms.
    janus = JanusClient()
    rooms = RoomNamespace(hooks, store, room_settings(settings),
                          on_error=metrics.room_error, on_node_lost=metrics.node_lost,
                          liveness=_node_liveness(settings), budgets=_party_budgets(settings),
                          authority=authority, janus=janus)
    metrics.observe_rooms(rooms.census, recorders.running)
    manager = RedisFanout(settings.redis_connection_url(), on_resubscribed=rooms.resync) if settings.redis_url else None
    origins = Origins((*settings.allowed_origins, settings.public_url), peer_trust(settings.trusted_proxies))
    app.middlewares.append(_socket_origin_check(origins))
    budgets = SocketBudgets(sessions_per_address=settings.socket_sessions_per_address,
                            handshakes_per_minute=settings.socket_handshakes_per_minute,
                            polls_per_minute=settings.socket_polls_per_minute,
                            on_refused=metrics.refused, on_malformed=metrics.malformed_frames.inc)
    app.middlewares.append(budgets.middleware())
    sio = GuardedServer(budgets, async_mode="aiohttp", client_manager=manager, cors_allowed_origins=origins,
                        max_http_buffer_size=256 * 1024, logger=False, engineio_logger=False)
    transport_errors = TransportErrors(metrics.transport_errors.inc)
    for logger in (sio.logger, sio.eio.logger):
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, TransportErrors)]
        logger.addFilter(transport_errors)
    metrics.observe_log(jsonlog.dropped_records)
    sio.register_namespace(rooms)
    sio.attach(app, socketio_path="socket.io")

    app[METRICS] = metrics
    app[HASHING] = hashing
    app[DATABASE] = db
    app[ROOM_STORE] = store
    app[FANOUT] = manager
    app[AUDIT] = audit
    app[RECORDERS] = recorders
    app[ROOMS] = rooms
    app[JANUS] = janus
    app[CHAT_COMMITS] = chat
    # Started in this order and stopped in the reverse: each resource after those it uses. aiohttp runs
    # every stop even when one fails, and raises what failed once all have run; _stopping logs each.
    app.cleanup_ctx.extend([metrics_context, hashing_context, database_context, room_store_context, fanout_context,
                            audit_context, recorders_context, chat_commits_context, possession_context,
                            janus_context, rooms_context])

    async def close_sockets(_app: web.Application) -> None:
        # Open room sockets would hold the shutdown for aiohttp's whole timeout. Closed at the engine.io
        # level (not as a socket.io disconnect, which tells clients not to come back), each is marked
        # disconnected here and its client reconnects at once, through the proxy, to another node.
        # Without waiting for each client to fetch its close packet: a polling client may never come back.
        await sio.close_sessions()
        await changes.close()  # open event streams end; their pages reconnect

    app.on_shutdown.append(close_sockets)
    app.on_response_prepare.append(_stream_security_headers)
    router.install(app, services.credentials.authenticate, services.cases.check_member, settings.max_body_bytes)
    _add_pages(app, Path(settings.web_client_dir) if settings.web_client_dir else WEB_CLIENT)
    return app


# Each page of the browser client: its path and its HTML file in the web client folder.
PAGES = {"/": "index.html", "/apply": "apply.html", "/case": "case.html", "/desk": "desk.html",
         "/compliance": "compliance.html", "/room": "room.html"}


PUBLIC_FOLDERS = ("css", "dist", "img")


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
