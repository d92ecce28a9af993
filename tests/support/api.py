"""Helpers for tests that speak to /v1 over HTTP: the Video's keys, a multipart form, waiting for a video to
finish, and checking an OpenAI-shaped error."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

VIDEO_KEYS = {
    "id",
    "object",
    "model",
    "status",
    "progress",
    "created_at",
    "completed_at",
    "expires_at",
    "prompt",
    "size",
    "seconds",
    "remixed_from_video_id",
    "error",
}


def form(**fields: Any) -> dict[str, Any]:
    return {k: (None, str(v)) for k, v in fields.items()}


async def finish(client: httpx.AsyncClient, auth: dict[str, str], video_id: str, timeout: float = 30) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await client.get(f"/v1/videos/{video_id}", headers=auth)
        body = r.json()
        if body["status"] in ("completed", "failed"):
            return body
        assert loop.time() < deadline, body
        await asyncio.sleep(0.05)


def assert_error(r: httpx.Response, status: int, *, param: str | None = None, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers.get("x-request-id")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    if param is not None:
        assert err["param"] == param
    if code is not None:
        assert err["code"] == code
    return err
