"""The lean status read (app.videos.hotread): the very answer of the normal FastAPI route, header for header
and byte for byte; and coherent with this process's writers at once (a long TTL here, so nothing below
passes by the TTL's expiry: the cross-process and replica checks are tests/reliability/test_read_cache_coherence.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.keys import service as keys
from app.main import create_app
from app.videos import repository as repo
from tests.conftest import make_settings, new_key
from tests.support.api import finish

LONG = 60_000  # ms: entries outlive every test, so what is seen fresh was invalidated, not expired


@contextlib.asynccontextmanager
async def running(settings: Any, *, client: tuple[str, int] = ("127.0.0.1", 123)) -> AsyncIterator[Any]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            app.state.test_client = c
            yield app


@pytest.fixture
async def pair(database_url, tmp_path) -> AsyncIterator[tuple[Any, Any]]:
    """(hot, plain): the same database and storage; `plain` has the cache off, so it answers through FastAPI.
    The engine runs in `hot` (videos finish), none in `plain`."""
    storage = tmp_path / "data"
    hot_s = make_settings(database_url, storage, read_cache_ttl_ms=LONG, sandbox_latency_ms=0)
    plain_s = make_settings(database_url, storage, read_cache_ttl_ms=0, run_engine=False)
    async with running(hot_s) as hot, running(plain_s) as plain:
        yield hot, plain


def c_of(app: Any) -> httpx.AsyncClient:
    return app.state.test_client  # type: ignore[no-any-return]


async def create(app: Any, auth: dict[str, str], **metadata: Any) -> str:
    body = {"prompt": "a cached lighthouse", "seconds": "1", "size": "64x64", "metadata": metadata}
    r = await c_of(app).post("/v1/videos", headers=auth, json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def answer(r: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return r.status_code, list(r.headers.multi_items()), r.content


async def same(hot: Any, plain: Any, path: str, headers: dict[str, str]) -> httpx.Response:
    """GET `path` on both; the answers must be identical (a signed URL's expiry may tick over a second)."""
    headers = {"X-Request-Id": "req_same_answer", **headers}
    for _ in range(3):
        a = await c_of(hot).get(path, headers=headers)
        b = await c_of(plain).get(path, headers=headers)
        if answer(a) == answer(b):
            return a
    assert answer(a) == answer(b)
    return a


def hits(app: Any) -> int:
    return int(app.state.read_cache.hits["video"])


async def test_the_same_answer_as_the_normal_route(pair) -> None:
    hot, plain = pair
    auth = {"Authorization": f"Bearer {await new_key(hot, name='a')}"}
    other = {"Authorization": f"Bearer {await new_key(hot, name='b')}"}
    slow = await create(hot, auth, sandbox_latency_ms=60_000)  # stays unfinished
    done = (await finish(c_of(hot), auth, await create(hot, auth)))["id"]
    failed = (await finish(c_of(hot), auth, await create(hot, auth, sandbox_fail="boom")))["id"]
    async with hot.state.gateway.sessionmaker() as s:  # not due for a minute: a stable poll header
        await repo.update_active(s, slow, next_poll_at=time.time() + 60)
        await s.commit()

    before = hits(hot)
    for vid in (slow, done, failed):
        for _ in range(2):  # a fill, then a hit
            r = await same(hot, plain, f"/v1/videos/{vid}", auth)
            assert r.status_code == 200
    assert hits(hot) > before  # answered by the lean path
    r = await same(hot, plain, f"/v1/videos/{slow}", auth)
    assert r.headers["openai-poll-after-ms"] and r.headers["x-request-id"] == "req_same_answer"
    assert "url" in (await same(hot, plain, f"/v1/videos/{done}", auth)).json()
    assert "openai-poll-after-ms" not in (await same(hot, plain, f"/v1/videos/{done}", auth)).headers

    # every refusal is the normal path's own
    for path, headers in [
        (f"/v1/videos/{slow}", {}),
        (f"/v1/videos/{slow}", {"Authorization": "Basic abc"}),
        (f"/v1/videos/{slow}", {"Authorization": "Bearer "}),
        (f"/v1/videos/{slow}", {"Authorization": "Bearer sk-vg-not-a-key-at-all-000000"}),
        (f"/v1/videos/{slow}", other),  # another owner's video: as unknown
        ("/v1/videos/video_" + "0" * 48, auth),
        ("/v1/videos/characters", auth),
        (f"/v1/videos/{slow}/", auth),
        (f"/v1/videos/{slow}?x=%00", auth),
    ]:
        await same(hot, plain, path, headers)
    # a generated request id when none (or an invalid one) is sent, as RequestIdMiddleware does
    r = await c_of(hot).get(f"/v1/videos/{slow}", headers={**auth, "X-Request-Id": "bad id!"})
    assert r.headers["x-request-id"].startswith("req_") and len(r.headers["x-request-id"]) == 36


async def test_the_same_access_line_as_the_normal_route(pair, caplog) -> None:
    """The lean path writes its own access line: the operator's log reads the same either way, formatted by
    the same handler (JSON here), context fields included."""
    from app.observability.logs import JsonFormatter, TextFormatter

    hot, plain = pair
    secret = await new_key(hot, name="logged")
    auth = {"Authorization": f"Bearer {secret}", "X-Request-Id": "req_logged_line"}
    vid = await create(hot, {"Authorization": auth["Authorization"]}, sandbox_latency_ms=60_000)
    lines: dict[str, dict[str, Any]] = {}
    for name, app in (("hot", hot), ("hot", hot), ("plain", plain)):  # the hot one twice: a fill, then a hit
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="vidgate.access"):
            assert (await c_of(app).get(f"/v1/videos/{vid}", headers=auth)).status_code == 200
        (record,) = [r for r in caplog.records if r.name == "vidgate.access"]
        line = json.loads(JsonFormatter().format(record))
        lines[name] = {k: v for k, v in line.items() if k not in ("ts", "duration_ms")}
        assert line["message"].endswith("ms") and isinstance(line["duration_ms"], float)
        assert " ".join(line["message"].split()[:3]) == "GET /v1/videos/{video_id} 200"
    assert hits(hot) > 0
    assert lines["hot"]["request_id"] == "req_logged_line" and lines["hot"]["key_prefix"] == secret[:12]
    assert secret not in json.dumps(lines["hot"])
    hot_line, plain_line = (dict(lines[n], message=lines[n]["message"].rsplit(" ", 1)[0]) for n in ("hot", "plain"))
    assert hot_line == plain_line

    # a request id is the client's to choose: one that looks like a secret is redacted on this path too
    leaky = {"Authorization": auth["Authorization"], "X-Request-Id": "sk-vg-" + "a" * 30}
    for app in (hot, plain):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="vidgate.access"):
            r = await c_of(app).get(f"/v1/videos/{vid}", headers=leaky)
            assert r.status_code == 200 and r.headers["x-request-id"] == leaky["X-Request-Id"]
        (record,) = [r for r in caplog.records if r.name == "vidgate.access"]
        text = TextFormatter().format(record)
        assert "[request_id=[redacted]" in text and "a" * 30 not in text, text
        assert json.loads(JsonFormatter().format(record))["request_id"] == "[redacted]"


