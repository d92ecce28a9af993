"""Claims are leases held for as long as the work on a task runs: a slow vendor submit (failover included)
or a long download is never taken up by a second worker, and a worker that lost its lease stops.

Leases are scaled down with settings (a 1 s lease against a vendor that answers after 3 s) so the tests
are quick; the ratios are those of the issue (a 30 s grace, a vendor answering after 40 s)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.channels import service as channels
from app.db import now
from app.gateway import aclose, open_gateway
from app.main import create_app
from app.providers.sandbox import SandboxProvider
from app.videos import engine as engine_module
from app.videos.engine import TaskEngine
from app.videos.models import Video
from tests.conftest import make_settings, new_key
from tests.fakes import openai_upstream
from tests.reliability.rig import _read_body, _replay, until
from tests.support.api import finish

pytestmark = pytest.mark.engine  # these tests watch videos finish

LEASE_S = 1


class SlowCreates:
    """Around a fake OpenAI-format upstream: each create is read, counted, then held for `hold` seconds
    before the upstream takes it (a vendor that accepted the task but answers late)."""

    def __init__(self, app: Any, *, hold: float) -> None:
        self.app, self.hold = app, hold
        self.creates = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/videos":
            body, gone = await _read_body(receive)
            if gone:
                return
            self.creates += 1
            await asyncio.sleep(self.hold)
            await self.app(scope, _replay(body), send)
            return
        await self.app(scope, receive, send)


def _channel(name: str, tag: str, *, priority: int) -> dict[str, Any]:
    return {
        "name": name,
        "vendor": "openai_compat",
        "credentials": {"api_key": f"sk-{name}-{tag}"},
        "base_url": f"http://{name}-{tag}/v1",
        "models": ["sora-2"],
        "priority": priority,
    }


@pytest.mark.parametrize(
    ("holds", "first_fails"),
    [
        pytest.param({"a": 3.0}, False, id="one-slow-channel"),
        pytest.param({"a": 1.5, "b": 2.0}, True, id="slow-failure-then-slow-failover"),
    ],
)
async def test_a_slow_vendor_submit_is_submitted_once(own_database, tmp_path, holds, first_fails) -> None:
    import yaml

    tag = uuid.uuid4().hex[:8]
    fakes = {n: openai_upstream.make_app(api_key=f"sk-{n}-{tag}", poll_after_ms=20) for n in holds}
    if first_fails:
        fakes["a"][1].arm("500")  # the first channel answers its (late) create with a 500: fail over
    slow = {n: SlowCreates(app, hold=holds[n]) for n, (app, _) in fakes.items()}
    config = tmp_path / "gw.yaml"
    chans = [_channel(n, tag, priority=10 - i) for i, n in enumerate(holds)]
    config.write_text(yaml.safe_dump({"channels": chans, "sandbox": False}))
    http = httpx.AsyncClient(
        mounts={f"http://{n}-{tag}": httpx.ASGITransport(app=w) for n, w in slow.items()}, timeout=10
    )
    gateway = create_app(
        make_settings(
            own_database,
            tmp_path / "data",
            config=config,
            claim_lease_s=LEASE_S,
            vendor_timeout_s=10,
            poll_interval_ms=30,
            poll_max_interval_ms=60,
        ),
        http=http,
    )
    async with gateway.router.lifespan_context(gateway):
        auth = {"Authorization": f"Bearer {await new_key(gateway)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw", timeout=30) as c:
            body = {"prompt": "slow submit", "model": "sora-2", "seconds": "4", "size": "720x1280"}
            r = await c.post("/v1/videos", headers=auth, json=body)
            assert r.status_code == 200, r.text
            done = await finish(c, auth, r.json()["id"], timeout=20)
        await gateway.state.gateway.engine.drain()
    assert done["status"] == "completed", done
    # exactly one vendor task: the engine never submitted the row while the first submit was in flight
    assert {n: w.creates for n, w in slow.items()} == dict.fromkeys(holds, 1)
    tasks = {n: len(state.tasks) for n, (_, state) in fakes.items()}
    assert sum(tasks.values()) == 1, tasks
    await http.aclose()


class Engines:
    """Task engines on one database and one asset store, each with a gateway of its own (like workers)."""

    def __init__(self, settings: Any, n: int) -> None:
        self.settings, self.n = settings, n
        self.gateways: list[Any] = []

    async def __aenter__(self) -> list[TaskEngine]:
        for _ in range(self.n):
            gw = await open_gateway(self.settings)
            await channels.sync(gw)
            gw.engine = TaskEngine(gw)
            await gw.engine.start()
            self.gateways.append(gw)
        return [gw.engine for gw in self.gateways]

    async def __aexit__(self, *exc: Any) -> None:
        for gw in self.gateways:
            await aclose(gw, grace_s=5)


def _counting_finalisations(monkeypatch: pytest.MonkeyPatch, tag: str) -> Counter[tuple[str, str]]:
    """Each terminal transition announces itself once, in its own transaction: count those."""
    finals: Counter[tuple[str, str]] = Counter()
    original = engine_module.enqueue_video_event

    async def counting(session: Any, row: Video, *, status: str) -> Any:
        if row.prompt == tag:
            finals[(row.id, status)] += 1
        return await original(session, row, status=status)

    monkeypatch.setattr(engine_module, "enqueue_video_event", counting)
    return finals


async def _create(api: Any, tag: str) -> str:
    auth = {"Authorization": f"Bearer {await new_key(api)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        body = {"prompt": tag, "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}
        r = await c.post("/v1/videos", headers=auth, json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["id"])


async def _row(api: Any, vid: str) -> Video:
    async with api.state.gateway.sessionmaker() as s:
        row = await s.get(Video, vid)
        assert row is not None
        return row


async def test_a_long_download_keeps_its_lease_against_a_second_engine(own_database, tmp_path, monkeypatch) -> None:
    storage: Path = tmp_path / "shared"
    tag = f"lease-{uuid.uuid4().hex}"
    downloads: Counter[str] = Counter()
    original = SandboxProvider.download

    async def slow_download(self: SandboxProvider, task: Any, snap: Any) -> Any:
        downloads[task.vendor_task_id] += 1
        await asyncio.sleep(3 * LEASE_S)  # far longer than the lease: only a renewed lease keeps the task
        async for chunk in original(self, task, snap):
            yield chunk

    monkeypatch.setattr(SandboxProvider, "download", slow_download)
    finals = _counting_finalisations(monkeypatch, tag)
    api = create_app(make_settings(own_database, storage, run_engine=False))
    async with api.router.lifespan_context(api):
        settings = make_settings(own_database, storage, claim_lease_s=LEASE_S, poll_interval_ms=50)
        async with Engines(settings, 2):
            vid = await _create(api, tag)

            async def completed() -> bool:
                return (await _row(api, vid)).status == "completed"

            await until(completed, timeout=30, what="the video to complete")
    row = await _row(api, vid)
    assert dict(downloads) == {row.vendor_task_id: 1}
    assert finals == {(vid, "completed"): 1}
    assert row.claimed_by is None and row.claimed_until is None


async def test_an_engine_that_lost_its_lease_stops_and_does_not_finalise(own_database, tmp_path, monkeypatch) -> None:
    storage: Path = tmp_path / "d"
    tag = f"lost-{uuid.uuid4().hex}"
    downloads: list[str] = []
    started, cancelled = asyncio.Event(), asyncio.Event()
    original = SandboxProvider.download

    async def download(self: SandboxProvider, task: Any, snap: Any) -> Any:
        downloads.append(task.vendor_task_id)
        if len(downloads) == 1:  # the first download hangs until its work is cancelled
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise
        async for chunk in original(self, task, snap):
            yield chunk

    monkeypatch.setattr(SandboxProvider, "download", download)
    finals = _counting_finalisations(monkeypatch, tag)
    api = create_app(make_settings(own_database, storage, run_engine=False))
    async with api.router.lifespan_context(api):
        settings = make_settings(own_database, storage, claim_lease_s=LEASE_S, poll_interval_ms=50)
        async with Engines(settings, 1):
            vid = await _create(api, tag)
            await asyncio.wait_for(started.wait(), 20)
            # another worker takes the task over (as after a long stall of this one)
            async with api.state.gateway.sessionmaker() as s:
                t = now()
                await s.execute(
                    update(Video)
                    .where(Video.id == vid)
                    .values(claimed_by="thief", claimed_until=t + 60, next_poll_at=t + 60)
                )
                await s.commit()
            await asyncio.wait_for(cancelled.wait(), 5 * LEASE_S)  # the heartbeat noticed and stopped the work
            await asyncio.sleep(0.3)  # room for a (wrong) write after the cancellation
            row = await _row(api, vid)
            assert row.status in ("queued", "in_progress") and row.claimed_by == "thief", (row.status, row.claimed_by)
            assert finals == Counter()
            # the thief hands the task back: it is worked on again and finishes once
            async with api.state.gateway.sessionmaker() as s:
                await s.execute(
                    update(Video).where(Video.id == vid).values(claimed_by=None, claimed_until=None, next_poll_at=now())
                )
                await s.commit()

            async def completed() -> bool:
                return (await _row(api, vid)).status == "completed"

            await until(completed, timeout=20, what="the video to complete")
    assert len(downloads) == 2
    assert finals == {(vid, "completed"): 1}


async def test_claim_due_skips_live_claims_and_rows_the_caller_works_on(own_database, tmp_path) -> None:
    from app.videos import repository as repo

    api = create_app(make_settings(own_database, tmp_path / "d", run_engine=False, poll_interval_ms=0))
    async with api.router.lifespan_context(api):
        vid = await _create(api, f"claim-{uuid.uuid4().hex}")
        maker = api.state.gateway.sessionmaker

        async def claim(owner: str, **kw: Any) -> list[str]:
            async with maker() as s:
                rows = await repo.claim_due(s, owner=owner, limit=10, lease=60, skip_locked=False, **kw)
                await s.commit()
            return [row.id for row, _ in rows]

        async def set_row(**values: Any) -> None:
            async with maker() as s:
                await s.execute(update(Video).where(Video.id == vid).values(**values))
                await s.commit()

        await set_row(next_poll_at=now() - 1)
        assert await claim("a") == [vid]
        # due again (e.g. a callback while unclaimed) but the claim is live: nobody else takes it
        await set_row(next_poll_at=now() - 1)
        assert await claim("b") == []
        async with maker() as s:
            assert not await repo.renew_claim(s, vid, owner="b", lease=60)
            assert await repo.renew_claim(s, vid, owner="a", lease=60)
            await s.commit()
        # the claim ran out: the engine still working on it never claims it twice, another one may
        await set_row(next_poll_at=now() - 1, claimed_until=now() - 1)
        assert await claim("a", exclude={vid}) == []
        assert await claim("b") == [vid]
        assert (await _row(api, vid)).claimed_by == "b"
        async with maker() as s:  # the former holder writes nothing any more
            assert not await repo.release(s, vid, "a", progress=50)
            assert await repo.release(s, vid, "b", progress=50)
            await s.commit()
        row = await _row(api, vid)
        assert (row.progress, row.claimed_by, row.claimed_until) == (50, None, None)
