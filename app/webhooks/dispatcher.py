"""The webhook dispatcher: the `webhook_deliveries` table is the queue.

Like the task engine, each tick claims due pending rows (`next_attempt_at <= now`; FOR UPDATE SKIP LOCKED
on PostgreSQL), pushing `next_attempt_at` out by a lease so no other worker sends them, then POSTs them
concurrently within `webhook_concurrency`. It runs its own loop with its own bound, so a slow or dead
endpoint never delays the task engine. A 2xx marks the delivery delivered; anything else is retried with
exponential backoff and jitter until `webhook_max_age_hours` after the delivery was created.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import now
from app.webhooks import signing
from app.webhooks.models import DELIVERED, FAILED, PENDING, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from app.context import Gateway

log = logging.getLogger("vidgate.webhooks")

USER_AGENT = "vidgate-webhooks/0.1"


@dataclass(frozen=True)
class _Job:
    delivery_id: str
    endpoint_id: str
    event_id: str
    payload: bytes = field(repr=False)
    created_at: float
    attempts: int  # before this attempt
    url: str | None = field(repr=False)  # None: the endpoint is gone or disabled
    secret: str = field(repr=False)


# -- SQL
async def claim_due(session: AsyncSession, *, limit: int, lease: float, skip_locked: bool) -> list[_Job]:
    """Claim due pending deliveries in one UPDATE … RETURNING, so two workers never hold the same row
    (PostgreSQL: the subquery's SKIP LOCKED; SQLite: the statement takes the write lock)."""
    t = now()
    due = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= t)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    rows = (
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due.scalar_subquery()), WebhookDelivery.status == PENDING)
            .values(next_attempt_at=t + lease, claimed_until=t + lease)
            .returning(
                WebhookDelivery.id,
                WebhookDelivery.endpoint_id,
                WebhookDelivery.event_id,
                WebhookDelivery.payload,
                WebhookDelivery.created_at,
                WebhookDelivery.attempts,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not rows:
        return []
    endpoints = {
        ep.id: ep
        for ep in await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_({r.endpoint_id for r in rows}))
        )
    }
    jobs = []
    for r in rows:
        ep = endpoints.get(r.endpoint_id)
        url, secret = (ep.url, ep.secret) if ep is not None and ep.enabled else (None, "")
        jobs.append(
            _Job(
                delivery_id=r.id,
                endpoint_id=r.endpoint_id,
                event_id=r.event_id,
                payload=r.payload.encode(),
                created_at=r.created_at,
                attempts=r.attempts,
                url=url,
                secret=secret,
            )
        )
    return jobs


async def release_all_claims(session: AsyncSession) -> int:
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == PENDING, WebhookDelivery.claimed_until.is_not(None))
        .values(claimed_until=None, next_attempt_at=now())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _finish(session: AsyncSession, delivery_id: str, **values: Any) -> None:
    # compare-and-set on pending: a finished delivery is never touched again
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING)
        .values(attempts=WebhookDelivery.attempts + 1, claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )


def _short(exc: BaseException) -> str:
    # the exception text names the host at most; the URL's path/query (often a token) stays out of logs
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


