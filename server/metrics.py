"""Prometheus metrics of one app, in a registry of its own."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram


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
