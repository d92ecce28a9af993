"""Dashboard fixtures: an app with an admin token, an httpx client, and a signed-in client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.conftest import make_settings

ADMIN_TOKEN = "dashboard-test-admin-token-0123456789"
BASE = "http://testserver"


def dash_settings(database_url: str, storage: Path, **overrides: Any) -> Any:
    return make_settings(database_url, storage, admin_token=ADMIN_TOKEN, **overrides)


@pytest.fixture
async def dash_app(database_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    application = create_app(dash_settings(database_url, tmp_path / "data"))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def anon(dash_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=dash_app), base_url=BASE) as c:
        yield c


async def sign_in(c: httpx.AsyncClient, token: str = ADMIN_TOKEN) -> httpx.Response:
    return await c.post("/dashboard/sign-in", data={"token": token, "next": "/dashboard/videos"})


def csrf_of(html: str) -> str:
    m = re.search(r'data-csrf="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


@pytest.fixture
async def admin(anon: httpx.AsyncClient) -> tuple[httpx.AsyncClient, str]:
    """A signed-in client and its session's CSRF token."""
    r = await sign_in(anon)
    assert r.status_code == 303, r.text
    page = await anon.get("/dashboard/videos")
    assert page.status_code == 200, page.text
    return anon, csrf_of(page.text)
