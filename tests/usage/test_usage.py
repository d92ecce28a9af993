"""Usage accounting: credits reserved at create, charged for what was produced at completion (per
resolution), refunded on failure, settled exactly once, and quotas refused before any vendor call."""

from __future__ import annotations

import asyncio

import pytest

from app import errors
from app.providers import base as pb
from app.usage import service as usage
from tests.fakes.assets import real_mp4
from tests.support.scripted import CLIP, MODEL, VENDOR, ScriptedProvider, rig, snap

HD_CLIP = real_mp4(frames=8, width=1280, height=720, fps=8, noise=False)  # 1 s at 720p
TIERED = {MODEL: {"480p": 0.5, "720p": 2.0, "default": 3.0}}


class TestPrices:
    @pytest.mark.parametrize(
        ("size", "cls"),
        [((96, 64), "480p"), ((640, 480), "480p"), ((960, 540), "540p"), ((1280, 720), "720p"), ((720, 1280), "720p")]
        + [((1920, 1080), "1080p"), ((2560, 1440), "1440p"), ((3840, 2160), "2160p"), ((900, 900), "720p")],
    )
    def test_resolution_class_is_the_nearest_short_side(self, size, cls) -> None:
        assert usage.resolution_class(*size) == cls

    def test_price_lookup_order(self) -> None:
        prices = {"alias": 4.0, "model": {"720p": 2.0}, "*": 0.25}
        assert usage.price_per_second(prices, ["alias", "model"], 1280, 720) == 4.0  # the name the client sent
        assert usage.price_per_second(prices, ["other", "model"], 1280, 720) == 2.0  # the model it resolves to
        # no 720p-only entry for 1080p and no default: the catch-all
        assert usage.price_per_second(prices, ["other", "model"], 1920, 1080) == 0.25
        assert usage.price_per_second({}, ["model"], 1280, 720) == 0.0  # unpriced: free

    def test_cost_is_price_times_seconds(self) -> None:
        assert usage.cost(TIERED, [MODEL], 1280, 720, 4) == 8.0
        assert usage.cost(TIERED, [MODEL], 1920, 1080, 5) == 15.0  # the default tier
        assert usage.cost(TIERED, [MODEL], 96, 64, 2.5) == 1.25
        assert usage.cost(TIERED, [MODEL], 96, 64, -3) == 0.0  # an extension shorter than its source

    def test_vendor_units_are_charged_instead_of_seconds_when_priced(self) -> None:
        prices = {"tok": {"default": 1.0, "units": {"completion_tokens": 0.0001}}, "*": 0.5}
        assert usage.cost(prices, ["tok"], 1920, 1080, 5, units={"completion_tokens": 108900}) == 10.89
        assert usage.cost(prices, ["tok"], 1920, 1080, 5, units={}) == 5.0  # not reported: per second
        assert usage.cost(prices, ["tok"], 1920, 1080, 5, units={"total_tokens": 9}) == 5.0  # not a priced unit
        assert usage.cost(prices, ["other"], 1920, 1080, 5, units={"completion_tokens": 9}) == 2.5  # "*" per second
        # priced in units only: nothing is reserved by the second, and `*` does not stand in for it
        assert usage.price_per_second({"tok": {"units": {"completion_tokens": 1.0}}, "*": 0.5}, ["tok"], 1, 1) == 0.0


