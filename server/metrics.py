"""Prometheus metrics of one app, in a registry of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Event-loop lag: a stall of the signaling loop delays every room on the node.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mediation_http_requests", "HTTP requests by route and status", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mediation_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry,
        )
        self.errors = Counter(
            "mediation_errors", "Errors answered to clients, by kind", ["kind"], registry=self.registry,
        )
        self.rooms = Gauge(
            "mediation_rooms", "Rooms with a participant connected to this node", registry=self.registry,
        )
        self.participants = Gauge(
            "mediation_room_participants", "Participants joined to a room through this node", registry=self.registry,
        )
        self.recordings = Gauge(
            "mediation_recordings", "Recorder workers running on this node", registry=self.registry,
        )
        self.sealed_records = Counter(
            "mediation_sealed_records", "Records sealed and filed on cases, by kind", ["kind"],
            registry=self.registry,
        )
        self.sealed_bytes = Counter(
            "mediation_sealed_bytes", "Ciphertext bytes filed on cases, by kind", ["kind"], registry=self.registry,
        )
        self.chat_batches = Counter(
            "mediation_chat_batches", "Group commits of sealed chat (server/chatcommit.py); the messages in them "
            "are mediation_sealed_records{kind=\"chat_message\"}", registry=self.registry,
        )
        self.nodes_lost = Counter(
            "mediation_nodes_lost", "Other nodes found silent past their timeout or stopped, whose members this "
            "node marked disconnected", registry=self.registry,
        )
        self.participants_lost = Counter(
            "mediation_participants_lost", "Participants of lost nodes marked disconnected by this node",
            registry=self.registry,
        )
        self.audit_refusing = Gauge(
            "mediation_audit_checkpoint_refused", "1 while this node refuses to sign audit checkpoints because "
            "the log is not consistent with a signed one (the error log and /readyz say why)", registry=self.registry,
        )
        self.loop_lag = Gauge(
            "mediation_event_loop_lag_seconds", "Event-loop lag at the last sample", registry=self.registry,
        )
        self.loop_lag_histogram = Histogram(
            "mediation_event_loop_lag_sample_seconds", "Event-loop lag samples", buckets=LAG_BUCKETS,
            registry=self.registry,
        )

        # Abuse resistance: what each flood costs is refused or counted, never logged line by line.
        self.refusals = Counter(
            "mediation_refusals", "Anonymous floods refused before any work: password hashing busy, socket "
            "sessions, handshakes and polls over an address's budget", ["reason"], registry=self.registry,
        )
        self.malformed_frames = Counter(
            "mediation_malformed_frames", "Socket frames that did not decode; each closes its session",
            registry=self.registry,
        )
        self.transport_errors = Counter(
            "mediation_socket_transport_errors", "Errors engine.io and socket.io reported about a client's bytes",
            registry=self.registry,
        )
        self.log_dropped = Gauge(
            "mediation_log_records_dropped", "Log records this process dropped over MEDIATION_LOG_BYTES_PER_MINUTE "
            "since it started", registry=self.registry,
        )

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def observe_log(self, dropped: Callable[[], int]) -> None:
        self.log_dropped.set_function(dropped)

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def measure(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
            started = time.perf_counter()
            response = await handler(request)
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            self.latency.labels(request.method, route).observe(time.perf_counter() - started)
            self.requests.labels(request.method, route, str(response.status)).inc()
            if response.status >= 400:
                self.errors.labels("http_%d" % response.status).inc()
            return response

        return measure

    def room_error(self, code: str) -> None:
        """A room request refused with ``code`` (see docs/protocol.md)."""
        self.errors.labels(f"room_{code}").inc()

    def node_lost(self, participants: int) -> None:
        self.nodes_lost.inc()
        self.participants_lost.inc(participants)

    def audit_refused(self, refusing: bool) -> None:
        self.audit_refusing.set(1 if refusing else 0)

    def record_sealed(self, kind: str, size: int) -> None:
        self.sealed_records.labels(kind).inc()
        self.sealed_bytes.labels(kind).inc(size)

    def observe_rooms(self, census: Callable[[], tuple[int, int]], recordings: Callable[[], int]) -> None:
        """Read room, participant and recording counts from their owners at each scrape."""
        self.rooms.set_function(lambda: census()[0])
        self.participants.set_function(lambda: census()[1])
        self.recordings.set_function(recordings)

    async def sample_loop_lag(self, interval: float = 0.5) -> None:
        """Runs for the app's life: how late a timer of ``interval`` fires is the loop's lag."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            lag = max(0.0, loop.time() - started - interval)
            self.loop_lag.set(lag)
            self.loop_lag_histogram.observe(lag)
