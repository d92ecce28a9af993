"""One claimed-job loop, shared by the task engine and the webhook dispatcher; and a periodic one (janitor).

`JobLoop(queue)` ticks: it claims due jobs up to its free slots (the concurrency bound), works on each in a
task of its own under a `Heartbeat` (the job's lease is renewed while `queue.handle` runs; a lost lease
cancels the work), and sleeps until the next tick or a `wake()`. A handler that raises is logged and its
job handed to `queue.retry` (released with backoff); a tick that fails (the database is away) backs off
with jitter. `stop(grace_s)` stops claiming, lets the work in flight finish for the grace, cancels the
rest and hands their claims back at once instead of letting the leases run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, Protocol, TypeVar

from app.jobs.lease import Heartbeat, LeaseLost, worker_id

log = logging.getLogger("vidgate.jobs")

J = TypeVar("J")
MAX_IDLE_BACKOFF_S = 30.0


def backoff(attempts: int, *, base: float, cap: float) -> float:
    """`base * 2**attempts`, at most `cap`, with ±20 % jitter so that retries of many jobs spread out."""
    return float(min(cap, base * (2 ** min(attempts, 30))) * random.uniform(0.8, 1.2))


class Queue(Protocol[J]):
    """What a `JobLoop` works on. Every call opens and commits its own session."""

    def key(self, job: J) -> str:
        """The job's row id."""
        ...

    async def claim(self, *, owner: str, limit: int, exclude: Collection[str]) -> list[J]:
        """Claim up to `limit` due jobs for `owner`, none of `exclude` (held by this loop already)."""
        ...

    async def renew(self, job: J, *, owner: str) -> bool:
        """Extend the lease; False when the job is no longer `owner`'s."""
        ...

    async def release(self, keys: Collection[str], *, owner: str) -> int:
        """Hand `owner`'s claims on `keys` back, due at once."""
        ...

    async def release_all(self) -> int:
        """Hand back every claim (one process on SQLite: its predecessor's claims are stale)."""
        ...

    async def handle(self, job: J) -> None:
        """Work on the job; writes its outcome and releases the claim itself."""
        ...

    async def retry(self, job: J, exc: Exception) -> None:
        """`handle` raised: release the job to be tried again after a backoff."""
        ...


class JobLoop(Generic[J]):
    """Claims jobs from `queue` and works on up to `concurrency` of them at a time (see the module doc)."""

    def __init__(
        self,
        queue: Queue[J],
        *,
        name: str,
        concurrency: int,
        tick_s: float,
        lease_s: float,
        release_on_start: bool = False,
        log: logging.Logger = log,
        item: str = "job",
        items: str = "jobs",
    ) -> None:
        self.queue = queue
        self.log, self.item, self.items = log, item, items  # the user's logger and words, in its messages
        self.name = name
        self.concurrency = concurrency
        self.tick_s = tick_s
        self.lease_s = lease_s
        self.release_on_start = release_on_start
        self.owner = worker_id(name)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._claimed: set[str] = set()  # jobs this loop holds (never claimed again meanwhile)
        self._loop_task: asyncio.Task[None] | None = None

    # -- lifecycle
    async def start(self) -> None:
        if self.release_on_start:
            released = await self.queue.release_all()
            if released:
                self.log.info("resumed %d %s claimed before a restart", released, self.items)
        self._loop_task = asyncio.create_task(self._run(), name=f"vidgate-{self.name}")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming, let the work in flight finish for `grace_s`, then hand back what is left."""
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._loop_task, grace_s)
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace_s)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._claimed:
            released = await self.queue.release(set(self._claimed), owner=self.owner)
            self.log.info("released %d claimed %s on shutdown", released, self.items)
            self._claimed.clear()

    def wake(self) -> None:
        self._wake.set()

    @property
    def busy(self) -> int:
        return len(self._inflight)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()  # before the claim: a wake during it means another look right after
            delay = self.tick_s
            try:
                await self.run_once()
                failures = 0
            except Exception:
                failures += 1
                self.log.exception("%s tick failed (%d in a row)", self.name, failures)
                delay = backoff(failures, base=self.tick_s, cap=max(self.tick_s, MAX_IDLE_BACKOFF_S))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def run_once(self) -> int:
        """Claim what is due (up to the free slots) and start working on it; returns how many were claimed."""
        free = self.concurrency - len(self._inflight)
        if free <= 0 or self._stopping.is_set():
            return 0
        jobs = await self.queue.claim(owner=self.owner, limit=free, exclude=set(self._claimed))
        for job in jobs:
            key = self.queue.key(job)
            self._claimed.add(key)
            task = asyncio.create_task(self._guarded(job, key), name=f"{self.name}-{key}")
            self._inflight.add(task)
            task.add_done_callback(self._done)
        return len(jobs)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        # slots freed: claim again now once a quarter of them are (one claim per job finished would cost
        # a claim statement per job); the tick claims for fewer
        if self.concurrency - len(self._inflight) >= max(1, self.concurrency // 4):
            self._wake.set()

    async def drain(self) -> None:
        """Wait for the work in flight (tests)."""
        while self._inflight:
            await asyncio.wait(set(self._inflight))

    # -- one job
    async def _guarded(self, job: J, key: str) -> None:
        async def renew() -> bool:
            return await self.queue.renew(job, owner=self.owner)

        try:
            async with Heartbeat(renew, lease_s=self.lease_s, name=key):
                try:
                    await self.queue.handle(job)
                except Exception as exc:
                    self.log.exception("%s %s: unexpected error", self.item, key)
                    await self.queue.retry(job, exc)
        except LeaseLost:
            self.log.warning("%s %s: another worker took it over; stopped working on it", self.item, key)
        except Exception:  # the retry could not be written either: the lease runs out and the job comes back
            self.log.exception("%s %s: could not release it after an error", self.item, key)
        # a job cancelled by stop() skips this line and stays listed, so stop() hands its claim back
        self._claimed.discard(key)


class Periodic:
    """Runs `fn` now and then every `interval_s` until stopped; a failing run is logged, the next one comes."""

    def __init__(self, fn: Callable[[], Awaitable[object]], *, name: str, interval_s: float) -> None:
        self.fn = fn
        self.name = name
        self.interval_s = interval_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"vidgate-{self.name}")

    async def stop(self, grace_s: float = 10.0) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.fn()
            except Exception:
                log.exception("%s failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
