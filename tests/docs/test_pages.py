"""`/docs` and `/redoc` work on a machine without internet access: every script, style sheet and icon they
reference is served by vidgate itself, and ReDoc loads no Google Fonts."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")
EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_page_references_only_its_own_assets(client: httpx.AsyncClient, page: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), "an absolute URL in the page"
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
    urls = [a or b for a, b in ASSET.findall(html)]
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, html
    assert "/openapi.json" in urls
    for url in urls:
        absolute = urljoin(f"http://testserver{page}", url)
        assert urlsplit(absolute).netloc == "testserver", url
        asset = await client.get(absolute)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert EXPECTED_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url


async def test_assets_are_the_real_bundles(client: httpx.AsyncClient) -> None:
    swagger = await client.get("/docs/static/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in swagger.content
    redoc = await client.get("/docs/static/redoc.standalone.js")
    assert b"Redoc" in redoc.content
    css = await client.get("/docs/static/swagger-ui.css")
    assert b".swagger-ui" in css.content


async def test_root_path_prefixes_the_asset_urls(app) -> None:
    # behind a proxy that mounts vidgate under a prefix, the page must not point at the proxy's root
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, root_path="/gw"), base_url="http://testserver"
    ) as c:
        html = (await c.get("/docs")).text
    assert "/gw/docs/static/swagger-ui-bundle.js" in html and "/gw/openapi.json" in html
