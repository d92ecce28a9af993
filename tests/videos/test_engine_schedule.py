"""Where the engine spends a capped channel's vendor requests: when it polls a task again (the vendor's
estimate, the channel's typical duration, callbacks) and how many due tasks of a capped channel it claims.

The engine is ticked by hand (`tests.support.scripted.rig`); what it scheduled is read back from the row."""

from __future__ import annotations

import time

import pytest

from app.videos.schedule import RequestBudget
from tests.support.scripted import ScriptedProvider, rig, snap

pytestmark = pytest.mark.engine


def _within(value: float | None, lo: float, hi: float) -> bool:
    return value is not None and lo <= value <= hi


class TestWhenToPollAgain:
    async def test_a_task_the_vendor_expects_in_60_s_is_not_polled_before_then(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("in_progress", 25, eta=60.0)])
        async with rig(database_url, tmp_path, vendor, poll_interval_ms=5_000, poll_max_interval_ms=300_000) as r:
            vid = (await r.create()).id
            t0 = time.time()
            await r.step(vid)
            row = await r.video(vid)
            assert _within(row.next_poll_at, t0 + 60, time.time() + 60), row.next_poll_at - t0
            assert await r.step() == 0  # the 5-s interval passing does not bring it back
        assert len(vendor.polled) == 1

    async def test_an_estimate_never_stretches_a_poll_beyond_the_longest_interval(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("in_progress", 1, eta=3600.0), snap("in_progress", 99, eta=0.0)])
        async with rig(database_url, tmp_path, vendor, poll_interval_ms=8_000, poll_max_interval_ms=30_000) as r:
            vid = (await r.create()).id
            t0 = time.time()
            await r.step(vid)
            row = await r.video(vid)
            assert _within(row.next_poll_at, t0 + 30, time.time() + 30), row.next_poll_at - t0

            t0 = time.time()  # the estimate has passed and the task is not done: a quarter interval, not a spin
            await r.step(vid)
            row = await r.video(vid)
            assert _within(row.next_poll_at, t0 + 2, time.time() + 2), row.next_poll_at - t0

    async def test_without_an_estimate_the_typical_duration_sets_the_poll(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("in_progress", 50)])
        async with rig(database_url, tmp_path, vendor, poll_interval_ms=5_000, poll_max_interval_ms=300_000) as r:
            r.channels[0].typical_s = 90.0
            vid = (await r.create()).id
            submitted = (await r.video(vid)).submitted_at
            assert submitted is not None
            await r.step(vid)
            row = await r.video(vid)  # about when a task of this channel is usually done
            assert _within(row.next_poll_at, submitted + 90, time.time() + 90), row.next_poll_at - submitted

            await r.write(vid, submitted_at=time.time() - 120)  # older than usual: the configured interval again
            t0 = time.time()
            await r.step(vid)
            row = await r.video(vid)
            assert _within(row.next_poll_at, t0 + 5, time.time() + 5 * 1.25**2), row.next_poll_at - t0

    async def test_a_task_its_vendor_calls_back_is_polled_only_as_a_safety_net(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("in_progress", 40)])
        async with rig(
            database_url,
            tmp_path,
            vendor,
            poll_interval_ms=5_000,
            poll_callback_interval_ms=600_000,
            public_base_url="https://gw.example",
        ) as r:
            r.channels[0].vendor = "luma"  # a vendor that calls back (app.providers.vendors)
            vid, other = (await r.create()).id, (await r.create()).id
            t0 = time.time()
            await r.step(vid)  # no callback yet: the configured interval
            assert _within((await r.video(vid)).next_poll_at, t0 + 5, time.time() + 5 * 1.25)

            await r.write(vid, nudged_at=time.time())  # a genuine callback arrived for it
            t0 = time.time()
            await r.step(vid)
            assert _within((await r.video(vid)).next_poll_at, t0 + 600, time.time() + 600)

            t0 = time.time()  # its channel's callbacks reach this gateway: the channel's other tasks too
            await r.step(other)
            assert _within((await r.video(other)).next_poll_at, t0 + 600, time.time() + 600)

    async def test_without_a_public_url_callbacks_change_nothing(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("in_progress", 40)])
        async with rig(database_url, tmp_path, vendor, poll_interval_ms=5_000, poll_callback_interval_ms=600_000) as r:
            r.channels[0].vendor = "luma"
            vid = (await r.create()).id
            await r.write(vid, nudged_at=time.time())
            t0 = time.time()
            await r.step(vid)
            assert _within((await r.video(vid)).next_poll_at, t0 + 5, time.time() + 5)


class TestCappedChannelClaims:
    async def test_a_capped_channel_is_claimed_up_to_its_budget_longest_due_first(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("in_progress", 10)])
        async with rig(database_url, tmp_path, vendor, poll_concurrency=16) as r:
            ids = [(await r.create()).id for _ in range(8)]
            t = time.time()
            for i, vid in enumerate(ids):  # all due, the first created the longest
                await r.write(vid, next_poll_at=t - 100 + i)
            r.channels[0].max_rps = 3
            clock = [0.0]
            r.engine.budget = RequestBudget(horizon_s=1.0, clock=lambda: clock[0])

            assert await r.step() == 3  # 16 free slots, but the channel serves 3 requests a second
            assert await r.step() == 0  # its budget is spent: the rest wait in the queue, not in slots
            clock[0] += 1.0
            assert await r.step() == 3
            polled = [(await r.video(vid)).poll_count for vid in ids]
            assert polled == [1, 1, 1, 1, 1, 1, 0, 0]  # in due order, so the lag grows evenly

    async def test_a_download_spends_the_budget_too(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("completed", 100)])
        async with rig(database_url, tmp_path, vendor) as r:
            ids = [(await r.create()).id for _ in range(3)]
            t = time.time()
            for i, vid in enumerate(ids):
                await r.write(vid, next_poll_at=t - 100 + i)
            r.channels[0].max_rps = 2
            clock = [0.0]
            r.engine.budget = RequestBudget(horizon_s=1.0, clock=lambda: clock[0])

            assert await r.step() == 2  # two polls paid at the claim; their downloads take two more
            assert [(await r.video(vid)).status for vid in ids] == ["completed", "completed", "queued"]
            clock[0] += 1.0  # two requests' worth refilled, all owed by those downloads
            assert await r.step() == 0
            clock[0] += 0.5
            assert await r.step() == 1
