"""The writers' half: what a transaction invalidated goes out on the chosen channel.

`open_publisher` is called wherever an engine is built for writing (app.gateway for `serve` and `worker`,
app.cli.database for the CLI) and attaches the publisher to that engine's sessions (app.readcache's
session events call it); `close_publisher` detaches it and sends what is still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from app.config import Settings
from app.invalidation import CHANNEL, channel_for, encode, new_sender, redis_channel
from app.invalidation import repository as repo
from app.readcache import Invalidation, attach_publisher, detach_publisher

log = logging.getLogger("vidgate.invalidation")

RETRY_MAX_S = 5.0
CLOSE_TIMEOUT_S = 2.0


class PostgresPublisher:
    """NOTIFY on the transaction's own connection, just before its commit: delivered with the commit."""

    kind = "postgres"

    def __init__(self, sender: str) -> None:
        self.sender = sender

    def in_transaction(self, session: Session, inv: Invalidation) -> None:
        for payload in encode(inv, self.sender):
            repo.notify(session, CHANNEL, payload)

    def after_commit(self, inv: Invalidation) -> None:
        """Nothing left to do: the NOTIFY went out with the commit."""

    async def aclose(self) -> None:
        """Nothing held: the notifications use the writers' own connections."""


class RedisPublisher:
    """PUBLISH after the commit, from a background task: commits never wait for Redis, what piles up while
    it is unreachable is coalesced (app.readcache.Invalidation.merge) and sent once it answers again."""

    kind = "redis"

    def __init__(self, url: str, sender: str) -> None:
        self.sender = sender
        self.channel = redis_channel(url)
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=CLOSE_TIMEOUT_S, socket_connect_timeout=CLOSE_TIMEOUT_S, retry=Retry(NoBackoff(), 1)
        )
        self._pending = Invalidation()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def in_transaction(self, session: Session, inv: Invalidation) -> None:
        """Nothing yet: Redis hears of a transaction only once it has committed (`after_commit`)."""

    def after_commit(self, inv: Invalidation) -> None:
        # a session event, run on the event loop's thread (inside SQLAlchemy's greenlet)
        self._pending.merge(inv)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="vidgate-invalidation-publish")
        self._wake.set()

    async def _send(self, inv: Invalidation) -> None:
        for payload in encode(inv, self.sender):
            await self._redis.publish(self.channel, payload)

    async def _run(self) -> None:
        delay = 0.1
        # the flag, not only the cancellation, ends the loop: redis-py may swallow a CancelledError that
        # arrives during a command (seen: the publish returned, and the loop waited for ever)
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if self._pending.empty:
                continue
            batch, self._pending = self._pending, Invalidation()
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                self._pending.merge(batch)  # aclose sends it
                raise
            except (RedisError, OSError) as exc:
                self._pending.merge(batch)
                if self._closing:
                    return  # aclose sends what is left
                log.warning("read cache: cannot publish an invalidation to Redis (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                self._wake.set()
            else:
                delay = 0.1

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        left, self._pending = self._pending, Invalidation()
        if not left.empty:
            try:
                await asyncio.wait_for(self._send(left), CLOSE_TIMEOUT_S)
            except (RedisError, OSError, TimeoutError) as exc:
                log.error(
                    "read cache: an invalidation could not be published to Redis (%s): other processes may "
                    "answer from their caches for up to VIDGATE_READ_CACHE_NOTIFIED_TTL_MS",
                    exc,
                )
        await self._redis.aclose()


Publisher = PostgresPublisher | RedisPublisher


def open_publisher(settings: Settings, engine: AsyncEngine, *, sender: str | None = None) -> Publisher | None:
    """The publisher for `settings`' channel, attached to `engine`'s sessions; None without a channel."""
    kind = channel_for(settings)
    sender = sender or new_sender()
    publisher: Publisher
    if kind == "postgres":
        publisher = PostgresPublisher(sender)
    elif kind == "redis":
        assert settings.redis_url is not None
        publisher = RedisPublisher(settings.redis_url, sender)
    else:
        return None
    attach_publisher(engine.sync_engine, publisher)
    return publisher


async def close_publisher(engine: AsyncEngine, publisher: Publisher | None) -> None:
    if publisher is None:
        return
    detach_publisher(engine.sync_engine)
    await publisher.aclose()
