"""Luma Dream Machine API adapter (`ray-2`, `ray-flash-2`, legacy `ray-1-6`), per /work/shared/vendors/luma.md
(the `lumaai` 1.21.0 SDK types are the field authority):
- §4/§6 create `POST {base}/generations/video` (once more on the older `POST {base}/generations` when the new
  path answers 404/405): `{model, prompt, aspect_ratio, resolution, duration, keyframes, loop, concepts,
  callback_url}` (`build_body`); §5 models (`MODELS`; ray-1-6 takes no `resolution`, `duration`, `concepts`);
- §7 poll `GET {base}/generations/{id}`: `queued | dreaming | completed | failed` (`STATUS`, `snapshot`), with a
  synthesized monotone progress (Luma reports none); §8 delete (`cancel`); §9 `callback_url` (scheme "token");
- §10 errors `{"detail": "<text>"}` / 422 `{"detail": [...]}` (`map_error`), §10.3 `failure_reason` (`failure_code`).

Images: Luma takes `http(s)` URLs only (`keyframes.frame0/frame1 = {"type":"image","url":…}`), so the image
transport is "url" (uploads arrive as signed vidgate links). `last_frame` / `metadata.last_frame_url` is
`frame1`; `extend` of a Luma-made video is `frame0 = {"type":"generation","id": <source generation>}`.

Recovery: Luma keeps no client reference, but every Generation echoes its request, `callback_url` included,
and vidgate's callback URL names the task (`/callbacks/luma/{task_id}/…`): `recover` lists the newest
generations and matches that. Without vidgate's callback URL (no VIDGATE_PUBLIC_BASE_URL, or the client's
own) nothing ties a generation to our id (prompt + time is too weak): `recover` answers None.

UNCONFIRMED, and what is done:
- Base URL: SDK base `…/dream-machine/v1`; the doc also allows the host root: the prefix is added if missing.
- Output pixels per aspect/resolution: assumed short side = resolution (540/720/1080/2160), long side from
  the ratio (1280x720, 1680x720, 3840x2160 …); the gateway probes the real file. ray-1-6 is listed at 720p.
- Default `resolution` (third parties: 540p): always sent for the ray-2 family.
- ray-1-6 still served (absent from SDK 1.21): kept as legacy, without `duration`/`resolution`/`concepts`.
- Billing errors: 402, or any text about credits/balance/billing → `Rejected(insufficient_quota)`; bare 403 →
  AuthFailed. 429: `Retry-After` when present, else the service's default.
- Moderation at create: an error text about moderation/blacklisted/safety → `Rejected(moderation_blocked)`
  (e.g. `400: failed to moderate image`, which also means Luma could not fetch the image).
- Whether an extended generation's video includes the source clip: vidgate reports what the file holds.
- Asset URL lifetime: downloaded as soon as the task completes, without credentials (a CDN link).
- Listing order and page size: assumed newest first, `limit=100`; `recover` reads 3 pages at most.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Generator
from datetime import datetime
from typing import Any, Final, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    ImageInput,
    NotFoundAtVendor,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    Unsupported,
    VendorTask,
    VideoStatus,
)
from app.providers.capabilities import ModelCaps, aspect_ratio
from app.providers.http import json_body, parse_bool, request, retry_after, stream

log = logging.getLogger(__name__)

PROVIDER: Final = "luma"
API_PREFIX: Final = "/dream-machine/v1"
DEFAULT_BASE_URL: Final = f"https://api.lumalabs.ai{API_PREFIX}"

# -- capability table (§5) ----------------------------------------------------------------------

ASPECTS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS: Final[dict[str, int]] = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
DURATIONS: Final[dict[int, str]] = {5: "5s", 9: "9s"}
LEGACY: Final = frozenset({"ray-1-6"})  # no `resolution`, `duration` or `concepts` (§4, [S9][S10])

# metadata keys this adapter reads (anything else in `metadata` is the client's own and not sent)
EXTRAS: Final = frozenset({"loop", "concepts", "callback_url", "keyframes", "last_frame_url"})


def pixels(short: int, ar: str) -> tuple[int, int]:
    """The (assumed, UNCONFIRMED) output size of an aspect ratio at a short side: 720 + 16:9 → 1280x720."""
    a, b = (int(x) for x in ar.split(":"))
    long = round(short * max(a, b) / min(a, b) / 2) * 2
    return (long, short) if a >= b else (short, long)


_RAY2_SIZES = tuple(pixels(short, ar) for short in RESOLUTIONS.values() for ar in ASPECTS)
_LEGACY_SIZES = tuple(pixels(720, ar) for ar in ASPECTS)


def _caps(name: str, sizes: tuple[tuple[int, int], ...], seconds: tuple[int, ...], description: str) -> ModelCaps:
    return ModelCaps(
        name=name, provider=PROVIDER, sizes=sizes, seconds=seconds, default_size=(1280, 720), default_seconds=5,
        image="optional", last_frame=True, extend=True, extras=EXTRAS, description=description,
    )  # fmt: skip


MODELS: tuple[ModelCaps, ...] = (
    _caps("ray-2", _RAY2_SIZES, (5, 9), "Luma Ray 2: 5 or 9 s, 540p to 4k, seven aspect ratios; start/end frame"),
    _caps("ray-flash-2", _RAY2_SIZES, (5, 9), "Luma Ray Flash 2: a faster Ray 2; 5 or 9 s, 540p to 4k"),
    _caps("ray-1-6", _LEGACY_SIZES, (5,), "Luma Ray 1.6 (legacy): about 5 s, no resolution choice"),
)

# -- translation tables (§7.1, §10.3) -----------------------------------------------------------------

STATUS: Final[dict[str, VideoStatus]] = {
    "queued": VideoStatus.queued,
    "dreaming": VideoStatus.in_progress,
    "completed": VideoStatus.completed,
    "failed": VideoStatus.failed,
}

MODERATION: Final = "moderation_blocked"
FAILURES: Final[dict[str, str]] = {
    # §10.3 "Moderation" group (an unreadable keyframe URL is listed there too)
    "contains blacklisted words": MODERATION,
    "failed to read user input frames": MODERATION,
    "frame moderation failed": MODERATION,
    "advanced prompt moderation failed": MODERATION,
    "prompt processing failed": "prompt_processing_failed",
    "error dispatching job": "generation_failed",
    "job failed": "generation_failed",
    "error processing callback": "callback_failed",
}
_MODERATION_WORDS = ("moderat", "blacklist", "nsfw", "safety", "inappropriate", "policy violation")
_BALANCE_WORDS = tuple(
    "insufficient credit|not enough credit|insufficient balance|insufficient fund|out of credits|"
    "credit balance|billing|payment required".split("|")
)

# synthesized progress: queued stays below 10; dreaming climbs from 10 towards 99 (half-way after 90 s)
_QUEUED_MAX = 9
_DREAMING_MIN = 10
_DREAMING_HALF_S = 90.0


# -- request building -----------------------------------------------------------------------------


def aspect_for(width: int, height: int) -> str:
    return aspect_ratio(width, height, ASPECTS)


def resolution_for(width: int, height: int) -> str:
    short = min(width, height)
    return min(RESOLUTIONS, key=lambda r: (abs(RESOLUTIONS[r] - short), RESOLUTIONS[r]))


def duration_for(seconds: int) -> str:
    """5 → "5s", 9 → "9s"; other values were snapped (or refused) by the service from the caps."""
    return DURATIONS[min(DURATIONS, key=lambda s: (abs(s - seconds), -s))]


def _bad(message: str) -> Rejected:
    return Rejected(PROVIDER, message, vendor_code="invalid_metadata")


def _truthy(key: str, value: Any) -> bool:
    if (parsed := parse_bool(value)) is not None:
        return parsed
    if not str(value).strip():  # an empty metadata value: off
        return False
    raise _bad(f"metadata.{key} must be true or false")


def _json(key: str, value: Any) -> Any:
    """Multipart metadata carries lists and objects as JSON text."""
    if isinstance(value, str) and value.strip()[:1] in {"[", "{"}:
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(f"metadata.{key} is not valid JSON") from None
    return value


def concepts(value: Any) -> list[dict[str, str]]:
    """`["dolly_zoom"]`, `"dolly_zoom,orbit_left"` or `[{"key": "dolly_zoom"}]` → `[{"key": …}, …]`."""
    value = _json("concepts", value)
    items = value.split(",") if isinstance(value, str) else value
    keys = [i.get("key") if isinstance(i, dict) else i for i in items] if isinstance(items, list) else [None]
    if not all(isinstance(k, str) and k.strip() for k in keys):
        raise _bad("metadata.concepts must be a list of concept keys")
    return [{"key": str(k).strip()} for k in keys]


def _image_frame(img: ImageInput, param: str) -> dict[str, str]:
    if not img.url or not img.url.startswith(("http://", "https://")):
        why = f"Luma fetches images by URL only; {param} has no http(s) URL (set VIDGATE_PUBLIC_BASE_URL)"
        raise Rejected(PROVIDER, why, vendor_code="image_url_required")
    return {"type": "image", "url": img.url}


def _frame(value: Any, name: str) -> dict[str, str]:
    """A client-given keyframe: `{"type":"image","url":…}` or `{"type":"generation","id":…}`."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "image" and isinstance(value.get("url"), str) and value["url"].startswith(("http://", "https://")):
            return {"type": "image", "url": value["url"]}
        if kind == "generation" and isinstance(value.get("id"), str) and value["id"].strip():
            return {"type": "generation", "id": value["id"].strip()}
    raise _bad(f'metadata.keyframes.{name} must be {{"type":"image","url":…}} or {{"type":"generation","id":…}}')


