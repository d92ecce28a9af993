"""The status-read cache (app.readcache) across processes and replicas, measured.

* the CLI in another process (`vidgate keys revoke / update --disabled / rotate`): the key is refused
  within 1 s on a server whose cache held it;
* two gateways sharing one database (PostgreSQL in CI's second run, where replicas are a deployment; the
  same on a SQLite file): a revocation, a deletion, an engine's status change made by one is seen by the
  other within 1 s, and by the writer itself at once;
* the real engine in another gateway (as `vidgate worker` would be): its completion is visible within 1 s;
* a lost invalidation channel: the cache falls back to the short TTL at once and resubscribes by itself.

Each runs under every coherence mechanism (the `coherence` fixture): `ttl`, no channel (the default TTL,
500 ms: bounded staleness); `postgres`, LISTEN/NOTIFY (PostgreSQL runs only: CI's second run); `redis`,
pub/sub (the Redis at VIDGATE_TEST_REDIS_URL, required in CI). With a channel the entries are trusted for
60 s, so only a notification can explain an answer that changes within 1 s. Each check polls every 20 ms
from the moment the write has committed (the CLI has exited) and measures how long the old answer was
still given."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.invalidation.listener import connection_name
from app.keys import service as keys
from app.main import create_app
from app.videos import repository as repo
from app.videos.models import Video
from tests.conftest import PG_URL, make_settings

BOUND_S = 1.0  # the bound for other processes and replicas
ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("VIDGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
NOTIFIED = {"read_cache_notified_ttl_ms": 60_000}  # far beyond the bound: only a notification is in time


async def _redis_reachable() -> str | None:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0)
    try:
        await client.ping()
        return None
    except (RedisError, OSError) as exc:
        return f"Redis not reachable at {REDIS_URL} ({exc}); set VIDGATE_TEST_REDIS_URL"
    finally:
        await client.aclose()


# the mechanisms this run can test: LISTEN/NOTIFY is PostgreSQL's, so it exists in the PostgreSQL run only
# (CI's second run) rather than being skipped in the SQLite one; Redis is required in CI
CHANNELS = ["postgres", "redis"] if PG_URL else ["redis"]


async def _settings_for(mode: str) -> dict[str, Any]:
    """The gateways' settings for one mechanism (the CLI gets them through its environment)."""
    if mode == "ttl":
        return {"read_cache_notify": "off"}
    if mode == "postgres":
        return {"read_cache_notify": "postgres", **NOTIFIED}
    problem = await _redis_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem} — CI must run the Redis invalidation tests")
        pytest.skip(problem)
    return {"read_cache_notify": "redis", "redis_url": REDIS_URL, **NOTIFIED}


@pytest.fixture(params=["ttl", *CHANNELS])
async def coherence(request: pytest.FixtureRequest) -> dict[str, Any]:
    return await _settings_for(request.param)


@pytest.fixture(params=CHANNELS)
async def channel(request: pytest.FixtureRequest) -> dict[str, Any]:
    """As `coherence`, for the mechanisms that have a channel to lose."""
    return await _settings_for(request.param)


def _sample(body: str, name: str) -> float:
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", body, re.M)
    assert m, name
    return float(m[1])


async def subscribed(c: httpx.AsyncClient) -> bool:
    """What /metrics says of the invalidation channel."""
    return _sample((await c.get("/metrics")).text, "vidgate_read_cache_notify_connected") == 1


async def losses(c: httpx.AsyncClient) -> float:
    return _sample((await c.get("/metrics")).text, "vidgate_read_cache_notify_losses_total")