class TestLifecycle:
    async def test_reserved_at_create_for_the_requested_size_and_seconds(self, database_url, tmp_path) -> None:
        async with rig(database_url, tmp_path, ScriptedProvider(), prices=TIERED) as r:
            hd = await r.create(size="1280x720", seconds=4)
            sd = await r.create(size="96x64", seconds=3)
            big = await r.create(size="1920x1080", seconds=2)
            assert [(await r.video(v.id)).reserved_credits for v in (hd, sd, big)] == [8.0, 1.5, 6.0]
            assert await r.used() == 15.5
            assert {(await r.video(v.id)).settlement for v in (hd, sd, big)} == {None}

    async def test_completion_charges_the_seconds_and_resolution_produced(self, database_url, tmp_path) -> None:
        # asked for 4 s of 720p (8 reserved); the vendor made 2 s of 96x64 (480p): 1 credit
        lo = ScriptedProvider(polls=[snap("completed")], downloads=[CLIP])
        async with rig(database_url, tmp_path, lo, prices=TIERED) as r:
            vid = (await r.create(size="1280x720", seconds=4)).id
            assert await r.used() == 8.0
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.settlement, row.charged_credits) == ("completed", "charged", 1.0)
            assert await r.used() == 1.0

    async def test_completion_charges_the_vendors_billed_units(self, database_url, tmp_path) -> None:
        prices = {MODEL: {"default": 2.0, "units": {"completion_tokens": 0.001}}}
        billed = ScriptedProvider(polls=[snap("completed", usage={"completion_tokens": 2500})], downloads=[CLIP])
        async with rig(database_url, tmp_path, billed, prices=prices) as r:
            vid = (await r.create(size="96x64", seconds=4)).id
            assert await r.used() == 8.0  # reserved per second: units are known only at the end
            await r.step(vid)
            row = await r.video(vid)
            assert (row.settlement, row.charged_credits) == ("charged", 2.5)
            assert row.vendor_meta["usage"] == {"completion_tokens": 2500}
            assert await r.used() == 2.5

    async def test_a_bigger_result_is_charged_at_its_own_tier(self, database_url, tmp_path) -> None:
        # asked for 4 s of 480p (2 reserved); the vendor made 1 s of 720p: 2 credits
        hi = ScriptedProvider(polls=[snap("completed")], downloads=[HD_CLIP])
        async with rig(database_url, tmp_path, hi, prices=TIERED) as r:
            vid = (await r.create(size="96x64", seconds=4)).id
            assert await r.used() == 2.0
            await r.step(vid)
            row = await r.video(vid)
            assert (row.width, row.height, row.seconds, row.charged_credits) == (1280, 720, 1, 2.0)
            assert await r.used() == 2.0

    async def test_failure_refunds_the_reservation(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("failed", error_code="internal_error")])
        async with rig(database_url, tmp_path, vendor, prices=TIERED) as r:
            keep = await r.create(size="1280x720", seconds=4)  # never polled in this test: stays reserved
            vid = (await r.create(size="1280x720", seconds=2)).id
            assert await r.used() == 12.0
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.settlement, row.charged_credits) == ("failed", "refunded", 0.0)
            assert row.settled_at is not None
            assert await r.used() == 8.0
            assert (await r.video(keep.id)).settlement is None

    async def test_unpriced_models_cost_nothing(self, database_url, tmp_path) -> None:
        async with rig(database_url, tmp_path, ScriptedProvider(polls=[snap("completed")])) as r:
            vid = (await r.create()).id
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.reserved_credits, row.charged_credits) == ("completed", 0.0, 0.0)
            assert row.settled_at is not None
            assert await r.used() == 0.0

    async def test_the_report_reconciles_outcomes_and_credits(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("completed"), snap("failed"), snap("in_progress", 5)])
        async with rig(database_url, tmp_path, vendor, prices={MODEL: 1.0}) as r:
            done = (await r.create(seconds=4)).id
            failed = (await r.create(seconds=4)).id
            await r.create(seconds=3)  # still running: only reserved
            await r.step(done)
            await r.step(failed)
            async with r.gw.sessionmaker() as s:
                (line,) = await usage.report(s, since=None, until=None, key_id=r.key.id, model=None)
            assert line == {
                "api_key_id": r.key.id,
                "model": MODEL,
                "tasks": 3,
                "completed": 1,
                "failed": 1,
                "seconds": 2.0,  # the clip produced
                "credits_charged": 2.0,
                "credits_reserved": 3.0,
            }
            assert await r.used() == 5.0  # what was charged plus what is still reserved


