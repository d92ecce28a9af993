"""Per-key request rate limits: in-process by default, shared across replicas through Redis.

Algorithm: a sliding log. Each bucket keeps the times of the requests it accepted during the last
window; a request passes while fewer than `limit` of them remain. Chosen over GCRA because:

- The promise a client reads ("N requests per minute") holds exactly: no window-long interval ever
  contains more than N accepted requests. GCRA with a burst of N lets N through at once and then one
  every window/N, so the first window can hold 2N-1.
- `retry_after` is exact: the moment the entry that must age out does so. Refused requests are not
  logged, so a client that keeps hammering does not extend its own lockout.

The cost is one entry per accepted request in the window (O(limit) per bucket), small for per-minute
limits; GCRA's O(1) state would win only for limits in the many thousands.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

UNLIMITED: Final = sys.maxsize  # `remaining` when the limit is off; stays correct under min()/comparisons


class LimiterUnavailable(Exception):
    """The limiter could not decide (its store is unreachable or failed); the caller picks open or closed."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float  # seconds until the next request would be allowed (0 when allowed)


class RateLimiter(Protocol):
    async def hit(self, bucket: str, *, limit: int, window_s: float = 60.0) -> Decision: ...
    async def close(self) -> None: ...


_ALLOW_ALL: Final = Decision(allowed=True, remaining=UNLIMITED, retry_after=0.0)


def _check_window(window_s: float) -> None:
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, got {window_s!r}")


def _seconds_from_us(us: int) -> float:
    return us / 1_000_000


@dataclass(slots=True)
class _Log:
    stamps: deque[int] = field(default_factory=deque)  # monotonic ns of accepted hits, oldest first
    window_ns: int = 0


class MemoryRateLimiter:
    """Sliding-log limiter for one process.

    `hit` never awaits, so each call runs to completion on the event loop and concurrent tasks cannot
    interleave inside it. Idle buckets are swept periodically so memory follows the active keys only.
    """

    SWEEP_EVERY_NS: Final = 60 * 1_000_000_000

    def __init__(self, *, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._logs: dict[str, _Log] = {}
        self._next_sweep = clock() + self.SWEEP_EVERY_NS

    @property
    def tracked_buckets(self) -> int:
        return len(self._logs)

    async def hit(self, bucket: str, *, limit: int, window_s: float = 60.0) -> Decision:
        if limit <= 0:
            return _ALLOW_ALL
        _check_window(window_s)
        window_ns = round(window_s * 1_000_000_000)
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        log = self._logs.setdefault(bucket, _Log())
        log.window_ns = window_ns
        stamps = log.stamps
        horizon = now - window_ns
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        if len(stamps) < limit:
            stamps.append(now)
            return Decision(allowed=True, remaining=limit - len(stamps), retry_after=0.0)
        # The limit may have been lowered since these entries were logged: enough of them must age out
        # to leave limit - 1, so the wait is until the (len - limit)-th oldest expires.
        wait_ns = stamps[len(stamps) - limit] + window_ns - now
        # Round up to the microsecond so sleeping exactly retry_after never wakes a hair too early.
        return Decision(allowed=False, remaining=0, retry_after=_seconds_from_us(-(-wait_ns // 1000)))

    async def close(self) -> None:
        self._logs.clear()

    def _sweep(self, now: int) -> None:
        idle = [name for name, log in self._logs.items() if not log.stamps or log.stamps[-1] <= now - log.window_ns]
        for name in idle:
            del self._logs[name]
        self._next_sweep = now + self.SWEEP_EVERY_NS


# KEYS[1] bucket key; ARGV: limit, window in microseconds, a unique member for this hit.
# Returns {allowed (0/1), remaining, retry_after in microseconds}. Time comes from the server, so
# replicas with skewed clocks share one timeline; microseconds since the epoch fit a double exactly.
_SCRIPT: Final = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
  return {1, limit - count - 1, 0}
end
local edge = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
return {0, 0, tonumber(edge[2]) + window - now}
"""
_SCRIPT_SHA: Final = hashlib.sha1(_SCRIPT.encode("utf-8")).hexdigest()


class RedisRateLimiter:
    """Sliding-log limiter shared by every replica that points at the same Redis.

    One Lua script per hit does prune, count, record and expire atomically (EVALSHA, falling back to EVAL
    when the server's script cache is empty). Each bucket is a sorted set `prefix + bucket` whose TTL is
    one window, so idle buckets vanish by themselves. Any Redis failure raises `LimiterUnavailable`.
    """

    def __init__(self, url: str, *, prefix: str = "vidgate:rl:", timeout_s: float = 1.0) -> None:
        self._prefix = prefix
        self._sha = _SCRIPT_SHA
        # The limiter sits on the request path: fail fast rather than back off for seconds. One retry
        # replaces a pooled connection that died when Redis restarted.
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), retries=1),
        )

    async def hit(self, bucket: str, *, limit: int, window_s: float = 60.0) -> Decision:
        if limit <= 0:
            return _ALLOW_ALL
        _check_window(window_s)
        window_us = max(1, round(window_s * 1_000_000))
        args = (limit, window_us, secrets.token_hex(8))
        try:
            allowed, remaining, retry_us = await self._run(self._prefix + bucket, args)
        except (RedisError, OSError) as exc:
            raise LimiterUnavailable(f"rate-limit store failed: {exc.__class__.__name__}: {exc}") from exc
        return Decision(allowed=bool(allowed), remaining=int(remaining), retry_after=_seconds_from_us(int(retry_us)))

    async def close(self) -> None:
        await self._redis.aclose()

    async def _run(self, key: str, args: tuple[Any, ...]) -> list[int]:
        try:
            reply = await cast(Any, self._redis.evalsha(self._sha, 1, key, *args))
        except NoScriptError:
            reply = await cast(Any, self._redis.eval(_SCRIPT, 1, key, *args))
        return cast(list[int], reply)


def build_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis when a URL is configured (limits shared across replicas), otherwise this process only."""
    if redis_url:
        return RedisRateLimiter(redis_url)
    return MemoryRateLimiter()
