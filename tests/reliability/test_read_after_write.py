"""Read-your-writes over real HTTP: once the client has the answer to a write, the next request sees it.

Through `ASGITransport` a request ends when the app does, so this needs a real server: there, FastAPI's
default for dependencies with `yield` ran the request session's commit after the response had gone out,
and a DELETE followed at once by a GET could still find the video."""

from __future__ import annotations

import asyncio

import httpx

from app.main import create_app
from tests.conftest import LiveServer, make_settings
from tests.fakes.assets import real_mp4
from tests.reliability.rig import make_key
from tests.support.api import finish

N = 60


async def test_a_write_is_visible_to_the_very_next_request(own_database, tmp_path) -> None:
    key = await make_key(own_database)
    with LiveServer(create_app(make_settings(own_database, tmp_path / "data", sandbox_fps=4))) as server:
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as c:
            body = {"prompt": "raw", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}
            ids = [(await c.post("/v1/videos", json=body)).json()["id"] for _ in range(N)]
            await asyncio.gather(*(finish(c, {}, vid) for vid in ids))
            for vid in ids:
                assert (await c.delete(f"/v1/videos/{vid}")).json()["deleted"] is True
                r = await c.get(f"/v1/videos/{vid}")
                assert r.status_code == 404, r.text
            mp4 = real_mp4(frames=4)
            for i in range(N // 3):
                r = await c.post("/v1/videos/characters", data={"name": f"c{i}"}, files={"video": ("c.mp4", mp4)})
                assert r.status_code == 200, r.text
                assert (await c.get(f"/v1/videos/characters/{r.json()['id']}")).status_code == 200
