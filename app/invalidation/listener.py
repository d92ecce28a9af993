"""The readers' half: one subscription per process with a cache, applied to that cache.

`Listener` keeps a subscription alive: connect, confirm, mark the cache notified (long TTL), wait until
the subscription is lost (the connection closes, or a ping goes unanswered), mark it not notified (the
cache is emptied, short TTL), and connect again with backoff. Each connect and loss is logged once.

The subscription's connection carries a name (PostgreSQL `application_name`, Redis `CLIENT SETNAME`)
`vidgate-read-cache:<sender>`, so an operator (or a test) can find it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.invalidation import CHANNEL, Kind, channel_for, decode, redis_channel
from app.invalidation import repository as repo
from app.readcache import ReadCache, apply

log = logging.getLogger("vidgate.invalidation")

CONNECT_TIMEOUT_S = 5.0
PING_EVERY_S = 5.0  # a silent connection (a network partition) is noticed within PING_EVERY_S + PING_TIMEOUT_S
PING_TIMEOUT_S = 3.0
RETRY_MIN_S = 0.1
RETRY_MAX_S = 10.0

OnMessage = Callable[[str], None]


def connection_name(sender: str) -> str:
    return f"vidgate-read-cache:{sender}"


class Subscription(Protocol):
    async def wait_lost(self) -> None:
        """Return (or raise) once notifications may be missed."""

    async def close(self) -> None: ...


Connect = Callable[[OnMessage], Awaitable[Subscription]]


class Listener:
    def __init__(self, cache: ReadCache, *, kind: Kind, sender: str, connect: Connect) -> None:
        self.cache = cache
        self.kind = kind
        self.sender = sender
        self.connect = connect
        self._task: asyncio.Task[None] | None = None
        cache.channel = kind

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="vidgate-invalidation-listen")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def on_message(self, payload: str) -> None:
        sender, inv = decode(payload)
        if sender == self.sender:
            return  # this process's sessions applied it already
        self.cache.notifications += 1
        apply(self.cache, inv)

    async def _run(self) -> None:
        delay = RETRY_MIN_S
        failing = False
        while True:
            try:
                sub = await asyncio.wait_for(self.connect(self.on_message), CONNECT_TIMEOUT_S)
            except Exception as exc:
                (log.debug if failing else log.warning)(
                    "read cache: cannot subscribe to %s invalidations (%s: %s); entries trusted for %d ms, retrying",
                    self.kind,
                    type(exc).__name__,
                    exc,
                    self.cache.short_ttl * 1000,
                )
                failing = True
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            failing, delay = False, RETRY_MIN_S
            self.cache.set_notified(True)
            log.info(
                "read cache: subscribed to %s invalidations; entries trusted for %d ms",
                self.kind,
                self.cache.notified_ttl * 1000,
            )
            reason = "connection closed"
            try:
                await sub.wait_lost()
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self.cache.set_notified(False)  # on shutdown too: nothing more will arrive
                with contextlib.suppress(Exception):
                    await sub.close()
            log.warning(
                "read cache: lost the %s invalidation channel (%s): cache emptied, entries trusted for %d ms "
                "until resubscribed",
                self.kind,
                reason,
                self.cache.short_ttl * 1000,
            )


class PostgresSubscription:
    """LISTEN on a dedicated asyncpg connection (never a pooled one: the pool recycles and pings them)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: self.lost.set())

    @classmethod
    async def open(cls, connect_args: dict[str, Any], sender: str, on_message: OnMessage) -> PostgresSubscription:
        settings = {**connect_args.pop("server_settings", {}), "application_name": connection_name(sender)}
        conn = await asyncpg.connect(**connect_args, server_settings=settings, timeout=CONNECT_TIMEOUT_S)
        sub = cls(conn)
        try:
            await repo.listen(conn, CHANNEL, lambda _conn, _pid, _channel, payload: on_message(payload))
        except BaseException:
            await sub.close()
            raise
        return sub

    async def wait_lost(self) -> None:
        while not self.conn.is_closed():
            try:
                await asyncio.wait_for(self.lost.wait(), PING_EVERY_S)
                return
            except TimeoutError:
                await asyncio.wait_for(repo.ping(self.conn), PING_TIMEOUT_S)

    async def close(self) -> None:
        if not self.conn.is_closed():
            self.conn.terminate()


class RedisSubscription:
    """SUBSCRIBE on a connection of its own. redis-py would reconnect and resubscribe behind our back
    (missing what was published meanwhile): any reconnect of this connection counts as a loss."""

    def __init__(self, client: aioredis.Redis, pubsub: Any, on_message: OnMessage) -> None:
        self.client = client
        self.pubsub = pubsub
        self.on_message = on_message
        self.reconnected = False

    @classmethod
    async def open(cls, url: str, sender: str, on_message: OnMessage) -> RedisSubscription:
        client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            client_name=connection_name(sender),
            retry=Retry(NoBackoff(), 0),
        )
        pubsub = client.pubsub()
        sub = cls(client, pubsub, on_message)
        try:
            await pubsub.subscribe(redis_channel(url))
            deadline = time.monotonic() + CONNECT_TIMEOUT_S
            while True:  # the server's confirmation: from here on every PUBLISH reaches us
                msg = await pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                if msg is not None and msg["type"] == "subscribe":
                    break
                if time.monotonic() >= deadline:
                    raise TimeoutError("no SUBSCRIBE confirmation from Redis")
            assert pubsub.connection is not None
            pubsub.connection.register_connect_callback(sub._on_reconnect)
        except BaseException:
            await sub.close()
            raise
        return sub

    def _on_reconnect(self, _conn: Any) -> None:
        self.reconnected = True

    async def wait_lost(self) -> None:
        heard = next_ping = time.monotonic()
        while not self.reconnected:
            msg = await self.pubsub.get_message(timeout=0.5)
            t = time.monotonic()
            if msg is not None:
                heard = t
                if msg["type"] == "message":
                    data = msg["data"]
                    self.on_message(data.decode() if isinstance(data, bytes) else str(data))
            if t - heard > PING_EVERY_S + PING_TIMEOUT_S:
                raise TimeoutError("Redis did not answer a ping")
            if t >= next_ping:
                await self.pubsub.ping()
                next_ping = t + PING_EVERY_S

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        await self.client.aclose()


def start_listener(cache: ReadCache, settings: Settings, engine: AsyncEngine, *, sender: str) -> Listener | None:
    """A running listener on `settings`' channel (the database of `engine`, or Redis); None without a
    channel or when the cache is off."""
    kind = channel_for(settings)
    if kind is None or not cache.enabled:
        return None
    connect: Connect
    if kind == "postgres":
        _, connect_args = engine.sync_engine.dialect.create_connect_args(engine.url)

        async def connect(on_message: OnMessage) -> Subscription:
            return await PostgresSubscription.open(dict(connect_args), sender, on_message)
    else:
        assert settings.redis_url is not None
        url = settings.redis_url

        async def connect(on_message: OnMessage) -> Subscription:
            return await RedisSubscription.open(url, sender, on_message)

    listener = Listener(cache, kind=kind, sender=sender, connect=connect)
    listener.start()
    return listener
