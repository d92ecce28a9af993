"""Prometheus metrics: one `CollectorRegistry` per app, so several apps (tests) share a process safely.

Labels stay bounded: routes are templates (`/v1/videos/{video_id}`), methods a fixed set, and the
task gauge is recomputed from the `videos` table at scrape time rather than kept in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.providers.base import VideoStatus
from app.videos import repository as videos_repo

log = logging.getLogger("vidgate.metrics")

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUSES = tuple(s.value for s in VideoStatus)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
MAX_LABEL = 64


def _label(value: object) -> str:
    # vendor codes come from the outside: keep a runaway value from becoming a huge series name
    return str(value)[:MAX_LABEL] if value is not None else "unknown"


class Metrics:
    """The gateway's instruments, registered on a registry of their own."""

    def __init__(self, *, enabled: bool = True, process_collectors: bool = True) -> None:
        self.enabled = enabled  # False: instruments still count (callers need no checks), nothing is served
        self.registry = CollectorRegistry(auto_describe=True)
        if process_collectors:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        r = self.registry
        self.http_requests = Counter(
            "vidgate_http_requests", "HTTP requests handled.", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "vidgate_http_request_duration_seconds",
            "Time to handle an HTTP request, streamed body included.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.tasks = Gauge(
            "vidgate_tasks", "Video tasks in the database (not deleted).", ["provider", "status"], registry=r
        )
        self.task_transitions = Counter(
            "vidgate_task_transitions", "Video task status changes.", ["provider", "status"], registry=r
        )
        self.poll_lag_seconds = Histogram(
            "vidgate_poll_lag_seconds", "How late a due poll ran.", buckets=LAG_BUCKETS, registry=r
        )
        self.vendor_errors = Counter(
            "vidgate_vendor_errors", "Errors returned by vendors.", ["provider", "code"], registry=r
        )
        self.webhook_deliveries = Counter(
            "vidgate_webhook_deliveries", "Client webhook delivery attempts.", ["outcome"], registry=r
        )
        self._providers_seen: set[str] = set()

    # -- what the engine and the webhook sender call
    def task_transition(self, provider: str, status: str) -> None:
        self.task_transitions.labels(_label(provider), _label(status)).inc()

    def poll_lag(self, seconds: float) -> None:
        self.poll_lag_seconds.observe(max(0.0, seconds))

    def vendor_error(self, provider: str, code: str | None) -> None:
        self.vendor_errors.labels(_label(provider), _label(code)).inc()

    def webhook_delivery(self, outcome: str) -> None:
        self.webhook_deliveries.labels(_label(outcome)).inc()

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    # -- scrape
    async def refresh_tasks(self, sessionmaker: async_sessionmaker[AsyncSession], *, timeout: float = 5.0) -> bool:
        """Recount tasks per provider and status. On a database error the gauge is emptied, not left stale."""
        try:
            async with sessionmaker() as s:
                rows = await asyncio.wait_for(videos_repo.count_by_provider_status(s), timeout)
        except Exception as exc:
            log.warning("could not count tasks for /metrics: %r", exc)
            self.tasks.clear()
            return False
        # no await below: a concurrent scrape never sees a half-filled gauge
        self._providers_seen.update(provider for provider, _, _ in rows)
        self.tasks.clear()
        for provider in self._providers_seen:
            for status in STATUSES:
                self.tasks.labels(provider, status).set(0)
        for provider, status, count in rows:
            self.tasks.labels(provider, status).set(count)
        return True

    def render(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def route_label(scope: Scope) -> str:
    """The matched route's template; Starlette's router leaves the route in the (shared) scope."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED


class MetricsMiddleware:
    """Counts and times every HTTP request, until the last body chunk of a streamed response."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers when the app sends nothing

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            status = 500
            raise
        finally:
            self.metrics.http_request(scope["method"], route_label(scope), status, time.perf_counter() - start)
