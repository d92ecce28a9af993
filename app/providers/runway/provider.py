"""Runway adapter: the Runway API (developer platform, `api.dev.runwayml.com`) for text and image to video.

Implements /work/shared/vendors/runway.md (from the `runwayml` 5.24.0 SDK types and Runway's docs):
- §2 auth: `Authorization: Bearer <key>` and `X-Runway-Version: 2024-11-06` on every call (create, poll, cancel);
- §4/§5 create: `POST /v1/text_to_video` without an image, `POST /v1/image_to_video` with one; the body is
  validated per model on each endpoint, so `body.SCHEMAS` is the per-endpoint model table (ratios are exact
  pixel strings "W:H", durations integers, optional fields the model's schema has, nothing else);
- §4.1 images: `promptImage` is a data URI (whole string under 5 MB) or an HTTPS URL on a domain; a last
  frame makes it `[{uri, position: "first"}, {uri, position: "last"}]` where the model takes one;
- §7 `GET /v1/tasks/{id}`: PENDING/THROTTLED → queued, RUNNING (+ `progress` 0–1) → in_progress,
  SUCCEEDED (`output[]`) → completed, FAILED (`failureCode`, `failure`) / CANCELLED → failed; `cost.credits`
  is reported as usage;
- §8 `DELETE /v1/tasks/{id}` → 204 (`cancel`: the engine drops a task it gave up downloading);
- §10 errors `{"error", "issues", "docUrl"}`: 400 Rejected (credits → `insufficient_credits`, a moderation
  message → `moderation_blocked`), 401 AuthFailed, 404 NotFoundAtVendor, 429 RateLimited, 5xx Unavailable.

No callbacks (§9: Runway has none; vidgate polls, every 6 s at most as Runway's SDK does). No crash recovery
(`Recoverable`): a create takes no client reference and Runway has no task listing, so a task a crash
created cannot be found again by vidgate's id; the engine submits again.

Sizes: a model's `ModelCaps.sizes` is the union of its ratios over both endpoints (gen4.5 has 2 on
text_to_video, 6 on image_to_video). The service snaps/refuses against that union; a size valid only on the
other endpoint is snapped here to the nearest ratio of the endpoint used (closest aspect, then area) and
the snapshot reports the size really produced.

UNCONFIRMED facts (§14) and what this adapter does:
- gen4_turbo duration: current docs say 2–10, SDK ≤ 3.x said 5 or 10 → 2–10 (the current docs), default 5.
- default durations of veo3.1 / veo3.1_fast / gemini_omni_flash are undocumented → `duration` always sent.
- veo3 is absent from SDK 5.24 (retirement unconfirmed) → kept, with its SDK-4.x schema (8 s, no seed).
- whether every model refuses unknown keys → only keys of the model's own schema are sent; other metadata
  (OpenAI metadata is free-form) is dropped and logged.
- the wording of a synchronous moderation 400 → any 400 whose text names moderation / safety / content
  policy (or a `SAFETY.*` code) is `moderation_blocked`.
- the status of a missing/unknown `X-Runway-Version` → a 400 like any input error (never retried; one whose
  text names the version is `api_version` and logged as an error, since only the operator can fix it).
- Veo's `audio` default → `has_audio` is reported only when the client set `audio` explicitly.
- a cancelled task reading back as CANCELLED or 404 → both are fine (`cancel` ignores a 404).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Generator
from dataclasses import replace
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

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
from app.providers.http import json_body, progress, request, retry_after, stream
from app.providers.runway.body import (
    API_VERSION,
    DEFAULT_BASE_URL,
    POLL_AFTER,
    PROVIDER,
    build_body,
    endpoint_for,
    pixels,
)

log = logging.getLogger(__name__)


STATUS: dict[str, VideoStatus] = {
    "PENDING": VideoStatus.queued,
    "THROTTLED": VideoStatus.queued,  # over the org's concurrency: stored and started in order, not refused
    "RUNNING": VideoStatus.in_progress,
    "SUCCEEDED": VideoStatus.completed,
    "FAILED": VideoStatus.failed,
    "CANCELLED": VideoStatus.failed,
}


# -- responses (pure) -------------------------------------------------------------------------------------


class _Credits(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    credits: float | None = None


class _Created(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    estimatedCost: _Credits | None = None


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str | None = None
    status: str
    progress: float | None = None
    output: list[str] | None = None
    failure: str | None = None
    failureCode: str | None = None
    cost: _Credits | None = None


def snapshot(raw: Any) -> TaskSnapshot:
    task = _Task.model_validate(raw)
    status = STATUS.get(task.status)
    meta: dict[str, Any] = {"status": task.status}
    usage = {"credits": float(task.cost.credits)} if task.cost and task.cost.credits is not None else {}
    if status is None:
        log.warning("runway: unknown task status %r; polling on", task.status)
        return TaskSnapshot(status=VideoStatus.in_progress, poll_after=POLL_AFTER, meta=meta)
    if status is VideoStatus.failed:
        if task.status == "CANCELLED":
            code, message = "cancelled", task.failure or "The task was cancelled at Runway."
        else:
            code, message = task.failureCode or "generation_failed", task.failure or "Runway could not generate it."
        return TaskSnapshot(status=status, error_code=code, error_message=message, usage=usage, meta=meta)
    if status is VideoStatus.completed:
        url = next((u for u in task.output or () if u), None)
        if url is None:
            return TaskSnapshot(
                status=VideoStatus.failed,
                error_code="no_output",
                error_message="Runway reported success without a video URL.",
                usage=usage,
                meta=meta,
            )
        return TaskSnapshot(status=status, progress=100, video_url=url, usage=usage, meta=meta)
    reported = round(task.progress * 100) if status is VideoStatus.in_progress and task.progress is not None else None
    return TaskSnapshot(status=status, progress=progress(status, reported), poll_after=POLL_AFTER, meta=meta)


# words of a moderation refusal; a space is required so a field path like `contentModeration` never matches
_MODERATION = re.compile(r"content moderation|moderation system|content polic|\bflagged\b|\bsafety\b", re.IGNORECASE)
_VERSION = re.compile(r"runway-version|api version", re.IGNORECASE)
_CREDITS = re.compile(r"enough credits|insufficient credits|credit balance", re.IGNORECASE)


def error_text(body: Any, http_status: int) -> str:
    """Runway's `error` plus its zod `issues` (path: message), for the client."""
    if not isinstance(body, dict):
        return f"Runway returned HTTP {http_status}."
    text = body.get("error") if isinstance(body.get("error"), str) else f"Runway returned HTTP {http_status}."
    issues = body.get("issues")
    if isinstance(issues, list):
        parts = []
        for issue in issues[:10]:
            if not isinstance(issue, dict):
                continue
            path = ".".join(str(p) for p in issue.get("path") or ()) or "body"
            parts.append(f"{path}: {issue.get('message') or issue.get('code') or 'invalid'}")
        if parts:
            text = f"{text}: {'; '.join(parts)}"
    return str(text)


