"""`Range` on local storage, on `/v1/videos/{id}/content` and on the signed link (RFC 9110 §14; the S3
backend answers the same, tests/storage/test_s3.py): a malformed header is ignored (200, whole body), an
unsatisfiable one is a 416 with `Content-Range: bytes */size` and the error envelope."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import assert_error, finish

pytestmark = pytest.mark.engine  # these tests watch videos finish

MALFORMED = ["bytes=abc", "bytes=5-2", "bytes=-", "bytes", "bytes=0-1,x", "items=0-1", "bytes=1-2-3", "=0-1"]
UNSATISFIABLE = ["bytes={size}-", "bytes={size}-{over}", "bytes=-0", "bytes={size}-,{over}-"]


@pytest.fixture
async def video(client: httpx.AsyncClient, auth: dict[str, str]) -> dict:
    r = await client.post(
        "/v1/videos",
        headers=auth,
        json={"prompt": "ranges", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
    )
    body = await finish(client, auth, r.json()["id"])
    assert body["status"] == "completed", body
    return body


async def _check(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    full = await client.get(url, headers=headers)
    assert full.status_code == 200
    size = len(full.content)

    for header in MALFORMED:
        r = await client.get(url, headers={**headers, "Range": header})
        assert r.status_code == 200, (header, r.status_code, r.text[:200])
        assert r.content == full.content, header
        assert "content-range" not in r.headers

    for template in UNSATISFIABLE:
        header = template.format(size=size, over=size + 10)
        for method in ("GET", "HEAD"):
            r = await client.request(method, url, headers={**headers, "Range": header})
            assert r.status_code == 416, (header, method, r.status_code, r.text[:200])
            assert r.headers["content-range"] == f"bytes */{size}"
            if method == "GET":
                assert_error(r, 416, code="range_not_satisfiable")

    # still honoured: one range, several ranges (merged when they touch), a suffix, a clipped end
    r = await client.get(url, headers={**headers, "Range": "bytes=10-19"})
    assert (r.status_code, r.content, r.headers["content-range"]) == (206, full.content[10:20], f"bytes 10-19/{size}")
    r = await client.get(url, headers={**headers, "Range": "bytes=0-4,5-9"})
    assert (r.status_code, r.content) == (206, full.content[:10])
    r = await client.get(url, headers={**headers, "Range": f"bytes=-5,{size}-"})  # one of two is satisfiable
    assert (r.status_code, r.content) == (206, full.content[-5:])
    r = await client.get(url, headers={**headers, "Range": "bytes=0-1,4-5"})
    assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")
    r = await client.get(url, headers={**headers, "Range": f"bytes={size - 3}-{size + 100}"})
    assert (r.status_code, r.content) == (206, full.content[-3:])


async def test_content_route(client: httpx.AsyncClient, auth: dict[str, str], video: dict) -> None:
    await _check(client, f"/v1/videos/{video['id']}/content", auth)


async def test_signed_link(client: httpx.AsyncClient, video: dict) -> None:
    await _check(client, video["url"], {})


async def test_thumbnail_variant(client: httpx.AsyncClient, auth: dict[str, str], video: dict) -> None:
    await _check(client, f"/v1/videos/{video['id']}/content?variant=thumbnail", auth)
