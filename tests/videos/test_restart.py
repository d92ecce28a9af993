"""Tasks in flight survive a restart; nothing is finalised twice."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.main import create_app
from app.videos import repository as repo
from app.videos.models import Video
from tests.conftest import make_settings, new_key

pytestmark = pytest.mark.engine  # these tests watch videos finish


async def _status(app, ids: list[str]) -> dict[str, str]:
    async with app.state.gateway.sessionmaker() as s:
        return {i: (await s.get(Video, i)).status for i in ids}


async def test_tasks_in_flight_complete_after_a_restart(database_url, tmp_path) -> None:
    storage = tmp_path / "data"
    first = create_app(make_settings(database_url, storage, sandbox_latency_ms=600))
    async with first.router.lifespan_context(first):
        key = await new_key(first)
        h = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://t") as c:
            ids = []
            for i in range(4):
                r = await c.post("/v1/videos", headers=h, json={"prompt": f"r{i}", "seconds": "1", "size": "64x64"})
                assert r.status_code == 200
                ids.append(r.json()["id"])
        # one task was claimed by a worker that then died (its claim is still on the row)
        async with first.state.gateway.sessionmaker() as s:
            await repo.claim_due(s, owner="dead-worker", limit=100, lease=3600, skip_locked=False)
            await s.commit()
    # the first server is gone with every task unfinished
    assert set((await _status_direct(database_url, storage, ids)).values()) <= {"queued", "in_progress"}

    second = create_app(make_settings(database_url, storage, sandbox_latency_ms=600))
    async with second.router.lifespan_context(second):
        for _ in range(300):
            states = await _status(second, ids)
            if set(states.values()) == {"completed"}:
                break
            await asyncio.sleep(0.05)
        assert set(states.values()) == {"completed"}, states
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as c:
            for vid in ids:
                r = await c.get(f"/v1/videos/{vid}/content", headers=h)
                assert r.status_code == 200 and r.content[4:8] == b"ftyp"


async def _status_direct(database_url, storage, ids):
    app = create_app(make_settings(database_url, storage, run_engine=False))
    async with app.router.lifespan_context(app):
        return await _status(app, ids)


async def test_terminal_transition_is_compare_and_set(app, client, auth) -> None:
    from tests.support.api import finish

    r = await client.post(
        "/v1/videos",
        headers=auth,
        json={"prompt": "cas", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
    )
    body = await finish(client, auth, r.json()["id"])
    async with app.state.gateway.sessionmaker() as s:
        changed = await repo.update_active(s, body["id"], status="failed", error_code="late")
        await s.commit()
    assert changed is False
    again = (await client.get(f"/v1/videos/{body['id']}", headers=auth)).json()
    assert again["status"] == "completed" and again["error"] is None
