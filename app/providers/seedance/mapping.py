"""Seedance request and response translation, pure functions: the create body (§4), task snapshots (§7)
and Ark's error envelope (§10). The choices on UNCONFIRMED points are listed in the package docstring."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    ImageInput,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VideoStatus,
)
from app.providers.http import by_status
from app.providers.seedance.catalog import (
    CAPS,
    COMMON_EXTRAS,
    FPS,
    PROVIDER,
    RESOLUTIONS,
    family,
    output_pixels,
    size_params,
)

log = logging.getLogger("app.providers.seedance")

# ---------------------------------------------------------------------------------------------
# Request translation (§4)

_BOOL_KEYS: Final = frozenset({"watermark", "camera_fixed", "generate_audio", "return_last_frame", "draft"})
_INT_KEYS: Final = frozenset({"seed", "duration", "frames", "execution_expires_after", "priority"})
_LOWER_KEYS: Final = frozenset({"resolution", "service_tier", "output_format", "omni_reference_task_type"})
_LIST_KEYS: Final = frozenset({"reference_images", "reference_videos", "reference_audios", "tools"})
# metadata keys the videos service itself reads (images by URL): never fields of their own
_SERVICE_KEYS: Final = frozenset({"img_url", "first_frame_url", "image_url", "last_frame_url", "model", "prompt"})
# content items, not top-level fields
_CONTENT_KEYS: Final = frozenset({"reference_images", "reference_videos", "reference_audios", "draft_task_id"})


def _bad(key: str, value: Any, expected: str) -> Rejected:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return Rejected(PROVIDER, f"metadata.{key} must be {expected}, got {shown}.", vendor_code="InvalidParameter")


def _as_list(key: str, value: Any) -> list[Any]:
    """Multipart metadata sends lists as JSON text, or one URL as a plain string."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [text] if text else []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise _bad(key, value, "a JSON array") from None
    if isinstance(value, list | tuple):
        return list(value)
    raise _bad(key, value, "a list")


def coerce(key: str, value: Any) -> Any:
    """A metadata value as Ark's typed field wants it (multipart values arrive as strings)."""
    if key in _BOOL_KEYS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes", "on"}:
            return True
        if text in {"false", "0", "no", "off"}:
            return False
        raise _bad(key, value, "true or false")
    if key in _INT_KEYS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise _bad(key, value, "an integer") from None
    if key in _LOWER_KEYS:
        return str(value).strip().lower()
    if key == "tools":
        return [t if isinstance(t, dict) else {"type": str(t)} for t in _as_list(key, value)]
    if key in _LIST_KEYS:
        return [str(u) for u in _as_list(key, value)]
    return str(value).strip() if isinstance(value, str) else value


def extras_for(req: GenerationRequest) -> dict[str, Any]:
    """The client's metadata the model declares, coerced. `audio` becomes `generate_audio`."""
    caps = CAPS.get(req.model)
    allowed = caps.extras if caps is not None else COMMON_EXTRAS
    out: dict[str, Any] = {}
    for key, value in req.extras.items():
        if value is None or key not in allowed:
            if value is not None and not key.startswith("sandbox_") and key not in _SERVICE_KEYS:
                log.info("seedance: metadata.%s is not a field of %s; not sent", key, req.model)
            continue
        name = "generate_audio" if key == "audio" else key
        if name == "generate_audio" and "generate_audio" in out and key == "audio":
            continue  # an explicit generate_audio wins over the alias
        out[name] = coerce(name, value)
    return out


def image_url(img: ImageInput) -> str:
    """Bytes inline as a data URI with a lower-case format (§4.2); a client's URL as-is."""
    if img.data is not None:
        mime = (img.mime or "image/png").lower()
        return f"data:{mime};base64,{img.b64()}"
    if img.url:
        return img.url
    raise Rejected(PROVIDER, "The image has neither bytes nor a URL.", vendor_code="InvalidParameter")


def _item(kind: str, url: str, role: str) -> dict[str, Any]:
    return {"type": kind, kind: {"url": url}, "role": role}


