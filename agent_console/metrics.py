"""Prometheus metrics of one hub app (own registry, so several apps can live in one process)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HubMetrics:
    def __init__(self, open_calls: Callable[[], float]):
        self.registry = CollectorRegistry()
        self.events_ingested = Counter("hotline_hub_events_ingested", "Call events stored, by type",
                                       ["type"], registry=self.registry)
        self.events_duplicate = Counter("hotline_hub_events_duplicate",
                                        "Call events ignored because their event_id was already stored",
                                        registry=self.registry)
        self.calls_open = Gauge("hotline_hub_calls_open", "Calls offered or answered and not yet ended",
                                registry=self.registry)
        self.calls_open.set_function(open_calls)
        self.http_requests = Counter("hotline_hub_http_requests", "HTTP requests served",
                                     ["method", "route", "status"], registry=self.registry)
        self.http_duration = Histogram("hotline_hub_http_request_duration_seconds",
                                       "Time to serve an HTTP request", ["method", "route"],
                                       registry=self.registry)


#: methods the hub serves; any other becomes the label "other" (a client's made-up methods must not grow the registry)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts requests by method, route template (not raw path) and status."""

    def __init__(self, app: Any, metrics: HubMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            method = method if method in KNOWN_METHODS else "other"
            self.metrics.http_requests.labels(method=method, route=path, status=str(status_code)).inc()
            elapsed = time.perf_counter() - started
            self.metrics.http_duration.labels(method=method, route=path).observe(elapsed)
