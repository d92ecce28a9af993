"""The claimed-job loop against an in-memory queue: concurrency bound, wake, backoff, error guarding,
graceful stop, lease loss; and the periodic runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

import pytest

from app.jobs.loop import JobLoop, Periodic, backoff

Handler = Callable[[str], Awaitable[None]]


class MemoryQueue:
    """A queue of string jobs; records what the loop asked of it."""

    def __init__(self, jobs: Collection[str] = (), *, handler: Handler | None = None) -> None:
        self.due = list(jobs)
        self.held: set[str] = set()
        self.handler = handler
        self.handled: list[str] = []
        self.retried: list[tuple[str, Exception]] = []
        self.released: list[str] = []
        self.excluded: list[set[str]] = []
        self.claims = 0
        self.renewals = 0
        self.renew_ok = True
        self.claim_error: Exception | None = None
        self.running = 0
        self.peak = 0

    def key(self, job: str) -> str:
        return job

    async def claim(self, *, owner: str, limit: int, exclude: Collection[str]) -> list[str]:
        self.claims += 1
        self.excluded.append(set(exclude))
        if self.claim_error is not None:
            raise self.claim_error
        take = [j for j in self.due if j not in exclude][:limit]
        for j in take:
            self.due.remove(j)
            self.held.add(j)
        return take

    async def renew(self, job: str, *, owner: str) -> bool:
        self.renewals += 1
        return self.renew_ok

    async def release(self, keys: Collection[str], *, owner: str) -> int:
        self.released.extend(sorted(keys))
        self.held.difference_update(keys)
        self.due.extend(keys)
        return len(keys)

    async def release_all(self) -> int:
        n = len(self.held)
        self.due.extend(self.held)
        self.held.clear()
        return n

    async def handle(self, job: str) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.handler is not None:
                await self.handler(job)
        finally:
            self.running -= 1
        self.handled.append(job)
        self.held.discard(job)

    async def retry(self, job: str, exc: Exception) -> None:
        self.retried.append((job, exc))
        self.held.discard(job)


def make_loop(queue: MemoryQueue, **kw: float) -> JobLoop[str]:
    values: dict[str, float] = {"concurrency": 3, "tick_s": 0.02, "lease_s": 5.0, **kw}
    return JobLoop(
        queue,
        name="test",
        concurrency=int(values["concurrency"]),
        tick_s=values["tick_s"],
        lease_s=values["lease_s"],
    )


async def until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


class TestConcurrency:
    async def test_claims_only_free_slots_and_never_runs_more_than_the_bound(self) -> None:
        gate = asyncio.Event()

        async def wait(job: str) -> None:
            await gate.wait()

        queue = MemoryQueue([f"j{i}" for i in range(10)], handler=wait)
        loop = make_loop(queue, concurrency=3)
        assert await loop.run_once() == 3
        assert await loop.run_once() == 0  # no free slot: nothing claimed, the rest stays due
        assert len(queue.due) == 7
        await loop.start()
        await asyncio.sleep(0.1)
        assert queue.peak == 3
        gate.set()
        await until(lambda: len(queue.handled) == 10)
        await loop.stop(1)
        assert queue.peak == 3
        assert queue.released == []

    async def test_jobs_it_holds_are_excluded_from_its_claims(self) -> None:
        gate = asyncio.Event()

        async def wait(job: str) -> None:
            await gate.wait()

        queue = MemoryQueue(["a"], handler=wait)
        loop = make_loop(queue, concurrency=2)
        assert await loop.run_once() == 1
        queue.due.append("a")  # due again while this loop works on it (say its lease lapsed in a stall)
        assert await loop.run_once() == 0
        assert queue.excluded == [set(), {"a"}]
        gate.set()
        await loop.drain()
        assert queue.handled == ["a"]
        assert await loop.run_once() == 1  # done: no longer excluded
        await loop.drain()
        assert queue.excluded[-1] == set()


class TestWake:
    async def test_wake_claims_at_once_instead_of_after_the_tick(self) -> None:
        queue = MemoryQueue()
        loop = make_loop(queue, tick_s=30)
        await loop.start()
        try:
            await until(lambda: queue.claims == 1)
            queue.due.append("late")
            loop.wake()
            await until(lambda: queue.handled == ["late"], timeout=1)
        finally:
            await loop.stop(1)

    async def test_a_finished_job_frees_its_slot_and_wakes_the_loop(self) -> None:
        queue = MemoryQueue(["a", "b", "c"])
        loop = make_loop(queue, concurrency=1, tick_s=30)
        await loop.start()
        try:
            await until(lambda: queue.handled == ["a", "b", "c"], timeout=1)
        finally:
            await loop.stop(1)


class TestBackoff:
    def test_backoff_doubles_within_its_cap_with_jitter(self) -> None:
        for n in range(8):
            delay = backoff(n, base=1.0, cap=20.0)
            assert 0.8 * min(20.0, 2**n) <= delay <= 1.2 * min(20.0, 2**n)
        assert len({backoff(3, base=1.0, cap=100.0) for _ in range(20)}) > 1  # jittered
        assert backoff(10_000, base=1.0, cap=5.0) <= 6.0  # no overflow on huge counts

    async def test_failing_ticks_back_off_and_the_loop_recovers(self) -> None:
        queue = MemoryQueue(["a"])
        queue.claim_error = OSError("database away")
        loop = make_loop(queue, tick_s=0.01)
        await loop.start()
        try:
            await asyncio.sleep(0.6)
            # a tick every 10 ms would be ~60 claims; backing off (20, 40, 80, 160, 320 ms…) makes a handful
            assert 2 <= queue.claims <= 8
            queue.claim_error = None
            loop.wake()
            await until(lambda: queue.handled == ["a"])
        finally:
            await loop.stop(1)


class TestErrors:
    async def test_a_handler_error_is_retried_and_the_loop_goes_on(self) -> None:
        async def explode(job: str) -> None:
            if job == "bad":
                raise RuntimeError("boom")

        queue = MemoryQueue(["bad", "good"], handler=explode)
        loop = make_loop(queue)
        await loop.start()
        try:
            await until(lambda: queue.handled == ["good"] and len(queue.retried) == 1)
            [(job, exc)] = queue.retried
            assert job == "bad" and isinstance(exc, RuntimeError)
            queue.due.append("later")
            loop.wake()
            await until(lambda: "later" in queue.handled)
        finally:
            await loop.stop(1)
        assert queue.released == []  # the failed job was released by retry, not left held

    async def test_a_retry_that_fails_too_does_not_kill_the_loop(self) -> None:
        async def explode(job: str) -> None:
            raise RuntimeError("boom")

        queue = MemoryQueue(["a"], handler=explode)

        async def broken_retry(job: str, exc: Exception) -> None:
            raise OSError("database away")

        queue.retry = broken_retry  # type: ignore[method-assign]
        loop = make_loop(queue)
        await loop.run_once()
        await loop.drain()
        queue.handler = None
        queue.due.append("b")
        assert await loop.run_once() == 1
        await loop.drain()
        assert queue.handled == ["b"]


class TestStop:
    async def test_graceful_stop_waits_for_the_grace_then_hands_back_the_unfinished(self) -> None:
        cancelled: list[str] = []

        async def work(job: str) -> None:
            try:
                await asyncio.sleep(0.05 if job == "quick" else 60)
            except asyncio.CancelledError:
                cancelled.append(job)
                raise

        queue = MemoryQueue(["quick", "stuck"], handler=work)
        loop = make_loop(queue)
        await loop.start()
        await until(lambda: queue.running == 2)
        await loop.stop(grace_s=0.3)
        assert queue.handled == ["quick"]
        assert cancelled == ["stuck"]
        assert queue.released == ["stuck"]  # handed back at once, not left to lapse
        assert queue.held == set()

    async def test_nothing_is_claimed_after_stop(self) -> None:
        queue = MemoryQueue()
        loop = make_loop(queue)
        await loop.start()
        await loop.stop(1)
        queue.due.append("a")
        assert await loop.run_once() == 0
        assert queue.due == ["a"]

    async def test_start_can_hand_back_a_predecessors_claims(self) -> None:
        queue = MemoryQueue()
        queue.held = {"stale"}
        loop = JobLoop(queue, name="t", concurrency=1, tick_s=0.02, lease_s=5, release_on_start=True)
        await loop.start()
        try:
            await until(lambda: queue.handled == ["stale"])
        finally:
            await loop.stop(1)


class TestLease:
    async def test_the_lease_is_renewed_while_the_handler_runs(self) -> None:
        async def slow(job: str) -> None:
            await asyncio.sleep(0.35)

        queue = MemoryQueue(["a"], handler=slow)
        loop = make_loop(queue, lease_s=0.15)  # a beat every 50 ms
        await loop.run_once()
        await loop.drain()
        assert queue.handled == ["a"]
        assert queue.renewals >= 4

    async def test_a_lost_lease_cancels_the_handler_and_nothing_is_handed_back(self) -> None:
        cancelled = asyncio.Event()

        async def hang(job: str) -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        queue = MemoryQueue(["a"], handler=hang)
        queue.renew_ok = False  # another worker holds it now
        loop = make_loop(queue, lease_s=0.15)
        await loop.run_once()
        await asyncio.wait_for(cancelled.wait(), 1)
        await loop.drain()
        assert queue.handled == [] and queue.retried == []
        await loop.stop(1)
        assert queue.released == []  # not ours any more: stop leaves it alone


class TestPeriodic:
    async def test_runs_at_once_then_every_interval_and_survives_errors(self) -> None:
        runs: list[int] = []

        async def job() -> None:
            runs.append(1)
            if len(runs) == 2:
                raise RuntimeError("one bad run")

        p = Periodic(job, name="janitor", interval_s=0.05)
        await p.start()
        await until(lambda: len(runs) >= 4)
        await p.stop(1)
        done = len(runs)
        await asyncio.sleep(0.12)
        assert len(runs) == done

    async def test_stop_cancels_a_run_that_outlasts_the_grace(self) -> None:
        cancelled = asyncio.Event()

        async def job() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        p = Periodic(job, name="slow", interval_s=1)
        await p.start()
        await asyncio.sleep(0.05)
        await p.stop(grace_s=0.1)
        assert cancelled.is_set()


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_every_job_is_handled_once(concurrency: int) -> None:
    queue = MemoryQueue([f"j{i}" for i in range(25)])
    loop = make_loop(queue, concurrency=concurrency)
    await loop.start()
    try:
        await until(lambda: len(queue.handled) == 25)
    finally:
        await loop.stop(1)
    assert sorted(queue.handled) == sorted(f"j{i}" for i in range(25))
