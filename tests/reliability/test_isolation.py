"""Isolation: key A and key B (two owners) across every endpoint and variant; API keys (ours and the
vendors') never in logs or error bodies; client image URLs never fetched from internal addresses (SSRF)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app.keys.models import ApiKey
from app.keys.service import hash_secret
from app.main import create_app
from tests.conftest import LiveServer, make_settings, new_key
from tests.fakes.assets import real_mp4
from tests.reliability.rig import all_rows
from tests.support.api import assert_error, finish
from tests.support.media import solid_image
from tests.support.network import PUBLIC_IP, Network

pytestmark = pytest.mark.engine  # these tests watch videos finish

FAST = {"sandbox_latency_ms": 0}
UNKNOWN_VIDEO = "video_" + "0" * 48
UNKNOWN_CHAR = "char_" + "0" * 32


@pytest.fixture
async def gateway(own_database, tmp_path) -> AsyncIterator[Any]:
    app = create_app(make_settings(own_database, tmp_path / "data", log_level="DEBUG", sandbox_fps=4))
    async with app.router.lifespan_context(app):
        yield app


def _client(app: Any, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw", headers=headers, timeout=30)


def _same(theirs: httpx.Response, unknown: httpx.Response, *ids: str) -> bool:
    """Byte-identical answers once the ids each request named are masked (some messages echo the id)."""

    def norm(r: httpx.Response) -> tuple[int, bytes]:
        body = r.content
        for i in (*ids, UNKNOWN_VIDEO, UNKNOWN_CHAR):
            body = body.replace(i.encode(), b"<id>")
        return r.status_code, body

    return norm(theirs) == norm(unknown)


async def _make_a_things(a: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    """One video of every kind and state, and a character, all owned by A."""
    made: dict[str, str] = {}

    async def create(path: str, **kw: Any) -> str:
        r = await a.post(path, **kw)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    made["json"] = await create("/v1/videos", json={"prompt": "a", "seconds": "1", "size": "64x64", "metadata": FAST})
    made["upload"] = await create(
        "/v1/videos",
        data={"prompt": "a-img", "seconds": "1", "size": "64x64", "metadata": json.dumps(FAST)},
        files={"input_reference": ("a.png", solid_image((9, 9, 9), size=(64, 64), fmt="PNG"), "image/png")},
    )
    made["failed"] = await create(
        "/v1/videos", json={"prompt": "a", "seconds": "1", "size": "64x64", "metadata": {**FAST, "sandbox_fail": "x"}}
    )
    made["unfinished"] = await create(
        "/v1/videos", json={"prompt": "a", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 60000}}
    )
    await finish(a, {}, made["json"])
    made["remix"] = await create(f"/v1/videos/{made['json']}/remix", json={"prompt": "remix", "metadata": FAST})
    made["edit"] = await create("/v1/videos/edits", json={"prompt": "edit", "video": {"id": made["json"]}})
    made["extend"] = await create(
        "/v1/videos/extensions", json={"prompt": "more", "seconds": "1", "video": {"id": made["json"]}}
    )
    r = await a.post("/v1/videos/characters", data={"name": "cat"}, files={"video": ("c.mp4", real_mp4(), "video/mp4")})
    assert r.status_code == 200, r.text
    for key in ("upload", "failed", "remix", "edit", "extend"):
        await finish(a, {}, made[key])
    return made, r.json()["id"]


def _probes(vid: str, char: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every request B can make that names one of A's objects (by `vid` / `char`)."""
    probes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/v1/videos/{vid}", {}),
        ("DELETE", f"/v1/videos/{vid}", {}),
        ("POST", f"/v1/videos/{vid}/remix", {"json": {"prompt": "steal"}}),
        ("POST", f"/v1/videos/{vid}/remix", {"files": {"prompt": (None, "steal")}}),
        ("POST", "/v1/videos/edits", {"json": {"prompt": "steal", "video": {"id": vid}}}),
        ("POST", "/v1/videos/edits", {"files": {"prompt": (None, "steal"), "video[id]": (None, vid)}}),
        ("POST", "/v1/videos/extensions", {"json": {"prompt": "steal", "seconds": "1", "video": {"id": vid}}}),
        (
            "POST",
            "/v1/videos/extensions",
            {"files": {"prompt": (None, "s"), "seconds": (None, "1"), "video": (None, vid)}},
        ),
        ("GET", "/v1/videos", {"params": {"after": vid}}),
        ("GET", "/v1/videos", {"params": {"after": vid, "order": "asc", "limit": "1"}}),
        ("GET", f"/v1/videos/characters/{char}", {}),
        ("POST", "/v1/videos", {"json": {"prompt": "steal", "characters": [{"id": char}]}}),
    ]
    for variant in ("video", "thumbnail", "spritesheet", "nope"):
        probes.append(("GET", f"/v1/videos/{vid}/content", {"params": {"variant": variant}}))
        probes.append(("HEAD", f"/v1/videos/{vid}/content", {"params": {"variant": variant}}))
    probes.append(("GET", f"/v1/videos/{vid}/content", {"headers": {"Range": "bytes=0-10"}}))
    return probes