class TestSettlementOnce:
    async def test_settling_twice_charges_once(self, database_url, tmp_path) -> None:
        async with rig(database_url, tmp_path, ScriptedProvider(), prices={MODEL: 1.0}) as r:
            row = await r.create(seconds=4)
            async with r.gw.sessionmaker() as s:
                assert await usage.settle(s, row, charged=3.0) is True
                await s.commit()
            async with r.gw.sessionmaker() as s:
                assert await usage.settle(s, row, charged=3.0) is False
                assert await usage.settle(s, row, charged=0.0) is False  # nor refunded afterwards
                await s.commit()
            stored = await r.video(row.id)
            assert (stored.settlement, stored.charged_credits) == ("charged", 3.0)
            assert await r.used() == 3.0

    async def test_concurrent_settlements_charge_once(self, database_url, tmp_path) -> None:
        async with rig(database_url, tmp_path, ScriptedProvider(), prices={MODEL: 1.0}) as r:
            row = await r.create(seconds=4)

            async def settle(charged: float) -> bool:
                async with r.gw.sessionmaker() as s:
                    done = await usage.settle(s, row, charged=charged)
                    await s.commit()
                    return done

            results = await asyncio.gather(settle(3.0), settle(0.0), settle(3.0))
            assert sorted(results) == [False, False, True]
            stored = await r.video(row.id)
            assert await r.used() == stored.charged_credits  # one settlement's effect, whichever won
            assert stored.charged_credits in (0.0, 3.0)

    async def test_a_completed_task_is_never_refunded_later(self, database_url, tmp_path) -> None:
        async with rig(database_url, tmp_path, ScriptedProvider(polls=[snap("completed")]), prices={MODEL: 1.0}) as r:
            vid = (await r.create(seconds=4)).id
            await r.step(vid)
            assert await r.used() == 2.0
            async with r.gw.sessionmaker() as s:
                assert await usage.settle(s, await r.video(vid), charged=0.0) is False
                await s.commit()
            assert await r.used() == 2.0


class TestQuota:
    async def test_a_create_past_the_quota_is_refused_before_any_vendor_call(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("failed")])
        limits = {"quota_credits": 16.0}
        async with rig(database_url, tmp_path, vendor, prices={MODEL: 2.0}, key_limits=limits) as r:
            first = await r.create(seconds=4)
            await r.create(seconds=4)
            assert await r.used() == 16.0  # exactly the quota: allowed
            with pytest.raises(errors.InsufficientQuota) as caught:
                await r.create(seconds=1)
            assert (caught.value.status_code, caught.value.code) == (429, "insufficient_quota")
            assert caught.value.headers["x-should-retry"] == "false"
            assert len(vendor.submitted) == 2 and await r.count() == 2
            assert await r.used() == 16.0

            await r.step(first.id)  # a failure gives its credits back: room for a new task
            assert await r.used() == 8.0
            await r.create(seconds=4)
            assert len(vendor.submitted) == 3

    async def test_the_concurrency_limit_keeps_no_reservation(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider()
        limits = {"max_concurrent": 1}
        async with rig(database_url, tmp_path, vendor, prices={MODEL: 2.0}, key_limits=limits) as r:
            await r.create(seconds=4)
            with pytest.raises(errors.RateLimited) as caught:
                await r.create(seconds=4)
            assert caught.value.code == "concurrency_limit_exceeded"
            assert await r.used() == 8.0 and await r.count() == 1
            assert len(vendor.submitted) == 1

    async def test_a_key_without_a_quota_is_still_reserved_and_refunded(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(submits=[None, pb.Rejected(VENDOR, "no")])
        async with rig(database_url, tmp_path, vendor, prices={MODEL: 1.0}) as r:
            await r.create(seconds=4)
            assert await r.used() == 4.0
            with pytest.raises(errors.InvalidRequest):
                await r.create(seconds=3)
            assert await r.used() == 4.0  # the rejected create's reservation given back
