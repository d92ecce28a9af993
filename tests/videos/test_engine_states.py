"""The task engine's state machine, one transition per test, against a scripted provider.

The engine is ticked by hand (`run_once` then `drain`), and a row is made due when the test wants the
next step, so every step is deterministic; what the engine scheduled is asserted before that."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.providers import base as pb
from app.videos import repository as repo
from tests.support.media import image_format, mp4_info, solid_image
from tests.support.scripted import (
    CLIP,
    MAX_DOWNLOAD_ATTEMPTS,
    MAX_SUBMIT_ATTEMPTS,
    MODEL,
    VENDOR,
    AcceptThenCrash,
    Crash,
    RecoverableProvider,
    ScriptedProvider,
    TaskEngine,
    VariantProvider,
    rig,
    snap,
    unavailable,
)

pytestmark = pytest.mark.engine  # these tests watch videos finish

PRICE = {MODEL: 1.5}  # credits per second


def _within(value: float | None, lo: float, hi: float) -> bool:
    return value is not None and lo <= value <= hi


class TestPolling:
    async def test_queued_then_in_progress_and_progress_never_goes_back(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(
            polls=[snap("queued"), snap("in_progress", 40), snap("in_progress", 20), snap("in_progress", 100)]
        )
        async with rig(database_url, tmp_path, vendor) as r:
            vid = (await r.create()).id
            assert (await r.video(vid)).status == "queued"

            assert await r.step(vid) == 1
            row = await r.video(vid)
            assert (row.status, row.progress, row.poll_count) == ("queued", 0, 1)

            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.progress) == ("in_progress", 40)

            await r.step(vid)  # the vendor reports less than before: the client never sees progress go back
            assert (await r.video(vid)).progress == 40

            await r.step(vid)  # 100 % before the asset is stored is not done yet
            row = await r.video(vid)
            assert (row.status, row.progress, row.poll_count) == ("in_progress", 99, 4)
            assert row.claimed_by is None and row.claimed_until is None
        assert len(vendor.polled) == 4
        assert {t.vendor_task_id for t in vendor.polled} == {row.vendor_task_id}

    async def test_status_never_goes_back_from_in_progress_to_queued(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("in_progress", 40), snap("queued")])
        async with rig(database_url, tmp_path, vendor) as r:
            vid = (await r.create()).id
            await r.step(vid)
            assert (await r.video(vid)).status == "in_progress"
            await r.step(vid)  # e.g. an eventually consistent vendor read served by a lagging replica
            row = await r.video(vid)
            assert (row.status, row.progress) == ("in_progress", 40)

    async def test_a_row_that_is_not_due_is_not_polled(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider()
        async with rig(database_url, tmp_path, vendor, poll_interval_ms=60_000) as r:
            await r.create()
            assert await r.step() == 0  # the first poll is a poll interval after the submit
        assert vendor.polled == []

    async def test_the_vendors_poll_after_hint_schedules_the_next_poll(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(
            polls=[snap("in_progress", 5, poll_after=2.5), snap("in_progress", 6, poll_after=600)]
        )
        async with rig(database_url, tmp_path, vendor, poll_max_interval_ms=10_000) as r:
            vid = (await r.create()).id
            t0 = time.time()
            await r.step(vid)
            row = await r.video(vid)
            assert _within(row.next_poll_at, t0 + 2.5, time.time() + 2.5), row.next_poll_at - t0
            async with await r.http() as c:
                resp = await c.get(f"/v1/videos/{vid}", headers=r.auth)
            assert resp.status_code == 200
            assert 2000 <= int(resp.headers["openai-poll-after-ms"]) <= 2600  # the client is told the same

            t0 = time.time()
            await r.step(vid)  # a hint beyond the engine's longest interval is capped to it
            row = await r.video(vid)
            assert _within(row.next_poll_at, t0 + 10, time.time() + 10), row.next_poll_at - t0

    async def test_a_task_that_never_finishes_is_polled_until_its_deadline(self, database_url, tmp_path) -> None:
        # the vendor keeps answering a non-terminal state (an adapter maps a state it does not know to one)
        vendor = ScriptedProvider(polls=[snap("in_progress", 50)])
        async with rig(database_url, tmp_path, vendor, prices=PRICE, task_timeout_s=3600) as r:
            vid = (await r.create()).id
            for _ in range(3):
                await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.poll_count, row.error_code) == ("in_progress", 3, None)

            # the task is older than task_timeout_s now
            await r.write(vid, created_ns=time.time_ns() - 3601 * 10**9)
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.error_code) == ("failed", "timeout")
            assert (row.settlement, row.charged_credits) == ("refunded", 0.0)
            assert await r.used() == 0.0
        assert len(vendor.polled) == 3  # failed on the deadline without asking the vendor again

    async def test_a_callback_during_a_poll_makes_the_task_due_again(self, database_url, tmp_path) -> None:
        """A vendor callback that lands while a poll is under way (that poll may have missed its news) is not
        lost: the task is due again as soon as the poll is written, not after the usual interval."""
        vendor = ScriptedProvider()
        async with rig(database_url, tmp_path, vendor, poll_max_interval_ms=30_000) as r:
            vid = (await r.create()).id

            async def poll_then_callback(task: pb.VendorTask) -> pb.TaskSnapshot:
                async with r.gw.sessionmaker() as s:
                    await repo.nudge(s, vid)  # what the callback route does
                    await s.commit()
                return snap("in_progress", 30)

            vendor.script["poll"] = [poll_then_callback, snap("in_progress", 60)]
            await r.step(vid)
            row = await r.video(vid)
            assert row.progress == 30 and row.next_poll_at <= time.time()
            assert await r.step() == 1  # due now, without making it so
            assert (await r.video(vid)).progress == 60

    async def test_a_task_whose_channel_is_unknown_waits_instead_of_polling(self, database_url, tmp_path) -> None:
        """Never polled with another credential: the operator may restore the channel."""
        vendor = ScriptedProvider()
        async with rig(database_url, tmp_path, vendor) as r:
            vid = (await r.create()).id
            await r.write(vid, channel_fp="f" * 32)  # a channel neither configured nor recorded
            t0 = time.time()
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.poll_errors, row.claimed_by) == ("queued", 1, None)
            assert row.next_poll_at >= t0 + r.gw.settings.poll_max_interval_ms / 1000
        assert vendor.polled == []


class TestCompletion:
    async def test_completed_downloads_derives_probes_and_settles(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("completed", 100, meta={"vendor_video": "v-9"})])
        async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
            vid = (await r.create(size="128x128", seconds=4)).id
            assert await r.used() == 6.0  # 4 s reserved
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.progress, row.error_code) == ("completed", 100, None)
            # what was produced (a 2 s 96x64 clip), not what was asked for
            assert (row.width, row.height, row.seconds) == (96, 64, 2)
            assert row.completed_at is not None
            assert row.expires_at == row.completed_at + r.gw.settings.retention_hours * 3600
            assert row.vendor_meta["vendor_video"] == "v-9"
            assert row.claimed_by is None and row.next_poll_at is None
            # charged for the 2 s produced, the rest of the reservation given back
            assert (row.settlement, row.charged_credits) == ("charged", 3.0)
            assert await r.used() == 3.0

            assert await r.gw.storage.read_bytes(row.assets["video"]["key"]) == CLIP
            assert row.assets["video"]["bytes"] == len(CLIP)
            # the variants are made when first asked for, not by the engine (most clients never ask)
            later = {v: a for v, a in row.assets.items() if v != "video"}
            assert set(later) == {"thumbnail", "spritesheet"} and all(a["derive"] for a in later.values())
            assert not [a for a in later.values() if await r.gw.storage.exists(a["key"])]
            async with await r.http() as c:
                resp = await c.get(f"/v1/videos/{vid}/content", headers=r.auth)
                thumb = await c.get(f"/v1/videos/{vid}/content?variant=thumbnail", headers=r.auth)
                sheet = await c.get(f"/v1/videos/{vid}/content?variant=spritesheet", headers=r.auth)
            assert resp.status_code == 200 and mp4_info(resp.content)[1:3] == (96, 64)
            assert (thumb.status_code, thumb.headers["content-type"]) == (200, "image/webp")
            assert image_format(thumb.content) == ("WEBP", (96, 64))
            assert (sheet.status_code, image_format(sheet.content)[0]) == (200, "JPEG")
            assert await r.gw.storage.read_bytes(later["spritesheet"]["key"]) == sheet.content  # stored once made

            await r.make_due(vid)
            assert await r.step() == 0  # a finished task is never claimed again
        assert len(vendor.downloaded) == 1

    async def test_the_vendors_variants_are_not_fetched_unless_the_channel_asks(self, database_url, tmp_path) -> None:
        """Vendor requests go where they matter: by default both variants are derived from the video."""
        thumb = solid_image((200, 10, 10), (96, 64), fmt="WEBP")
        vendor = VariantProvider(polls=[snap("completed")], variants={"thumbnail": thumb, "spritesheet": thumb})
        async with rig(database_url, tmp_path, vendor, fetch_variants=False) as r:
            vid = (await r.create()).id
            await r.step(vid)
            row = await r.video(vid)
            assert row.status == "completed"
            async with await r.http() as c:
                got = await c.get(f"/v1/videos/{vid}/content?variant=thumbnail", headers=r.auth)
            assert got.status_code == 200 and got.content != thumb  # derived from the video
            assert vendor.variant_requests == []

    async def test_the_vendors_own_thumbnail_is_kept_and_a_broken_one_replaced(self, database_url, tmp_path) -> None:
        thumb = solid_image((200, 10, 10), (96, 64), fmt="WEBP")
        vendor = VariantProvider(polls=[snap("completed")], variants={"thumbnail": thumb, "spritesheet": b"<html>"})
        async with rig(database_url, tmp_path, vendor) as r:
            vid = (await r.create()).id
            await r.step(vid)
            row = await r.video(vid)
            assert row.status == "completed"
            assert await r.gw.storage.read_bytes(row.assets["thumbnail"]["key"]) == thumb
            sheet = await r.gw.storage.read_bytes(row.assets["spritesheet"]["key"])
            assert image_format(sheet)[0] == "JPEG"  # not the vendor's error page: derived from the video

    async def test_failed_in_band_keeps_the_vendors_code_and_message(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(
            polls=[snap("failed", error_code="content_policy_violation", error_message="The prompt was flagged.")]
        )
        async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
            vid = (await r.create()).id
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.error_code, row.error_message) == (
                "failed",
                "content_policy_violation",
                "The prompt was flagged.",
            )
            assert row.completed_at is not None and row.next_poll_at is None and row.claimed_by is None
            assert (row.settlement, row.charged_credits) == ("refunded", 0.0)
            assert await r.used() == 0.0
            async with await r.http() as c:
                body = (await c.get(f"/v1/videos/{vid}", headers=r.auth)).json()
            assert body["status"] == "failed"
            assert body["error"] == {"code": "content_policy_violation", "message": "The prompt was flagged."}
        assert vendor.downloaded == []

    async def test_failed_without_a_code_is_generation_failed(self, database_url, tmp_path) -> None:
        async with rig(database_url, tmp_path, ScriptedProvider(polls=[snap("failed")])) as r:
            vid = (await r.create()).id
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.error_code) == ("failed", "generation_failed")
            assert row.error_message

    async def test_a_task_the_vendor_no_longer_knows_fails(self, database_url, tmp_path) -> None:
        gone = pb.NotFoundAtVendor(VENDOR, "Task not found.", vendor_code="404")
        async with rig(database_url, tmp_path, ScriptedProvider(polls=[gone]), prices=PRICE) as r:
            vid = (await r.create()).id
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.error_code, row.error_message) == (
                "failed",
                "vendor_task_not_found",
                "Task not found.",
            )
            assert row.settlement == "refunded" and await r.used() == 0.0


class TestPollErrors:
    async def test_a_5xx_on_poll_is_retried_with_backoff_and_counted(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[unavailable(), unavailable(), snap("in_progress", 30)])
        async with rig(database_url, tmp_path, vendor, poll_interval_ms=100) as r:
            vid = (await r.create()).id
            base = 0.1
            for errors in (1, 2):
                t0 = time.time()
                await r.step(vid)
                row = await r.video(vid)
                assert (row.status, row.poll_errors, row.error_code) == ("queued", errors, None)
                assert row.claimed_by is None
                # exponential backoff with +-20 % jitter: 0.2 s after one error, 0.4 s after two
                delay = base * 2**errors
                assert _within(row.next_poll_at, t0 + 0.8 * delay, time.time() + 1.2 * delay), row.next_poll_at - t0
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.progress, row.poll_errors) == ("in_progress", 30, 0)  # a success resets it

    async def test_a_rate_limited_poll_waits_for_the_vendors_retry_after(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[pb.RateLimited(VENDOR, "slow down", retry_after=7)])
        async with rig(database_url, tmp_path, vendor) as r:
            vid = (await r.create()).id
            t0 = time.time()
            await r.step(vid)
            row = await r.video(vid)
            assert row.status == "queued" and row.poll_errors == 1
            assert _within(row.next_poll_at, t0 + 7, time.time() + 7)

    async def test_an_unexpected_error_in_the_adapter_is_rescheduled_not_fatal(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[KeyError("status"), snap("in_progress", 10)])
        async with rig(database_url, tmp_path, vendor) as r:
            vid = (await r.create()).id
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.poll_errors, row.claimed_by) == ("queued", 1, None)
            await r.step(vid)
            assert (await r.video(vid)).status == "in_progress"


class TestDownloads:
    async def test_a_failed_download_is_retried_then_completes(self, database_url, tmp_path) -> None:
        # a 5xx, then an HTML error page served with 200 (it does not decode), then the video
        vendor = ScriptedProvider(polls=[snap("completed")], downloads=[unavailable(), b"<html>oops</html>", CLIP])
        async with rig(database_url, tmp_path, vendor) as r:
            vid = (await r.create()).id
            for attempt in (1, 2):
                await r.step(vid)
                row = await r.video(vid)
                assert row.status == "queued" and row.download_attempts == attempt
                assert row.claimed_by is None and row.next_poll_at > time.time()
            await r.step(vid)
            row = await r.video(vid)
            assert row.status == "completed"
            assert await r.gw.storage.read_bytes(row.assets["video"]["key"]) == CLIP
        assert len(vendor.downloaded) == 3

    async def test_downloads_failing_up_to_the_limit_fail_the_task(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(polls=[snap("completed")], downloads=[unavailable()])
        async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
            vid = (await r.create()).id
            for _ in range(MAX_DOWNLOAD_ATTEMPTS - 1):
                await r.step(vid)
                assert (await r.video(vid)).status == "queued"
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.error_code) == ("failed", "asset_unavailable")
            assert (row.settlement, await r.used()) == ("refunded", 0.0)
            assert row.assets == {}
            assert not await r.gw.storage.exists(f"videos/{vid}/video.mp4")
            await r.make_due(vid)
            assert await r.step() == 0  # nor claimed again
        assert len(vendor.downloaded) == MAX_DOWNLOAD_ATTEMPTS


class TestSubmitRetries:
    async def test_a_5xx_at_submit_is_retried_by_the_engine(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(submits=[unavailable(), None])
        async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
            row = await r.create()  # the client gets its id: the engine retries
            stored = await r.video(row.id)
            assert (stored.status, stored.vendor_task_id, stored.claimed_by) == ("queued", None, None)
            assert await r.used() == 6.0  # still reserved

            await r.step(row.id)
            stored = await r.video(row.id)
            assert stored.vendor_task_id == vendor.accepted[row.id].vendor_task_id
            assert stored.status == "queued" and stored.claimed_by is None
        assert [q.task_id for q in vendor.submitted] == [row.id, row.id]
        assert vendor.polled == []  # polled only at the next step

    async def test_a_submit_that_keeps_failing_fails_after_the_limit(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(submits=[unavailable()])
        async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
            vid = (await r.create()).id
            for attempt in range(1, MAX_SUBMIT_ATTEMPTS):
                t0 = time.time()
                await r.step(vid)
                row = await r.video(vid)
                assert row.status == "queued" and row.submit_attempts == attempt
                assert row.next_poll_at > t0  # backed off
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.error_code) == ("failed", "upstream_unavailable")
            assert row.error_message.startswith("No channel accepted the task")
            assert (row.settlement, await r.used()) == ("refunded", 0.0)
        assert len(vendor.submitted) == 1 + MAX_SUBMIT_ATTEMPTS  # the create's own try, then the engine's

    async def test_a_rejection_on_the_engines_retry_fails_with_the_vendors_code(self, database_url, tmp_path) -> None:
        no = pb.Rejected(VENDOR, "The prompt was refused.", vendor_code="content_moderation")
        async with rig(database_url, tmp_path, ScriptedProvider(submits=[unavailable(), no]), prices=PRICE) as r:
            vid = (await r.create()).id
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.error_code, row.error_message) == (
                "failed",
                "content_moderation",
                "The prompt was refused.",
            )
            assert await r.used() == 0.0

    async def test_a_retry_for_a_model_no_channel_serves_any_more_fails(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(submits=[unavailable(), None])
        async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
            vid = (await r.create()).id
            r.channels[0].enabled = False  # the operator disabled the only channel meanwhile
            await r.step(vid)
            row = await r.video(vid)
            assert (row.status, row.error_code) == ("failed", "model_unavailable")
            assert await r.used() == 0.0
        assert len(vendor.submitted) == 1


class TestLeases:
    async def test_claim_taken_during_a_poll_the_old_engine_writes_nothing(self, database_url, tmp_path) -> None:
        """The vendor answers `completed` after another worker took the claim over: the old engine neither
        finalises nor charges nor releases the new owner's claim."""
        answered = asyncio.Event()
        vendor = ScriptedProvider()
        async with rig(database_url, tmp_path, vendor, prices=PRICE, claim_lease_s=30) as r:
            vid = (await r.create()).id
            before = await r.video(vid)

            async def poll_while_taken(task: pb.VendorTask) -> pb.TaskSnapshot:
                await r.write(vid, claimed_by="engine:other", claimed_until=time.time() + 60)
                answered.set()
                return snap("completed", 100)

            vendor.script["poll"] = [poll_while_taken]
            await r.step(vid)
            assert answered.is_set()
            row = await r.video(vid)
            assert row.claimed_by == "engine:other"
            assert (row.status, row.progress, row.poll_count, row.assets) == ("queued", 0, 0, {})
            assert (row.settlement, row.completed_at) == (None, None)
            assert row.vendor_task_id == before.vendor_task_id
            assert await r.used() == 6.0  # still only reserved

    async def test_claim_taken_while_the_vendor_hangs_stops_the_work(self, database_url, tmp_path) -> None:
        """A heartbeat that finds the row claimed by another worker cancels the work in flight."""
        started, cancelled = asyncio.Event(), asyncio.Event()

        async def hang(task: pb.VendorTask) -> pb.TaskSnapshot:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            raise AssertionError("unreachable")

        vendor = ScriptedProvider(polls=[hang])
        async with rig(database_url, tmp_path, vendor, claim_lease_s=0.6) as r:
            vid = (await r.create()).id
            await r.make_due(vid)
            assert await r.engine.run_once() == 1
            await asyncio.wait_for(started.wait(), 10)
            await r.write(vid, claimed_by="engine:other", claimed_until=time.time() + 60)
            await asyncio.wait_for(r.engine.drain(), 10)  # the heartbeat (every 0.2 s) notices
            assert cancelled.is_set()
            row = await r.video(vid)
            assert (row.claimed_by, row.status, row.poll_count, row.poll_errors) == ("engine:other", "queued", 0, 0)

    async def test_a_held_claim_is_not_claimed_by_a_second_engine(self, database_url, tmp_path) -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def slow(task: pb.VendorTask) -> pb.TaskSnapshot:
            started.set()
            await release.wait()
            return snap("in_progress", 20)

        vendor = ScriptedProvider(polls=[slow])
        async with rig(database_url, tmp_path, vendor) as r:
            vid = (await r.create()).id
            await r.make_due(vid)
            assert await r.engine.run_once() == 1
            await asyncio.wait_for(started.wait(), 10)
            other = TaskEngine(r.gw)
            assert await other.run_once() == 0
            release.set()
            await r.engine.drain()
            assert (await r.video(vid)).progress == 20
        assert len(vendor.polled) == 1


