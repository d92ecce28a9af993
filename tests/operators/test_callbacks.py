"""Vendor callbacks: genuine ones make the task update at once; forged or replayed ones change nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from email.utils import formatdate

import httpx

from app.callbacks.verify import callback_token, kling_valid
from app.main import create_app
from app.videos.models import Video
from tests.conftest import make_settings, new_key
from tests.fakes import kling as kling_fake
from tests.fakes import vidu as vidu_fake
from tests.videos.test_http import assert_error, finish


class GatewayTransport(httpx.AsyncBaseTransport):
    """The fake vendor's outgoing callbacks reach the gateway app (set later, once it exists)."""

    app = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


async def test_vidu_callbacks_update_the_task_at_once(database_url, tmp_path) -> None:
    to_gateway = GatewayTransport()
    fake, state = vidu_fake.make_app(api_key="vda_test_key", callback_client=httpx.AsyncClient(transport=to_gateway))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake))
    settings = make_settings(
        database_url,
        tmp_path / "d",
        sandbox_enabled=False,
        vidu_api_key="vda_test_key",
        vidu_base_url="https://api.vidu.com",
        public_base_url="http://gw",
        poll_interval_ms=60_000,  # polling alone would take a minute
        poll_max_interval_ms=60_000,
    )
    app = create_app(settings, http=http)
    to_gateway.app = app
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            r = await c.post("/v1/videos", headers=auth, json={"prompt": "cb", "model": "viduq1"})
            assert r.status_code == 200, r.text
            vid = r.json()["id"]
            task_id = next(iter(state.tasks))
            url = state.tasks[task_id].params["callback_url"]
            assert url.startswith(f"http://gw/callbacks/vidu/{vid}/")
            # time passes at the vendor: its task moves on and it calls back, signed with our API token
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="https://api.vidu.com") as v:
                for _ in range(2):  # created → queueing → processing, which Vidu announces
                    await v.get(f"/ent/v2/tasks/{task_id}/creations", headers={"Authorization": "Token vda_test_key"})
            body = await finish(c, auth, vid, timeout=10)
            assert body["status"] == "completed"
            assert any(cb["status"] == 200 for cb in state.callbacks)


async def test_forged_callbacks_change_nothing(app, client, auth) -> None:
    r = await client.post(
        "/v1/videos",
        headers=auth,
        json={"prompt": "x", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 60000}},
    )
    vid = r.json()["id"]
    gw = app.state.gateway
    async with gw.sessionmaker() as s:
        row = await s.get(Video, vid)
        row.provider = "vidu"  # pretend a Vidu task, made with a channel whose token we know
        await s.commit()
        before = row.next_poll_at
    token = callback_token(gw.signer.secret, vid)
    # a wrong token, an unknown task, an unsupported vendor: all the same 404
    assert_error(await client.post(f"/callbacks/vidu/{vid}/{'0' * 40}", json={}), 404)
    assert_error(await client.post(f"/callbacks/vidu/video_nope/{token}", json={}), 404)
    assert_error(await client.post(f"/callbacks/sora/{vid}/{token}", json={}), 404)
    # the right path but no or a bad signature
    assert_error(await client.post(f"/callbacks/vidu/{vid}/{token}", json={"state": "success"}), 401)
    date = formatdate(usegmt=True)
    text = f"POST\n/callbacks/vidu/{vid}/{token}\n\nvidu\n{date}\nDate:{date}\nx-request-nonce:n1\n"
    forged = base64.b64encode(hmac.new(b"not-our-token", text.encode(), hashlib.sha256).digest()).decode()
    headers = {
        "Date": date,
        "x-request-nonce": "n1",
        "X-HMAC-SIGNED-HEADERS": "Date;x-request-nonce",
        "X-HMAC-ALGORITHM": "hmac-sha256",
        "X-HMAC-ACCESS-KEY": "vidu",
        "X-HMAC-SIGNATURE": forged,
    }
    assert_error(await client.post(f"/callbacks/vidu/{vid}/{token}", json={"state": "success"}, headers=headers), 401)
    async with gw.sessionmaker() as s:
        row = await s.get(Video, vid)
    assert row.status in ("queued", "in_progress") and row.next_poll_at == before


def test_kling_standard_webhook_signature_vector() -> None:
    secret = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
    body = (
        b'{"id":"1234567890","status":"succeeded","message":"","create_time":1781080778802,"update_time":1781080794151}'
    )
    headers = {
        "webhook-id": "9876543210",
        "webhook-timestamp": "1781080794",
        "webhook-signature": "v1,UsKlJP00XoQyOn410NM9xv34sP+Gl0jnOO9Lcpr7NJ4=",
    }
    assert kling_valid(secret, headers, body, now=1781080794)
    assert not kling_valid(secret, headers, body + b" ", now=1781080794)
    assert not kling_valid(secret, headers, body, now=1781080794 + 301)  # replayed too late


async def test_kling_tasks_carry_our_callback_url_and_signed_callbacks_are_checked(database_url, tmp_path) -> None:
    fake, state = kling_fake.make_app()
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    app = create_app(
        make_settings(
            database_url,
            tmp_path / "d",
            sandbox_enabled=False,
            kling_access_key=kling_fake.AK,
            kling_secret_key=kling_fake.SK,
            public_base_url="http://gw",
            kling_webhook_secret=secret,
            poll_interval_ms=60_000,
            poll_max_interval_ms=60_000,
        ),
        http=httpx.AsyncClient(transport=httpx.ASGITransport(app=fake)),
    )
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            vid = (await c.post("/v1/videos", headers=auth, json={"prompt": "k", "model": "kling-v1"})).json()["id"]
            sent = [r.json for r in state.api_requests() if r.method == "POST"][-1]
            url = sent["callback_url"]
            assert url.startswith(f"http://gw/callbacks/kling/{vid}/")
            body = json.dumps({"task_id": "x", "task_status": "succeed"}).encode()
            ts = str(int(time.time()))
            from app.webhooks.signing import sign

            good = {
                "webhook-id": "d1",
                "webhook-timestamp": ts,
                "webhook-signature": sign(secret, msg_id="d1", timestamp=int(ts), body=body),
            }
            path = url.removeprefix("http://gw")
            assert (await c.post(path, content=body, headers=good)).status_code == 200
            bad = {**good, "webhook-signature": "v1,AAAA"}
            assert_error(await c.post(path, content=body, headers=bad), 401)
            # the genuine callback made the gateway poll at once (polling alone would wait a minute)
            for _ in range(100):
                polls = [r for r in state.api_requests() if r.method == "GET"]
                if polls:
                    break
                await asyncio.sleep(0.02)
            assert polls
