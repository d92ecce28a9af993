"""Rate limiters: every behaviour against the in-process and the Redis implementation.

The Redis half uses a real server (VIDGATE_TEST_REDIS_URL, default redis://127.0.0.1:6379/15). Each test
gets its own key prefix and deletes only those keys. Without Redis the Redis cases skip locally and
fail under CI=true, so a misconfigured CI cannot pass them silently.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.keys.limits import (
    UNLIMITED,
    LimiterUnavailable,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
)

REDIS_URL = os.environ.get("VIDGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_available() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        reason = f"Redis not reachable at {REDIS_URL} ({exc}); set VIDGATE_TEST_REDIS_URL"
        if IN_CI:
            pytest.fail(f"{reason} — CI must run the Redis rate-limit tests")
        pytest.skip(reason)
    finally:
        client.close()


@pytest.fixture
def prefix() -> str:
    return f"vidgate:rl:test:{uuid.uuid4().hex}:"


async def _purge(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_client(redis_available: None) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def make_redis_limiter(redis_available: None, prefix: str) -> AsyncIterator[Callable[[], RedisRateLimiter]]:
    """Builds replicas: separate clients (separate pools) sharing the test's prefix."""
    made: list[RedisRateLimiter] = []

    def make() -> RedisRateLimiter:
        made.append(RedisRateLimiter(REDIS_URL, prefix=prefix))
        return made[-1]

    yield make
    for limiter in made:
        await limiter.close()
    await _purge(prefix)


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RateLimiter]:
    if request.param == "redis":
        request.getfixturevalue("redis_available")
        built: RateLimiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
    else:
        built = MemoryRateLimiter()
    yield built
    await built.close()
    if request.param == "redis":
        await _purge(prefix)


class TestEdge:
    async def test_nth_passes_and_next_is_refused(self, limiter: RateLimiter) -> None:
        decisions = [await limiter.hit("k", limit=5) for _ in range(6)]

        assert [d.allowed for d in decisions] == [True] * 5 + [False]
        assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
        assert [d.retry_after for d in decisions[:5]] == [0.0] * 5
        assert 59.0 < decisions[5].retry_after <= 60.0

    async def test_refused_hits_do_not_extend_the_wait(self, limiter: RateLimiter) -> None:
        await limiter.hit("k", limit=1)
        first = await limiter.hit("k", limit=1)
        for _ in range(10):
            await limiter.hit("k", limit=1)
        later = await limiter.hit("k", limit=1)

        assert not later.allowed
        assert later.retry_after <= first.retry_after

    async def test_non_positive_window_is_rejected(self, limiter: RateLimiter) -> None:
        with pytest.raises(ValueError, match="window_s"):
            await limiter.hit("k", limit=1, window_s=0)


class TestRetryAfter:
    async def test_sleeping_retry_after_lets_the_next_pass(self, limiter: RateLimiter) -> None:
        assert (await limiter.hit("k", limit=2, window_s=1.0)).allowed
        await asyncio.sleep(0.3)
        assert (await limiter.hit("k", limit=2, window_s=1.0)).allowed

        refused = await limiter.hit("k", limit=2, window_s=1.0)
        assert not refused.allowed
        assert 0.4 < refused.retry_after <= 0.7  # the oldest hit, 0.3 s old, ages out first

        await asyncio.sleep(refused.retry_after / 2)
        still = await limiter.hit("k", limit=2, window_s=1.0)
        assert not still.allowed

        await asyncio.sleep(still.retry_after)
        assert (await limiter.hit("k", limit=2, window_s=1.0)).allowed

        # Sliding, not fixed: the second hit still counts, so the window is full again until it ages out.
        after = await limiter.hit("k", limit=2, window_s=1.0)
        assert not after.allowed
        assert 0.05 < after.retry_after <= 0.3


