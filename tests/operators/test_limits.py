"""Per-key limits at their edges: the N-th request passes and the N+1-th is refused; quotas reserved,
refunded and reconciled exactly; Redis-backed limits shared between two app instances."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
import pytest
from sqlalchemy import select

from app.keys.models import ApiKey
from app.keys.service import create_key
from app.main import create_app
from app.usage import service as usage
from app.videos.models import Video
from tests.conftest import make_settings
from tests.support.api import assert_error, finish

pytestmark = pytest.mark.engine  # these tests watch videos finish

QUICK = {"prompt": "x", "seconds": "4", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}
SLOW = {"prompt": "x", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 60000}}


async def key_with(app, **limits) -> tuple[str, str]:
    async with app.state.gateway.sessionmaker() as s:
        key, secret = await create_key(s, name="limited", **limits)
        await s.commit()
    return key.id, secret


async def used(app, key_id: str) -> float:
    async with app.state.gateway.sessionmaker() as s:
        return (await s.get(ApiKey, key_id)).used_credits


class TestAccessRules:
    async def test_rpm_edge_and_polling_is_not_starved(self, app, client) -> None:
        _, secret = await key_with(app, rpm_limit=3)
        h = {"Authorization": f"Bearer {secret}"}
        ids = []
        for _ in range(3):
            r = await client.post("/v1/videos", headers=h, json=QUICK)
            assert r.status_code == 200
            ids.append(r.json()["id"])
        r = await client.post("/v1/videos", headers=h, json=QUICK)
        assert_error(r, 429, code="rate_limit_exceeded")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        for _ in range(20):  # status polling is not counted against the create limit
            assert (await client.get(f"/v1/videos/{ids[0]}", headers=h)).status_code == 200

    async def test_concurrency_edge(self, app, client) -> None:
        _, secret = await key_with(app, max_concurrent=2)
        h = {"Authorization": f"Bearer {secret}"}
        first = await client.post("/v1/videos", headers=h, json={**SLOW, "metadata": {"sandbox_latency_ms": 400}})
        assert (await client.post("/v1/videos", headers=h, json=SLOW)).status_code == 200
        assert_error(await client.post("/v1/videos", headers=h, json=SLOW), 429, code="concurrency_limit_exceeded")
        await finish(client, h, first.json()["id"])
        assert (await client.post("/v1/videos", headers=h, json=SLOW)).status_code == 200

    async def test_expired_disabled_and_ip(self, app, client) -> None:
        _, expired = await key_with(app, expires_at=time.time() - 1)
        assert_error(
            await client.get("/v1/videos", headers={"Authorization": f"Bearer {expired}"}), 403, code="key_expired"
        )
        _, disabled = await key_with(app, enabled=False)
        assert_error(
            await client.get("/v1/videos", headers={"Authorization": f"Bearer {disabled}"}), 401, code="invalid_api_key"
        )
        _, elsewhere = await key_with(app, ip_allowlist=["10.0.0.0/8"])
        assert_error(
            await client.get("/v1/videos", headers={"Authorization": f"Bearer {elsewhere}"}), 403, code="ip_not_allowed"
        )
        _, here = await key_with(app, ip_allowlist=["10.0.0.0/8", "127.0.0.0/8"])
        assert (await client.get("/v1/videos", headers={"Authorization": f"Bearer {here}"})).status_code == 200


class TestQuota:
    async def test_quota_edge_and_openai_error_shape(self, app, client) -> None:
        app.state.gateway.registry.prices = {"sora-2": 1.0}
        key_id, secret = await key_with(app, quota_credits=8.0)
        h = {"Authorization": f"Bearer {secret}"}
        assert (await client.post("/v1/videos", headers=h, json=QUICK)).status_code == 200
        assert (await client.post("/v1/videos", headers=h, json=QUICK)).status_code == 200  # exactly 8
        r = await client.post("/v1/videos", headers=h, json=QUICK)
        err = assert_error(r, 429, code="insufficient_quota")
        assert err["type"] == "insufficient_quota"
        assert r.headers["x-should-retry"] == "false"
        assert await used(app, key_id) == 8.0

    async def test_refund_when_the_task_fails(self, app, client) -> None:
        app.state.gateway.registry.prices = {"sora-2": 2.0}
        key_id, secret = await key_with(app, quota_credits=100.0)
        h = {"Authorization": f"Bearer {secret}"}
        r = await client.post(
            "/v1/videos", headers=h, json={**QUICK, "metadata": {"sandbox_fail": "boom", "sandbox_latency_ms": 0}}
        )
        assert await used(app, key_id) == 8.0  # reserved at submit
        await finish(client, h, r.json()["id"])
        assert await used(app, key_id) == 0.0
        async with app.state.gateway.sessionmaker() as s:
            row = await s.get(Video, r.json()["id"])
        assert (row.settlement, row.charged_credits) == ("refunded", 0.0)

    async def test_charge_reconciled_to_what_was_produced(self, app, client) -> None:
        # price per resolution class: 64x64 is billed at the 480p rate
        app.state.gateway.registry.prices = {"sandbox": {"480p": 0.5, "default": 3.0}}
        key_id, secret = await key_with(app)
        h = {"Authorization": f"Bearer {secret}"}
        r = await client.post("/v1/videos", headers=h, json={**QUICK, "model": "sandbox"})
        await finish(client, h, r.json()["id"])
        async with app.state.gateway.sessionmaker() as s:
            row = await s.get(Video, r.json()["id"])
        assert (row.reserved_credits, row.charged_credits, row.settlement) == (2.0, 2.0, "charged")
        assert await used(app, key_id) == 2.0

    async def test_settlement_happens_once(self, app, client) -> None:
        app.state.gateway.registry.prices = {"sora-2": 1.0}
        key_id, secret = await key_with(app)
        h = {"Authorization": f"Bearer {secret}"}
        r = await client.post("/v1/videos", headers=h, json=QUICK)
        await finish(client, h, r.json()["id"])
        before = await used(app, key_id)
        async with app.state.gateway.sessionmaker() as s:
            row = await s.get(Video, r.json()["id"])
            assert await usage.settle(s, row, charged=0.0) is False  # already charged: no refund now
            await s.commit()
        assert await used(app, key_id) == before == 4.0

    async def test_parallel_creates_never_overspend(self, app, client) -> None:
        app.state.gateway.registry.prices = {"sora-2": 1.0}
        key_id, secret = await key_with(app, quota_credits=20.0)
        h = {"Authorization": f"Bearer {secret}"}
        results = await asyncio.gather(*(client.post("/v1/videos", headers=h, json=QUICK) for _ in range(12)))
        codes = sorted(r.status_code for r in results)
        assert codes.count(200) == 5 and codes.count(429) == 7, codes
        assert await used(app, key_id) <= 20.0
        async with app.state.gateway.sessionmaker() as s:
            rows = (await s.scalars(select(Video).where(Video.api_key_id == key_id))).all()
        assert len(rows) == 5


async def test_submit_rejection_refunds_and_stores_nothing(app, client) -> None:
    app.state.gateway.registry.prices = {"sora-2": 1.0}
    key_id, secret = await key_with(app, quota_credits=10.0)
    h = {"Authorization": f"Bearer {secret}"}
    provider = app.state.gateway.registry.channels["sandbox"].provider
    original = provider.submit

    async def reject(req):
        from app.providers.base import Rejected

        raise Rejected("sandbox", "Prompt refused by moderation.", vendor_code="moderation_blocked")

    provider.submit = reject
    try:
        r = await client.post("/v1/videos", headers=h, json=QUICK)
    finally:
        provider.submit = original
    assert_error(r, 400, code="moderation_blocked")
    assert await used(app, key_id) == 0.0
    assert (await client.get("/v1/videos", headers=h)).json()["data"] == []


REDIS_URL = os.environ.get("VIDGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def test_redis_limits_are_shared_between_two_instances(database_url, tmp_path) -> None:
    import redis.asyncio as aioredis

    try:
        probe = aioredis.from_url(REDIS_URL)
        await probe.ping()
        await probe.aclose()
    except Exception as exc:  # pragma: no cover - only without a Redis server
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    apps = [
        create_app(make_settings(database_url, tmp_path / f"d{i}", redis_url=REDIS_URL, run_engine=False))
        for i in range(2)
    ]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        async with apps[0].state.gateway.sessionmaker() as s:
            key, secret = await create_key(s, name=f"shared-{uuid.uuid4().hex[:6]}", rpm_limit=4)
            await s.commit()
        h = {"Authorization": f"Bearer {secret}"}
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://t") for a in apps]
        try:
            codes = [(await clients[i % 2].post("/v1/videos", headers=h, json=SLOW)).status_code for i in range(5)]
        finally:
            for c in clients:
                await c.aclose()
    assert codes == [200, 200, 200, 200, 429]
