"""The dashboard in a real browser (Debian's Chromium driven by Playwright): sign-in, every page without
console errors, a completed sandbox video that plays, live progress, the key create/revoke round trip,
the XSS prompt as text, the playground, and a cross-site form from another port that changes nothing."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.main import create_app
from tests.conftest import LiveServer
from tests.dashboard.conftest import ADMIN_TOKEN, dash_settings

IN_CI = os.environ.get("CI") == "true"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
XSS = "<img src=x onerror=alert(1)>"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
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


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = dash_settings(database_url, tmp_path / "data", sandbox_latency_ms=1200)
    with LiveServer(create_app(settings), settings=settings) as live:
        yield live


class Page:
    """A browser page that records console errors, uncaught exceptions and dialogs."""

    def __init__(self, browser: Any, server: LiveServer) -> None:
        self.context = browser.new_context(viewport={"width": 1024, "height": 800})
        self.page = self.context.new_page()
        self.base = server.url
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def on_dialog(d: Any) -> None:
            self.dialogs.append(f"{d.type}: {d.message}")
            d.accept() if d.type == "confirm" else d.dismiss()

        self.page.on("dialog", on_dialog)

    def sign_in(self) -> Any:
        p = self.page
        p.goto(self.base + "/dashboard")
        p.get_by_label("Admin token").fill(ADMIN_TOKEN)
        p.get_by_role("button", name="Sign in").click()
        p.wait_for_url("**/dashboard/videos")
        return p

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Page]:
    pg = Page(browser, server)
    try:
        yield pg
    finally:
        pg.close()


def api_key(server: LiveServer, **body: Any) -> str:
    r = httpx.post(f"{server.url}/admin/keys", headers=ADMIN, json={"name": "browser", **body})
    assert r.status_code == 200, r.text
    return str(r.json()["secret"])


def make_video(
    server: LiveServer, key: str, *, prompt: str = "a red fox", seconds: str = "2", latency_ms: int | None = None
) -> str:
    body: dict[str, Any] = {"model": "sandbox", "prompt": prompt, "seconds": seconds}
    if latency_ms is not None:
        body["metadata"] = {"sandbox_latency_ms": latency_ms}
    r = httpx.post(f"{server.url}/v1/videos", headers={"Authorization": f"Bearer {key}"}, json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def wait_done(server: LiveServer, key: str, video_id: str) -> dict[str, Any]:
    deadline = time.time() + 60
    while time.time() < deadline:
        v = httpx.get(f"{server.url}/v1/videos/{video_id}", headers={"Authorization": f"Bearer {key}"}).json()
        if v["status"] in ("completed", "failed"):
            return dict(v)
        time.sleep(0.2)
    raise AssertionError(f"{video_id} did not finish")


READY = "v => v.readyState >= 2 && Number.isFinite(v.duration)"


def test_sign_in_and_every_page_renders_without_console_errors(page: Page, server: LiveServer) -> None:
    key = api_key(server)
    wait_done(server, key, make_video(server, key, seconds="1"))
    p = page.page
    p.goto(server.url + "/dashboard/keys")
    assert "/dashboard/sign-in" in p.url  # no session: the sign-in form
    p.get_by_label("Admin token").fill("wrong")
    p.get_by_role("button", name="Sign in").click()
    assert p.get_by_role("alert").is_visible() and p.get_by_label("Admin token").is_visible()
    p.get_by_label("Admin token").fill(ADMIN_TOKEN)
    p.get_by_role("button", name="Sign in").click()
    p.wait_for_url("**/dashboard/keys")
    for name in ("Videos", "Keys", "Channels", "Usage", "Playground"):
        p.get_by_role("link", name=name, exact=True).click()
        p.wait_for_load_state("networkidle")
        assert p.get_by_role("heading", level=1).inner_text() == name
        # usable at 1024 px: nothing wider than the window (wide tables scroll inside their box)
        assert p.evaluate("() => document.documentElement.scrollWidth") <= 1024, name
    p.get_by_role("link", name="Videos", exact=True).click()
    table = p.get_by_role("table")
    for column in ("ID", "Status", "Model", "Channel", "Owner", "Created"):
        assert table.get_by_role("columnheader", name=column, exact=True).count() == 1, column
    p.get_by_role("table").get_by_role("link").first.click()
    p.wait_for_load_state("networkidle")
    assert p.evaluate("() => [localStorage.length, sessionStorage.length]") == [0, 0]
    assert ADMIN_TOKEN not in p.evaluate("() => document.cookie + location.href")  # HttpOnly, not in the URL
    p.get_by_role("button", name="Sign out").click()
    p.wait_for_url("**/dashboard/sign-in")
    assert page.errors == [], page.errors


def test_dark_mode(browser: Any, server: LiveServer) -> None:
    ctx = browser.new_context(color_scheme="dark")
    try:
        p = ctx.new_page()
        p.goto(server.url + "/dashboard/sign-in")
        dark = p.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")
        p.emulate_media(color_scheme="light")
        light = p.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")
        assert dark != light, (dark, light)
    finally:
        ctx.close()


def test_a_completed_video_plays_and_progress_updates_live(page: Page, server: LiveServer) -> None:
    key = api_key(server)
    slow = make_video(server, key, seconds="1", latency_ms=4000)
    p = page.sign_in()
    # the list updates unfinished rows in place
    row = p.get_by_role("row").filter(has_text=slow)
    assert row.locator(".badge").inner_text() in ("queued", "in progress")
    row.locator(".badge", has_text="completed").wait_for(timeout=30_000)
    assert p.evaluate("() => performance.getEntriesByType('navigation').length") == 1  # no reload
    vid = make_video(server, key, seconds="2", latency_ms=3000)
    p.goto(f"{server.url}/dashboard/videos/{vid}")
    assert p.locator(".pagehead .badge").inner_text() in ("queued", "in progress")
    # no reload: the page swaps in the finished view by itself
    video = p.locator("video")
    video.wait_for(timeout=30_000)
    p.wait_for_function(f"() => {{ const v = document.querySelector('video'); return v && ({READY})(v); }}")
    duration = video.evaluate("v => v.duration")
    assert abs(duration - 2.0) < 0.15, duration
    # seeking works (Range requests)
    video.evaluate("v => { v.currentTime = 1.5; }")
    p.wait_for_function(
        "() => { const v = document.querySelector('video'); return !v.seeking && v.currentTime > 1.4; }"
    )
    assert p.locator("img.thumb").evaluate("i => i.naturalWidth") > 0
    assert p.locator("img.sprites").evaluate("i => i.naturalWidth") > 0
    p.get_by_role("button", name="Delete").click()
    p.wait_for_url("**/dashboard/videos")
    assert any(d.startswith("confirm:") for d in page.dialogs)
    r = httpx.get(f"{server.url}/v1/videos/{vid}", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 404
    assert page.errors == [], page.errors


def test_key_create_and_revoke_round_trip(page: Page, server: LiveServer) -> None:
    api_key(server)  # a key in the table already: the form's labels must stay unique on the page
    p = page.sign_in()
    p.get_by_role("link", name="Keys", exact=True).click()
    p.get_by_label("Name", exact=True).fill("from-the-browser")
    p.get_by_label("Owner", exact=True).fill("team-b")
    p.get_by_label("Models", exact=True).fill("sandbox")
    p.get_by_role("button", name="Create", exact=True).click()
    secret = p.locator("#new-secret").inner_text().strip()
    assert secret.startswith("sk-vg-")
    assert p.get_by_role("button", name="Copy").is_visible()
    models = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert models.status_code == 200
    row = p.get_by_role("row").filter(has_text="from-the-browser")
    row.get_by_role("button", name="Edit").click()
    p.get_by_role("dialog").get_by_label("RPM limit").fill("7")
    p.get_by_role("dialog").get_by_role("button", name="Save").click()
    p.wait_for_load_state("networkidle")
    assert "RPM 7" in p.get_by_role("row").filter(has_text="from-the-browser").inner_text()
    p.get_by_role("row").filter(has_text="from-the-browser").get_by_role("button", name="Revoke").click()
    p.wait_for_load_state("networkidle")
    assert "revoked" in p.get_by_role("row").filter(has_text="from-the-browser").inner_text()
    assert any(d.startswith("confirm:") for d in page.dialogs)
    models = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert models.status_code == 401
    assert page.errors == [], page.errors


def test_an_xss_prompt_stays_text(page: Page, server: LiveServer) -> None:
    key = api_key(server, owner=XSS)
    vid = make_video(server, key, prompt=XSS, seconds="1")
    wait_done(server, key, vid)
    p = page.sign_in()
    for path in ("/dashboard/videos", f"/dashboard/videos/{vid}", "/dashboard/keys", "/dashboard/usage"):
        p.goto(server.url + path)
        p.wait_for_load_state("networkidle")
        assert p.get_by_text(XSS).count() >= 1, path
        assert p.locator("img[src=x]").count() == 0, path
    assert page.dialogs == []
    assert page.errors == [], page.errors


def test_the_playground_generates_and_plays(page: Page, server: LiveServer) -> None:
    p = page.sign_in()
    p.get_by_role("link", name="Playground", exact=True).click()
    p.get_by_label("Prompt").fill("a paper boat on a pond")
    p.get_by_label("Model").select_option("sandbox")
    p.get_by_label("Size").fill("640x360")
    p.get_by_label("Seconds").fill("1")
    assert p.get_by_label("Reference image").get_attribute("type") == "file"
    p.get_by_role("button", name="Generate").click()
    p.locator("#p-result progress, #p-result video").first.wait_for()
    p.wait_for_function(
        f"() => {{ const v = document.querySelector('#p-result video'); return v && ({READY})(v); }}", timeout=30_000
    )
    assert abs(p.locator("#p-result video").evaluate("v => v.duration") - 1.0) < 0.15
    tasks = httpx.get(f"{server.url}/admin/tasks", headers=ADMIN, params={"owner": "dashboard"}).json()["data"]
    assert [t["prompt"] for t in tasks] == ["a paper boat on a pond"]
    assert page.errors == [], page.errors


def _evil(target: str) -> Starlette:
    form = f"""<!doctype html><title>evil</title>
