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
import pytest

from app.callbacks.verify import callback_token, kling_valid
from app.main import create_app
from app.videos.models import Video
from tests.conftest import make_settings, new_key
from tests.fakes import kling as kling_fake
from tests.fakes import vidu as vidu_fake
from tests.support.api import assert_error, finish

pytestmark = pytest.mark.engine  # these tests watch videos finish


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


async def test_forged_callbacks_change_nothing(settings) -> None:
    # no engine: it would poll the task itself and move next_poll_at, which is what this test watches
    app = create_app(settings.model_copy(update={"run_engine": False}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await _forged_callbacks_change_nothing(app, client, {"Authorization": f"Bearer {await new_key(app)}"})


async def _forged_callbacks_change_nothing(app, client, auth) -> None:
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


class SlowVidu:
    """Around the fake Vidu: counts the gateway's polls and video downloads, and holds each for `delay` s."""

    def __init__(self, app, *, delay: float) -> None:
        self.app, self.delay = app, delay
        self.polls = 0
        self.downloads = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            if path.endswith("/creations"):
                self.polls += 1
                await asyncio.sleep(self.delay)
            elif path.startswith("/files/") and path.endswith(".mp4"):
                self.downloads += 1
                await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


def _vidu_gateway(database_url, tmp_path, *, delay: float = 0.0, **settings):
    to_gateway = GatewayTransport()
    fake, state = vidu_fake.make_app(api_key="vda_test_key", callback_client=httpx.AsyncClient(transport=to_gateway))
    vendor = SlowVidu(fake, delay=delay)
    values = {
        "sandbox_enabled": False,
        "vidu_api_key": "vda_test_key",
        "vidu_base_url": "https://api.vidu.com",
        "public_base_url": "http://gw",
        "poll_interval_ms": 60_000,  # polling alone would take a minute: only callbacks move the task
        "poll_max_interval_ms": 60_000,
        **settings,
    }
    app = create_app(
        make_settings(database_url, tmp_path / "d", **values),
        http=httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor)),
    )
    to_gateway.app = app
    return app, fake, state, vendor