def source_generation(req: GenerationRequest) -> str:
    """The Luma generation an `extend` continues: the source task, made through this vendor."""
    if req.source is not None and req.source.provider == PROVIDER and req.source.vendor_task_id:
        return req.source.vendor_task_id
    raise Unsupported(
        PROVIDER,
        "Luma can only extend a video it generated itself (the source has no Luma generation id).",
        vendor_code="unsupported",
    )


def keyframes(req: GenerationRequest) -> dict[str, dict[str, str]]:
    frames: dict[str, dict[str, str]] = {}
    if req.operation == "extend":
        frames["frame0"] = {"type": "generation", "id": source_generation(req)}
    elif req.image is not None:
        frames["frame0"] = _image_frame(req.image, "input_reference")
    if req.last_frame is not None:
        frames["frame1"] = _image_frame(req.last_frame, "last_frame")
    given = _json("keyframes", req.extras.get("keyframes"))
    if given is not None:
        if not isinstance(given, dict) or not set(given) <= {"frame0", "frame1"}:
            raise _bad("metadata.keyframes must be an object with frame0 and/or frame1")
        for name, value in given.items():
            # explicit inputs (input_reference, last_frame, the extended video) win over metadata
            if value is not None and name not in frames:
                frames[name] = _frame(value, name)
    return frames