async def test_key_b_learns_nothing_about_key_a(gateway, caplog) -> None:
    key_a, key_b = await new_key(gateway, name="a"), await new_key(gateway, name="b")
    seen: list[httpx.Response] = []
    async with _client(gateway, key_a) as a, _client(gateway, key_b) as b:
        made, char = await _make_a_things(a)
        before = {v: (await a.get(f"/v1/videos/{v}")).json() for v in made.values()}
        for kind, vid in made.items():
            for method, path, kw in _probes(vid, char):
                theirs = await b.request(method, path, **kw)
                unknown_kw = json.loads(
                    json.dumps(kw, default=str).replace(vid, UNKNOWN_VIDEO).replace(char, UNKNOWN_CHAR)
                )
                if "files" in kw:  # tuples do not survive JSON
                    unknown_kw["files"] = {k: tuple(v) for k, v in unknown_kw["files"].items()}
                unknown = await b.request(
                    method, path.replace(vid, UNKNOWN_VIDEO).replace(char, UNKNOWN_CHAR), **unknown_kw
                )
                seen += [theirs, unknown]
                assert theirs.status_code in (400, 404), (kind, method, path, kw, theirs.text)
                assert _same(theirs, unknown, vid, char), (kind, method, path, kw, theirs.text, unknown.text)

        # B's list, paged in both orders, holds none of A's videos (B made none of its own)
        for order in ("asc", "desc"):
            r = await b.get("/v1/videos", params={"order": order, "limit": "100"})
            assert r.status_code == 200 and r.json()["data"] == []
        r = await b.get("/v1/models")
        assert r.status_code == 200

        # A's things are untouched by all of that: same objects, content still there, nothing deleted
        after = {v: (await a.get(f"/v1/videos/{v}")).json() for v in made.values()}
        for v in made.values():
            assert {k: x for k, x in after[v].items() if k != "url"} == {
                k: x for k, x in before[v].items() if k != "url"
            }
        for kind in ("json", "upload", "remix", "edit", "extend"):
            for variant in ("video", "thumbnail", "spritesheet"):
                r = await a.get(f"/v1/videos/{made[kind]}/content", params={"variant": variant})
                assert r.status_code == 200, (kind, variant)
        assert (await a.get(f"/v1/videos/characters/{char}")).status_code == 200
        listed = {v["id"] for v in (await a.get("/v1/videos", params={"limit": "100"})).json()["data"]}
        assert listed == set(made.values())
    _assert_secrets_absent([key_a, key_b], seen, caplog)


# ---------------------------------------------------------------------------------------------
# Secrets in logs and error bodies

UPSTREAM_KEY = "sk-upstream-secret-0123456789abcdefXYZ"


def _echoing_upstream() -> Starlette:
    """An OpenAI-format upstream that echoes the credential it received in its error messages."""
    tasks: dict[str, str] = {}

    async def create(request: Request) -> Response:
        form = await request.form()
        auth = request.headers.get("authorization", "")
        if form.get("prompt") == "reject me":
            err = {"message": f"bad request from {auth}", "type": "invalid_request_error", "code": "invalid_value"}
            return JSONResponse({"error": err}, status_code=400)
        if form.get("prompt") == "refuse me":
            err = {"message": f"Incorrect API key provided: {auth}", "type": "invalid_request_error", "code": None}
            return JSONResponse({"error": err}, status_code=401)
        vid = f"video_up{len(tasks)}"
        tasks[vid] = auth
        return JSONResponse({"id": vid, "object": "video", "status": "queued", "progress": 0})

    async def poll(request: Request) -> Response:
        vid = request.path_params["vid"]
        err = {"code": "moderation_blocked", "message": f"blocked; your key {tasks[vid]} is on file"}
        return JSONResponse({"id": vid, "object": "video", "status": "failed", "error": err})

    return Starlette(
        routes=[Route("/v1/videos", create, methods=["POST"]), Route("/v1/videos/{vid}", poll, methods=["GET"])]
    )