class TestCrashRecovery:
    """A crash between the vendor's submit and storing its id leaves a row with no vendor id and a claim
    that runs out; the engine then takes the row over."""

    async def _crashed(self, r, vendor) -> str:
        with pytest.raises(Crash):
            await r.create()
        (req,) = vendor.submitted
        stored = await r.video(req.task_id)
        assert stored.vendor_task_id is None and stored.claimed_by is not None
        assert stored.channel == vendor.name  # the channel tried was recorded before the call
        assert await r.step() == 0  # nobody takes it while the creator's claim lasts
        # the creator is dead: its claim runs out
        await r.write(req.task_id, claimed_until=time.time() - 1, next_poll_at=time.time() - 1)
        return req.task_id

    async def test_a_recoverable_vendor_is_asked_before_submitting_again(self, database_url, tmp_path) -> None:
        vendor = RecoverableProvider(submits=[AcceptThenCrash(), None], polls=[snap("completed")])
        async with rig(database_url, tmp_path, vendor, prices=PRICE) as r:
            vid = await self._crashed(r, vendor)
            assert await r.step() == 1
            row = await r.video(vid)
            assert row.vendor_task_id == vendor.accepted[vid].vendor_task_id
            assert row.claimed_by is None and row.status == "queued"
            assert vendor.recovered == [vid]
            await r.step(vid)
            assert (await r.video(vid)).status == "completed"
        assert len(vendor.submitted) == 1  # found, never submitted twice

    async def test_without_recover_the_engine_submits_again(self, database_url, tmp_path) -> None:
        vendor = ScriptedProvider(submits=[AcceptThenCrash(), None])
        async with rig(database_url, tmp_path, vendor) as r:
            vid = await self._crashed(r, vendor)
            first = vendor.accepted[vid]
            await r.step()
            row = await r.video(vid)
            assert row.vendor_task_id is not None and row.vendor_task_id != first.vendor_task_id
            assert row.vendor_task_id == vendor.accepted[vid].vendor_task_id
        assert len(vendor.submitted) == 2

    async def test_a_recoverable_vendor_that_never_got_it_is_submitted_to(self, database_url, tmp_path) -> None:
        # the crash came before the request reached the vendor: recover finds nothing
        async def crash_before(req: pb.GenerationRequest) -> None:
            raise Crash

        vendor = RecoverableProvider(submits=[crash_before, None])
        async with rig(database_url, tmp_path, vendor) as r:
            vid = await self._crashed(r, vendor)
            assert vendor.accepted == {}
            await r.step()
            row = await r.video(vid)
            assert vendor.recovered == [vid]
            assert row.vendor_task_id == vendor.accepted[vid].vendor_task_id
        assert len(vendor.submitted) == 2