def content_items(req: GenerationRequest, extras: dict[str, Any]) -> list[dict[str, Any]]:
    """`content[]`: the prompt, then the images with their roles (§4.2)."""
    if extras.get("draft_task_id"):
        return [{"type": "draft_task", "draft_task": {"id": str(extras["draft_task_id"])}}]
    items: list[dict[str, Any]] = []
    if req.prompt:
        items.append({"type": "text", "text": req.prompt})
    refs = extras.get("reference_images") or []
    if refs:
        # reference mode cannot mix with first/last frames: an input_reference is one more reference
        if req.image is not None:
            items.append(_item("image_url", image_url(req.image), "reference_image"))
        if req.last_frame is not None:
            items.append(_item("image_url", image_url(req.last_frame), "reference_image"))
        items.extend(_item("image_url", url, "reference_image") for url in refs)
    else:
        if req.last_frame is not None and req.image is None:
            raise Rejected(PROVIDER, "A last frame needs a first frame image.", vendor_code="MissingParameter")
        if req.image is not None:
            items.append(_item("image_url", image_url(req.image), "first_frame"))
        if req.last_frame is not None:
            items.append(_item("image_url", image_url(req.last_frame), "last_frame"))
    items.extend(_item("video_url", url, "reference_video") for url in extras.get("reference_videos") or [])
    items.extend(_item("audio_url", url, "reference_audio") for url in extras.get("reference_audios") or [])
    return items


def build_body(req: GenerationRequest, *, model: str | None = None) -> dict[str, Any]:
    """The create body (§4.1). `model`: the id to send (see `platform_model`), default `req.model`."""
    extras = extras_for(req)
    content = content_items(req, extras)
    body: dict[str, Any] = {"model": model or req.model, "content": content}
    resolution, ratio = size_params(req.width, req.height)
    roles = {item.get("role") for item in content}
    if "first_frame" in roles:
        ratio = "adaptive"  # the output follows the first frame
    if "reference_image" in roles and family(req.model) == "1.0":
        resolution = min(resolution, "720p", key=RESOLUTIONS.index)  # 1.0 lite references: 480p/720p
    if extras.get("draft"):
        resolution = "480p"
    if "draft_task_id" in extras:
        body["resolution"] = extras.get("resolution", resolution)
    else:
        body["resolution"] = resolution
        body["ratio"] = ratio
        if "frames" not in extras:
            body["duration"] = req.seconds
    for key, value in extras.items():
        if key not in _CONTENT_KEYS:
            body[key] = value
    if "frames" in body:
        body.pop("duration", None)  # mutually exclusive; frames wins at Ark too
    return body


# ---------------------------------------------------------------------------------------------
# Response translation (§7)

STATUS: Final[dict[str, VideoStatus]] = {
    "queued": VideoStatus.queued,
    "running": VideoStatus.in_progress,
    "succeeded": VideoStatus.completed,
    "failed": VideoStatus.failed,
    "cancelled": VideoStatus.failed,
    "expired": VideoStatus.failed,
}
_TERMINAL_DEFAULTS: Final = {
    "failed": ("failed", "The Seedance task failed."),
    "cancelled": ("cancelled", "The Seedance task was cancelled."),
    "expired": ("expired", "The Seedance task did not finish within execution_expires_after."),
}
TYPICAL_RUN_S = 90.0  # a 5 s 1080p video takes one to two minutes
FLEX_POLL_S = 60.0  # `flex` (offline) tasks take hours


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Error(_Frozen):
    code: str | None = None
    message: str | None = None


class _Content(_Frozen):
    video_url: str | None = None
    last_frame_url: str | None = None


class _Usage(_Frozen):
    completion_tokens: int | None = None
    total_tokens: int | None = None


class _Task(_Frozen):
    id: str | None = None
    model: str | None = None
    status: str
    error: _Error | None = None
    content: _Content | None = None
    usage: _Usage | None = None
    created_at: int | None = None
    updated_at: int | None = None
    seed: int | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    frames: int | None = None
    framespersecond: int | None = None
    generate_audio: bool | None = None
    service_tier: str | None = None


def running_progress(created_at: int | None, now: float) -> int:
    """5..95, rising with the time since creation (Ark reports no percentage)."""
    elapsed = max(0.0, now - created_at) if created_at else 0.0
    return min(95, 5 + int(90 * (1 - math.exp(-elapsed / TYPICAL_RUN_S))))


def _usage(task: _Task) -> dict[str, float]:
    if task.usage is None:
        return {}
    out: dict[str, float] = {}
    if task.usage.completion_tokens is not None:
        out["completion_tokens"] = task.usage.completion_tokens
    if task.usage.total_tokens is not None:
        out["total_tokens"] = task.usage.total_tokens
    return out


