"""The admin REST API: auth, keys and their limits, usage with prices, channel health, tasks of any owner."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from app.channels import service as channels
from app.channels.models import ChannelRecord
from app.db import new_id, now
from app.main import create_app
from app.providers.base import VideoStatus
from app.videos.models import Video
from tests.conftest import make_settings, new_key
from tests.support.api import assert_error, finish

pytestmark = pytest.mark.engine  # these tests watch videos finish

ADMIN = "admin-test-token"
H = {"Authorization": f"Bearer {ADMIN}"}
FAST = {"sandbox_latency_ms": 0}


def with_admin(application: Any) -> Any:
    # main.py includes the admin router; including it again here only duplicated every route
    return application


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    application = with_admin(create_app(make_settings(database_url, tmp_path / "data", admin_token=ADMIN)))
    async with application.router.lifespan_context(application):
        yield application


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def make_key(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    r = await client.post("/admin/keys", headers=H, json={"name": "admin-test", **fields})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def make_video(client: httpx.AsyncClient, secret: str, *, seconds: str = "1", **meta: Any) -> str:
    body = {"model": "sora-2", "prompt": "admin", "seconds": seconds, "size": "64x64", "metadata": FAST | meta}
    r = await client.post("/v1/videos", headers=bearer(secret), json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


class TestAuth:
    async def test_without_a_configured_token_the_api_is_disabled(self, database_url: str, tmp_path: Path) -> None:
        application = with_admin(create_app(make_settings(database_url, tmp_path / "d", run_engine=False)))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert_error(await c.get("/admin/keys", headers=H), 403, code="admin_disabled")

    async def test_missing_or_wrong_token_is_401(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/admin/keys"), 401, code="invalid_admin_token")
        assert_error(await client.get("/admin/keys", headers=bearer("nope")), 401, code="invalid_admin_token")
        assert_error(await client.get("/admin/keys", headers={"Authorization": ADMIN}), 401)
        # auth comes before body validation: nothing about the schema leaks
        assert_error(await client.post("/admin/keys", json={"rpm_limit": -1}), 401)

    async def test_an_api_key_is_not_an_admin_token(self, app: Any, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/admin/usage", headers=bearer(await new_key(app))), 401)

    async def test_right_token_is_200(self, client: httpx.AsyncClient) -> None:
        for path in ("/admin/keys", "/admin/usage", "/admin/channels", "/admin/tasks"):
            r = await client.get(path, headers=H)
            assert r.status_code == 200, (path, r.text)
            assert r.json()["object"] == "list"

    async def test_openapi_documents_the_admin_schemas(self, client: httpx.AsyncClient) -> None:
        spec = (await client.get("/openapi.json")).json()
        for path in ("/admin/keys", "/admin/keys/{key_id}/rotate", "/admin/usage", "/admin/channels", "/admin/tasks"):
            assert path in spec["paths"], path
        schemas = spec["components"]["schemas"]
        assert {"rpm_limit", "ip_allowlist", "quota_credits"} <= set(schemas["KeyCreate"]["properties"])
        assert "secret" in schemas["KeyWithSecret"]["properties"]
        assert "secret" not in schemas["KeyOut"]["properties"]
        assert "cooldown_until" in schemas["ChannelOut"]["properties"]


class TestKeys:
    async def test_secret_is_shown_once_and_works(self, client: httpx.AsyncClient) -> None:
        key = await make_key(client, models=["sandbox", "sora-2"])
        secret = key["secret"]
        assert secret.startswith("sk-vg-") and key["prefix"] == secret[:12] and key["status"] == "active"

        one = (await client.get(f"/admin/keys/{key['id']}", headers=H)).json()
        listed = await client.get("/admin/keys", headers=H)
        assert "secret" not in one and secret not in listed.text
        assert one["id"] in {k["id"] for k in listed.json()["data"]}
        assert one["owner"] == key["owner"] and one["revoked_at"] is None and one["used_credits"] == 0

        assert (await client.get("/v1/videos", headers=bearer(secret))).status_code == 200
        vid = await make_video(client, secret)
        assert (await finish(client, bearer(secret), vid))["status"] == "completed"

    async def test_limits_round_trip(self, client: httpx.AsyncClient) -> None:
        expires = now() + 3600
        key = await make_key(
            client,
            owner="admin-owner",
            rpm_limit=7,
            max_concurrent=2,
            quota_credits=12.5,
            expires_at=expires,
            ip_allowlist=["127.0.0.1", "10.0.0.0/8", "::1"],
            enabled=True,
        )
        got = (await client.get(f"/admin/keys/{key['id']}", headers=H)).json()
        assert got["owner"] == "admin-owner" and got["rpm_limit"] == 7 and got["max_concurrent"] == 2
        assert got["quota_credits"] == 12.5 and got["expires_at"] == pytest.approx(expires)
        assert got["ip_allowlist"] == ["127.0.0.1", "10.0.0.0/8", "::1"] and got["models"] is None

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"ip_allowlist": ["10.0.0.0/8", "not-an-ip"]}, "ip_allowlist"),
            ({"ip_allowlist": ["300.1.1.1"]}, "ip_allowlist"),
            ({"rpm_limit": -1}, "rpm_limit"),
            ({"max_concurrent": -2}, "max_concurrent"),
            ({"quota_credits": -0.5}, "quota_credits"),
            ({"expires_at": -1}, "expires_at"),
            ({"rpm_limit": "many"}, "rpm_limit"),
            ({"models": ["no-such-model"]}, "models"),
            ({"name": ""}, "name"),
            ({"colour": "red"}, "colour"),
        ],
    )
    async def test_invalid_create_is_400_with_param(
        self, client: httpx.AsyncClient, body: dict[str, Any], param: str
    ) -> None:
        r = await client.post("/admin/keys", headers=H, json={"name": "bad", **body})
        assert_error(r, 400, param=param)

    async def test_missing_name_is_400(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.post("/admin/keys", headers=H, json={}), 400, param="name")

    async def test_unknown_key_is_404(self, client: httpx.AsyncClient) -> None:
        for method, path in (
            ("GET", "/admin/keys/key_nope"),
            ("PATCH", "/admin/keys/key_nope"),
            ("POST", "/admin/keys/key_nope/revoke"),
            ("POST", "/admin/keys/key_nope/rotate"),
        ):
            r = await client.request(method, path, headers=H, json={} if method == "PATCH" else None)
            assert_error(r, 404, param="key_id", code="key_not_found")

    async def test_patch_changes_limits_and_null_clears(self, client: httpx.AsyncClient) -> None:
        key = await make_key(client, rpm_limit=3, quota_credits=5)
        url, auth = f"/admin/keys/{key['id']}", bearer(key["secret"])

        r = await client.patch(url, headers=H, json={"rpm_limit": None, "max_concurrent": 4, "name": "renamed"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["rpm_limit"] is None and body["max_concurrent"] == 4 and body["name"] == "renamed"
        assert body["quota_credits"] == 5  # not sent: unchanged

        r = await client.patch(url, headers=H, json={"models": ["sandbox"]})
        assert r.json()["models"] == ["sandbox"]
        models = (await client.get("/v1/models", headers=auth)).json()["data"]
        assert [m["id"] for m in models] == ["sandbox"]
        await client.patch(url, headers=H, json={"models": None})
        assert len((await client.get("/v1/models", headers=auth)).json()["data"]) > 1

        assert (await client.patch(url, headers=H, json={"enabled": False})).json()["status"] == "disabled"
        assert_error(await client.get("/v1/models", headers=auth), 401)
        await client.patch(url, headers=H, json={"enabled": True})
        assert (await client.get("/v1/models", headers=auth)).status_code == 200

        await client.patch(url, headers=H, json={"ip_allowlist": ["10.0.0.0/8"]})  # the test client is 127.0.0.1
        assert_error(await client.get("/v1/models", headers=auth), 403, code="ip_not_allowed")
        await client.patch(url, headers=H, json={"ip_allowlist": None})
        assert (await client.get("/v1/models", headers=auth)).status_code == 200

        expired = await client.patch(url, headers=H, json={"expires_at": now() - 1})
        assert expired.json()["status"] == "expired"
        assert_error(await client.get("/v1/models", headers=auth), 403, code="key_expired")

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"name": None}, "name"),
            ({"enabled": None}, "enabled"),
            ({"rpm_limit": -5}, "rpm_limit"),
            ({"ip_allowlist": ["x"]}, "ip_allowlist"),
            ({"models": ["no-such-model"]}, "models"),
            ({"owner": "someone-else"}, "owner"),
        ],
    )
    async def test_invalid_patch_is_400(self, client: httpx.AsyncClient, body: dict[str, Any], param: str) -> None:
        key = await make_key(client)
        assert_error(await client.patch(f"/admin/keys/{key['id']}", headers=H, json=body), 400, param=param)

    async def test_revoke(self, client: httpx.AsyncClient) -> None:
        key = await make_key(client)
        r = await client.post(f"/admin/keys/{key['id']}/revoke", headers=H)
        assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["revoked_at"]
        assert_error(await client.get("/v1/videos", headers=bearer(key["secret"])), 401)
        again = await client.post(f"/admin/keys/{key['id']}/revoke", headers=H)  # idempotent
        assert again.json()["revoked_at"] == r.json()["revoked_at"]
        assert_error(await client.post(f"/admin/keys/{key['id']}/rotate", headers=H), 400, code="key_revoked")

    async def test_rotate(self, client: httpx.AsyncClient) -> None:
        key = await make_key(client)
        old = bearer(key["secret"])
        vid = await make_video(client, key["secret"])
        await finish(client, old, vid)

        r = await client.post(f"/admin/keys/{key['id']}/rotate", headers=H)
        assert r.status_code == 200, r.text
        rotated = r.json()
        assert rotated["secret"] != key["secret"] and rotated["prefix"] == rotated["secret"][:12]
        assert rotated["id"] == key["id"] and rotated["owner"] == key["owner"]

        assert_error(await client.get("/v1/videos", headers=old), 401)
        new = bearer(rotated["secret"])
        assert vid in [v["id"] for v in (await client.get("/v1/videos", headers=new)).json()["data"]]
        assert (await client.get(f"/v1/videos/{vid}", headers=new)).status_code == 200
        assert "secret" not in (await client.get(f"/admin/keys/{key['id']}", headers=H)).json()


class TestUsage:
    async def test_report_charges_seconds_times_price(self, app: Any, client: httpx.AsyncClient) -> None:
        app.state.gateway.registry.prices = {"sora-2": 1.0}
        key = await make_key(client)
        auth = bearer(key["secret"])
        start = time.time() - 1
        ids = [await make_video(client, key["secret"], seconds=s) for s in ("1", "2")]
        failed = await make_video(client, key["secret"], sandbox_fail="boom")
        for vid in [*ids, failed]:
            await finish(client, auth, vid)

        r = await client.get("/admin/usage", headers=H, params={"key_id": key["id"], "since": start})
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["object"] == "list" and report["since"] == pytest.approx(start)
        [row] = report["data"]
        assert row["api_key_id"] == key["id"] and row["key_name"] == "admin-test" and row["owner"] == key["owner"]
        assert row["model"] == "sora-2"
        assert (row["tasks"], row["completed"], row["failed"]) == (3, 2, 1)
        assert row["seconds"] == 3 and row["credits_charged"] == pytest.approx(3.0)
        assert row["credits_reserved"] == 0
        totals = report["totals"]
        assert totals["tasks"] == 3 and totals["credits_charged"] == pytest.approx(3.0)

        got = (await client.get(f"/admin/keys/{key['id']}", headers=H)).json()
        assert got["used_credits"] == pytest.approx(3.0)

        tasks = (await client.get("/admin/tasks", headers=H, params={"api_key_id": key["id"]})).json()["data"]
        by_id = {t["id"]: t for t in tasks}
        assert by_id[ids[1]]["charged_credits"] == pytest.approx(2.0) and by_id[ids[1]]["settlement"] == "charged"
        assert by_id[failed]["settlement"] == "refunded" and by_id[failed]["charged_credits"] == 0

    async def test_filters(self, client: httpx.AsyncClient) -> None:
        key = await make_key(client)
        await finish(client, bearer(key["secret"]), await make_video(client, key["secret"]))
        q = {"key_id": key["id"]}
        assert len((await client.get("/admin/usage", headers=H, params=q)).json()["data"]) == 1
        none = await client.get("/admin/usage", headers=H, params={**q, "model": "sandbox"})
        assert none.json()["data"] == [] and none.json()["totals"]["tasks"] == 0
        later = await client.get("/admin/usage", headers=H, params={**q, "since": time.time() + 60})
        assert later.json()["data"] == []
        earlier = await client.get("/admin/usage", headers=H, params={**q, "until": 1})
        assert earlier.json()["data"] == []

    async def test_invalid_range_is_400(self, client: httpx.AsyncClient) -> None:
        bad = await client.get("/admin/usage", headers=H, params={"since": 100, "until": 50})
        assert_error(bad, 400, param="until")
        assert_error(await client.get("/admin/usage", headers=H, params={"since": "yesterday"}), 400, param="since")


async def sandbox_row(client: httpx.AsyncClient) -> dict[str, Any]:
    data = (await client.get("/admin/channels", headers=H)).json()["data"]
    return next(c for c in data if c["name"] == "sandbox")


class TestChannels:
    async def test_sandbox_with_health(self, app: Any, client: httpx.AsyncClient) -> None:
        gw = app.state.gateway
        sandbox = gw.registry.channels["sandbox"]
        data = (await client.get("/admin/channels", headers=H)).json()["data"]
        [row] = [c for c in data if c["name"] == "sandbox"]
        assert row["vendor"] == "sandbox" and row["fingerprint"] == sandbox.fingerprint and not row["retired"]
        assert row["enabled"] is True and "sora-2" not in row["models"] and "sandbox" in row["models"]
        assert {"priority", "weight", "base_url", "unfinished_tasks"} <= set(row)
        assert {"failures", "last_error", "last_error_at", "cooldown_until", "last_success_at"} <= set(row)
        assert "credentials" not in row

        try:
            await channels.record_failure(gw, sandbox, "upstream said no")
            row = await sandbox_row(client)
            assert row["health"] == "cooling_down" and row["failures"] >= 1
            assert row["last_error"] == "upstream said no" and row["cooldown_until"] >= int(now())
            assert row["last_error_at"] <= row["cooldown_until"]
        finally:
            await channels.record_success(gw, sandbox)
        row = await sandbox_row(client)
        assert row["health"] == "ok" and row["failures"] == 0 and row["cooldown_until"] is None
        assert row["last_success_at"] is not None

    async def test_retired_channel_with_unfinished_tasks_is_listed(self, app: Any, client: httpx.AsyncClient) -> None:
        gw = app.state.gateway
        fp = new_id("fp", 8)
        t = now()
        video = Video(
            id=new_id("video"),
            owner="retired-owner",
            api_key_id="key_retired",
            model="sandbox",
            provider="sandbox",
            vendor_model="sandbox",
            channel="old-account",
            channel_fp=fp,
            status=VideoStatus.in_progress,
            width=64,
            height=64,
            seconds=1,
            created_ns=time.time_ns(),
            created_at=int(t),
            updated_at=t,
            next_poll_at=None,  # never due: no engine touches it
        )
        async with gw.sessionmaker() as s:
            s.add(ChannelRecord(fingerprint=fp, name="old-account", vendor="sandbox", first_seen=t, last_seen=t))
            s.add(video)
            await s.commit()
        try:
            data = (await client.get("/admin/channels", headers=H)).json()["data"]
            [row] = [c for c in data if c["fingerprint"] == fp]
            assert row["retired"] is True and row["enabled"] is False and row["unfinished_tasks"] == 1
            assert row["name"] == "old-account" and row["health"] == "ok"
        finally:
            async with gw.sessionmaker() as s:
                await s.execute(delete(Video).where(Video.id == video.id))
                await s.execute(delete(ChannelRecord).where(ChannelRecord.fingerprint == fp))
                await s.commit()


class TestTasks:
    async def test_any_owner_with_filters_and_admin_fields(self, app: Any, client: httpx.AsyncClient) -> None:
        owner_a, owner_b = new_id("owner", 6), new_id("owner", 6)
        a = await make_key(client, owner=owner_a)
        b = await make_key(client, owner=owner_b)
        a1 = await make_video(client, a["secret"])
        a2 = await make_video(client, a["secret"], seconds="2")
        b1 = await make_video(client, b["secret"])
        for secret, vid in ((a["secret"], a1), (a["secret"], a2), (b["secret"], b1)):
            await finish(client, bearer(secret), vid)

        page = (await client.get("/admin/tasks", headers=H, params={"owner": owner_a})).json()
        assert [t["id"] for t in page["data"]] == [a2, a1]  # newest first
        assert page["first_id"] == a2 and page["last_id"] == a1 and page["has_more"] is False
        task = page["data"][0]
        assert task["object"] == "video" and task["status"] == "completed" and task["seconds"] == "2"
        assert task["owner"] == owner_a and task["api_key_id"] == a["id"] and task["channel"] == "sandbox"
        assert task["provider"] == "sandbox" and task["vendor_task_id"] and task["deleted_at"] is None
        assert task["url"] and "/files/videos/" in task["url"]
        assert {"reserved_credits", "charged_credits", "settlement"} <= set(task)

        only_b = (await client.get("/admin/tasks", headers=H, params={"api_key_id": b["id"]})).json()["data"]
        assert [t["id"] for t in only_b] == [b1] and only_b[0]["owner"] == owner_b
        done = {"owner": owner_a, "status": "completed"}
        assert len((await client.get("/admin/tasks", headers=H, params=done)).json()["data"]) == 2
        queued = (await client.get("/admin/tasks", headers=H, params={**done, "status": "queued"})).json()
        assert queued["data"] == []

        first = (await client.get("/admin/tasks", headers=H, params={"owner": owner_a, "limit": 1})).json()
        assert [t["id"] for t in first["data"]] == [a2] and first["has_more"] is True
        params = {"owner": owner_a, "limit": 1, "after": a2}
        second = (await client.get("/admin/tasks", headers=H, params=params)).json()
        assert [t["id"] for t in second["data"]] == [a1] and second["has_more"] is False

        one = (await client.get(f"/admin/tasks/{b1}", headers=H)).json()
        assert one["id"] == b1 and one["owner"] == owner_b

    async def test_deleted_tasks_stay_visible_to_the_admin(self, client: httpx.AsyncClient) -> None:
        key = await make_key(client, owner=new_id("owner", 6))
        vid = await make_video(client, key["secret"])
        await finish(client, bearer(key["secret"]), vid)
        assert (await client.delete(f"/v1/videos/{vid}", headers=bearer(key["secret"]))).status_code == 200

        got = (await client.get(f"/admin/tasks/{vid}", headers=H)).json()
        assert got["deleted_at"] is not None and got["url"] is None
        q = {"owner": key["owner"]}
        assert [t["id"] for t in (await client.get("/admin/tasks", headers=H, params=q)).json()["data"]] == [vid]
        live = await client.get("/admin/tasks", headers=H, params={**q, "deleted": "false"})
        assert live.json()["data"] == []
        gone = await client.get("/admin/tasks", headers=H, params={**q, "deleted": "true"})
        assert [t["id"] for t in gone.json()["data"]] == [vid]

    async def test_unfinished_task_is_visible_while_running(self, app: Any, client: httpx.AsyncClient) -> None:
        key = await make_key(client, owner=new_id("owner", 6))
        vid = await make_video(client, key["secret"], sandbox_latency_ms=60000)
        try:
            await asyncio.sleep(0.2)
            got = (await client.get(f"/admin/tasks/{vid}", headers=H)).json()
            assert got["status"] in ("queued", "in_progress") and got["settlement"] is None and got["url"] is None
        finally:
            # the database outlives this test: leave no task for later tests' engines to poll
            async with app.state.gateway.sessionmaker() as s:
                await s.execute(delete(Video).where(Video.id == vid))
                await s.commit()

    async def test_errors(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/admin/tasks/video_nope", headers=H), 404, code="task_not_found")
        assert_error(await client.get("/admin/tasks", headers=H, params={"limit": 0}), 400, param="limit")
        assert_error(await client.get("/admin/tasks", headers=H, params={"limit": 101}), 400, param="limit")
        assert_error(await client.get("/admin/tasks", headers=H, params={"status": "done"}), 400, param="status")
        assert_error(await client.get("/admin/tasks", headers=H, params={"after": "video_nope"}), 400, param="after")