async def _advance_at_vendor(fake, task_id: str, steps: int) -> None:
    """Time passes at the vendor (the test's own queries, which the gateway does not see)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="https://api.vidu.com") as v:
        for _ in range(steps):
            await v.get(f"/ent/v2/tasks/{task_id}/creations", headers={"Authorization": "Token vda_test_key"})


def _vidu_signed(url: str, token: str = "vda_test_key", *, nonce: str = "n1", signature: bytes | None = None):
    """Headers of a Vidu callback to `url`, signed with `token` (or carrying `signature` as sent)."""
    date = formatdate(usegmt=True)
    path = httpx.URL(url).path
    text = f"POST\n{path}\n\nvidu\n{date}\nDate:{date}\nx-request-nonce:{nonce}\n"
    good = base64.b64encode(hmac.new(token.encode(), text.encode(), hashlib.sha256).digest())
    return [
        (b"Date", date.encode()),
        (b"x-request-nonce", nonce.encode()),
        (b"X-HMAC-SIGNED-HEADERS", b"Date;x-request-nonce"),
        (b"X-HMAC-ALGORITHM", b"hmac-sha256"),
        (b"X-HMAC-ACCESS-KEY", b"vidu"),
        (b"X-HMAC-SIGNATURE", good if signature is None else signature),
    ]


async def test_replayed_vidu_callbacks_during_a_slow_poll_are_no_ops(database_url, tmp_path) -> None:
    app, fake, state, vendor = _vidu_gateway(database_url, tmp_path, delay=0.3)
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            vid = (await c.post("/v1/videos", headers=auth, json={"prompt": "cb", "model": "viduq1"})).json()["id"]
            task_id = next(iter(state.tasks))
            await _advance_at_vendor(fake, task_id, 2)  # → processing, which Vidu announces: the gateway polls
            genuine = state.callbacks[0]
            assert genuine["status"] == 200

            async def replay() -> list[httpx.Response]:
                answers = []
                for _ in range(20):  # an attacker (or a broken vendor retry loop) replays it every 20 ms
                    answers.append(await c.post(genuine["url"], json=genuine["json"], headers=genuine["headers"]))
                    await asyncio.sleep(0.02)
                return answers

            replays = asyncio.create_task(replay())
            body = await finish(c, auth, vid, timeout=20)
            answers = await replays
            await app.state.gateway.engine.drain()
    assert body["status"] == "completed"
    assert {r.status_code for r in answers} == {200}  # a replay is a harmless no-op
    # the processing callback makes one poll; the success callback that arrives during it one more;
    # 20 replays add at most one poll and no download
    assert vendor.polls <= 3, vendor.polls
    assert vendor.downloads == 1


async def test_callbacks_are_rate_limited_per_task(database_url, tmp_path) -> None:
    app, _, state, _ = _vidu_gateway(database_url, tmp_path)
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            vid = (await c.post("/v1/videos", headers=auth, json={"prompt": "cb", "model": "viduq1"})).json()["id"]
            url = state.tasks[next(iter(state.tasks))].params["callback_url"]
            # each one freshly and validly signed: not replays, but far more than a vendor ever sends
            answers = [
                await c.post(url, json={"state": "processing"}, headers=_vidu_signed(url, nonce=f"n{i}"))
                for i in range(40)
            ]
            codes = [r.status_code for r in answers]
            assert codes[0] == 200 and codes[-1] == 429, codes
            assert set(codes) == {200, 429}
            err = assert_error(answers[-1], 429)
            assert err["code"] == "rate_limit_exceeded" and int(answers[-1].headers["retry-after"]) >= 1
            # another task's callbacks are not affected
            other = (await c.post("/v1/videos", headers=auth, json={"prompt": "cb2", "model": "viduq1"})).json()["id"]
            assert other != vid
            url2 = state.tasks[list(state.tasks)[-1]].params["callback_url"]
            assert (await c.post(url2, json={}, headers=_vidu_signed(url2))).status_code == 200


async def test_non_ascii_callback_tokens_and_signatures_are_refused_like_wrong_ones(database_url, tmp_path) -> None:
    vidu, vidu_state = vidu_fake.make_app(api_key="vda_test_key")
    kling, kling_state = kling_fake.make_app()
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    http = httpx.AsyncClient(
        mounts={
            "https://api.vidu.com": httpx.ASGITransport(app=vidu),
            "https://api-singapore.klingai.com": httpx.ASGITransport(app=kling),
        }
    )
    settings = make_settings(
        database_url,
        tmp_path / "d",
        sandbox_enabled=False,
        vidu_api_key="vda_test_key",
        kling_access_key=kling_fake.AK,
        kling_secret_key=kling_fake.SK,
        kling_webhook_secret=secret,
        public_base_url="http://gw",
        poll_interval_ms=60_000,
        poll_max_interval_ms=60_000,
    )
    app = create_app(settings, http=http)
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        # raise_app_exceptions=False: a 500 is an answer to compare, not an exception in the test
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            vid = (await c.post("/v1/videos", headers=auth, json={"prompt": "v", "model": "viduq1"})).json()["id"]
            kid = (await c.post("/v1/videos", headers=auth, json={"prompt": "k", "model": "kling-v1"})).json()["id"]
            vidu_url = vidu_state.tasks[next(iter(vidu_state.tasks))].params["callback_url"]
            kling_url = [r.json for r in kling_state.api_requests() if r.method == "POST"][-1]["callback_url"]

            async def same(wrong: httpx.Response, non_ascii: httpx.Response, status: int) -> None:
                assert_error(wrong, status)
                assert non_ascii.status_code == wrong.status_code, non_ascii.text
                assert non_ascii.json() == wrong.json()

            # the token in the path
            for vendor, video in (("vidu", vid), ("kling", kid)):
                wrong = await c.post(f"/callbacks/{vendor}/{video}/{'0' * 40}", json={})
                for token in ("é" * 40, "0" * 39 + "é", "日本語", "%C3%A9" * 10):
                    await same(wrong, await c.post(f"/callbacks/{vendor}/{video}/{token}", json={}), 404)

            # Vidu's signature header
            path = httpx.URL(vidu_url).path
            wrong = await c.post(path, json={}, headers=_vidu_signed(vidu_url, signature=b"A" * 44))
            for sig in ("é" * 44, "AAAA€", "日本語"):
                headers = _vidu_signed(vidu_url, signature=sig.encode())
                await same(wrong, await c.post(path, json={}, headers=headers), 401)
            latin1 = _vidu_signed(vidu_url, signature=b"\xe9" * 44)  # not UTF-8 at all
            await same(wrong, await c.post(path, json={}, headers=latin1), 401)

            # Kling's Standard Webhooks headers
            kpath = httpx.URL(kling_url).path
            body = json.dumps({"task_id": "x", "task_status": "succeed"}).encode()
            ts = str(int(time.time()))

            def kling_headers(**over: bytes) -> list[tuple[bytes, bytes]]:
                values = {b"webhook-id": b"d1", b"webhook-timestamp": ts.encode(), b"webhook-signature": b"v1,AAAA"}
                values.update({k.encode(): v for k, v in over.items()})
                return list(values.items())

            wrong = await c.post(kpath, content=body, headers=kling_headers())
            for over in (
                {"webhook-signature": "v1,é".encode()},
                {"webhook-signature": "v1,AAAA v1,日本".encode()},
                {"webhook-timestamp": "²".encode()},  # a digit to str.isdigit(), not to int()
                {"webhook-timestamp": "١٢٣".encode()},  # Arabic-Indic digits
                {"webhook-id": "é".encode()},
            ):
                await same(wrong, await c.post(kpath, content=body, headers=kling_headers(**over)), 401)