async def eventually(check: Callable[[], Any], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def gateway(url: str, storage: Path, **overrides: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    values: dict[str, Any] = {"run_engine": False, "log_level": "WARNING", "sandbox_latency_ms": 0}
    values.update(overrides)
    app = create_app(make_settings(url, storage, **values))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            if values.get("read_cache_notify") != "off":
                await eventually(lambda: subscribed(c), "the invalidation channel was never subscribed")
            yield app, c


async def make_key(app: Any, name: str = "k") -> tuple[str, dict[str, str]]:
    async with app.state.gateway.sessionmaker() as s:
        key, secret = await keys.create_key(s, name=name)
        await s.commit()
    return key.id, {"Authorization": f"Bearer {secret}"}


async def make_video(c: httpx.AsyncClient, auth: dict[str, str], **metadata: Any) -> str:
    body = {"prompt": "coherent", "seconds": "1", "size": "64x64", "metadata": metadata}
    r = await c.post("/v1/videos", headers=auth, json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def warm(c: httpx.AsyncClient, path: str, auth: dict[str, str]) -> None:
    for _ in range(3):
        assert (await c.get(path, headers=auth)).status_code == 200


async def seen_within(
    c: httpx.AsyncClient, path: str, auth: dict[str, str], done: Callable[[httpx.Response], bool]
) -> float:
    """Seconds until `done(answer)`, polling every 20 ms (fails after 5 s)."""
    start = time.monotonic()
    while True:
        r = await c.get(path, headers=auth)
        if done(r):
            return time.monotonic() - start
        assert time.monotonic() - start < 5, r.text
        await asyncio.sleep(0.02)


def cli(url: str, coherence: dict[str, Any], *args: str) -> None:
    env = {**os.environ, "VIDGATE_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    env["VIDGATE_READ_CACHE_NOTIFY"] = coherence["read_cache_notify"]
    if "redis_url" in coherence:
        env["VIDGATE_REDIS_URL"] = coherence["redis_url"]
    r = subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def status(code: int) -> Callable[[httpx.Response], bool]:
    return lambda r: r.status_code == code


async def test_the_cli_in_another_process(own_database, tmp_path, coherence) -> None:
    async with gateway(own_database, tmp_path / "data", **coherence) as (app, c):
        for args in (["keys", "revoke"], ["keys", "update", "--disabled"], ["keys", "rotate"]):
            key_id, auth = await make_key(app, name=f"cli-{args[1]}")
            path = f"/v1/videos/{await make_video(c, auth)}"
            await warm(c, path, auth)
            await asyncio.to_thread(cli, own_database, coherence, *args, key_id)
            lag = await seen_within(c, path, auth, status(401))
            assert lag <= BOUND_S, (args, lag)


async def test_two_replicas(own_database, tmp_path, coherence) -> None:
    storage = tmp_path / "shared"
    async with (
        gateway(own_database, storage, **coherence) as (a, ca),
        gateway(own_database, storage, **coherence) as (
            b,
            cb,
        ),
    ):
        # a revocation made through replica A
        key_id, auth = await make_key(a)
        path = f"/v1/videos/{await make_video(ca, auth)}"
        await warm(ca, path, auth)
        await warm(cb, path, auth)
        async with a.state.gateway.sessionmaker() as s:
            assert await keys.revoke_key(s, key_id) == 1
            await s.commit()
        assert (await ca.get(path, headers=auth)).status_code == 401  # at once where it was made
        assert await seen_within(cb, path, auth, status(401)) <= BOUND_S

        # a deletion through replica A's API
        _, auth = await make_key(a, name="d")
        vid = await make_video(ca, auth, sandbox_fail="done")  # fails at once: deletable
        path = f"/v1/videos/{vid}"
        async with a.state.gateway.sessionmaker() as s:  # as the engine finishes it (none runs here)
            assert await repo.update_active(s, vid, status="failed", error_code="done")
            await s.commit()
        await warm(ca, path, auth)
        await warm(cb, path, auth)
        assert (await ca.delete(path, headers=auth)).status_code == 200
        assert (await ca.get(path, headers=auth)).status_code == 404
        assert await seen_within(cb, path, auth, status(404)) <= BOUND_S

        # a status and progress change written by replica A's sessions (its engine's way of writing)
        vid = await make_video(ca, auth, sandbox_latency_ms=600_000)
        path = f"/v1/videos/{vid}"
        await warm(ca, path, auth)
        await warm(cb, path, auth)
        async with a.state.gateway.sessionmaker() as s:
            assert await repo.update_active(s, vid, status="in_progress", progress=42)
            await s.commit()
        assert (await ca.get(path, headers=auth)).json()["progress"] == 42
        assert await seen_within(cb, path, auth, lambda r: r.json()["progress"] == 42) <= BOUND_S


async def test_the_engine_of_another_gateway(own_database, tmp_path, coherence) -> None:
    """Replica W runs the engine (a `vidgate worker`, in effect), R only serves: W's completion shows on R
    within 1 s of its commit."""
    storage = tmp_path / "shared"
    fast = {"run_engine": True, "engine_tick_ms": 20, "poll_interval_ms": 50, "poll_max_interval_ms": 100}
    fast.update(coherence)
    async with (
        gateway(own_database, storage, **coherence) as (r_app, cr),
        gateway(own_database, storage, **fast) as (
            _,
            _cw,
        ),
    ):
        _, auth = await make_key(r_app)
        vid = await make_video(cr, auth, sandbox_latency_ms=800)
        path = f"/v1/videos/{vid}"
        seen_at = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            body = (await cr.get(path, headers=auth)).json()
            if body["status"] == "completed":
                seen_at = time.time()
                break
            await asyncio.sleep(0.02)
        assert seen_at is not None
        async with r_app.state.gateway.sessionmaker() as s:
            done_at = (await s.scalar(select(Video.updated_at).where(Video.id == vid))) or 0.0
        assert seen_at - done_at <= BOUND_S, seen_at - done_at


async def _kill_subscription(app: Any, url: str, coherence: dict[str, Any]) -> None:
    """Close `app`'s subscription connection from the server's side (as a restart or a network cut would)."""
    name = connection_name(app.state.gateway.publisher.sender)
    if coherence["read_cache_notify"] == "postgres":
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"
            assert (await conn.execute(text(sql), {"name": name})).scalars().all() == [True]
        await engine.dispose()
        return
    client = aioredis.Redis.from_url(coherence["redis_url"])
    try:
        ids = [c["id"] for c in await client.client_list() if c.get("name") == name]
        assert len(ids) == 1, ids
        assert await client.client_kill_filter(_id=ids[0]) == 1
    finally:
        await client.aclose()


async def test_a_lost_channel_falls_back_to_the_short_ttl_and_resubscribes(own_database, tmp_path, channel) -> None:
    coherence = channel
    storage = tmp_path / "shared"
    async with (
        gateway(own_database, storage, **coherence) as (a, ca),
        gateway(own_database, storage, **coherence) as (
            b,
            cb,
        ),
    ):
        _, auth = await make_key(a)
        vid = await make_video(ca, auth, sandbox_latency_ms=600_000)
        path = f"/v1/videos/{vid}"
        progress = iter(range(10, 100, 10))

        async def change_through_a() -> int:
            value = next(progress)
            async with a.state.gateway.sessionmaker() as s:
                assert await repo.update_active(s, vid, status="in_progress", progress=value)
                await s.commit()
            return value

        async def b_sees(value: int) -> float:
            return await seen_within(cb, path, auth, lambda r: r.json()["progress"] == value)

        # killed: B notices, empties its cache and subscribes again by itself
        await warm(cb, path, auth)
        await _kill_subscription(b, own_database, coherence)
        await eventually(lambda: _lost_once(cb, 1), "the lost subscription was not noticed")
        await eventually(lambda: subscribed(cb), "B did not subscribe again")
        await warm(cb, path, auth)
        assert await b_sees(await change_through_a()) <= BOUND_S  # notified again

        # killed while it cannot subscribe again: A's notifications are lost to B, the short TTL bounds it
        listener = b.state.read_cache_listener
        connect = listener.connect

        async def refused(_on_message: Any) -> Any:
            raise ConnectionError("refused by the test")

        listener.connect = refused
        await _kill_subscription(b, own_database, coherence)
        await eventually(lambda: _lost_once(cb, 2), "the second loss was not noticed")
        assert not await subscribed(cb)
        await warm(cb, path, auth)  # entries read while nothing can be heard
        assert await b_sees(await change_through_a()) <= BOUND_S

        # the channel comes back: what was read while it was away is not trusted for the long TTL
        await warm(cb, path, auth)
        value = await change_through_a()  # lost to B
        listener.connect = connect
        await eventually(lambda: subscribed(cb), "B did not subscribe once it could")
        assert (await cb.get(path, headers=auth)).json()["progress"] == value
        # and notifications are again what keeps B current
        await warm(cb, path, auth)
        assert await b_sees(await change_through_a()) <= BOUND_S


async def _lost_once(c: httpx.AsyncClient, n: int) -> bool:
    return await losses(c) >= n
