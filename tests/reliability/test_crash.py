"""kill -9 of a real `vidgate serve` process with 200 tasks in flight, some mid-submit, then a restart:
every task finishes, no vendor task is created twice, no asset is lost.

The vendor is the fake Kling: creates carry vidgate's id as `external_task_id`, and the gateway's
`recover` looks a task up by it before submitting again, so "never twice" is a property the gateway can
keep. (The OpenAI-format protocol has no idempotency key: a create that reached such an upstream just
before a crash cannot be found again, and the engine resubmits it — a duplicate no gateway can avoid.)
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fakes import kling
from tests.reliability.rig import GatewayProcess, SlowCreates, all_rows, gateway_env, logs_on_failure, until
from tests.support.media import mp4_info

pytestmark = pytest.mark.engine  # these tests watch videos finish

N = 200
KEY = "sk-vg-reliability-crash-0123456789abcdef"
CREATE = {"model": "kling-v1", "size": "1280x720", "seconds": "5"}


async def test_kill_9_with_200_tasks_in_flight_then_restart(own_database, tmp_path, monkeypatch) -> None:
    fake, state = kling.make_app(concurrency=10 * N)
    vendor = SlowCreates(fake, delay=(0.1, 1.2))
    server = LiveServer(vendor)
    # the fake's result URLs name Kling's CDN; the child process reaches the fake through them
    monkeypatch.setattr(kling, "CDN", f"{server.url}/bs2/upload-kling-api/5739745938")
    env = gateway_env(
        own_database,
        tmp_path / "data",
        bootstrap_api_key=KEY,
        kling_access_key=kling.AK,
        kling_secret_key=kling.SK,
        kling_base_url=server.url,
        poll_interval_ms=100,
        poll_max_interval_ms=300,
        engine_tick_ms=50,
        claim_lease_s=3,
        poll_concurrency=32,
        vendor_timeout_s=20,
    )
    auth = {"Authorization": f"Bearer {KEY}"}
    first = GatewayProcess(env, tmp_path, "first")
    second = GatewayProcess(env, tmp_path, "second")
    with server, logs_on_failure(first, second):
        await first.start()
        killed = asyncio.Event()
        acknowledged: list[str] = []
        gate = asyncio.Semaphore(40)  # creates keep arriving while earlier tasks are polled and downloaded

        async def create(c: httpx.AsyncClient, i: int) -> None:
            async with gate:
                if killed.is_set():
                    return
                try:
                    r = await c.post(f"{first.url}/v1/videos", headers=auth, json={**CREATE, "prompt": f"crash {i}"})
                except httpx.HTTPError:
                    assert killed.is_set()
                    return
                assert r.status_code == 200, r.text
                acknowledged.append(r.json()["id"])

        try:
            async with httpx.AsyncClient(timeout=60) as c:
                senders = [asyncio.create_task(create(c, i)) for i in range(N)]

                # the moment: creates held at the vendor, polls under way, some tasks finished, more to come
                def in_flight() -> bool:
                    return sum(vendor.creates.values()) >= N // 2 and vendor.holding >= 3 and vendor.polling > 0

                async def moment() -> bool:
                    if not in_flight() or vendor.downloads < 3:
                        return False
                    finished = [r for r in await all_rows(own_database) if r.status == "completed"]
                    return len(finished) >= 3 and in_flight()

                await until(moment, timeout=90, every=0.01, what="creates, polls and downloads in flight")
                first.kill()
                killed.set()
                holding_at_kill = vendor.holding
                await asyncio.gather(*senders)
        finally:
            first.stop()

        rows = await all_rows(own_database)
        assert 0 < len(acknowledged) < N and len(rows) >= len(acknowledged)
        unsubmitted = {r.id for r in rows if r.vendor_task_id is None}
        done_before = {r.id for r in rows if r.status == "completed"}
        assert unsubmitted and done_before, "the kill should catch tasks mid-submit and tasks already finished"
        assert holding_at_kill > 0

        # the held creates reach the vendor now, with nobody left to hear their ids
        await until(lambda: vendor.holding == 0, timeout=10, what="held creates to land")
        reached_vendor = set(vendor.creates)
        try:
            await second.start()

            async def settled() -> bool:
                return all(r.status in ("completed", "failed") for r in await all_rows(own_database))

            # tasks cut off mid-submit are taken over once their submitter's claim runs out (claim_lease_s):
            # while it is renewed, another replica might still be submitting them
            await until(settled, timeout=120, every=0.5, what="every task to finish after the restart")
            rows = await all_rows(own_database)
            by_id = {r.id: r for r in rows}

            assert set(acknowledged) <= set(by_id), "a task the client was told about is gone"
            assert {r.status for r in rows} == {"completed"}, {r.id: (r.status, r.error_code) for r in rows}

            # never twice: one create per gateway task reached the vendor, and it is the task the row names
            duplicates = {ext: n for ext, n in vendor.creates.items() if n != 1}
            assert duplicates == {}
            at_vendor = {t.external_task_id: t.task_id for t in state.tasks.values()}
            assert len(at_vendor) == len(state.tasks), "two vendor tasks for one gateway task"
            assert at_vendor == {r.id: r.vendor_task_id for r in rows}
            # some reached the vendor although the first process died before hearing the id: found, not resent
            assert unsubmitted & reached_vendor

            # no asset lost: every variant of every task downloads, and the video decodes
            async with httpx.AsyncClient(base_url=second.url, headers=auth, timeout=30) as c:
                for vid in sorted(by_id):
                    r = await c.get(f"/v1/videos/{vid}/content")
                    assert r.status_code == 200, (vid, r.text)
                    assert mp4_info(r.content)[4] > 0
                    for variant in ("thumbnail", "spritesheet"):
                        r = await c.head(f"/v1/videos/{vid}/content", params={"variant": variant})
                        assert r.status_code == 200, (vid, variant)
        finally:
            second.stop()
        for proc in (first, second):
            assert KEY not in proc.log_text()
            assert "Traceback" not in proc.log_text(), proc.log_text()[-4000:]
