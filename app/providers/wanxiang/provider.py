"""Wanxiang transport: DashScope Bearer auth (§2), the error mapping (§6.3, §9) and the HTTP calls of
`WanxiangProvider` (create on the right path, query, cancel, download)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx

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
)
from app.providers.http import by_status, json_body, request, retry_after, stream
from app.providers.wanxiang.mapping import _Output, build_body, parse, snapshot
from app.providers.wanxiang.models import PROVIDER, kind_of

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com"

CREATE_PATHS = {
    "video": "/api/v1/services/aigc/video-generation/video-synthesis",
    "kf2v": "/api/v1/services/aigc/image2video/video-synthesis",
}


def _error_class(http_status: int, code: str) -> type[ProviderError]:
    if http_status == 429 or code.startswith("Throttling"):
        return RateLimited
    # AccessDenied covers an unactivated model and a missing async header: an operator problem either way.
    if code == "InvalidApiKey" or code.startswith("AccessDenied"):
        return AuthFailed
    cls = by_status(http_status)
    if cls is Rejected and (http_status in {404, 408} or code.startswith(("InternalError", "RequestTimeOut"))):
        return Unavailable
    return cls


def map_error(http_status: int, body: dict[str, Any] | None, *, retry_after: float | None = None) -> ProviderError:
    """A DashScope error (flat `{request_id, code, message}`, §6.3/§9) → ProviderError.

    `body` is None when it was not JSON. HTTP 200 with a `code` is an error too (§11).
    """
    body = body or {}
    code = str(body.get("code") or "")
    message = str(body.get("message") or f"DashScope returned HTTP {http_status}.")
    cls = _error_class(http_status, code)
    return cls(PROVIDER, message, vendor_code=code or None, retry_after=retry_after, status_code=http_status)


# ---------------------------------------------------------------------------------------------
# Transport


class DashScopeAuth(httpx.Auth):
    """`Authorization: Bearer sk-…` (§2). Keys are region-specific: a wrong region reads as InvalidApiKey."""

    def __init__(self, api_key: str, workspace: str | None = None) -> None:
        self._api_key = api_key
        self._workspace = workspace

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        if self._workspace:
            request.headers["X-DashScope-WorkSpace"] = self._workspace
        yield request


class WanxiangProvider:
    """Tongyi Wanxiang via DashScope's native task API."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        workspace: str | None = None,
    ) -> None:
        self._client = client
        self._auth = DashScopeAuth(api_key, workspace)
        self._base = base_url.rstrip("/")

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, dict[str, Any]]:
        resp = await request(
            self._client, PROVIDER, method, f"{self._base}{path}", vendor="DashScope", auth=self._auth, **kwargs
        )
        body = json_body(resp)
        if not isinstance(body, dict):
            if resp.is_success:
                raise Unavailable(PROVIDER, "DashScope sent a non-JSON body.", status_code=resp.status_code)
            raise map_error(resp.status_code, None, retry_after=retry_after(resp.headers))
        if not resp.is_success or body.get("code"):
            raise map_error(resp.status_code, body, retry_after=retry_after(resp.headers))
        return resp, body

    async def submit(self, req: GenerationRequest) -> VendorTask:
        kind = kind_of(req.model)
        path = CREATE_PATHS["kf2v" if kind == "kf2v" else "video"]
        _, body = await self._call("POST", path, json=build_body(req), headers={"X-DashScope-Async": "enable"})
        task_id = (parse(body).output or _Output()).task_id
        if not task_id:
            raise Unavailable(PROVIDER, "DashScope accepted the task but returned no task_id.")
        return VendorTask(provider=PROVIDER, vendor_task_id=task_id, meta={"model": req.model, "kind": kind})

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        try:
            _, body = await self._call("GET", f"/api/v1/tasks/{task.vendor_task_id}")
        except Unavailable as exc:
            # Real DashScope answers UNKNOWN with 200; some gateways in front of it use 404.
            if exc.status_code == 404:
                gone = NotFoundAtVendor(PROVIDER, exc.message, vendor_code=exc.vendor_code, status_code=404)
                raise gone from exc
            raise
        return snapshot(body)

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # A pre-signed OSS URL: no auth, so our key never leaves for the storage host.
        return stream(
            self._client, PROVIDER, snap.video_url, expired="The DashScope result URL has expired (valid 24 h)."
        )

    async def cancel(self, task: VendorTask) -> None:
        # Only PENDING tasks can be canceled; otherwise DashScope answers 400 (→ Rejected).
        await self._call("POST", f"/api/v1/tasks/{task.vendor_task_id}/cancel")