class WebhookDispatcher:
    """Sends queued webhook deliveries from its own loop. Start it in the lifespan; several replicas may run one."""

    def __init__(self, gw: Gateway, *, base_backoff_s: float = 5.0, max_backoff_s: float = 3600.0) -> None:
        self.gw = gw
        self.settings = gw.settings
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # -- lifecycle
    async def start(self) -> None:
        if not self.gw.is_postgres:
            # SQLite means one process: claims left by a killed predecessor can be taken back at once
            async with self.gw.sessionmaker() as s:
                released = await release_all_claims(s)
                await s.commit()
            if released:
                log.info("resumed %d webhook deliveries claimed before a restart", released)
        self._loop_task = asyncio.create_task(self._run(), name="vidgate-webhooks")

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._loop_task, timeout)
        if self._inflight:
            # an unfinished send keeps its claim and is retried when the lease runs out
            _, pending = await asyncio.wait(self._inflight, timeout=timeout)
            for t in pending:
                t.cancel()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        tick = self.settings.webhook_tick_ms / 1000
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("webhook tick failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)

    async def run_once(self) -> int:
        """Claim what is due (up to the free slots) and start sending it; returns how many were claimed."""
        free = self.settings.webhook_concurrency - len(self._inflight)
        if free <= 0:
            return 0
        async with self.gw.sessionmaker() as s:
            jobs = await claim_due(s, limit=free, lease=self._lease(), skip_locked=self.gw.is_postgres)
            await s.commit()
        for job in jobs:
            task = asyncio.create_task(self._guarded(job), name=f"webhook-{job.delivery_id}")
            self._inflight.add(task)
            task.add_done_callback(self._done)
        return len(jobs)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # a slot is free

    async def drain(self) -> None:
        """Wait for the sends in flight (tests and graceful shutdown)."""
        while self._inflight:
            await asyncio.wait(set(self._inflight))

    # -- one delivery
    async def _guarded(self, job: _Job) -> None:
        try:
            await self.deliver(job)
        except Exception:
            # the claim lapses and the row is retried after the lease
            log.exception("webhook delivery %s: unexpected error", job.delivery_id)

    async def deliver(self, job: _Job) -> None:
        if job.url is None:
            async with self.gw.sessionmaker() as s:
                await _finish(s, job.delivery_id, status=FAILED, next_attempt_at=None, last_error="endpoint disabled")
                await s.commit()
            return
        code, error = await self._post(job)
        t = now()
        attempt = job.attempts + 1
        if code is not None and 200 <= code < 300:
            values: dict[str, Any] = {
                "status": DELIVERED,
                "delivered_at": t,
                "next_attempt_at": None,
                "last_status_code": code,
                "last_error": None,
            }
            log.info("webhook %s (event %s) delivered on attempt %d", job.delivery_id, job.event_id, attempt)
        else:
            deadline = job.created_at + self.settings.webhook_max_age_hours * 3600
            values = {"last_status_code": code, "last_error": error}
            if t >= deadline:
                values.update(status=FAILED, next_attempt_at=None)
                log.warning(
                    "webhook %s to endpoint %s failed for good after %d attempts: %s",
                    job.delivery_id,
                    job.endpoint_id,
                    attempt,
                    error,
                )
            else:
                # one last try at the deadline rather than giving up early
                values["next_attempt_at"] = min(t + self._backoff(attempt), deadline)
                log.info(
                    "webhook %s to endpoint %s attempt %d failed (%s); retrying",
                    job.delivery_id,
                    job.endpoint_id,
                    attempt,
                    error,
                )
        async with self.gw.sessionmaker() as s:
            await _finish(s, job.delivery_id, **values)
            await s.commit()
        outcome = "delivered" if values.get("status") == DELIVERED else values.get("status") or "retrying"
        self.gw.metrics.webhook_delivery("failed" if outcome == FAILED else str(outcome))

    async def _post(self, job: _Job) -> tuple[int | None, str | None]:
        """POST once; (status code, error text). The response body is never read."""
        assert job.url is not None
        # signed per attempt: receivers reject timestamps older than a few minutes
        headers = signing.signed_headers(job.secret, msg_id=job.event_id, timestamp=int(now()), body=job.payload)
        headers.update({"content-type": "application/json", "user-agent": USER_AGENT})
        timeout = self.settings.webhook_timeout_s
        try:
            async with asyncio.timeout(timeout):
                async with self.gw.http.stream(
                    "POST", job.url, content=job.payload, headers=headers, timeout=timeout, follow_redirects=False
                ) as r:
                    code = r.status_code
        except TimeoutError:
            return None, f"timed out after {timeout:g}s"
        except httpx.HTTPError as exc:
            return None, _short(exc)
        except Exception as exc:  # TLS, protocol and URL errors still count as a failed attempt
            log.warning("webhook %s: unexpected send error %s", job.delivery_id, type(exc).__name__)
            return None, _short(exc)
        return code, None if 200 <= code < 300 else f"HTTP {code}"

    def _lease(self) -> float:
        return self.settings.webhook_timeout_s * 2 + 30

    def _backoff(self, attempts: int) -> float:
        delay = min(self.max_backoff_s, self.base_backoff_s * (2 ** min(attempts - 1, 20)))
        return delay * random.uniform(0.8, 1.2)
