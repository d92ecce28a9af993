"""Two replicas of the gateway (each with its own engine) on one PostgreSQL, 1,000 tasks: each submitted
once, never polled by both replicas at the same moment, all completed with their assets.

PostgreSQL only: several replicas on one database is a PostgreSQL deployment (FOR UPDATE SKIP LOCKED);
SQLite means one process. CI runs this suite on PostgreSQL too (.ci/run), so it is never skipped there."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack

import httpx
import pytest
from sqlalchemy import func, select

from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.providers.sandbox import SandboxProvider
from app.videos.models import Video
from tests.conftest import PG_URL, make_settings, new_key
from tests.reliability.rig import until

N = 1000

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="replicas share a PostgreSQL database; CI runs this suite on PostgreSQL as well"
)


async def test_two_replicas_share_1000_tasks(own_database, tmp_path, monkeypatch) -> None:
    storage = tmp_path / "shared"  # one asset store, as with S3 or a shared volume
    submits: Counter[str] = Counter()
    polling: set[str] = set()
    overlaps: list[str] = []
    polls_by: Counter[int] = Counter()
    downloads: Counter[str] = Counter()
    original = SandboxProvider.submit, SandboxProvider.poll, SandboxProvider.download

    async def submit(self, req):
        submits[req.task_id] += 1
        return await original[0](self, req)

    async def poll(self, task):
        if task.vendor_task_id in polling:
            overlaps.append(task.vendor_task_id)
        polling.add(task.vendor_task_id)
        polls_by[id(self)] += 1
        try:
            await asyncio.sleep(0.002)  # widen the window a double claim would need
            return await original[1](self, task)
        finally:
            polling.discard(task.vendor_task_id)

    async def download(self, task, snap):
        downloads[task.vendor_task_id] += 1
        async for chunk in original[2](self, task, snap):
            yield chunk

    monkeypatch.setattr(SandboxProvider, "submit", submit)
    monkeypatch.setattr(SandboxProvider, "poll", poll)
    monkeypatch.setattr(SandboxProvider, "download", download)

    def replica():
        return create_app(
            make_settings(
                own_database,
                storage,
                sandbox_latency_ms=0,
                sandbox_fps=4,
                engine_tick_ms=20,
                poll_interval_ms=20,
                poll_max_interval_ms=100,
                poll_concurrency=12,
                claim_lease_s=30,
                log_level="WARNING",
            )
        )

    replicas = [replica(), replica()]
    async with AsyncExitStack() as stack:
        for app in replicas:
            await stack.enter_async_context(app.router.lifespan_context(app))
        auth = {"Authorization": f"Bearer {await new_key(replicas[0])}"}
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r", headers=auth)
            )
            for app in replicas
        ]
        gate = asyncio.Semaphore(16)

        async def create(i: int) -> str:
            async with gate:
                body = {"prompt": f"replica {i}", "seconds": "1", "size": "64x64"}
                r = await clients[i % 2].post("/v1/videos", json=body)  # the load balancer alternates
                assert r.status_code == 200, r.text
                return r.json()["id"]

        ids = await asyncio.gather(*(create(i) for i in range(N)))
        engine = create_engine(own_database)
        try:
            maker = create_sessionmaker(engine)

            async def completed() -> bool:
                async with maker() as s:
                    q = select(func.count()).where(Video.status == "completed")
                    return (await s.execute(q)).scalar_one() == N

            await until(completed, timeout=150, every=0.5, what=f"{N} tasks to complete")
            async with maker() as s:
                rows = (await s.scalars(select(Video))).all()
        finally:
            await engine.dispose()

    assert len(rows) == N and {r.id for r in rows} == set(ids)
    assert set(submits) == set(ids) and set(submits.values()) == {1}  # each submitted once
    assert overlaps == []  # never polled by both at the same moment
    assert len(downloads) == N and set(downloads.values()) == {1}  # each finished once
    assert len(polls_by) == 2 and min(polls_by.values()) > N // 10  # both replicas did real work
    assert all(set(r.assets) == {"video", "thumbnail", "spritesheet"} for r in rows)
    assert all((storage / "assets" / r.assets["video"]["key"]).is_file() for r in rows)
