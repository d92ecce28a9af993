"""Submission (`submit_draft`): the row is stored claimed before any vendor is asked, failover on technical
failures only, and a create no channel accepted leaves nothing stored and nothing charged."""

from __future__ import annotations

import time

import pytest

from app import errors
from app.channels.models import ChannelRecord
from app.providers import base as pb
from tests.support.scripted import MODEL, VENDOR, ScriptedProvider, rig, unavailable

PRICE = {MODEL: 2.0}  # credits per second: a 4 s task reserves 8


class TestStored:
    async def test_the_row_is_stored_claimed_before_the_vendor_is_asked(self, database_url, tmp_path) -> None:
        seen: dict = {}
        vendor = ScriptedProvider()

        async with rig(database_url, tmp_path, vendor, prices=PRICE, claim_lease_s=30) as r:

            async def look(req: pb.GenerationRequest) -> None:
                row = await r.row(req.task_id)
                seen.update(
                    stored=row is not None,
                    claimed_by=row.claimed_by,
                    claimed_until=row.claimed_until,
                    channel=row.channel,
                    vendor_task_id=row.vendor_task_id,
                    used=await r.used(),
                    at=time.time(),
                )
                # an engine ticking now must not take it (it would submit the task a second time), even due
                await r.make_due(req.task_id)
                seen["engine_claimed"] = await r.engine.run_once()
                return None  # accept

            vendor.script["submit"] = [look]
            t0 = time.time()
            video = await r.create()
            assert seen["stored"] and seen["claimed_by"].startswith("submit:")
            assert seen["claimed_until"] > seen["at"]
            assert (seen["channel"], seen["vendor_task_id"]) == (VENDOR, None)
            assert seen["used"] == 8.0  # reserved before the vendor call
            assert seen["engine_claimed"] == 0

            row = await r.video(video.id)
            # the vendor id recorded and the claim released, first poll a poll interval later
            assert row.vendor_task_id == vendor.accepted[video.id].vendor_task_id
            assert row.vendor_meta == {"echo": video.id}
            assert (row.claimed_by, row.claimed_until, row.status) == (None, None, "queued")
            assert (row.provider, row.channel, row.channel_fp) == (VENDOR, VENDOR, r.channels[0].fingerprint)
            assert t0 < row.next_poll_at <= time.time() + r.gw.settings.poll_interval_ms / 1000
            assert row.submitted_at is not None and row.reserved_credits == 8.0
        (req,) = vendor.submitted
        assert (req.task_id, req.model, req.prompt, req.width, req.height, req.seconds) == (
            video.id,
            MODEL,
            "a red fox",
            128,
            128,
            4,
        )


class TestRejected:
    async def test_a_logical_rejection_stores_nothing_and_charges_nothing(self, database_url, tmp_path) -> None:
        no = pb.Rejected(VENDOR, "The prompt violates our policy.", vendor_code="content_policy_violation")
        first, second = ScriptedProvider("a", submits=[no]), ScriptedProvider("b")
        async with rig(database_url, tmp_path, (first, 10), (second, 5), prices=PRICE) as r:
            with pytest.raises(errors.InvalidRequest) as caught:
                await r.create()
            assert caught.value.status_code == 400
            assert caught.value.code == "content_policy_violation"
            assert "violates our policy" in caught.value.message
            assert await r.count() == 0
            assert await r.used() == 0.0  # the reservation was given back
            # never retried elsewhere, and no mark against the channel's health
            assert (len(first.submitted), len(second.submitted)) == (1, 0)
            async with r.gw.sessionmaker() as s:
                rec = await s.get(ChannelRecord, r.channels[0].fingerprint)
            assert rec.failures == 0 and rec.cooldown_until is None


class TestFailover:
    @pytest.mark.parametrize(
        "fault",
        [
            pytest.param(unavailable(), id="5xx"),
            pytest.param(pb.RateLimited("a", "busy", retry_after=3), id="429"),
            pytest.param(pb.AuthFailed("a", "bad key"), id="auth"),
        ],
    )
    async def test_a_technical_failure_fails_over_to_the_next_channel(self, database_url, tmp_path, fault) -> None:
        first, second = ScriptedProvider("a", submits=[fault]), ScriptedProvider("b")
        async with rig(database_url, tmp_path, (first, 10), (second, 5), prices=PRICE, channel_cooldown_s=60) as r:
            t0 = time.time()
            video = await r.create()
            row = await r.video(video.id)
            assert row.channel == "b" and row.channel_fp == r.channels[1].fingerprint
            assert row.vendor_task_id == second.accepted[video.id].vendor_task_id
            assert row.claimed_by is None
            assert (len(first.submitted), len(second.submitted)) == (1, 1)
            async with r.gw.sessionmaker() as s:
                rec = await s.get(ChannelRecord, r.channels[0].fingerprint)
            assert rec.failures == 1 and rec.cooldown_until >= t0 + 60
            assert await r.used() == 8.0

            # the failed channel cools down: the next create goes to b first
            await r.create()
            assert (len(first.submitted), len(second.submitted)) == (1, 2)

    async def test_429_on_every_channel_is_429_and_nothing_is_stored(self, database_url, tmp_path) -> None:
        first = ScriptedProvider("a", submits=[pb.RateLimited("a", "slow down", retry_after=9)])
        second = ScriptedProvider("b", submits=[pb.RateLimited("b", "slow down", retry_after=4)])
        async with rig(database_url, tmp_path, (first, 10), (second, 5), prices=PRICE) as r:
            with pytest.raises(errors.RateLimited) as caught:
                await r.create()
            assert caught.value.status_code == 429
            assert caught.value.headers["Retry-After"] == "4"  # the soonest channel
            assert await r.count() == 0
            assert await r.used() == 0.0
            assert (len(first.submitted), len(second.submitted)) == (1, 1)

    async def test_5xx_somewhere_keeps_the_task_for_the_engine(self, database_url, tmp_path) -> None:
        first = ScriptedProvider("a", submits=[unavailable()])
        second = ScriptedProvider("b", submits=[pb.RateLimited("b", "slow down")])
        async with rig(database_url, tmp_path, (first, 10), (second, 5), prices=PRICE) as r:
            video = await r.create()
            row = await r.video(video.id)
            assert (row.status, row.vendor_task_id, row.claimed_by) == ("queued", None, None)
            assert row.next_poll_at <= time.time() + r.gw.settings.poll_interval_ms / 1000
            assert await r.used() == 8.0  # still reserved: the engine retries it

    async def test_the_http_create_answers_429_with_nothing_stored(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(submits=[pb.RateLimited(VENDOR, "slow down", retry_after=2)])
        async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
            async with await r.http() as c:
                resp = await c.post(
                    "/v1/videos",
                    headers=r.auth,
                    json={"prompt": "x", "model": MODEL, "size": "128x128", "seconds": "4"},
                )
                assert resp.status_code == 429, resp.text
                assert resp.json()["error"]["code"] == "rate_limit_exceeded"
                assert resp.headers["retry-after"] == "2"
                assert (await c.get("/v1/videos", headers=r.auth)).json()["data"] == []
            assert await r.used() == 0.0