def build_body(req: GenerationRequest) -> dict[str, Any]:
    """The create body. Metadata adds only `loop`, `concepts`, `callback_url`, `keyframes`; never the model."""
    if req.operation not in {"create", "extend"}:
        raise Unsupported(PROVIDER, f"Luma cannot {req.operation} a video", vendor_code="unsupported")
    legacy = req.model in LEGACY
    body: dict[str, Any] = {"model": req.model}
    if req.prompt:
        body["prompt"] = req.prompt
    # with a start image the output follows the image; Luma wants aspect_ratio all the same (§12)
    body["aspect_ratio"] = aspect_for(req.width, req.height)
    if not legacy:
        body["resolution"] = resolution_for(req.width, req.height)
        body["duration"] = duration_for(req.seconds)
    if frames := keyframes(req):
        body["keyframes"] = frames
    extras = req.extras
    if "loop" in extras and extras["loop"] is not None:
        body["loop"] = _truthy("loop", extras["loop"])
    if extras.get("concepts") not in (None, "", []):
        if legacy:
            raise _bad("concepts are not supported for ray-1-6")
        body["concepts"] = concepts(extras["concepts"])
    if isinstance(extras.get("callback_url"), str) and extras["callback_url"]:
        body["callback_url"] = extras["callback_url"]
    return body


# -- responses --------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Assets(_Model):
    video: str | None = None
    image: str | None = None
    progress_video: str | None = None


class _Echo(_Model):
    callback_url: str | None = None


class _Generation(_Model):
    id: str
    state: str | None = None
    failure_reason: str | None = None
    created_at: datetime | None = None
    assets: _Assets | None = None
    request: _Echo | None = None


