"""The Seedance provider: Bearer auth and the Ark task endpoints (§2, §3, §8)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx

from app.providers.base import GenerationRequest, NotFoundAtVendor, Rejected, TaskSnapshot, Unavailable, VendorTask
from app.providers.http import json_body, request, retry_after, stream
from app.providers.seedance.catalog import DEFAULT_BASE_URL, PROVIDER, platform_model
from app.providers.seedance.mapping import build_body, map_error, snapshot

TASKS_PATH = "/api/v3/contents/generations/tasks"


class ArkAuth(httpx.Auth):
    """`Authorization: Bearer <ARK API key>` on every call (§2)."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class SeedanceProvider:
    """Seedance over Ark's content-generation task API (Volcengine or BytePlus, by `base_url`)."""

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
        self._auth = ArkAuth(api_key)
        # SDK-style configs store the base with `/api/v3` on it (§1)
        self._base = base_url.rstrip("/").removesuffix("/api/v3")
        self._timeout = timeout

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        resp = await request(
            self._client,
            PROVIDER,
            method,
            f"{self._base}{TASKS_PATH}{path}",
            vendor="Ark",
            json=body,
            auth=self._auth,
            headers=headers,
            timeout=self._timeout,
        )
        data = json_body(resp)
        if not resp.is_success:
            raise map_error(resp.status_code, data, retry_after=retry_after(resp.headers))
        if resp.is_success and not resp.content:
            return {}
        if not isinstance(data, dict):
            raise Unavailable(PROVIDER, "Ark sent a non-JSON body.", status_code=resp.status_code)
        # a failed task carries `error` too; only a body that is not a task is an error envelope
        if "status" not in data and "id" not in data and isinstance(data.get("error"), dict):
            raise map_error(400, data)
        return data

    async def check_credentials(self) -> str | None:
        """The dashboard's Test: listing one task costs nothing and needs the key."""
        await self._call("GET", "?page_num=1&page_size=1")
        return "Ark accepted the key (listed tasks)."

    async def submit(self, req: GenerationRequest) -> VendorTask:
        model = platform_model(req.model, self._base)
        body = build_body(req, model=model)
        data = await self._call("POST", "", body)
        task_id = data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise Unavailable(PROVIDER, "Ark accepted the task but returned no id.")
        meta = {"model": model, "resolution": body.get("resolution"), "ratio": body.get("ratio")}
        return VendorTask(provider=PROVIDER, vendor_task_id=task_id, meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        try:
            data = await self._call("GET", f"/{task.vendor_task_id}")
        except (Rejected, Unavailable) as exc:
            if exc.status_code == 404:  # kept 7 days, then gone
                raise NotFoundAtVendor(PROVIDER, exc.message, vendor_code=exc.vendor_code, status_code=404) from exc
            raise
        return snapshot(data, model=task.meta.get("model"))

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # a pre-signed TOS URL: no Authorization, so the key never reaches the storage host
        expired = "The Seedance result URL has expired (valid 24 h)."
        return stream(self._client, PROVIDER, snap.video_url, expired=expired, timeout=self._timeout)

    async def cancel(self, task: VendorTask) -> None:
        """Cancels a queued task or deletes a finished one (§8); a task already gone is fine."""
        try:
            await self._call("DELETE", f"/{task.vendor_task_id}")
        except Rejected as exc:
            if exc.status_code != 404:
                raise