class TestBuckets:
    async def test_buckets_are_independent(self, limiter: RateLimiter) -> None:
        for _ in range(3):
            await limiter.hit("key-a", limit=3)
        assert not (await limiter.hit("key-a", limit=3)).allowed

        other = [await limiter.hit("key-b", limit=3) for _ in range(3)]
        assert all(d.allowed for d in other)


class TestUnlimited:
    @pytest.mark.parametrize("limit", [0, -1])
    async def test_non_positive_limit_always_allows(self, limiter: RateLimiter, limit: int) -> None:
        decisions = [await limiter.hit("k", limit=limit) for _ in range(50)]

        assert all(d.allowed and d.retry_after == 0.0 and d.remaining == UNLIMITED for d in decisions)

    async def test_unlimited_never_calls_redis(self) -> None:
        offline = RedisRateLimiter(f"redis://127.0.0.1:{_closed_port()}/0")
        try:
            assert (await offline.hit("k", limit=0)).allowed
        finally:
            await offline.close()


class TestConcurrency:
    async def test_concurrent_hits_allow_exactly_the_limit(self, limiter: RateLimiter) -> None:
        decisions = await asyncio.gather(*(limiter.hit("k", limit=20) for _ in range(50)))

        assert sum(d.allowed for d in decisions) == 20

    async def test_two_replicas_share_one_limit(self, make_redis_limiter: Callable[[], RedisRateLimiter]) -> None:
        one, two = make_redis_limiter(), make_redis_limiter()

        sequential = [await (one if i % 2 else two).hit("seq", limit=7) for i in range(12)]
        together = await asyncio.gather(*(r.hit("par", limit=15) for r in (one, two) for _ in range(20)))

        assert sum(d.allowed for d in sequential) == 7
        assert sum(d.allowed for d in together) == 15


class TestExpiry:
    async def test_redis_keys_carry_a_ttl(
        self, make_redis_limiter: Callable[[], RedisRateLimiter], prefix: str, redis_client: aioredis.Redis
    ) -> None:
        limiter = make_redis_limiter()
        await limiter.hit("k", limit=3, window_s=2.0)

        ttl_ms = await redis_client.pttl(f"{prefix}k")
        assert 0 < ttl_ms <= 2000

    async def test_memory_forgets_idle_buckets(self) -> None:
        now = [0]
        limiter = MemoryRateLimiter(clock=lambda: now[0])
        await limiter.hit("idle", limit=3, window_s=1.0)
        await limiter.hit("busy", limit=3, window_s=3600.0)

        now[0] += MemoryRateLimiter.SWEEP_EVERY_NS
        await limiter.hit("fresh", limit=3, window_s=1.0)

        assert limiter.tracked_buckets == 2  # "busy" is still inside its window, "idle" is gone


class TestRedisScriptCache:
    async def test_falls_back_to_eval_when_the_script_is_not_cached(
        self, make_redis_limiter: Callable[[], RedisRateLimiter]
    ) -> None:
        limiter = make_redis_limiter()
        limiter._sha = "0" * 40  # a digest no server holds: EVALSHA answers NOSCRIPT

        assert (await limiter.hit("k", limit=1)).allowed
        assert not (await limiter.hit("k", limit=1)).allowed


class TestUnavailable:
    async def test_closed_port_raises_limiter_unavailable(self) -> None:
        offline = RedisRateLimiter(f"redis://127.0.0.1:{_closed_port()}/0")
        try:
            with pytest.raises(LimiterUnavailable, match="rate-limit store failed"):
                await offline.hit("k", limit=5)
        finally:
            await offline.close()


class TestBuild:
    @pytest.mark.parametrize("url", [None, ""])
    async def test_no_url_is_in_process(self, url: str | None) -> None:
        assert isinstance(build_rate_limiter(url), MemoryRateLimiter)

    async def test_url_is_redis(self) -> None:
        built = build_rate_limiter(REDIS_URL)
        assert isinstance(built, RedisRateLimiter)
        await built.close()
