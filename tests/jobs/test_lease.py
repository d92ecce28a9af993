"""The heartbeat keeps a claim while its block runs and stops the block when the claim is lost."""

from __future__ import annotations

import asyncio

import pytest

from app.jobs.lease import Heartbeat, LeaseLost, worker_id


async def test_renews_while_the_block_runs_and_stops_after_it() -> None:
    renewals = 0

    async def renew() -> bool:
        nonlocal renewals
        renewals += 1
        return True

    async with Heartbeat(renew, lease_s=0.15, name="t"):
        await asyncio.sleep(0.4)  # well over two leases
    assert renewals >= 4
    before = renewals
    await asyncio.sleep(0.15)
    assert renewals == before  # no beat outlives its block


async def test_a_lost_claim_cancels_the_block_and_raises_lease_lost() -> None:
    held = True
    reached_end = False

    async def renew() -> bool:
        return held

    async def work() -> None:
        nonlocal reached_end
        async with Heartbeat(renew, lease_s=0.15, name="t"):
            await asyncio.sleep(0.1)
            await asyncio.sleep(10)
            reached_end = True

    task = asyncio.create_task(work())
    await asyncio.sleep(0.12)
    held = False  # another worker took the row
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(task, 1)
    assert not reached_end


async def test_renewals_failing_for_a_whole_lease_count_as_lost() -> None:
    async def renew() -> bool:
        raise OSError("database unreachable")

    with pytest.raises(LeaseLost):
        async with Heartbeat(renew, lease_s=0.15, name="t"):
            await asyncio.sleep(5)


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def renew() -> bool:
        return True

    async def work() -> None:
        async with Heartbeat(renew, lease_s=0.15, name="t"):
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_renewal_under_way_is_waited_for_never_cancelled() -> None:
    finished, cancelled = [], []

    async def renew() -> bool:
        try:
            await asyncio.sleep(0.1)  # a query in flight: cancelling it would break its connection
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        finished.append(1)
        return True

    async with Heartbeat(renew, lease_s=0.3, name="t"):
        await asyncio.sleep(0.15)  # the block ends while the first renewal (at 0.1 s) is under way
    assert finished == [1] and cancelled == []


async def test_a_renewal_slower_than_the_lease_loses_it_and_is_left_to_finish() -> None:
    finished = []

    async def renew() -> bool:
        await asyncio.sleep(0.3)
        finished.append(1)
        return True

    with pytest.raises(LeaseLost):
        async with Heartbeat(renew, lease_s=0.15, name="t"):
            await asyncio.sleep(5)
    await asyncio.sleep(0.35)
    assert finished == [1]


def test_worker_ids_are_unique_and_fit_the_column() -> None:
    ids = {worker_id("engine") for _ in range(100)}
    assert len(ids) == 100 and all(len(i) <= 64 and i.startswith("engine:") for i in ids)
