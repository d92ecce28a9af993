"""Client webhooks end to end: enqueue in the engine's transaction, a real loopback receiver, signatures
checked with the official `openai` SDK, retries, owner scoping and the admin API."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import delete, select

from app.db import new_id, now
from app.main import create_app
from app.providers.base import VideoStatus
from app.videos.models import Video
from app.webhooks import signing
from app.webhooks.dispatcher import WebhookDispatcher
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.service import enqueue_video_event
from tests.conftest import free_port, make_settings
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.engine  # these tests watch videos finish

ADMIN = "webhook-admin-token"
H = {"Authorization": f"Bearer {ADMIN}"}


@dataclass
class Harness:
    app: Any
    client: httpx.AsyncClient
    dispatcher: WebhookDispatcher

    @property
    def gw(self) -> Any:
        return self.app.state.gateway

    async def endpoint(self, url: str, **fields: Any) -> dict[str, Any]:
        r = await self.client.post("/admin/webhooks", headers=H, json={"url": url, **fields})
        assert r.status_code == 200, r.text
        return r.json()

    async def finish(self, owner: str, status: str = "completed", *, enqueue: bool = True) -> tuple[Video, int]:
        """What the engine does on a terminal transition: the video row and the enqueue in one transaction."""
        t = now()
        video = Video(
            id=new_id("video"),
            owner=owner,
            api_key_id="key_webhooks",
            model="sora-2",
            provider="sandbox",
            vendor_model="sandbox",
            status=VideoStatus(status),
            progress=100 if status == "completed" else 0,
            width=64,
            height=64,
            seconds=1,
            created_ns=time.time_ns(),
            created_at=int(t),
            updated_at=t,
            completed_at=int(t),
        )
        async with self.gw.sessionmaker() as s:
            s.add(video)
            await s.flush()
            count = await enqueue_video_event(s, video) if enqueue else 0
            await s.commit()
        self.dispatcher.wake()
        return video, count

    async def deliveries(self, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
        r = await self.client.get(f"/admin/webhooks/{endpoint_id}/deliveries", headers=H, params=params)
        assert r.status_code == 200, r.text
        return list(r.json()["data"])


async def _clear(gw: Any) -> None:
    # the database is shared by the whole session: leave no endpoint behind to receive other tests' events
    async with gw.sessionmaker() as s:
        await s.execute(delete(WebhookDelivery))
        await s.execute(delete(WebhookEndpoint))
        await s.commit()


@pytest.fixture
def make_harness(database_url: str, tmp_path: Path) -> Callable[..., Any]:
    @asynccontextmanager
    async def build(*, start: bool = True, **overrides: Any) -> AsyncIterator[Harness]:
        values: dict[str, Any] = {
            "admin_token": ADMIN,
            "run_engine": False,
            "webhook_tick_ms": 50,
            "webhook_timeout_s": 2.0,
            "webhook_concurrency": 8,
            **overrides,
        }
        app = create_app(make_settings(database_url, tmp_path / new_id("data", 4), **values))
        async with app.router.lifespan_context(app):
            gw = app.state.gateway
            await _clear(gw)
            dispatcher = WebhookDispatcher(gw, base_backoff_s=0.05, max_backoff_s=0.2)
            if start:
                await dispatcher.start()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                try:
                    yield Harness(app, client, dispatcher)
                finally:
                    await dispatcher.stop(timeout=3)
                    await _clear(gw)

    return build


@pytest.fixture
async def h(make_harness: Callable[..., Any]) -> AsyncIterator[Harness]:
    async with make_harness() as harness:
        yield harness


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


async def until(cond: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await _call(cond):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _call(cond: Callable[[], Any]) -> Any:
    result = cond()
    return await result if asyncio.iscoroutine(result) else result


def sdk(secret: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="x", webhook_secret=secret)


class TestSigning:
    def test_secret_is_whsec_and_32_random_bytes(self) -> None:
        secret = signing.generate_secret()
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        assert signing.generate_secret() != secret

    def test_openai_sdk_verifies_our_signature(self) -> None:
        secret = signing.generate_secret()
        body = b'{"id":"evt_1","object":"event","created_at":1,"type":"video.completed","data":{"id":"video_1"}}'
        headers = signing.signed_headers(secret, msg_id="evt_1", timestamp=int(time.time()), body=body)
        assert headers["webhook-signature"].startswith("v1,")
        sdk(secret).webhooks.verify_signature(body, headers)
        with pytest.raises(openai.InvalidWebhookSignatureError):
            sdk(secret).webhooks.verify_signature(body.replace(b"completed", b"failed"), headers)
        with pytest.raises(openai.InvalidWebhookSignatureError):
            sdk(signing.generate_secret()).webhooks.verify_signature(body, headers)


class TestDelivery:
    async def test_completed_event_is_signed_and_shaped_like_openai(self, h: Harness, rx: Receiver) -> None:
        ep = await h.endpoint(rx.url("hook"), owner="owner-a")
        video, count = await h.finish("owner-a")
        assert count == 1
        await until(lambda: rx.got("hook"))
        [req] = rx.got("hook")

        event = json.loads(req.body)
        assert list(event) == ["id", "object", "created_at", "type", "data"]
        assert event["id"].startswith("evt_") and event["object"] == "event"
        assert event["type"] == "video.completed" and event["data"] == {"id": video.id}
        assert isinstance(event["created_at"], int) and abs(event["created_at"] - time.time()) < 60
        assert req.headers["content-type"] == "application/json"
        assert req.headers["webhook-id"] == event["id"]

        client = sdk(ep["secret"])
        client.webhooks.verify_signature(req.body, req.headers)
        unwrapped = client.webhooks.unwrap(req.body, req.headers)
        assert unwrapped.id == event["id"]  # untyped for video events, but the fields come through
        tampered = req.body.replace(video.id.encode(), b"video_someone_else")
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.verify_signature(tampered, req.headers)

        await until(lambda: _delivered(h, ep["id"]))
        [row] = await h.deliveries(ep["id"])
        assert row["event_id"] == event["id"] and row["video_id"] == video.id
        assert row["attempts"] == 1 and row["last_status_code"] == 200 and row["delivered_at"]
        assert row["payload"] == event

    async def test_failed_video_sends_video_failed_only_where_subscribed(self, h: Harness, rx: Receiver) -> None:
        await h.endpoint(rx.url("all"), owner="owner-f")
        await h.endpoint(rx.url("done-only"), owner="owner-f", event_types=["video.completed"])
        video, count = await h.finish("owner-f", status="failed")
        assert count == 1
        await until(lambda: rx.got("all"))
        assert json.loads(rx.got("all")[0].body)["type"] == "video.failed"
        await asyncio.sleep(0.2)
        assert rx.got("done-only") == []

    async def test_status_override_for_a_row_updated_by_sql(self, make_harness: Callable[..., Any]) -> None:
        async with make_harness(start=False) as h:
            ep = await h.endpoint("https://example.com/hook", owner="owner-s")
            stale, _ = await h.finish("owner-s", status="in_progress", enqueue=False)
            async with h.gw.sessionmaker() as s:
                assert await enqueue_video_event(s, stale, status="completed") == 1
                await s.commit()
            [row] = await h.deliveries(ep["id"])
            assert row["event_type"] == row["payload"]["type"] == "video.completed"
            assert row["status"] == "pending" and row["attempts"] == 0

    async def test_retries_resend_identical_bytes_until_the_endpoint_recovers(self, h: Harness, rx: Receiver) -> None:
        rx.script["flaky"] = [500, 500]
        ep = await h.endpoint(rx.url("flaky"), owner="owner-r")
        await h.finish("owner-r")
        await until(lambda: len(rx.got("flaky")) == 3)
        reqs = rx.got("flaky")
        assert len({r.headers["webhook-id"] for r in reqs}) == 1
        assert len({r.body for r in reqs}) == 1
        for r in reqs:
            sdk(ep["secret"]).webhooks.verify_signature(r.body, r.headers)
        await until(lambda: _delivered(h, ep["id"]))
        [row] = await h.deliveries(ep["id"])
        assert row["status"] == "delivered" and row["attempts"] == 3
        assert row["last_status_code"] == 200 and row["last_error"] is None

    async def test_dead_endpoint_fails_after_max_age(self, make_harness: Callable[..., Any]) -> None:
        async with make_harness(webhook_max_age_hours=0.5 / 3600) as h:
            ep = await h.endpoint(f"http://127.0.0.1:{free_port()}/dead", owner="owner-d")
            await h.finish("owner-d")
            await until(lambda: _status(h, ep["id"], "failed"))
            [row] = await h.deliveries(ep["id"])
            assert row["attempts"] >= 2 and row["last_status_code"] is None
            assert row["last_error"] and row["next_attempt_at"] is None and row["delivered_at"] is None

    async def test_hanging_endpoint_does_not_hold_up_other_deliveries(
        self, make_harness: Callable[..., Any], rx: Receiver
    ) -> None:
        rx.hang["slow"] = 5.0
        async with make_harness(webhook_timeout_s=10.0, webhook_concurrency=4) as h:
            slow = await h.endpoint(rx.url("slow"), owner="owner-slow")
            for _ in range(2):
                await h.finish("owner-slow")
            await until(lambda: len(rx.got("slow")) == 2)

            await h.endpoint(rx.url("fast"), owner="owner-fast")
            started = time.monotonic()
            for _ in range(3):
                await h.finish("owner-fast")
            await until(lambda: len(rx.got("fast")) == 3, timeout=2.0)
            assert time.monotonic() - started < 1.5
            assert {r["status"] for r in await h.deliveries(slow["id"])} == {"pending"}
            rx.closed.set()  # let the hung requests end before the dispatcher stops

    async def test_two_dispatchers_never_send_the_same_delivery(self, h: Harness, rx: Receiver) -> None:
        await h.endpoint(rx.url("once"), owner="owner-2")
        other = WebhookDispatcher(h.gw, base_backoff_s=0.05)
        await other.start()
        try:
            for _ in range(12):
                await h.finish("owner-2")
            other.wake()
            await until(lambda: len(rx.got("once")) >= 12)
            await asyncio.sleep(0.3)
        finally:
            await other.stop()
        ids = [r.headers["webhook-id"] for r in rx.got("once")]
        assert len(ids) == len(set(ids)) == 12

    async def test_a_stop_hands_an_unfinished_send_back_at_once(
        self, make_harness: Callable[..., Any], rx: Receiver
    ) -> None:
        rx.hang["stuck"] = 30.0
        async with make_harness(webhook_timeout_s=20.0) as h:
            ep = await h.endpoint(rx.url("stuck"), owner="owner-stuck")
            await h.finish("owner-stuck")
            await until(lambda: len(rx.got("stuck")) == 1)
            async with h.gw.sessionmaker() as s:
                [held] = (await s.scalars(select(WebhookDelivery))).all()
            assert held.claimed_by == h.dispatcher.owner and held.claimed_until is not None
            await h.dispatcher.stop(timeout=0.2)
            async with h.gw.sessionmaker() as s:
                [row] = (await s.scalars(select(WebhookDelivery))).all()
            # not left to lapse after the lease (50 s here): due again now, not counted as an attempt
            assert (row.status, row.claimed_by, row.claimed_until, row.attempts) == ("pending", None, None, 0)
            assert row.next_attempt_at is not None and row.next_attempt_at <= now()
            assert [d["status"] for d in await h.deliveries(ep["id"])] == ["pending"]
            rx.closed.set()


class TestScoping:
    async def test_owner_endpoints_get_their_owner_only_and_operator_endpoints_get_all(
        self, h: Harness, rx: Receiver
    ) -> None:
        await h.endpoint(rx.url("a"), owner="owner-a")
        await h.endpoint(rx.url("b"), owner="owner-b")
        await h.endpoint(rx.url("ops"))
        video_a, count = await h.finish("owner-a")
        assert count == 2
        video_c, count = await h.finish("owner-c")
        assert count == 1
        await until(lambda: len(rx.got("ops")) == 2 and rx.got("a"))
        await asyncio.sleep(0.2)
        assert [json.loads(r.body)["data"]["id"] for r in rx.got("a")] == [video_a.id]
        assert rx.got("b") == []
        assert {json.loads(r.body)["data"]["id"] for r in rx.got("ops")} == {video_a.id, video_c.id}

    async def test_disabled_endpoint_receives_nothing(self, make_harness: Callable[..., Any], rx: Receiver) -> None:
        async with make_harness(start=False) as h:
            ep = await h.endpoint(rx.url("off"), owner="owner-x")
            _, queued = await h.finish("owner-x")  # queued while enabled, sent after it is disabled
            r = await h.client.patch(f"/admin/webhooks/{ep['id']}", headers=H, json={"enabled": False})
            assert r.status_code == 200 and r.json()["enabled"] is False
            _, count = await h.finish("owner-x")
            assert (queued, count) == (1, 0)
            assert await h.dispatcher.run_once() == 1
            await h.dispatcher.drain()
            [row] = await h.deliveries(ep["id"])
            assert row["status"] == "failed" and row["last_error"] == "endpoint disabled"
            assert rx.got("off") == []


class TestAdminApi:
    async def test_admin_api_is_403_without_a_configured_token(self, make_harness: Callable[..., Any]) -> None:
        async with make_harness(admin_token=None) as h:
            r = await h.client.get("/admin/webhooks", headers=H)
            assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN}])
    async def test_admin_token_is_required(self, h: Harness, headers: dict[str, str]) -> None:
        for method, path in [("GET", "/admin/webhooks"), ("POST", "/admin/webhooks")]:
            r = await h.client.request(method, path, headers=headers, json={"url": "not even checked"})
            assert r.status_code == 401, r.text
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}

    async def test_endpoint_crud_shows_the_secret_once(self, h: Harness) -> None:
        created = await h.endpoint("https://hooks.example.com/v", owner="team", description="ci")
        assert created["secret"].startswith("whsec_")
        assert created["event_types"] == ["video.completed", "video.failed"] and created["enabled"] is True
        eid = created["id"]
        assert eid.startswith("whep_")

        got = (await h.client.get(f"/admin/webhooks/{eid}", headers=H)).json()
        assert "secret" not in got and got == {k: v for k, v in created.items() if k != "secret"}
        listed = (await h.client.get("/admin/webhooks", headers=H)).json()
        assert listed["object"] == "list" and [e["id"] for e in listed["data"]] == [eid]
        assert "secret" not in listed["data"][0]

        r = await h.client.patch(
            f"/admin/webhooks/{eid}",
            headers=H,
            json={"url": "http://other.example.com/x", "event_types": ["video.failed"], "enabled": False},
        )
        assert r.status_code == 200
        assert (r.json()["url"], r.json()["event_types"], r.json()["enabled"]) == (
            "http://other.example.com/x",
            ["video.failed"],
            False,
        )

        r = await h.client.delete(f"/admin/webhooks/{eid}", headers=H)
        assert r.json() == {"id": eid, "object": "webhook_endpoint.deleted", "deleted": True}
        assert (await h.client.get(f"/admin/webhooks/{eid}", headers=H)).status_code == 404

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"url": "ftp://example.com/x"}, "url"),
            ({"url": "not a url"}, "url"),
            ({"url": "https://"}, "url"),
            ({}, "url"),
            ({"url": "https://example.com", "event_types": ["video.created"]}, "event_types.0"),
            ({"url": "https://example.com", "event_types": []}, "event_types"),
            ({"url": "https://example.com", "colour": "red"}, "colour"),
        ],
    )
    async def test_bad_input_is_an_openai_shaped_400(self, h: Harness, body: dict[str, Any], param: str) -> None:
        r = await h.client.post("/admin/webhooks", headers=H, json=body)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and err["param"] == param

    async def test_bad_patch_is_400(self, h: Harness) -> None:
        eid = (await h.endpoint("https://example.com/h"))["id"]
        r = await h.client.patch(f"/admin/webhooks/{eid}", headers=H, json={"url": "javascript:alert(1)"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "url"

    async def test_unknown_ids_are_404(self, h: Harness) -> None:
        calls = [
            ("GET", "/admin/webhooks/whep_nope"),
            ("PATCH", "/admin/webhooks/whep_nope"),
            ("DELETE", "/admin/webhooks/whep_nope"),
            ("GET", "/admin/webhooks/whep_nope/deliveries"),
            ("GET", "/admin/webhook-deliveries/whdel_nope"),
            ("POST", "/admin/webhook-deliveries/whdel_nope/resend"),
        ]
        for method, path in calls:
            r = await h.client.request(method, path, headers=H, json={} if method == "PATCH" else None)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["type"] == "invalid_request_error"

    async def test_delivery_listing_and_resend(self, h: Harness, rx: Receiver) -> None:
        ep = await h.endpoint(rx.url("log"), owner="owner-l")
        videos = [(await h.finish("owner-l", status=s))[0] for s in ("completed", "failed", "completed")]
        await until(lambda: len(rx.got("log")) == 3)
        await until(lambda: _status(h, ep["id"], "delivered", count=3))

        rows = await h.deliveries(ep["id"])
        assert [r["video_id"] for r in rows] == [v.id for v in reversed(videos)]  # newest first
        assert len(await h.deliveries(ep["id"], limit=2)) == 2
        assert await h.deliveries(ep["id"], status="failed") == []
        bad = await h.client.get(f"/admin/webhooks/{ep['id']}/deliveries", headers=H, params={"status": "nope"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"

        original = rows[-1]
        one = (await h.client.get(f"/admin/webhook-deliveries/{original['id']}", headers=H)).json()
        assert one == original

        r = await h.client.post(f"/admin/webhook-deliveries/{original['id']}/resend", headers=H)
        assert r.status_code == 200
        again = r.json()
        assert again["id"] != original["id"] and again["status"] == "pending"
        assert (again["event_id"], again["payload"]) == (original["event_id"], original["payload"])
        await until(lambda: len(rx.got("log")) == 4)
        first, resent = rx.got("log")[0], rx.got("log")[3]
        assert resent.body == first.body and resent.headers["webhook-id"] == first.headers["webhook-id"]
        sdk(ep["secret"]).webhooks.verify_signature(resent.body, resent.headers)
        await until(lambda: _status(h, ep["id"], "delivered", count=4))
        unchanged = (await h.client.get(f"/admin/webhook-deliveries/{original['id']}", headers=H)).json()
        assert unchanged == original


async def _status(h: Harness, endpoint_id: str, status: str, *, count: int = 1) -> bool:
    rows = await h.deliveries(endpoint_id)
    return len(rows) == count and all(r["status"] == status for r in rows)


async def _delivered(h: Harness, endpoint_id: str) -> bool:
    return await _status(h, endpoint_id, "delivered")