def map_error(http_status: int, body: Any, *, retry_after: float | None = None) -> ProviderError:
    """Runway's `{"error", "issues", "docUrl"}` (or any body) at an HTTP status → the ProviderError."""
    text = error_text(body, http_status)
    kw: dict[str, Any] = {"status_code": http_status}
    if http_status == 429:
        return RateLimited(PROVIDER, text, vendor_code="rate_limited", retry_after=retry_after, **kw)
    if http_status == 401:
        return AuthFailed(PROVIDER, text, vendor_code="unauthorized", **kw)
    if http_status == 404:
        return NotFoundAtVendor(PROVIDER, text, vendor_code="not_found", **kw)
    if http_status >= 500 or http_status in {408, 409}:
        return Unavailable(PROVIDER, text, vendor_code=f"http_{http_status}", retry_after=retry_after, **kw)
    if _CREDITS.search(text):
        return Rejected(PROVIDER, text, vendor_code="insufficient_credits", **kw)
    if _MODERATION.search(text):
        return Rejected(PROVIDER, text, vendor_code="moderation_blocked", **kw)
    if _VERSION.search(text):  # our own header: nothing a client can fix
        log.error("runway refused the API version %s: %s", API_VERSION, text)
        return Rejected(PROVIDER, text, vendor_code="api_version", **kw)
    if http_status == 403:  # "Model variant … is not available" for an organization without access
        return Rejected(PROVIDER, text, vendor_code="model_not_available", **kw)
    issues = isinstance(body, dict) and bool(body.get("issues"))
    return Rejected(PROVIDER, text, vendor_code="validation_failed" if issues else f"http_{http_status}", **kw)