_M = TypeVar("_M", bound=_Model)


class _Listing(_Model):
    generations: list[_Generation] = []
    has_more: bool | None = None


def failure_code(reason: str | None) -> str:
    text = (reason or "").strip().lower().rstrip(".")
    if text in FAILURES:
        return FAILURES[text]
    if any(word in text for word in _MODERATION_WORDS):
        return MODERATION
    return "generation_failed"


def synthetic_progress(status: VideoStatus, created_at: datetime | None, now: float) -> int:
    """Luma reports no percentage: queued 0..9, dreaming 10..99 (a curve over the time since creation)."""
    if status is VideoStatus.completed:
        return 100
    elapsed = max(0.0, now - created_at.timestamp()) if created_at is not None else 0.0
    if status is VideoStatus.queued:
        return min(_QUEUED_MAX, int(elapsed / 10))
    share = 1 - math.exp(-elapsed * math.log(2) / _DREAMING_HALF_S)
    return min(99, _DREAMING_MIN + int((99 - _DREAMING_MIN) * share))


def snapshot(raw: dict[str, Any], *, now: float | None = None) -> TaskSnapshot:
    gen = _Generation.model_validate(raw)
    state = gen.state or ""
    meta: dict[str, Any] = {"state": state}
    status = STATUS.get(state)
    if status is None:
        log.warning("luma: unknown generation state %r; polling again", state)
        status = VideoStatus.in_progress
    if status is VideoStatus.failed:
        reason = gen.failure_reason or "Luma reported the generation as failed"
        return TaskSnapshot(status=status, error_code=failure_code(gen.failure_reason), error_message=reason, meta=meta)
    if status is VideoStatus.completed:
        video = gen.assets.video if gen.assets else None
        if not video:
            message = "Luma reported the generation completed without a video URL"
            return TaskSnapshot(status=VideoStatus.failed, error_code="no_output", error_message=message, meta=meta)
        meta["thumbnail_url"] = gen.assets.image if gen.assets else None
        return TaskSnapshot(status=status, progress=100, video_url=video, meta=meta, has_audio=False)
    clock = time.time() if now is None else now
    return TaskSnapshot(status=status, progress=synthetic_progress(status, gen.created_at, clock), meta=meta)


def error_text(body: Any) -> str | None:
    """`{"detail": "400: text"}` → "text"; a 422 `{"detail": [{loc, msg}, …]}` → "aspect_ratio: msg; …"."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if detail is None and isinstance(body, dict):
        detail = body.get("message") or body.get("error")
    if isinstance(detail, str):
        return re.sub(r"^\s*\d{3}\s*:\s*", "", detail).strip() or None
    if isinstance(detail, list):
        items = [i if isinstance(i, dict) else {"msg": i} for i in detail]
        parts = [(".".join(str(p) for p in i.get("loc") or [] if p != "body"), str(i.get("msg"))) for i in items]
        return "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in parts) or None
    return None


def map_error(http_status: int, body: Any, *, retry_after: float | None = None) -> ProviderError:
    """Luma's error answer → the ProviderError subclass, with a stable `vendor_code`."""
    text = error_text(body)
    message = text or f"Luma answered HTTP {http_status}"
    low = message.lower()
    kw: dict[str, Any] = {"status_code": http_status}
    if http_status == 401:
        return AuthFailed(PROVIDER, message, vendor_code="invalid_api_key", **kw)
    if http_status == 402 or any(word in low for word in _BALANCE_WORDS):
        return Rejected(PROVIDER, message, vendor_code="insufficient_quota", **kw)
    if http_status == 429:
        return RateLimited(PROVIDER, message, vendor_code="rate_limited", retry_after=retry_after, **kw)
    if http_status == 403:
        return AuthFailed(PROVIDER, message, vendor_code="http_403", **kw)
    if http_status == 404:
        return NotFoundAtVendor(PROVIDER, message, vendor_code="not_found", **kw)
    if http_status >= 500 or http_status in {408, 409} or http_status < 400:
        return Unavailable(PROVIDER, message, vendor_code=f"http_{http_status}", retry_after=retry_after, **kw)
    if any(word in low for word in _MODERATION_WORDS):
        return Rejected(PROVIDER, message, vendor_code=MODERATION, **kw)
    return Rejected(PROVIDER, message, vendor_code="invalid_request", **kw)