async def test_api_keys_never_reach_logs_or_error_bodies(own_database, tmp_path, caplog) -> None:
    config = tmp_path / "gateway.yaml"
    channel = {
        "name": "echo",
        "vendor": "openai_compat",
        "credentials": {"api_key": UPSTREAM_KEY},
        "base_url": "http://echo.upstream/v1",
        "models": ["sora-2"],
    }
    config.write_text(yaml.safe_dump({"channels": [channel]}))
    http = httpx.AsyncClient(mounts={"http://echo.upstream": httpx.ASGITransport(app=_echoing_upstream())})
    app = create_app(
        make_settings(own_database, tmp_path / "data", config=config, log_level="DEBUG", poll_interval_ms=20),
        http=http,
    )
    seen: list[httpx.Response] = []
    async with app.router.lifespan_context(app):
        key = await new_key(app, name="k")
        other = await new_key(app, name="other")
        await _revoke(app, other)
        async with _client(app) as c:
            auth = {"Authorization": f"Bearer {key}"}
            attempts = [
                {"Authorization": f"Bearer {key}x"},  # one character off
                {"Authorization": f"Bearer {key[:-1]}"},
                {"Authorization": f"Bearer {other}"},  # revoked
                {"Authorization": f"Basic {key}"},
                {"Authorization": key},
                {"Authorization": f"Bearer  {key} extra"},
                {"X-Api-Key": key},
                {"Api-Key": key},
            ]
            for headers in attempts:
                r = await c.get("/v1/videos", headers=headers)
                seen.append(r)
                assert_error(r, 401)
            for r in (
                await c.get("/v1/videos", params={"api_key": key}),
                await c.post("/v1/videos", headers={"X-Api-Key": key}, json={"prompt": key}),
            ):
                seen.append(r)
                assert_error(r, 401)

            # the upstream echoes our vendor credential in a rejection, an auth failure and a task failure
            r = await c.post("/v1/videos", headers=auth, json={"prompt": "reject me", "model": "sora-2"})
            seen.append(r)
            assert_error(r, 400)
            r = await c.post("/v1/videos", headers=auth, json={"prompt": "refuse me", "model": "sora-2"})
            seen.append(r)
            assert r.status_code in (502, 503), r.text
            r = await c.post("/v1/videos", headers=auth, json={"prompt": "fails later", "model": "sora-2"})
            assert r.status_code == 200, r.text
            body = await finish(c, auth, r.json()["id"])
            assert body["status"] == "failed" and body["error"]["code"] == "moderation_blocked"
            seen += [await c.get(f"/v1/videos/{body['id']}", headers=auth), await c.get("/v1/videos", headers=auth)]
    await http.aclose()
    _assert_secrets_absent([key, other, UPSTREAM_KEY], seen, caplog)


async def _revoke(app: Any, secret: str) -> None:

    async with app.state.gateway.sessionmaker() as s:
        await s.execute(update(ApiKey).where(ApiKey.key_hash == hash_secret(secret)).values(revoked_at=1.0))
        await s.commit()


def _assert_secrets_absent(secrets: list[str], responses: list[httpx.Response], caplog: Any) -> None:
    assert caplog.records, "no logs were captured"
    logged = [caplog.text] + [r.getMessage() + (r.exc_text or "") + repr(r.__dict__) for r in caplog.records]
    for secret in secrets:
        # the secret part of a key, not its public display prefix
        tail = secret[-16:]
        for text in logged:
            assert tail not in text, f"a key leaked into the logs: {text[:500]}"
        for r in responses:
            assert tail not in r.text and all(tail not in v for v in r.headers.values()), r.text


# ---------------------------------------------------------------------------------------------
# SSRF: the gateway fetches client image URLs itself when the model needs the bytes (the sandbox does)