# -- the provider -----------------------------------------------------------------------------------------


class RunwayAuth(httpx.Auth):
    """The bearer key and the API version header, on every request."""

    def __init__(self, api_key: str, version: str = API_VERSION) -> None:
        self._headers = {"Authorization": f"Bearer {api_key}", "X-Runway-Version": version}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self._headers)
        yield request


class RunwayProvider:
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
        self._auth = RunwayAuth(api_key)
        self._base = base_url.rstrip("/").removesuffix("/v1")  # the host root; paths carry /v1
        self._timeout = timeout

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        resp = await request(
            self._client,
            PROVIDER,
            method,
            f"{self._base}{path}",
            vendor="Runway",
            json=body,
            auth=self._auth,
            headers=headers,
            timeout=self._timeout,
        )
        if resp.status_code >= 400:
            raise map_error(resp.status_code, json_body(resp), retry_after=retry_after(resp.headers))
        if resp.status_code == 204 or not resp.content:
            return None
        data = json_body(resp)
        if not isinstance(data, dict):
            raise Unavailable(
                PROVIDER, "Runway returned a body that is not JSON.", vendor_code="bad_json", status_code=200
            )
        return data

    async def check_credentials(self) -> str | None:
        """The dashboard's Test: `GET /v1/organization` costs nothing and needs the key and version header."""
        data = await self._call("GET", "/v1/organization")
        balance = data.get("creditBalance") if isinstance(data, dict) else None
        return f"Runway accepted the key; credit balance {balance}." if balance is not None else None

    async def submit(self, req: GenerationRequest) -> VendorTask:
        endpoint = endpoint_for(req)
        body = build_body(req)
        data = await self._call("POST", f"/v1/{endpoint}", body)
        try:
            created = _Created.model_validate(data)
        except ValidationError:
            raise Unavailable(PROVIDER, "Runway's create answer has no task id.", vendor_code="bad_json") from None
        meta: dict[str, Any] = {"endpoint": endpoint, "model": req.model, "duration": body["duration"]}
        if "ratio" in body:
            meta["ratio"] = body["ratio"]
        if "audio" in body:
            meta["audio"] = body["audio"]
        if created.estimatedCost is not None and created.estimatedCost.credits is not None:
            meta["estimated_credits"] = created.estimatedCost.credits
        return VendorTask(provider=PROVIDER, vendor_task_id=created.id, meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        data = await self._call("GET", f"/v1/tasks/{task.vendor_task_id}")
        try:
            snap = snapshot(data)
        except ValidationError:
            raise Unavailable(PROVIDER, "Runway's task answer has no status.", vendor_code="bad_json") from None
        if snap.status is not VideoStatus.completed:
            return snap
        ratio, duration, audio = task.meta.get("ratio"), task.meta.get("duration"), task.meta.get("audio")
        size = pixels(ratio) if isinstance(ratio, str) and ":" in ratio else (None, None)
        return replace(
            snap,
            seconds=duration if isinstance(duration, int) else None,
            width=size[0],
            height=size[1],
            has_audio=audio if isinstance(audio, bool) else None,
        )

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # `output[0]` is a signed CDN URL (24-48 h): no credentials go with it; an expired one is re-polled
        expired = "Runway's result URL has expired."
        return stream(self._client, PROVIDER, snap.video_url, expired=expired, timeout=self._timeout)

    async def cancel(self, task: VendorTask) -> None:
        """Cancels a live task, deletes a finished one (and its outputs); a task already gone is fine."""
        try:
            await self._call("DELETE", f"/v1/tasks/{task.vendor_task_id}")
        except NotFoundAtVendor:
            return