<form id="k" method="post" action="{target}/dashboard/keys"><input name="name" value="evil"></form>
<script>document.getElementById("k").submit();</script>"""
    quiet = "<!doctype html><title>evil</title><p>nothing here"
    return Starlette(routes=[Route("/", lambda r: HTMLResponse(form)), Route("/quiet", lambda r: HTMLResponse(quiet))])


def test_a_cross_site_form_changes_nothing(page: Page, server: LiveServer) -> None:
    victim = api_key(server)
    page.sign_in()
    with LiveServer(_evil(server.url)) as evil:  # another port of 127.0.0.1: same-site for cookies
        p = page.page
        with p.expect_navigation():
            p.goto(evil.url + "/")
        p.wait_for_load_state("networkidle")
        assert p.url.startswith(server.url + "/dashboard/keys")
        assert "Cross-site request refused" in p.content()
        # a script on the evil page cannot do better: it cannot read the CSRF token, and the origin is wrong
        p.goto(evil.url + "/quiet")
        got = p.evaluate(
            """async (url) => {
                const r = await fetch(url + "/dashboard/api/playground", {method: "POST", credentials: "include",
                    mode: "no-cors", body: new URLSearchParams({prompt: "evil"})});
                return r.type;
            }""",
            server.url,
        )
        assert got == "opaque"
    keys = httpx.get(f"{server.url}/admin/keys", headers=ADMIN).json()["data"]
    assert [k["name"] for k in keys] == ["browser"]
    assert httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {victim}"}).status_code == 200
    assert httpx.get(f"{server.url}/admin/tasks", headers=ADMIN).json()["data"] == []