async def test_cors_requests_take_the_normal_path(database_url, tmp_path) -> None:
    storage = tmp_path / "data"
    cors = {"cors_origins": "https://app.example", "run_engine": False}
    async with (
        running(make_settings(database_url, storage, read_cache_ttl_ms=LONG, **cors)) as hot,
        running(make_settings(database_url, storage, read_cache_ttl_ms=0, **cors)) as plain,
    ):
        auth = {"Authorization": f"Bearer {await new_key(hot)}"}
        vid = await create(hot, auth)
        async with hot.state.gateway.sessionmaker() as s:
            await repo.update_active(s, vid, next_poll_at=time.time() + 60)
            await s.commit()
        r = await same(hot, plain, f"/v1/videos/{vid}", {**auth, "Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        await same(hot, plain, f"/v1/videos/{vid}", auth)


async def test_a_delete_is_404_at_once(pair) -> None:
    hot, _ = pair
    auth = {"Authorization": f"Bearer {await new_key(hot)}"}
    vid = (await finish(c_of(hot), auth, await create(hot, auth)))["id"]
    for _ in range(3):
        assert (await c_of(hot).get(f"/v1/videos/{vid}", headers=auth)).status_code == 200
    assert (await c_of(hot).delete(f"/v1/videos/{vid}", headers=auth)).status_code == 200
    r = await c_of(hot).get(f"/v1/videos/{vid}", headers=auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "video_not_found"


async def test_key_changes_here_are_seen_at_once(pair) -> None:
    hot, _ = pair
    gw = hot.state.gateway
    c = c_of(hot)

    async def fresh() -> tuple[Any, dict[str, str], str]:
        async with gw.sessionmaker() as s:
            key, secret = await keys.create_key(s, name="k")
            await s.commit()
        auth = {"Authorization": f"Bearer {secret}"}
        vid = await create(hot, auth, sandbox_latency_ms=60_000)
        assert (await c.get(f"/v1/videos/{vid}", headers=auth)).status_code == 200
        assert (await c.get(f"/v1/videos/{vid}", headers=auth)).status_code == 200  # cached now
        return key, auth, vid

    key, auth, vid = await fresh()  # revoke (a bulk UPDATE)
    async with gw.sessionmaker() as s:
        assert await keys.revoke_key(s, key.id) == 1
        await s.commit()
    assert (await c.get(f"/v1/videos/{vid}", headers=auth)).status_code == 401

    key, auth, vid = await fresh()  # disable (an ORM change, as the admin API and `keys update` make)
    async with gw.sessionmaker() as s:
        await keys.update_key(s, await keys.get_key(s, key.id), enabled=False)  # type: ignore[arg-type]
        await s.commit()
    assert (await c.get(f"/v1/videos/{vid}", headers=auth)).status_code == 401

    key, auth, vid = await fresh()  # rotate: the old secret stops, the new one works
    async with gw.sessionmaker() as s:
        secret = await keys.rotate_key(s, await keys.get_key(s, key.id))  # type: ignore[arg-type]
        await s.commit()
    assert (await c.get(f"/v1/videos/{vid}", headers=auth)).status_code == 401
    assert (await c.get(f"/v1/videos/{vid}", headers={"Authorization": f"Bearer {secret}"})).status_code == 200

    key, auth, vid = await fresh()  # an allow-list set on a cached key
    async with gw.sessionmaker() as s:
        await keys.update_key(s, await keys.get_key(s, key.id), ip_allowlist=["10.0.0.0/8"])  # type: ignore[arg-type]
        await s.commit()
    r = await c.get(f"/v1/videos/{vid}", headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "ip_not_allowed"


async def test_expiry_and_the_allow_list_are_checked_on_every_hit(database_url, tmp_path) -> None:
    s = make_settings(database_url, tmp_path / "data", read_cache_ttl_ms=LONG, run_engine=False)
    async with running(s) as near, running(s, client=("10.1.2.3", 5)) as far:
        gw = near.state.gateway
        async with gw.sessionmaker() as sess:
            _, secret = await keys.create_key(sess, name="x", expires_at=time.time() + 1.0, ip_allowlist=["127.0.0.1"])
            await sess.commit()
        auth = {"Authorization": f"Bearer {secret}"}
        vid = await create(near, auth)
        assert (await c_of(near).get(f"/v1/videos/{vid}", headers=auth)).status_code == 200
        assert (await c_of(near).get(f"/v1/videos/{vid}", headers=auth)).status_code == 200
        assert near.state.read_cache.hits["key"] >= 1
        r = await c_of(far).get(f"/v1/videos/{vid}", headers=auth)  # another client address, same key
        assert r.status_code == 403 and r.json()["error"]["code"] == "ip_not_allowed"
        await asyncio.sleep(1.1)
        r = await c_of(near).get(f"/v1/videos/{vid}", headers=auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_expired"


async def test_engine_writes_here_are_seen_at_once(pair) -> None:
    hot, _ = pair
    gw = hot.state.gateway
    auth = {"Authorization": f"Bearer {await new_key(hot)}"}
    vid = await create(hot, auth, sandbox_latency_ms=60_000)
    async with gw.sessionmaker() as s:
        await repo.update_active(s, vid, next_poll_at=time.time() + 60)
        await s.commit()
    c = c_of(hot)
    first = await c.get(f"/v1/videos/{vid}", headers=auth)
    assert int(first.headers["openai-poll-after-ms"]) > 1000
    async with gw.sessionmaker() as s:  # as the engine writes a poll's result
        assert await repo.update_active(s, vid, progress=77)
        await s.commit()
    assert (await c.get(f"/v1/videos/{vid}", headers=auth)).json()["progress"] == 77
    async with gw.sessionmaker() as s:  # a claim (UPDATE ... WHERE id IN (...)) changes the poll header
        claimed = await repo.claim_due(s, owner="w1", limit=10, lease=30, skip_locked=False)
        assert claimed == []  # not due: nothing claimed, nothing to see
        await repo.update_active(s, vid, next_poll_at=time.time() - 1)
        claimed = await repo.claim_due(s, owner="w1", limit=10, lease=30, skip_locked=False)
        await s.commit()
    if any(row.id == vid for row, _ in claimed):
        assert (await c.get(f"/v1/videos/{vid}", headers=auth)).headers["openai-poll-after-ms"] == "500"
    async with gw.sessionmaker() as s:  # a statement whose rows cannot be told drops everything
        await repo.release_all_claims(s)
        await repo.update_active(s, vid, progress=88)
        await s.commit()
    assert (await c.get(f"/v1/videos/{vid}", headers=auth)).json()["progress"] == 88


async def test_ownership_is_unchanged_with_a_warm_cache(pair) -> None:
    hot, _ = pair
    a = {"Authorization": f"Bearer {await new_key(hot, name='a')}"}
    b = {"Authorization": f"Bearer {await new_key(hot, name='b')}"}
    vid = await create(hot, a)
    c = c_of(hot)
    for _ in range(3):
        assert (await c.get(f"/v1/videos/{vid}", headers=a)).status_code == 200
    theirs = await c.get(f"/v1/videos/{vid}", headers=b)
    unknown = await c.get("/v1/videos/video_" + "0" * 48, headers=b)
    assert theirs.status_code == unknown.status_code == 404 and theirs.content == unknown.content
    # a key of the same owner shares the videos (as before)
    owner_b = await new_key(hot, owner=(await _owner(hot, a)))
    assert (await c.get(f"/v1/videos/{vid}", headers={"Authorization": f"Bearer {owner_b}"})).status_code == 200


async def _owner(app: Any, auth: dict[str, str]) -> str:
    async with app.state.gateway.sessionmaker() as s:
        key = await keys.authenticate(s, auth["Authorization"].removeprefix("Bearer "))
        assert key is not None
        return key.owner


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return -1.0


async def test_memory_is_bounded_and_reported(database_url, tmp_path, caplog) -> None:
    s = make_settings(
        database_url, tmp_path / "data", read_cache_ttl_ms=LONG, read_cache_max_videos=10, run_engine=False
    )
    async with running(s) as app:
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        ids = [await create(app, auth) for _ in range(30)]
        c = c_of(app)
        with caplog.at_level(logging.INFO, logger="vidgate.access"):
            for vid in ids:
                for _ in range(2):
                    assert (await c.get(f"/v1/videos/{vid}", headers=auth)).status_code == 200
        cache = app.state.read_cache
        assert cache.counts()["video"] == 10 and cache.hits["video"] >= 30
        text = (await c.get("/metrics")).text
        assert _sample(text, "vidgate_read_cache_entries", kind="video") == 10
        assert 0 < _sample(text, "vidgate_read_cache_bytes", kind="video") <= 10 * 2000
        assert _sample(text, "vidgate_read_cache_hits_total", kind="video") >= 30
        got = _sample(text, "vidgate_http_requests_total", method="GET", route="/v1/videos/{video_id}", status="200")
        assert got == 60
        lines = [r for r in caplog.records if r.name == "vidgate.access" and "/v1/videos/{video_id} 200" in r.message]
        assert len(lines) == 60 and all(getattr(r, "request_id", "").startswith("req_") for r in lines)
