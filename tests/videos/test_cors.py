"""CORS for browsers: off unless VIDGATE_CORS_ORIGINS lists the page's origin; then the /v1 routes answer
preflights without a key, allow the headers the OpenAI SDKs send and expose x-request-id and
openai-poll-after-ms. Checked with httpx and with a real Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.main import create_app
from tests.conftest import LiveServer, make_settings

ORIGIN = "https://app.example"
IN_CI = os.environ.get("CI") == "true"


def _app(database_url: str, storage: Path, **overrides: Any) -> Any:
    return create_app(make_settings(database_url, storage, run_engine=False, **overrides))


@pytest.fixture
async def cors_client(database_url, tmp_path) -> Any:
    app = _app(database_url, tmp_path / "data", cors_origins=f"{ORIGIN}, http://127.0.0.1:1")
    async with app.router.lifespan_context(app):
        from tests.conftest import new_key

        key = await new_key(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            yield c, {"Authorization": f"Bearer {key}"}


def _preflight(origin: str, method: str = "POST", headers: str = "authorization,content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


async def test_a_preflight_is_answered_without_a_key(cors_client) -> None:
    c, _ = cors_client
    sdk_headers = (
        "authorization,content-type,idempotency-key,x-stainless-os,x-stainless-retry-count,openai-organization"
    )
    for path, method in (("/v1/videos", "POST"), ("/v1/videos/video_x", "GET"), ("/v1/videos/video_x", "DELETE")):
        r = await c.options(path, headers=_preflight(ORIGIN, method, sdk_headers))
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert method in r.headers["access-control-allow-methods"]
        allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        assert set(sdk_headers.split(",")) <= allowed
        assert "access-control-allow-credentials" not in r.headers


async def test_actual_responses_expose_the_request_id_and_poll_hint(cors_client) -> None:
    c, auth = cors_client
    r = await c.post("/v1/videos", headers={**auth, "Origin": ORIGIN}, json={"prompt": "x", "seconds": "1"})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "openai-poll-after-ms"} <= exposed
    # errors are readable too (the SDK shows their message)
    r = await c.get("/v1/videos", headers={"Origin": ORIGIN})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN


async def test_other_origins_and_other_paths_get_no_cors(cors_client) -> None:
    c, auth = cors_client
    r = await c.options("/v1/videos", headers=_preflight("https://evil.example"))
    assert "access-control-allow-origin" not in r.headers
    r = await c.get("/v1/videos", headers={**auth, "Origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    for path in ("/healthz", "/admin/keys", "/files/videos/x/video?expires=1&signature=x"):
        r = await c.get(path, headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in r.headers, path


async def test_no_cors_headers_by_default(client, auth) -> None:
    r = await client.options("/v1/videos", headers=_preflight(ORIGIN))
    assert "access-control-allow-origin" not in r.headers
    r = await client.get("/v1/videos", headers={**auth, "Origin": ORIGIN})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_origins_parse() -> None:
    from app.config import Settings

    assert Settings(_env_file=None).cors_origin_list == []  # type: ignore[call-arg]
    s = Settings(_env_file=None, cors_origins=" https://a.example/ ,http://127.0.0.1:5173")  # type: ignore[call-arg]
    assert s.cors_origin_list == ["https://a.example", "http://127.0.0.1:5173"]


# -- a real browser


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM and not IN_CI:
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")
    if IN_CI:
        from playwright.sync_api import sync_playwright  # CI must have it: a missing browser fails there
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield b
        finally:
            b.close()


PAGE = Starlette(routes=[Route("/", lambda r: HTMLResponse("<!doctype html><title>page</title><p>another origin"))])

FETCH = """async ([url, key]) => {
    try {
        const r = await fetch(url, {headers: {Authorization: "Bearer " + key}});
        return {status: r.status, requestId: r.headers.get("x-request-id"), body: await r.json()};
    } catch (e) {
        return {error: e.name + ": " + e.message};
    }
}"""


def _fetch_from_another_origin(browser: Any, server: LiveServer, secret: str, page_server: LiveServer) -> Any:
    page = browser.new_page()
    try:
        page.goto(page_server.url + "/")
        return page.evaluate(FETCH, [server.url + "/v1/videos", secret])
    finally:
        page.close()


def _live(database_url: str, storage: Path, **overrides: Any) -> tuple[LiveServer, str]:
    from app.db import create_engine, create_sessionmaker
    from app.keys.service import create_key

    settings = make_settings(database_url, storage, run_engine=False, **overrides)

    async def mk() -> str:
        engine = create_engine(settings.resolved_database_url)
        async with create_sessionmaker(engine)() as s:
            _, secret = await create_key(s, name="browser")
            await s.commit()
        await engine.dispose()
        return secret

    # on a thread of its own: Playwright's sync API keeps an event loop running on this one
    with ThreadPoolExecutor(1) as pool:
        secret = pool.submit(asyncio.run, mk()).result()
    return LiveServer(create_app(settings), settings=settings), secret


def test_a_browser_page_on_a_configured_origin_can_call_the_api(browser, database_url, tmp_path) -> None:
    with LiveServer(PAGE) as page_server:
        server, secret = _live(database_url, tmp_path / "a", cors_origins=page_server.url)
        with server:
            got = _fetch_from_another_origin(browser, server, secret, page_server)
    assert got.get("status") == 200, got
    assert got["body"]["object"] == "list"
    assert got["requestId"] and got["requestId"].startswith("req_"), got


def test_a_browser_page_on_another_origin_cannot(browser, database_url, tmp_path) -> None:
    with LiveServer(PAGE) as page_server:
        server, secret = _live(database_url, tmp_path / "b")  # VIDGATE_CORS_ORIGINS unset
        with server:
            got = _fetch_from_another_origin(browser, server, secret, page_server)
            assert got == {"error": "TypeError: Failed to fetch"}, got
        server, secret = _live(database_url, tmp_path / "c", cors_origins="http://127.0.0.1:1")
        with server:
            got = _fetch_from_another_origin(browser, server, secret, page_server)
            assert got == {"error": "TypeError: Failed to fetch"}, got