def snapshot(raw: dict[str, Any], *, model: str | None = None, now: float | None = None) -> TaskSnapshot:
    """A task body (GET or callback) → TaskSnapshot. A failed task is a snapshot, not an exception."""
    try:
        task = _Task.model_validate(raw)
    except ValidationError as exc:
        raise Unavailable(PROVIDER, f"Unexpected Ark task body: {exc.errors()[0]['msg']}") from None
    status = STATUS.get(task.status)
    model = task.model or model or ""
    meta: dict[str, Any] = {"status": task.status}
    if task.seed is not None:
        meta["seed"] = task.seed
    if status is None:
        log.warning("seedance: unknown task status %r for %s; polling again", task.status, task.id)
        return TaskSnapshot(status=VideoStatus.in_progress, progress=5, meta=meta)
    if status is VideoStatus.failed:
        code, message = _TERMINAL_DEFAULTS[task.status]
        err = task.error or _Error()
        return TaskSnapshot(status=status, error_code=err.code or code, error_message=err.message or message, meta=meta)
    if status is VideoStatus.completed:
        content = task.content or _Content()
        if not content.video_url:
            return TaskSnapshot(
                status=VideoStatus.failed,
                error_code="no_video_url",
                error_message="Seedance reported success without a video URL.",
                meta=meta,
            )
        if content.last_frame_url:
            meta["last_frame_url"] = content.last_frame_url
        fps = task.framespersecond or FPS
        seconds = task.duration if task.duration and task.duration > 0 else None
        if seconds is None and task.frames:
            seconds = max(1, round(task.frames / fps))
        pixels = output_pixels(model, task.resolution, task.ratio)
        caps = CAPS.get(model)
        audio = task.generate_audio if caps is None or caps.audio else False
        return TaskSnapshot(
            status=status,
            progress=100,
            video_url=content.video_url,
            seconds=seconds,
            width=pixels[0] if pixels else None,
            height=pixels[1] if pixels else None,
            meta=meta,
            usage=_usage(task),
            has_audio=audio,
        )
    poll_after = FLEX_POLL_S if task.service_tier == "flex" else None
    if status is VideoStatus.queued:
        return TaskSnapshot(status=status, progress=0, poll_after=poll_after, meta=meta)
    now = time.time() if now is None else now
    return TaskSnapshot(
        status=status, progress=running_progress(task.created_at, now), poll_after=poll_after, meta=meta
    )


# ---------------------------------------------------------------------------------------------
# Errors (§10)

_MODERATION_PREFIXES: Final = (
    "SensitiveContentDetected",
    "InputTextSensitiveContentDetected",
    "InputImageSensitiveContentDetected",
    "InputVideoSensitiveContentDetected",
    "InputAudioSensitiveContentDetected",
    "OutputVideoSensitiveContentDetected",
    "InputTextRiskDetection",
    "InputImageRiskDetection",
    "OutputTextRiskDetection",
)
_AUTH: Final = frozenset({"AuthenticationError", "AccessDenied"})
_BALANCE: Final = frozenset({"AccountOverdueError", "QuotaExceeded", "SetLimitExceeded"})
_UNAVAILABLE: Final = frozenset(
    {
        "ServerOverloaded",
        "ModelLoadingError",
        "InvalidEndpoint.ClosedEndpoint",
        "ContentSecurityDetectionError",
        "InternalServiceError",
    }
)
MODERATION_CODE = "moderation_blocked"


def is_moderation(code: str) -> bool:
    return code.startswith(_MODERATION_PREFIXES)


def map_error(http_status: int, body: Any, *, retry_after: float | None = None) -> ProviderError:
    """Ark's `{"error": {code, message, param, type}}` (or a body that is not one) → ProviderError."""
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code") or "") if isinstance(err, dict) else ""
    message = str(err.get("message") or "") if isinstance(err, dict) else ""
    message = message or f"Ark answered HTTP {http_status}."
    kw: dict[str, Any] = {"status_code": http_status, "retry_after": retry_after}
    if not code:
        cls = by_status(http_status)
        if cls is Rejected and http_status not in (400, 404, 409, 413, 422):
            cls = Unavailable  # a bare 3xx/other status: not a verdict on the request
        if cls is Rejected and not isinstance(err, dict):
            cls = Unavailable  # a 400 without Ark's envelope comes from something in between
        return cls(PROVIDER, message, vendor_code=f"http_{http_status}", **kw)
    if is_moderation(code):
        return Rejected(PROVIDER, f"{code}: {message}", vendor_code=MODERATION_CODE, **kw)
    if code in _AUTH or http_status == 401:
        return AuthFailed(PROVIDER, message, vendor_code=code, **kw)
    if code in _BALANCE:
        return Rejected(PROVIDER, message, vendor_code=code, **kw)
    if code in _UNAVAILABLE or http_status >= 500:
        return Unavailable(PROVIDER, message, vendor_code=code, **kw)
    if http_status == 429 or code.startswith(("RateLimitExceeded", "ModelAccountRpmRateLimitExceeded")):
        return RateLimited(PROVIDER, message, vendor_code=code, **kw)
    if http_status == 403:
        return AuthFailed(PROVIDER, message, vendor_code=code, **kw)
    return Rejected(PROVIDER, message, vendor_code=code, **kw)