def _parse(model: type[_M], data: dict[str, Any], what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unavailable(PROVIDER, f"unexpected Luma {what}: {exc.errors()[:1]}", vendor_code="bad_body") from None


# -- the provider -----------------------------------------------------------------------------------


class BearerAuth(httpx.Auth):
    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class LumaProvider:
    """The Dream Machine API behind vidgate's `VideoProvider` (plus Recoverable and Cancellable)."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | None = 60.0,
        recover_pages: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._auth = BearerAuth(api_key)
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith(API_PREFIX) else f"{base}{API_PREFIX}"
        self._timeout = timeout
        self._recover_pages = recover_pages
        self._clock = clock

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if "json" in kwargs:
            headers["Content-Type"] = "application/json"
        return await request(
            self._client,
            PROVIDER,
            method,
            f"{self.base_url}{path}",
            vendor="Luma",
            auth=self._auth,
            headers=headers,
            timeout=self._timeout,
            **kwargs,
        )

    @staticmethod
    def _data(resp: httpx.Response) -> dict[str, Any]:
        data = json_body(resp)
        if resp.status_code >= 400:
            raise map_error(resp.status_code, data, retry_after=retry_after(resp.headers))
        if not isinstance(data, dict):
            raise Unavailable(
                PROVIDER, "Luma returned a non-JSON body", vendor_code="bad_body", status_code=resp.status_code
            )
        return data

    async def check_credentials(self) -> str | None:  # the dashboard's Test: `GET /credits` costs nothing
        balance = self._data(await self._send("GET", "/credits")).get("credit_balance")
        return f"Luma accepted the key; credit balance {balance}." if balance is not None else None

    async def submit(self, req: GenerationRequest) -> VendorTask:
        body = build_body(req)
        resp = await self._send("POST", "/generations/video", json=body)
        if resp.status_code in {404, 405}:  # an older deployment without the `/video` route (§3)
            resp = await self._send("POST", "/generations", json=body)
        gen = _parse(_Generation, self._data(resp), "create response")
        if gen.state == "failed":
            reason = gen.failure_reason or "Luma refused the generation"
            raise Rejected(PROVIDER, reason, vendor_code=failure_code(gen.failure_reason))
        meta: dict[str, Any] = {k: body[k] for k in ("model", "aspect_ratio", "resolution", "duration") if k in body}
        if req.operation == "extend":
            meta["extends"] = body["keyframes"]["frame0"]["id"]
        return VendorTask(provider=PROVIDER, vendor_task_id=gen.id, meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        data = self._data(await self._send("GET", f"/generations/{task.vendor_task_id}"))
        _parse(_Generation, data, "generation")
        return snapshot(data, now=self._clock())

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # the asset URL is a CDN link: our API key must not travel to it
        gone = "Luma's video URL has expired or is missing"
        return stream(
            self._client, PROVIDER, snap.video_url, expired=gone, follow_redirects=True, timeout=self._timeout
        )

    async def cancel(self, task: VendorTask) -> None:
        """Luma has no cancel: deleting the generation is the nearest (§8)."""
        resp = await self._send("DELETE", f"/generations/{task.vendor_task_id}")
        if resp.status_code == 404 or resp.is_success:
            return
        raise map_error(resp.status_code, json_body(resp), retry_after=retry_after(resp.headers))

    async def recover(self, req: GenerationRequest) -> VendorTask | None:
        """The generation a crash may have left behind, found by vidgate's callback URL in its request echo."""
        if req.extras.get("callback_url"):
            return None  # the client's own callback URL: nothing names our task
        marker, limit = f"/callbacks/{PROVIDER}/{req.task_id}/", 100
        for page in range(self._recover_pages):
            params = {"limit": str(limit), "offset": str(page * limit)}
            listing = _parse(_Listing, self._data(await self._send("GET", "/generations", params=params)), "listing")
            for gen in listing.generations:
                url = gen.request.callback_url if gen.request else None
                if url and marker in url:
                    meta: dict[str, Any] = {"model": req.model, "recovered": True}
                    return VendorTask(provider=PROVIDER, vendor_task_id=gen.id, meta=meta)
            if not listing.generations or listing.has_more is False:
                break
        return None
