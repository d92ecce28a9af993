"""Vidu transport: `Authorization: Token` auth, the Error Code mapping and the HTTP calls of `ViduProvider`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from dataclasses import replace
from typing import Any

import httpx
from pydantic import ValidationError

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    NotFoundAtVendor,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoStatus,
)
from app.providers.http import json_body, request, retry_after, stream
from app.providers.vidu.mapping import (
    ERROR_MESSAGES,
    PROVIDER,
    _Created,
    _output_size,
    build_body,
    endpoint_for,
    snapshot,
)

DEFAULT_BASE_URL = "https://api.vidu.com"

_AUTH_REASONS = frozenset({"Unauthorized", "Forbidden"})
_RATE_REASONS = frozenset({"QuotaExceeded", "TooManyRequests", "SystemThrottling", "OperationInProcess"})
_NOT_FOUND_REASONS = frozenset({"TaskNotFound", "CreationNotFound", "NotFound"})
_UNAVAILABLE_REASONS = frozenset({"InternalServiceFailure", "Canceled"})


def map_error(http_status: int, body: Any, *, retry_after: float | None = None) -> ProviderError:
    """Vidu's `{code, reason, message}` (or an unparsable body) → the ProviderError subclass."""
    reason: str | None = None
    message: str | None = None
    if isinstance(body, dict):
        reason = body.get("reason") if isinstance(body.get("reason"), str) else None
        message = body.get("message") if isinstance(body.get("message"), str) else None
        # An error body on HTTP 200 carries the real status in `code`.
        if http_status < 400 and isinstance(body.get("code"), int) and body["code"] >= 400:
            http_status = body["code"]
    code = reason or f"http_{http_status}"
    text = message or (ERROR_MESSAGES.get(reason, reason) if reason else f"Vidu returned HTTP {http_status}")
    kw: dict[str, Any] = {"vendor_code": code, "status_code": http_status}
    if http_status == 429 or reason in _RATE_REASONS:
        return RateLimited(PROVIDER, text, retry_after=retry_after, **kw)
    if http_status in {401, 403} or reason in _AUTH_REASONS:
        return AuthFailed(PROVIDER, text, **kw)
    if reason in _NOT_FOUND_REASONS or (reason is None and http_status == 404):
        return NotFoundAtVendor(PROVIDER, text, **kw)
    if http_status >= 500 or reason in _UNAVAILABLE_REASONS or http_status < 400:
        return Unavailable(PROVIDER, text, **kw)
    return Rejected(PROVIDER, text, **kw)


def _is_error_body(body: dict[str, Any]) -> bool:
    return "reason" in body or (isinstance(body.get("code"), int) and body["code"] >= 400)


# -- the provider -----------------------------------------------------------------------------------


class TokenAuth(httpx.Auth):
    """`Authorization: Token <api_key>`: the word is `Token`, not `Bearer`."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Token {api_key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class ViduProvider:
    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = 60.0,
    ) -> None:
        self._client = client
        self._auth = TokenAuth(api_key)
        # Third-party configs often store the base with the `/ent/v2` prefix already on it.
        self._base = base_url.rstrip("/").removesuffix("/ent/v2")
        self._timeout = timeout

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = await request(
            self._client,
            PROVIDER,
            method,
            f"{self._base}/ent/v2{path}",
            vendor="Vidu",
            json=body,
            auth=self._auth,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            timeout=self._timeout,
        )
        if resp.is_success and not resp.content:
            return {}  # cancel answers `{}`; tolerate a bare 200 as well
        data = json_body(resp)
        if resp.status_code >= 400:
            raise map_error(resp.status_code, data, retry_after=retry_after(resp.headers))
        if not isinstance(data, dict):
            raise Unavailable(PROVIDER, "Vidu returned a non-JSON body", status_code=resp.status_code)
        if _is_error_body(data):
            raise map_error(resp.status_code, data, retry_after=retry_after(resp.headers))
        return data

    async def check_credentials(self) -> str | None:
        """The dashboard's Test: `GET /ent/v2/credits` costs nothing and needs the key."""
        data = await self._call("GET", "/credits")
        remains = data.get("remains")
        left = (
            sum(int(r.get("credit_remain") or 0) for r in remains if isinstance(r, dict))
            if isinstance(remains, list)
            else None
        )
        return f"Vidu accepted the key; {left} credits left." if left is not None else None

    async def submit(self, req: GenerationRequest) -> VendorTask:
        endpoint = endpoint_for(req)
        body = build_body(req)
        data = await self._call("POST", f"/{endpoint}", body)
        try:
            created = _Created.model_validate(data)
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"unexpected create response: {exc.errors()[:1]}") from None
        if created.state == "failed":
            raise Rejected(PROVIDER, "Vidu refused the task at creation", vendor_code="failed")
        return VendorTask(
            provider=PROVIDER,
            vendor_task_id=created.task_id,
            meta={
                "endpoint": endpoint,
                "model": body["model"],
                "duration": created.duration or body["duration"],
                "resolution": created.resolution or body["resolution"],
                # i2v / start-end follow the image's shape, so their size is unknown.
                "aspect_ratio": (created.aspect_ratio or body.get("aspect_ratio"))
                if endpoint in {"text2video", "reference2video"}
                else None,
                "credits": created.credits,
                "off_peak": bool(created.off_peak or body.get("off_peak")),
            },
        )

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        data = await self._call("GET", f"/tasks/{task.vendor_task_id}/creations")
        try:
            snap = snapshot(data)
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"unexpected task body: {exc.errors()[:1]}") from None
        if snap.status is not VideoStatus.completed:
            return snap
        size = _output_size(task.meta.get("resolution"), task.meta.get("aspect_ratio"))
        duration = task.meta.get("duration")
        return replace(
            snap,
            seconds=duration if isinstance(duration, int) else None,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # The creation URL is pre-signed: no Authorization header.
        expired = "Vidu result URL expired or missing"
        return stream(self._client, PROVIDER, snap.video_url, expired=expired, timeout=self._timeout)

    async def cancel(self, task: VendorTask) -> None:
        await self._call("POST", f"/tasks/{task.vendor_task_id}/cancel", {"id": task.vendor_task_id})
