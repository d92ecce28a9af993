"""The webhook dispatcher: the `webhook_deliveries` table is the queue.

Like the task engine it is a user of `app.jobs.loop.JobLoop`: each tick claims due pending rows
(`next_attempt_at <= now`, nobody's live claim; FOR UPDATE SKIP LOCKED on PostgreSQL) with this
dispatcher's id and a lease, renewed by a heartbeat while the POST runs, and sends them concurrently within
`webhook_concurrency`. It runs its own loop with its own bound, so a slow or dead endpoint never delays the
task engine. A 2xx marks the delivery delivered; anything else is retried with exponential backoff and
jitter until `webhook_max_age_hours` after the delivery was created. A stop hands unfinished sends back.
Each claim, attempt and release is committed here in a short transaction of its own (a job loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import now
from app.jobs import repository as claims
from app.jobs.loop import JobLoop, backoff
from app.webhooks import repository as repo
from app.webhooks import signing
from app.webhooks.models import DELIVERED, FAILED, PENDING, WebhookDelivery

if TYPE_CHECKING:
    from app.gateway import Gateway

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


DELIVERIES = claims.QueueTable(
    WebhookDelivery, due=WebhookDelivery.next_attempt_at, live=(WebhookDelivery.status == PENDING,)
)


# -- SQL
async def claim_due(
    session: AsyncSession,
    *,
    owner: str,
    limit: int,
    lease: float,
    skip_locked: bool,
    exclude: Collection[str] = (),
) -> list[_Job]:
    """Claim due pending deliveries that nobody holds (app.jobs.repository), with their endpoints' URL and secret."""
    rows = [
        row
        for row, _ in await claims.claim(
            session, DELIVERIES, owner=owner, limit=limit, lease=lease, skip_locked=skip_locked, exclude=exclude
        )
    ]
    if not rows:
        return []
    endpoints = {ep.id: ep for ep in await repo.endpoints_by_id(session, {r.endpoint_id for r in rows})}
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


async def _finish(
    session: AsyncSession, delivery_id: str, owner: str, *, attempted: bool = True, **values: Any
) -> None:
    # compare-and-set on pending and on the claim: a finished delivery, or one another worker holds now,
    # is never touched again
    await repo.finish_delivery(session, delivery_id, owner, attempted=attempted, **values)


def _short(exc: BaseException) -> str:
    # the exception text names the host at most; the URL's path/query (often a token) stays out of logs
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


class WebhookDispatcher:
    """The `webhook_deliveries` queue for a `JobLoop` of its own. Start it in the lifespan; several replicas
    may run one."""

    def __init__(self, gw: Gateway, *, base_backoff_s: float = 5.0, max_backoff_s: float = 3600.0) -> None:
        self.gw = gw
        self.settings = gw.settings
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.loop: JobLoop[_Job] = JobLoop(
            self,
            name="webhooks",
            concurrency=self.settings.webhook_concurrency,
            tick_s=self.settings.webhook_tick_ms / 1000,
            lease_s=self._lease(),
            # SQLite means one process: claims left by a killed predecessor can be taken back at once
            release_on_start=not gw.is_postgres,
            log=log,
            item="webhook delivery",
            items="webhook deliveries",
        )
        self.owner = self.loop.owner

    # -- lifecycle (the loop's)
    async def start(self) -> None:
        await self.loop.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Graceful: stop claiming, let sends in flight finish for `timeout`, then hand back what is left."""
        await self.loop.stop(timeout)

    def wake(self) -> None:
        self.loop.wake()

    async def run_once(self) -> int:
        return await self.loop.run_once()

    async def drain(self) -> None:
        await self.loop.drain()

    # -- the queue
    def key(self, job: _Job) -> str:
        return job.delivery_id

    async def claim(self, *, owner: str, limit: int, exclude: Collection[str]) -> list[_Job]:
        async with self.gw.sessionmaker() as s:
            jobs = await claim_due(
                s, owner=owner, limit=limit, lease=self._lease(), skip_locked=self.gw.is_postgres, exclude=exclude
            )
            await s.commit()
        return jobs

    async def renew(self, job: _Job, *, owner: str) -> bool:
        async with self.gw.sessionmaker() as s:
            held = await claims.renew(s, DELIVERIES, job.delivery_id, owner=owner, lease=self._lease())
            await s.commit()
        return held

    async def release(self, keys: Collection[str], *, owner: str) -> int:
        async with self.gw.sessionmaker() as s:
            released = await claims.release(s, DELIVERIES, keys, owner=owner)
            await s.commit()
        return released

    async def release_all(self) -> int:
        async with self.gw.sessionmaker() as s:
            released = await claims.release_all(s, DELIVERIES)
            await s.commit()
        return released

    async def handle(self, job: _Job) -> None:
        await self.deliver(job)

    async def retry(self, job: _Job, exc: Exception) -> None:
        # our own fault, not the endpoint's: not counted as an attempt
        async with self.gw.sessionmaker() as s:
            t = now()
            await _finish(s, job.delivery_id, self.owner, attempted=False, next_attempt_at=t + self._backoff(1))
            await s.commit()

    # -- one delivery
    async def deliver(self, job: _Job) -> None:
        if job.url is None:
            async with self.gw.sessionmaker() as s:
                await _finish(
                    s, job.delivery_id, self.owner, status=FAILED, next_attempt_at=None, last_error="endpoint disabled"
                )
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
            await _finish(s, job.delivery_id, self.owner, **values)
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
        return backoff(min(attempts - 1, 20), base=self.base_backoff_s, cap=self.max_backoff_s)
