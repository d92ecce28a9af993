"""Downloads racing a DELETE or the retention purge: every answer is a whole, correct body or a clean 404.

The file is opened before the response is chosen and the descriptor is held while it is streamed (an
unlinked file stays readable on POSIX), so a download that started completes, and a download whose file
vanished before it was opened is a 404 envelope, never a 500 or a cut-off body."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.videos import reads
from app.videos.models import Video
from tests.support.api import assert_error, finish

pytestmark = pytest.mark.engine  # these tests watch videos finish

READERS = 8


async def _completed(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> str:
    payload = {"prompt": "race", "seconds": "2", "size": "320x240", "metadata": {"sandbox_latency_ms": 0}, **body}
    r = await client.post("/v1/videos", headers=auth, json=payload)
    assert r.status_code == 200, r.text
    done = await finish(client, auth, r.json()["id"])
    assert done["status"] == "completed", done
    return str(done["id"])


def _check(r: httpx.Response, full: bytes, span: tuple[int, int] | None) -> str:
    """'ok' for a whole correct body, '404' for a clean not-found; anything else fails the test."""
    if r.status_code == 404:
        err = assert_error(r, 404)
        assert err["type"] == "invalid_request_error"
        return "404"
    assert r.status_code == (206 if span else 200), r.text[:300]
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.content == (full[span[0] : span[1] + 1] if span else full)
    return "ok"


async def test_concurrent_range_downloads_while_the_owner_deletes(live) -> None:
    server, key = live
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        vid = await _completed(client, auth)
        full = (await client.get(f"/v1/videos/{vid}/content", headers=auth)).content
        assert len(full) > 1000
        spans = [None, (0, 99), (100, len(full) - 1), (len(full) // 2, len(full) // 2 + 500)]
        outcomes: list[str] = []
        started = asyncio.Event()

        async def reader(i: int) -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as own:
                n = 0
                while True:
                    span = spans[(i + n) % len(spans)]
                    headers = {**auth, "Range": f"bytes={span[0]}-{span[1]}"} if span else auth
                    try:
                        r = await own.get(f"/v1/videos/{vid}/content", headers=headers)
                    except httpx.HTTPError as exc:  # a cut-off body or a dropped connection
                        outcomes.append(f"transport error: {exc!r}")
                        return
                    outcomes.append(_check(r, full, span))
                    n += 1
                    if n >= 3:
                        started.set()
                    if outcomes[-1] == "404":
                        return

        tasks = [asyncio.create_task(reader(i)) for i in range(READERS)]
        await asyncio.wait_for(started.wait(), 30)
        d = await client.delete(f"/v1/videos/{vid}", headers=auth)
        assert d.status_code == 200, d.text
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert set(outcomes) <= {"ok", "404"}, [o for o in outcomes if o not in ("ok", "404")][:5]
    assert outcomes.count("404") == READERS


@pytest.fixture
def vanish_after_lookup(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Delete the asset's files right after the content lookup has found them (before the file is opened)."""
    vanished: list[str] = []
    real = reads.asset

    async def asset(gw: Any, row: Video, variant: str, session: Any = None) -> tuple[str, str, str]:
        found = await real(gw, row, variant, session)
        await gw.storage.delete_prefix(f"videos/{row.id}")
        vanished.append(row.id)
        return found

    monkeypatch.setattr(reads, "asset", asset)
    return vanished


class TestFileVanishesBetweenLookupAndOpen:
    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    async def test_content_is_a_404_envelope(self, client, auth, vanish_after_lookup, method) -> None:
        vid = await _completed(client, auth)
        r = await client.request(method, f"/v1/videos/{vid}/content", headers={**auth, "Range": "bytes=0-9"})
        assert vanish_after_lookup == [vid]
        if method == "GET":
            assert_error(r, 404, param="video_id", code="video_not_found")
        else:
            assert r.status_code == 404

    async def test_signed_link_is_a_404_envelope(self, client, auth, vanish_after_lookup) -> None:
        vid = await _completed(client, auth)
        url = (await client.get(f"/v1/videos/{vid}", headers=auth)).json()["url"]
        assert_error(await client.get(url), 404, code="video_not_found")

    async def test_purged_by_the_janitor_meanwhile_is_video_expired(self, app, client, auth, monkeypatch) -> None:
        vid = await _completed(client, auth)
        gw = app.state.gateway
        real = reads.asset

        async def asset(gw_: Any, row: Video, variant: str, session: Any = None) -> tuple[str, str, str]:
            found = await real(gw_, row, variant, session)
            # the retention deadline passes and the janitor purges, between this lookup and the open
            async with gw.sessionmaker() as s:
                stored = await s.get(Video, row.id)
                assert stored is not None
                stored.expires_at = 1
                await s.commit()
            assert await gw.engine.purge_expired() == 1
            row.expires_at = 1
            return found

        monkeypatch.setattr(reads, "asset", asset)
        assert_error(await client.get(f"/v1/videos/{vid}/content", headers=auth), 404, code="video_expired")


async def test_a_started_download_completes_after_the_file_is_unlinked(app, client, auth) -> None:
    """The held descriptor keeps the bytes: deleting mid-stream does not cut the body short."""
    vid = await _completed(client, auth)
    gw = app.state.gateway
    full = await gw.storage.read_bytes(f"videos/{vid}/video.mp4")
    request = _request("GET", {"range": "bytes=10-"})
    response = await gw.storage.serve(f"videos/{vid}/video.mp4", request, media_type="video/mp4", filename="v.mp4")
    await gw.storage.delete_prefix(f"videos/{vid}")
    status, headers, body = await _run(response, request)
    assert status == 206 and body == full[10:]
    assert int(headers["content-length"]) == len(body)


def _request(method: str, headers: dict[str, str]) -> Any:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "query_string": b"",
        "asgi": {"spec_version": "2.4"},
    }
    return Request(scope)


async def _run(response: Any, request: Any) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await response(request.scope, receive, send)
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])
