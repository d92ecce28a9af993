"""The thumbnail and spritesheet are made when first asked for (app.videos.variants): concurrent first
requests derive once, the answer is the same as for a stored variant, and a video deleted meanwhile
leaves nothing behind in storage."""

from __future__ import annotations

import asyncio

import pytest

from app.media import derive
from tests.support.media import image_format
from tests.support.scripted import ScriptedProvider, rig, snap

pytestmark = pytest.mark.engine


async def test_concurrent_first_requests_derive_once(database_url, tmp_path, monkeypatch) -> None:
    calls = []
    real = derive.make_variants

    def counting(*args, **kwargs):  # runs in a worker thread
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(derive, "make_variants", counting)
    async with rig(database_url, tmp_path, ScriptedProvider(polls=[snap("completed")])) as r:
        vid = (await r.create()).id
        await r.step(vid)
        assert calls == []  # the engine stored the video alone
        async with await r.http() as c:
            answers = await asyncio.gather(
                *(c.get(f"/v1/videos/{vid}/content?variant={v}", headers=r.auth) for v in ["thumbnail"] * 4),
                c.get(f"/v1/videos/{vid}/content?variant=spritesheet", headers=r.auth),
            )
            again = await c.get(f"/v1/videos/{vid}/content?variant=thumbnail", headers=r.auth)
            ranged = await c.get(
                f"/v1/videos/{vid}/content?variant=spritesheet", headers={**r.auth, "Range": "bytes=0-9"}
            )
        assert [a.status_code for a in answers] == [200] * 5
        assert len(calls) == 1  # one decoding pass made both
        assert len({a.content for a in answers[:4]}) == 1 and again.content == answers[0].content
        assert image_format(answers[0].content)[0] == "WEBP" and image_format(answers[4].content)[0] == "JPEG"
        assert ranged.status_code == 206 and ranged.content == answers[4].content[:10]


async def test_a_video_deleted_while_deriving_leaves_nothing(database_url, tmp_path, monkeypatch) -> None:
    async with rig(database_url, tmp_path, ScriptedProvider(polls=[snap("completed")])) as r:
        vid = (await r.create()).id
        await r.step(vid)
        row = await r.video(vid)
        started, resume = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        real = derive.make_variants

        def slow(*args, **kwargs):  # a worker thread: wait until the delete went through
            loop.call_soon_threadsafe(started.set)
            asyncio.run_coroutine_threadsafe(resume.wait(), loop).result(timeout=10)
            return real(*args, **kwargs)

        monkeypatch.setattr(derive, "make_variants", slow)
        async with await r.http() as c:
            pending = asyncio.create_task(c.get(f"/v1/videos/{vid}/content?variant=thumbnail", headers=r.auth))
            await asyncio.wait_for(started.wait(), 10)
            assert (await c.delete(f"/v1/videos/{vid}", headers=r.auth)).status_code == 200
            resume.set()
            answer = await pending
        assert answer.status_code == 404
        for entry in row.assets.values():
            assert not await r.gw.storage.exists(entry["key"])
