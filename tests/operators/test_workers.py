"""Two workers on one database share the task queue: every task is processed once, never by both at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter

import httpx
import pytest

from app.main import create_app
from app.providers.sandbox import SandboxProvider
from app.videos.models import Video
from app.worker import run_worker
from tests.conftest import make_settings, new_key

pytestmark = pytest.mark.engine  # these tests watch videos finish

N = 200


async def test_two_workers_share_200_tasks_without_double_processing(database_url, tmp_path, monkeypatch) -> None:
    storage = tmp_path / "shared"  # one asset store, as with S3 or a shared volume
    api = create_app(make_settings(database_url, storage, run_engine=False))
    tag = f"w-{uuid.uuid4().hex}"
    polling: set[str] = set()
    overlaps: list[str] = []
    downloads: Counter[str] = Counter()
    by_worker: Counter[int] = Counter()
    original_poll, original_download = SandboxProvider.poll, SandboxProvider.download

    async def poll(self, task):
        if task.vendor_task_id in polling:
            overlaps.append(task.vendor_task_id)
        polling.add(task.vendor_task_id)
        try:
            await asyncio.sleep(0.005)  # widen the window a double claim would need
            return await original_poll(self, task)
        finally:
            polling.discard(task.vendor_task_id)

    async def download(self, task, snap):
        if task.meta.get("prompt") == tag:  # other tests' leftovers in a shared database don't count
            downloads[task.vendor_task_id] += 1
            by_worker[id(self)] += 1
        async for chunk in original_download(self, task, snap):
            yield chunk

    monkeypatch.setattr(SandboxProvider, "poll", poll)
    monkeypatch.setattr(SandboxProvider, "download", download)

    async with api.router.lifespan_context(api):
        auth = {"Authorization": f"Bearer {await new_key(api)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
            body = {"prompt": tag, "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}
            ids = [(await c.post("/v1/videos", headers=auth, json=body)).json()["id"] for _ in range(N)]

        stop = asyncio.Event()
        # a lease far longer than any step: this test is about two workers never claiming one task, not
        # about leases running out (tests/reliability/test_leases.py) when a loaded SQLite delays renewals
        worker_settings = make_settings(database_url, storage, poll_concurrency=8, sandbox_fps=4, claim_lease_s=30)
        workers = [asyncio.create_task(run_worker(worker_settings, stop=stop, grace_s=5)) for _ in range(2)]
        try:
            for _ in range(1200):
                async with api.state.gateway.sessionmaker() as s:
                    from sqlalchemy import func, select

                    done = (
                        await s.execute(select(func.count()).where(Video.id.in_(ids), Video.status == "completed"))
                    ).scalar_one()
                if done == N:
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*workers)
    assert done == N
    assert overlaps == []
    assert len(downloads) == N and set(downloads.values()) == {1}
    if api.state.gateway.is_postgres:
        assert len(by_worker) == 2 and min(by_worker.values()) > 0  # both took part


@pytest.mark.parametrize("grace", [0.05])
async def test_graceful_stop_hands_back_unfinished_claims(database_url, tmp_path, grace) -> None:
    storage = tmp_path / "d"
    api = create_app(make_settings(database_url, storage, run_engine=False))
    async with api.router.lifespan_context(api):
        auth = {"Authorization": f"Bearer {await new_key(api)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
            body = {"prompt": "w", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}
            vid = (await c.post("/v1/videos", headers=auth, json=body)).json()["id"]
        original = SandboxProvider.poll

        async def slow_poll(self, task):
            await asyncio.sleep(30)
            return await original(self, task)

        SandboxProvider.poll = slow_poll
        try:
            stop = asyncio.Event()
            worker = asyncio.create_task(run_worker(make_settings(database_url, storage), stop=stop, grace_s=grace))
            for _ in range(100):
                async with api.state.gateway.sessionmaker() as s:
                    row = await s.get(Video, vid)
                if row.claimed_until is not None:
                    break
                await asyncio.sleep(0.05)
            assert row.claimed_until is not None
            stop.set()
            await worker
        finally:
            SandboxProvider.poll = original
        async with api.state.gateway.sessionmaker() as s:
            row = await s.get(Video, vid)
        import time

        assert row.claimed_until is None and row.next_poll_at <= time.time()  # due again at once


async def test_vidgate_worker_command_processes_tasks_and_stops_on_sigterm(database_url, tmp_path) -> None:
    storage = tmp_path / "d"
    api = create_app(make_settings(database_url, storage, run_engine=False))
    async with api.router.lifespan_context(api):
        auth = {"Authorization": f"Bearer {await new_key(api)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
            body = {"prompt": "cli worker", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}
            vid = (await c.post("/v1/videos", headers=auth, json=body)).json()["id"]
            env = {
                **os.environ,
                "VIDGATE_DATABASE_URL": database_url,
                "VIDGATE_STORAGE_DIR": str(storage),
                "VIDGATE_ENGINE_TICK_MS": "50",
                "VIDGATE_POLL_INTERVAL_MS": "100",
            }
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker", "--grace", "2"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                for _ in range(300):
                    status = (await c.get(f"/v1/videos/{vid}", headers=auth)).json()["status"]
                    if status == "completed":
                        break
                    await asyncio.sleep(0.1)
                assert status == "completed"
            finally:
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, 30)
            assert code == 0, proc.stdout.read().decode()[-2000:] if proc.stdout else ""
