"""The dashboard over HTTP: sign-in and its cookie, sessions shared by replicas, redirects and 401s, the
CSRF defences, escaping, the key forms, paging, delete, content with Range, CSV export, the playground."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.dashboard import auth
from app.main import create_app
from tests.conftest import make_settings, new_key
from tests.dashboard.conftest import ADMIN_TOKEN, BASE, csrf_of, dash_settings, sign_in

XSS = "<img src=x onerror=alert(1)>"
Admin = tuple[httpx.AsyncClient, str]
PAGES = ("/dashboard/videos", "/dashboard/keys", "/dashboard/channels", "/dashboard/usage", "/dashboard/playground")


async def _video(c: httpx.AsyncClient, key: str, prompt: str = "a cat", seconds: str = "1") -> str:
    r = await c.post(
        "/v1/videos",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "sandbox", "prompt": prompt, "seconds": seconds},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _wait(c: httpx.AsyncClient, video_id: str) -> dict[str, Any]:
    for _ in range(200):
        v = (await c.get(f"/dashboard/api/videos/{video_id}")).json()
        if v["status"] in ("completed", "failed"):
            return dict(v)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{video_id} did not finish")


class TestSignIn:
    async def test_pages_redirect_to_the_sign_in_form(self, anon: httpx.AsyncClient) -> None:
        for path in (*PAGES, "/dashboard", "/dashboard/videos/video_x"):
            r = await anon.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/dashboard/sign-in?next="), path
        form = await anon.get("/dashboard/sign-in")
        assert form.status_code == 200
        assert (
            'type="password"' in form.text and ">Admin token</label>" in form.text and "Sign in</button>" in form.text
        )

    async def test_data_endpoints_answer_401(self, anon: httpx.AsyncClient) -> None:
        for method, path in (
            ("GET", "/dashboard/api/videos/video_x"),
            ("GET", "/dashboard/videos/video_x/content/video"),
            ("GET", "/dashboard/usage.csv"),
            ("POST", "/dashboard/keys"),
            ("POST", "/dashboard/keys/key_x/revoke"),
            ("POST", "/dashboard/api/playground"),
            ("POST", "/dashboard/api/channels/sandbox/test"),
        ):
            r = await anon.request(method, path)
            assert r.status_code == 401, (method, path, r.text)

    async def test_a_wrong_token_stays_on_the_form(self, anon: httpx.AsyncClient) -> None:
        r = await sign_in(anon, "not-the-token")
        assert r.status_code == 200
        assert 'role="alert"' in r.text and "Admin token" in r.text
        assert auth.COOKIE not in r.headers.get("set-cookie", "")
        assert (await anon.get("/dashboard/videos")).status_code == 303

    async def test_api_keys_cannot_sign_in(self, dash_app: Any, anon: httpx.AsyncClient) -> None:
        key = await new_key(dash_app)
        r = await sign_in(anon, key)
        assert 'role="alert"' in r.text and auth.COOKIE not in r.headers.get("set-cookie", "")
        # and the session cookie is no admin credential: the admin API keeps its bearer token
        await sign_in(anon)
        assert (await anon.get("/admin/keys")).status_code == 401
        ok = await anon.get("/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert ok.status_code == 200

    async def test_the_cookie_flags(self, anon: httpx.AsyncClient) -> None:
        r = await sign_in(anon)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/videos"
        cookie = r.headers["set-cookie"]
        flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")}
        assert {"httponly", "max-age", "path"} <= flags
        assert "samesite=strict" in cookie.lower()
        assert "secure" not in flags  # plain http here
        assert ADMIN_TOKEN not in cookie
        page = await anon.get("/dashboard/videos")
        assert ADMIN_TOKEN not in page.text
        assert "localStorage" not in page.text and "sessionStorage" not in page.text

    async def test_secure_over_https(self, dash_app: Any) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=dash_app), base_url="https://testserver") as c:
            r = await sign_in(c)
        assert "secure" in {f.strip().lower() for f in r.headers["set-cookie"].split(";")}

    async def test_the_next_target_is_never_another_site(self, anon: httpx.AsyncClient) -> None:
        for bad in ("https://evil.example/", "//evil.example/x", "/v1/videos"):
            r = await anon.post("/dashboard/sign-in", data={"token": ADMIN_TOKEN, "next": bad})
            assert r.headers["location"] == "/dashboard/videos", bad
        r = await anon.post("/dashboard/sign-in", data={"token": ADMIN_TOKEN, "next": "/dashboard/keys"})
        assert r.headers["location"] == "/dashboard/keys"

    async def test_forged_and_expired_cookies_are_refused(self, dash_app: Any, anon: httpx.AsyncClient) -> None:
        gw = dash_app.state.gateway
        good = auth.new_cookie(gw)
        issued, expires, nonce, mac = good.split(".")
        for value in (
            f"{issued}.{int(expires) + 10**6}.{nonce}.{mac}",  # a longer life, same MAC
            f"{issued}.{expires}.{nonce}.{'0' * len(mac)}",
            auth.new_cookie(gw, at=1_000_000),  # expired long ago
            "garbage",
        ):
            anon.cookies.set(auth.COOKIE, value, path="/dashboard")
            assert (await anon.get("/dashboard/videos")).status_code == 303, value
        anon.cookies.set(auth.COOKIE, good, path="/dashboard")
        assert (await anon.get("/dashboard/videos")).status_code == 200

    async def test_replicas_accept_each_others_sessions(self, database_url: str, tmp_path: Path) -> None:
        secret = "replica-shared-signing-secret-0123456789"

        def replica(name: str, signing: str) -> Any:
            return create_app(dash_settings(database_url, tmp_path / name, signing_secret=signing))

        a, b, other = replica("a", secret), replica("b", secret), replica("c", secret + "-other")
        async with a.router.lifespan_context(a), b.router.lifespan_context(b), other.router.lifespan_context(other):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url=BASE) as ca:
                cookie = (await sign_in(ca)).cookies[auth.COOKIE]
            for app, want in ((b, 200), (other, 303)):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
                    c.cookies.set(auth.COOKIE, cookie, path="/dashboard")
                    assert (await c.get("/dashboard/keys")).status_code == want

    async def test_sign_in_is_rate_limited(self, anon: httpx.AsyncClient) -> None:
        codes = [(await sign_in(anon, f"guess-{i}")).status_code for i in range(auth.SIGN_IN_LIMIT + 2)]
        assert codes[: auth.SIGN_IN_LIMIT] == [200] * auth.SIGN_IN_LIMIT
        assert codes[auth.SIGN_IN_LIMIT :] == [429, 429]
        locked = await sign_in(anon, "again")
        assert "Too many sign-in attempts" in locked.text and int(locked.headers["retry-after"]) >= 1
        # the right token is refused too while the address is locked out (no guessing around the limit)
        assert (await sign_in(anon)).status_code == 429

    async def test_the_form_sends_a_signed_in_operator_on(self, admin: Admin) -> None:
        c, _ = admin
        r = await c.get("/dashboard/sign-in", params={"next": "/dashboard/usage"})
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/usage"

    async def test_sign_out_ends_the_session(self, admin: tuple[httpx.AsyncClient, str]) -> None:
        c, csrf = admin
        r = await c.post("/dashboard/sign-out", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert auth.COOKIE in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
        assert (await c.get("/dashboard/videos")).status_code == 303

    async def test_served_without_the_engine_too(self, database_url: str, tmp_path: Path) -> None:
        app = create_app(dash_settings(database_url, tmp_path / "nw", run_engine=False))  # serve --no-worker
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
                assert (await sign_in(c)).status_code == 303
                assert (await c.get("/dashboard/videos")).status_code == 200

    async def test_disabled_without_an_admin_token(self, database_url: str, tmp_path: Path) -> None:
        app = create_app(make_settings(database_url, tmp_path / "d"))
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
                r = await c.get("/dashboard/videos", follow_redirects=True)
                assert r.status_code == 403 and "VIDGATE_ADMIN_TOKEN" in r.text and "disabled" in r.text
                r = await c.post("/dashboard/sign-in", data={"token": ""})
                assert r.status_code == 403 and auth.COOKIE not in r.headers.get("set-cookie", "")
                assert (await c.get("/dashboard/api/videos/x")).status_code == 403


class TestCsrf:
    async def _keys(self, c: httpx.AsyncClient) -> list[dict[str, Any]]:
        r = await c.get("/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        return list(r.json()["data"])

    async def test_a_create_without_the_token_or_from_elsewhere_changes_nothing(
        self, admin: tuple[httpx.AsyncClient, str]
    ) -> None:
        c, csrf = admin
        attempts = [
            ({}, {"name": "no-token"}),
            ({}, {"name": "bad-token", "csrf_token": "x" * 43}),
            ({"Origin": "http://127.0.0.1:9"}, {"name": "other-origin", "csrf_token": csrf}),
            ({"Sec-Fetch-Site": "same-site"}, {"name": "same-site", "csrf_token": csrf}),
            ({"Sec-Fetch-Site": "cross-site"}, {"name": "cross-site", "csrf_token": csrf}),
        ]
        for headers, form in attempts:
            r = await c.post("/dashboard/keys", headers=headers, data=form)
            assert r.status_code == 403, (headers, form, r.text)
        assert await self._keys(c) == []
        ok = await c.post(
            "/dashboard/keys",
            headers={"Origin": BASE, "Sec-Fetch-Site": "same-origin"},
            data={"name": "fine", "csrf_token": csrf},
        )
        assert ok.status_code == 200 and "new-secret" in ok.text
        assert [k["name"] for k in await self._keys(c)] == ["fine"]

    async def test_a_cross_site_revoke_changes_nothing(
        self, dash_app: Any, admin: tuple[httpx.AsyncClient, str]
    ) -> None:
        c, csrf = admin
        await new_key(dash_app, name="victim")
        [key] = await self._keys(c)
        for headers, form in (
            ({"Origin": "http://127.0.0.1:9"}, {"csrf_token": csrf}),
            ({}, {}),
        ):
            r = await c.post(f"/dashboard/keys/{key['id']}/revoke", headers=headers, data=form)
            assert r.status_code == 403
        assert [k["status"] for k in await self._keys(c)] == ["active"]

    async def test_another_sessions_token_does_not_work(
        self, dash_app: Any, admin: tuple[httpx.AsyncClient, str]
    ) -> None:
        c, _ = admin
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=dash_app), base_url=BASE) as other:
            await sign_in(other)
            foreign = csrf_of((await other.get("/dashboard/keys")).text)
        r = await c.post("/dashboard/keys", data={"name": "x", "csrf_token": foreign})
        assert r.status_code == 403


class TestPages:
    async def test_every_page_renders_with_the_security_headers(self, admin: tuple[httpx.AsyncClient, str]) -> None:
        c, _ = admin
        for path in PAGES:
            r = await c.get(path)
            assert r.status_code == 200, path
            for name in ("Videos", "Keys", "Channels", "Usage", "Playground"):
                assert f">{name}</a>" in r.text
            assert "script-src 'self'" in r.headers["content-security-policy"]
            assert r.headers["x-frame-options"] == "DENY"
            assert "http://" not in r.text.replace(BASE, "") and "https://" not in r.text  # nothing external
        css = await c.get("/dashboard/static/app.css")
        assert css.status_code == 200 and "prefers-color-scheme: dark" in css.text
        assert (await c.get("/dashboard/static/../router.py")).status_code == 404

    async def test_an_unknown_video_is_a_page_not_json(self, admin: Admin) -> None:
        c, _ = admin
        r = await c.get("/dashboard/videos/video_nope")
        assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "video_nope" in r.text

    async def test_empty_states_have_a_hint(self, admin: tuple[httpx.AsyncClient, str]) -> None:
        c, _ = admin
        assert "No videos yet" in (await c.get("/dashboard/videos")).text
        assert "No API keys yet" in (await c.get("/dashboard/keys")).text
        assert "No usage in this range" in (await c.get("/dashboard/usage")).text

    async def test_prompts_and_names_stay_text(self, dash_app: Any, admin: Admin) -> None:
        c, _ = admin
        key = await new_key(dash_app, name=XSS, owner=XSS)
        vid = await _video(c, key, prompt=XSS)
        await _wait(c, vid)
        for path in ("/dashboard/videos", f"/dashboard/videos/{vid}", "/dashboard/keys", "/dashboard/usage"):
            body = (await c.get(path)).text
            assert XSS not in body, path
            assert "&lt;img src=x onerror=alert(1)&gt;" in body, path

    async def test_videos_page_filters_and_pages(
        self, dash_app: Any, admin: tuple[httpx.AsyncClient, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.dashboard import router

        monkeypatch.setattr(router, "PAGE_SIZE", 2)
        c, _ = admin
        a = await new_key(dash_app, owner="alice")
        b = await new_key(dash_app, owner="bob")
        ids = [await _video(c, a, prompt=f"a{i}") for i in range(3)] + [await _video(c, b, prompt="b0")]
        first = (await c.get("/dashboard/videos")).text
        assert ids[3] in first and ids[2] in first and ids[1] not in first  # newest first, two a page
        assert "Next page" in first and "First page" not in first
        second = (await c.get("/dashboard/videos", params={"after": ids[2]})).text
        assert ids[1] in second and ids[0] in second and ids[3] not in second
        alice = (await c.get("/dashboard/videos", params={"owner": "alice"})).text
        assert ids[3] not in alice and ids[2] in alice
        none = (await c.get("/dashboard/videos", params={"status": "failed", "model": "sandbox"})).text
        assert "No videos match these filters" in none

    async def test_details_content_range_and_delete(self, dash_app: Any, admin: Admin) -> None:
        c, csrf = admin
        key = await new_key(dash_app)
        vid = await _video(c, key, seconds="2")
        v = await _wait(c, vid)
        assert v["status"] == "completed"
        page = (await c.get(f"/dashboard/videos/{vid}")).text
        for text in (
            "<video",
            "content/thumbnail",
            "content/spritesheet",
            "Vendor task id",
            "Usage charged",
            ">Delete<",
        ):
            assert text in page, text
        part = await c.get(f"/dashboard/videos/{vid}/content/video", headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.headers["content-range"].startswith("bytes 0-9/")
        assert (await c.get(f"/dashboard/videos/{vid}/content/thumbnail")).status_code == 200
        r = await c.post(f"/dashboard/videos/{vid}/delete", data={"csrf_token": csrf})
        assert r.status_code == 303
        gone = await c.get(f"/v1/videos/{vid}", headers={"Authorization": f"Bearer {key}"})
        assert gone.status_code == 404
        assert (await c.get(f"/dashboard/videos/{vid}/content/video")).status_code == 404


class TestLargeTables:
    async def test_ten_thousand_videos_page_fast(self, dash_app: Any, admin: Admin) -> None:
        import time

        from sqlalchemy import insert

        from app.videos.models import Video, VideoInputs

        c, _ = admin
        t0 = 1_790_000_000
        rows = [
            {
                "id": f"video_{i:06d}",
                "owner": f"owner-{i % 7}",
                "api_key_id": "key_bulk",
                "operation": "create",
                "model": "sandbox",
                "provider": "sandbox",
                "vendor_model": "sandbox",
                "channel": "sandbox",
                "status": ("completed", "failed")[i % 2],
                "progress": 100,
                "prompt": f"bulk {i}",
                "width": 1280,
                "height": 720,
                "seconds": 4,
                "quality": "standard",
                "inputs": VideoInputs(),
                "vendor_meta": {},
                "assets": {},
                "created_ns": (t0 + i) * 10**9,
                "created_at": t0 + i,
                "updated_at": float(t0 + i),
                "poll_count": 0,
                "poll_errors": 0,
                "reserved_credits": 0.0,
            }
            for i in range(10_000)
        ]
        async with dash_app.state.gateway.sessionmaker() as s:
            await s.execute(insert(Video), rows)
            await s.commit()
        started = time.perf_counter()
        first = await c.get("/dashboard/videos")
        deep = await c.get("/dashboard/videos", params={"after": "video_000100", "owner": "owner-3"})
        elapsed = time.perf_counter() - started
        assert first.status_code == 200 and "video_009999" in first.text and "video_009949" not in first.text
        assert deep.status_code == 200 and "video_000094" in deep.text and "video_000101" not in deep.text
        assert elapsed < 2.0, elapsed


class TestKeys:
    async def test_create_edit_revoke(self, admin: tuple[httpx.AsyncClient, str]) -> None:
        c, csrf = admin
        r = await c.post(
            "/dashboard/keys", data={"csrf_token": csrf, "name": "ci", "owner": "team-a", "models": "sandbox"}
        )
        assert r.status_code == 200
        secret = r.text.split('id="new-secret" class="mono">')[1].split("<")[0]
        assert secret.startswith("sk-vg-")
        auth_h = {"Authorization": f"Bearer {secret}"}
        assert (await c.get("/v1/models", headers=auth_h)).status_code == 200
        keys = (await c.get("/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()["data"]
        [key] = keys
        assert (key["owner"], key["models"]) == ("team-a", ["sandbox"])
        # the secret is not shown again
        assert secret not in (await c.get("/dashboard/keys")).text
        r = await c.post(
            f"/dashboard/keys/{key['id']}/limits",
            data={"csrf_token": csrf, "rpm_limit": "5", "quota_credits": "2.5", "models": "", "enabled": "on"},
        )
        assert r.status_code == 303
        got = (await c.get(f"/admin/keys/{key['id']}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()
        assert (got["rpm_limit"], got["quota_credits"], got["models"], got["enabled"]) == (5, 2.5, None, True)
        r = await c.post(f"/dashboard/keys/{key['id']}/revoke", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert (await c.get("/v1/models", headers=auth_h)).status_code == 401

    async def test_bad_input_is_shown_not_stored(self, admin: tuple[httpx.AsyncClient, str]) -> None:
        c, csrf = admin
        r = await c.post("/dashboard/keys", data={"csrf_token": csrf, "name": "x", "models": "no-such-model"})
        assert "no-such-model" in r.text and 'role="alert"' in r.text
        r = await c.post("/dashboard/keys", data={"csrf_token": csrf, "name": "", "rpm_limit": "-1"})
        assert 'role="alert"' in r.text and "new-secret" not in r.text
        keys = (await c.get("/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()["data"]
        assert keys == []


class TestUsageAndPlayground:
    async def test_playground_videos_belong_to_dashboard_and_count_in_usage(
        self, admin: tuple[httpx.AsyncClient, str]
    ) -> None:
        c, csrf = admin
        r = await c.post(
            "/dashboard/api/playground",
            headers={"X-CSRF-Token": csrf},
            files={"prompt": (None, "a calm lake"), "model": (None, "sandbox"), "seconds": (None, "1")},
        )
        assert r.status_code == 200, r.text
        v = await _wait(c, r.json()["id"])
        assert v["status"] == "completed" and v["owner"] == "dashboard"
        usage = (await c.get("/dashboard/usage")).text
        assert "dashboard playground" in usage and "<svg" in usage
        csv = await c.get("/dashboard/usage.csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.strip().splitlines()
        assert lines[0].startswith("api_key_id,key_name,owner,model") and ",dashboard,sandbox,1,1,0," in lines[1]

    async def test_the_playground_takes_a_reference_image(self, admin: Admin) -> None:
        import io

        from PIL import Image

        c, csrf = admin
        png = io.BytesIO()
        Image.new("RGB", (640, 360), (200, 80, 40)).save(png, "PNG")
        r = await c.post(
            "/dashboard/api/playground",
            headers={"X-CSRF-Token": csrf},
            data={"prompt": "from a frame", "model": "sandbox", "seconds": "1", "size": "640x360"},
            files={"input_reference": ("frame.png", png.getvalue(), "image/png")},
        )
        assert r.status_code == 200, r.text
        v = await _wait(c, r.json()["id"])
        assert v["status"] == "completed" and v["size"] == "640x360"

    async def test_the_playground_needs_the_csrf_header(self, admin: tuple[httpx.AsyncClient, str]) -> None:
        c, _ = admin
        r = await c.post("/dashboard/api/playground", files={"prompt": (None, "x")})
        assert r.status_code == 403

    async def test_channel_test(self, admin: tuple[httpx.AsyncClient, str]) -> None:
        c, csrf = admin
        r = await c.post("/dashboard/api/channels/sandbox/test", headers={"X-CSRF-Token": csrf})
        assert r.json()["ok"] is True
        r = await c.post("/dashboard/api/channels/nope/test", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 404