class ImageHost:
    """A loopback web server holding an image (and a redirect to it), counting what it is asked for."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.host_headers: list[str | None] = []

        async def image(request: Request) -> Response:
            self.hits.append(request.url.path)
            self.host_headers.append(request.headers.get("host"))
            return Response(solid_image((1, 200, 3), size=(64, 64), fmt="PNG"), media_type="image/png")

        async def hop(request: Request) -> Response:
            self.hits.append(request.url.path)
            return RedirectResponse(request.query_params["to"], status_code=302)

        self.server = LiveServer(Starlette(routes=[Route("/img.png", image), Route("/redirect", hop)]))
        self.port = self.server.port


def _internal_urls(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/img.png",
        f"http://localhost:{port}/img.png",
        f"http://[::1]:{port}/img.png",
        f"http://127.1:{port}/img.png",
        f"http://2130706433:{port}/img.png",  # 127.0.0.1 as one decimal number
        f"http://0x7f000001:{port}/img.png",
        f"http://0.0.0.0:{port}/img.png",
        f"http://[::ffff:127.0.0.1]:{port}/img.png",
        "http://10.0.0.1/img.png",
        "http://172.16.0.1/img.png",
        "http://192.168.1.1/img.png",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata, link-local
        "http://[fe80::1]/img.png",
        "http://[fd00::1]/img.png",
        "http://100.64.0.1/img.png",  # carrier-grade NAT
        f"http://127.0.0.1:{port}@127.0.0.1:{port}/img.png",
    ]


def _ways_to_send(url: str) -> list[dict[str, Any]]:
    base = {"prompt": "x", "seconds": "1", "size": "64x64"}
    return [
        {"json": {**base, "input_reference": {"image_url": url}}},
        {"json": {**base, "input_reference": url}},
        {"json": {**base, "metadata": {"img_url": url}}},
        {"files": {**{k: (None, v) for k, v in base.items()}, "input_reference[image_url]": (None, url)}},
    ]


async def test_client_image_urls_on_internal_addresses_are_never_fetched(gateway) -> None:
    host = ImageHost()
    with host.server:
        async with _client(gateway, await new_key(gateway)) as c:
            for url in _internal_urls(host.port):
                for kw in _ways_to_send(url):
                    r = await asyncio.wait_for(c.post("/v1/videos", **kw), 30)
                    err = assert_error(r, 400)
                    assert err["code"] in ("image_url_not_allowed", "image_fetch_failed"), (url, err)
            for url in ("file:///etc/passwd", "ftp://127.0.0.1/x.png", "gopher://127.0.0.1:6379/_INFO"):
                assert_error(
                    await c.post("/v1/videos", json={"prompt": "x", "input_reference": {"image_url": url}}), 400
                )
            assert (await c.get("/v1/videos")).json()["data"] == []
    assert host.hits == []
    assert not list((gateway.state.gateway.settings.storage_dir / "assets").rglob("*.*"))


async def test_a_redirect_to_an_internal_address_is_refused_at_that_hop(own_database, tmp_path, monkeypatch) -> None:
    host = ImageHost()
    with host.server:
        # public.example resolves to a public address, which the test's network routes to the image host
        Network(monkeypatch, {"public.example": [PUBLIC_IP]}, routes={PUBLIC_IP: host.port})
        app = create_app(make_settings(own_database, tmp_path / "data"))
        async with app.router.lifespan_context(app), _client(app, await new_key(app)) as c:
            body = {"prompt": "x", "seconds": "1", "size": "64x64", "metadata": FAST}
            # the rig works: a public URL is fetched
            url = f"http://public.example:{host.port}/img.png"
            r = await c.post("/v1/videos", json={**body, "input_reference": {"image_url": url}})
            assert r.status_code == 200, r.text
            assert host.hits == ["/img.png"]
            for target in (f"http://127.0.0.1:{host.port}/img.png", "http://169.254.169.254/latest/meta-data/"):
                url = str(httpx.URL(f"http://public.example:{host.port}/redirect", params={"to": target}))
                r = await c.post("/v1/videos", json={**body, "input_reference": {"image_url": url}})
                assert_error(r, 400, code="image_url_not_allowed")
            assert host.hits == ["/img.png", "/redirect", "/redirect"]  # never the internal target
    assert len(await all_rows(own_database)) == 1


async def test_private_addresses_are_fetched_when_the_operator_allows_them(own_database, tmp_path) -> None:
    host = ImageHost()
    app = create_app(make_settings(own_database, tmp_path / "data", allow_private_image_urls=True, sandbox_fps=4))
    with host.server:
        async with app.router.lifespan_context(app), _client(app, await new_key(app)) as c:
            url = f"http://127.0.0.1:{host.port}/img.png"
            r = await c.post(
                "/v1/videos",
                json={
                    "prompt": "x",
                    "seconds": "1",
                    "size": "64x64",
                    "input_reference": {"image_url": url},
                    "metadata": FAST,
                },
            )
            assert r.status_code == 200, r.text
            assert (await finish(c, {}, r.json()["id"]))["status"] == "completed"
    assert host.hits == ["/img.png"]
