"""Channels: priority and weight, failover on technical failures only, shared cool-downs, and tasks polled
with the exact credential that created them after the channel list changed."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.main import create_app
from tests.conftest import make_settings, new_key
from tests.fakes import openai_upstream
from tests.support.api import finish

pytestmark = pytest.mark.engine  # these tests watch videos finish


class Upstreams:
    """Several fake OpenAI-format upstreams, each on its own host, behind one HTTP client."""

    def __init__(self, *names: str) -> None:
        # hosts and keys unique per test: channel health is shared through the (session-wide) database
        self.tag = uuid.uuid4().hex[:8]
        self.fakes: dict[str, tuple[Any, Any]] = {
            n: openai_upstream.make_app(api_key=self.key(n), poll_after_ms=20, check_image_size=False) for n in names
        }

    def key(self, name: str) -> str:
        return f"sk-{name}-{self.tag}"

    def host(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def channel(self, name: str, *, priority: int = 0, weight: int = 1) -> dict[str, Any]:
        return {
            "name": name,
            "vendor": "openai_compat",
            "credentials": {"api_key": self.key(name)},
            "base_url": f"http://{self.host(name)}/v1",
            "models": ["sora-2"],
            "priority": priority,
            "weight": weight,
        }

    def client(self) -> httpx.AsyncClient:
        mounts = {f"http://{self.host(n)}": httpx.ASGITransport(app=app) for n, (app, _) in self.fakes.items()}
        return httpx.AsyncClient(mounts=mounts, timeout=10)

    def state(self, name: str) -> Any:
        return self.fakes[name][1]

    def creates(self, name: str) -> int:
        return sum(1 for r in self.state(name).requests if r.method == "POST" and r.path == "/v1/videos")


def write_config(path: Path, channels: list[dict[str, Any]], **extra: Any) -> Path:
    path.write_text(yaml.safe_dump({"channels": channels, "sandbox": False, **extra}))
    return path


class Gateway:
    def __init__(self, database_url: str, tmp_path: Path, ups: Upstreams, config: Path, **settings: Any) -> None:
        self.app = create_app(
            make_settings(
                database_url, tmp_path / "data", config=config, poll_interval_ms=30, poll_max_interval_ms=60, **settings
            ),
            http=ups.client(),
        )

    async def __aenter__(self) -> tuple[Any, httpx.AsyncClient, dict[str, str]]:
        self._life = self.app.router.lifespan_context(self.app)
        await self._life.__aenter__()
        self.key = getattr(self, "key", None) or await new_key(self.app)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")
        return self.app, self.client, {"Authorization": f"Bearer {self.key}"}

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.aclose()
        await self._life.__aexit__(*exc)


CREATE = {"prompt": "x", "model": "sora-2", "seconds": "4", "size": "720x1280"}


async def test_priority_then_failover_then_cooldown(database_url, tmp_path) -> None:
    ups = Upstreams("a", "b")
    cfg = write_config(tmp_path / "gw.yaml", [ups.channel("a", priority=10), ups.channel("b", priority=5)])
    async with Gateway(database_url, tmp_path, ups, cfg, channel_cooldown_s=60) as (app, c, auth):
        r = await c.post("/v1/videos", headers=auth, json=CREATE)
        assert r.status_code == 200
        assert (ups.creates("a"), ups.creates("b")) == (1, 0)  # the higher priority first

        ups.state("a").arm("500")
        r = await c.post("/v1/videos", headers=auth, json=CREATE)
        assert r.status_code == 200, r.text  # failed over to b within the same request
        assert (ups.creates("a"), ups.creates("b")) == (2, 1)
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"

        # a is cooling down: the next task goes straight to b
        r = await c.post("/v1/videos", headers=auth, json=CREATE)
        assert (ups.creates("a"), ups.creates("b")) == (2, 2)
        from app.channels.models import ChannelRecord

        async with app.state.gateway.sessionmaker() as s:
            rec = await s.get(ChannelRecord, app.state.gateway.registry.channels["a"].fingerprint)
        assert rec.failures == 1 and rec.cooldown_until is not None and "Unavailable" in rec.last_error


async def test_cooldown_ends_and_the_channel_comes_back(database_url, tmp_path) -> None:
    ups = Upstreams("a", "b")
    cfg = write_config(tmp_path / "gw.yaml", [ups.channel("a", priority=10), ups.channel("b", priority=5)])
    async with Gateway(database_url, tmp_path, ups, cfg, channel_cooldown_s=0.2) as (_, c, auth):
        ups.state("a").arm("429")
        assert (await c.post("/v1/videos", headers=auth, json=CREATE)).status_code == 200
        assert ups.creates("b") == 1
        import asyncio

        await asyncio.sleep(0.3)
        assert (await c.post("/v1/videos", headers=auth, json=CREATE)).status_code == 200
        assert ups.creates("a") == 2  # tried again after its cool-down, and it worked


@pytest.mark.parametrize("fault", ["quota", "404"])
async def test_a_logical_rejection_is_never_retried_elsewhere(database_url, tmp_path, fault) -> None:
    ups = Upstreams("a", "b")
    cfg = write_config(tmp_path / "gw.yaml", [ups.channel("a", priority=10), ups.channel("b", priority=5)])
    async with Gateway(database_url, tmp_path, ups, cfg) as (_, c, auth):
        ups.state("a").arm(fault)
        r = await c.post("/v1/videos", headers=auth, json=CREATE)
        assert r.status_code == 400, r.text
        assert ups.creates("a") == 1
        assert ups.creates("b") == 0
        assert (await c.get("/v1/videos", headers=auth)).json()["data"] == []
        # a logical rejection says nothing about the channel's health
        assert (await c.post("/v1/videos", headers=auth, json=CREATE)).status_code == 200
        assert ups.creates("a") == 2


async def test_all_channels_throttled_is_a_429(database_url, tmp_path) -> None:
    ups = Upstreams("a", "b")
    cfg = write_config(tmp_path / "gw.yaml", [ups.channel("a", priority=10), ups.channel("b", priority=5)])
    async with Gateway(database_url, tmp_path, ups, cfg) as (_, c, auth):
        ups.state("a").arm("429")
        ups.state("b").arm("429")
        r = await c.post("/v1/videos", headers=auth, json=CREATE)
        assert r.status_code == 429 and r.headers.get("retry-after")
        assert (await c.get("/v1/videos", headers=auth)).json()["data"] == []


async def test_weights_spread_tasks_within_a_priority(database_url, tmp_path) -> None:
    ups = Upstreams("a", "b")
    cfg = write_config(tmp_path / "gw.yaml", [ups.channel("a", weight=3), ups.channel("b", weight=1)])
    async with Gateway(database_url, tmp_path, ups, cfg) as (app, c, auth):
        app.state.gateway.rng.seed(1234)
        for _ in range(80):
            assert (await c.post("/v1/videos", headers=auth, json=CREATE)).status_code == 200
        share = ups.creates("a") / 80
        assert 0.6 <= share <= 0.9, share


async def test_task_is_polled_with_its_own_credential_after_the_channel_list_changed(database_url, tmp_path) -> None:
    ups = Upstreams("a", "b")
    first = write_config(tmp_path / "one.yaml", [ups.channel("a", priority=10), ups.channel("b")])
    gw1 = Gateway(database_url, tmp_path, ups, first, run_engine=False)
    async with gw1 as (_, c, auth):
        r = await c.post("/v1/videos", headers=auth, json=CREATE)
        vid = r.json()["id"]
    assert ups.creates("a") == 1

    # channel a leaves the config (and b comes first); the task must still be polled on a, with sk-a
    second = write_config(tmp_path / "two.yaml", [ups.channel("b", priority=10)])
    gw2 = Gateway(database_url, tmp_path, ups, second)
    gw2.key = gw1.key
    async with gw2 as (_, c, auth):
        body = await finish(c, auth, vid)
        assert body["status"] == "completed"
        polls = [r for r in ups.state("a").requests if r.method == "GET" and vid not in r.path]
        assert polls and all(r.headers["authorization"] == f"Bearer {ups.key('a')}" for r in polls)
        assert not [r for r in ups.state("b").requests if r.method == "GET"]
        # new tasks use the new list
        await c.post("/v1/videos", headers=auth, json=CREATE)
        assert ups.creates("b") == 1


async def test_config_aliases_route_and_models_list_them(database_url, tmp_path) -> None:
    ups = Upstreams("a")
    cfg = write_config(tmp_path / "gw.yaml", [ups.channel("a")], aliases={"house-model": "sora-2"})
    async with Gateway(database_url, tmp_path, ups, cfg) as (_, c, auth):
        ids = [m["id"] for m in (await c.get("/v1/models", headers=auth)).json()["data"]]
        assert "house-model" in ids and "sora-2" in ids
        r = await c.post("/v1/videos", headers=auth, json={**CREATE, "model": "house-model"})
        assert r.status_code == 200 and r.json()["model"] == "house-model"
        assert ups.creates("a") == 1
        assert Counter(ids)["sandbox"] == 0


async def test_a_channel_request_cap_is_never_exceeded(database_url, tmp_path) -> None:
    import asyncio
    import time

    ups = Upstreams("a")
    stamps: list[float] = []
    inner = ups.fakes["a"][0]

    async def stamping(scope, receive, send):
        if scope["type"] == "http":
            stamps.append(time.monotonic())
        await inner(scope, receive, send)

    ups.fakes["a"] = (stamping, ups.fakes["a"][1])
    cfg = write_config(tmp_path / "gw.yaml", [{**ups.channel("a"), "max_rps": 10}])
    async with Gateway(database_url, tmp_path, ups, cfg) as (_, c, auth):
        results = await asyncio.gather(*(c.post("/v1/videos", headers=auth, json=CREATE) for _ in range(8)))
        assert all(r.status_code == 200 for r in results)
        for r in results:
            await finish(c, auth, r.json()["id"])
    assert len(stamps) > 8
    # every one-second window holds at most ten requests (submits, polls and downloads alike)
    worst = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
    assert worst <= 10, worst
