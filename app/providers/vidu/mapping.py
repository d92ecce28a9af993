"""Vidu's model catalogue and request/response mapping (the per-endpoint matrix of /work/shared/vendors/vidu.md):
the capability table, native states and error reasons, and pure functions from a `GenerationRequest` to the
native body and from a task body to a `TaskSnapshot`. No I/O; `app.providers.vidu.provider` does the HTTP."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.providers.base import GenerationRequest, ImageInput, Rejected, TaskSnapshot, VideoStatus
from app.providers.capabilities import ModelCaps, aspect_ratio
from app.providers.http import progress

log = logging.getLogger(__name__)

PROVIDER = "vidu"

Endpoint = Literal["text2video", "img2video", "start-end2video", "reference2video"]

# -- capability table ---------------------------------------------------------------------------

_GEN_A_ASPECTS = ("16:9", "9:16", "1:1")
_GEN_B_ASPECTS = ("16:9", "9:16", "1:1", "3:4", "4:3")


def _sizes(shorts: tuple[int, ...], aspects: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(_pixels(short, ar) for short in shorts for ar in aspects)


def _pixels(short: int, ar: str) -> tuple[int, int]:
    a, b = (int(x) for x in ar.split(":"))
    long = round(short * max(a, b) / min(a, b) / 2) * 2
    return (long, short) if a >= b else (short, long)


_GEN_A_SIZES = _sizes((360, 720, 1080), _GEN_A_ASPECTS)
_Q1_SIZES = _sizes((1080,), _GEN_A_ASPECTS)
_GEN_B_SIZES = _sizes((540, 720, 1080), _GEN_B_ASPECTS)

# Documented body fields clients may set through `metadata`, plus the adapter's own routing hints.
_EXTRAS = frozenset(
    (
        "movement_amplitude bgm seed off_peak callback_url payload style watermark wm_position wm_url "
        "meta_data audio voice_id is_rec subjects videos aspect_ratio resolution duration "
        "reference_images mode action"
    ).split()
)


def _caps(name: str, **kw: Any) -> ModelCaps:
    return ModelCaps(name=name, provider=PROVIDER, extras=_EXTRAS, **kw)


MODELS: tuple[ModelCaps, ...] = (
    _caps(
        "viduq1",
        sizes=_Q1_SIZES,
        seconds=(5,),
        default_size=(1920, 1080),
        default_seconds=5,
        image="optional",
        last_frame=True,
        description="Vidu Q1: 5 s, 1080p; text, image, start-end, reference",
    ),
    _caps(
        "vidu2.0",
        sizes=_GEN_A_SIZES,
        seconds=(4, 8),
        default_size=(1280, 720),
        default_seconds=4,
        image="required",
        last_frame=True,
        description="Vidu 2.0: 4/8 s (8 s is 720p only); image input only",
    ),
    _caps(
        "vidu1.5",
        sizes=_GEN_A_SIZES,
        seconds=(4, 8),
        default_size=(1280, 720),
        default_seconds=4,
        image="optional",
        last_frame=True,
        description="Vidu 1.5: 4/8 s (8 s is 720p only)",
    ),
    # Bare viduq2 has no img2video/start-end: an image goes to reference2video.
    _caps(
        "viduq2",
        sizes=_GEN_B_SIZES,
        seconds_range=(1, 10),
        default_size=(1280, 720),
        default_seconds=5,
        image="optional",
        last_frame=False,
        description="Vidu Q2: 1-10 s; text or reference images",
    ),
    *(
        _caps(
            name,
            sizes=_GEN_B_SIZES,
            seconds_range=(1, 10),
            default_size=(1280, 720),
            default_seconds=5,
            image="required",
            last_frame=True,
            description=f"Vidu {name[4:].upper()}: 1-10 s from an image (start-end: 1-8 s)",
        )
        for name in ("viduq2-pro", "viduq2-turbo", "viduq2-pro-fast")
    ),
    *(
        _caps(
            name,
            sizes=_GEN_B_SIZES,
            seconds_range=(1, 16),
            default_size=(1280, 720),
            default_seconds=5,
            image="optional",
            last_frame=True,
            description=f"Vidu {name[4:].upper()}: 1-16 s",
        )
        for name in ("viduq3-pro", "viduq3-turbo")
    ),
    _caps(
        "viduq3-pro-fast",
        sizes=_GEN_B_SIZES,
        seconds_range=(1, 16),
        default_size=(1280, 720),
        default_seconds=5,
        image="required",
        last_frame=False,
        description="Vidu Q3 Pro Fast: 1-16 s, image",
    ),
)

# -- translation tables ---------------------------------------------------------------------------

STATUS: dict[str, VideoStatus] = {
    "created": VideoStatus.queued,
    "queueing": VideoStatus.queued,
    # Named only in the cancel doc's error sample; it is a pre-run state.
    "scheduled": VideoStatus.queued,
    "processing": VideoStatus.in_progress,
    "success": VideoStatus.completed,
    "failed": VideoStatus.failed,
}

# Error Code page: reason → readable message (also used for `err_code` of failed tasks).
ERROR_MESSAGES: dict[str, str] = {
    "BadRequest": "bad request",
    "FieldLacking": "field is missing or empty",
    "FieldUnwanted": "unwanted field",
    "FieldItemCountOutOfRange": "field item count out of range",
    "FieldInvalid": "invalid field",
    "PageSizeOutOfRange": "image size, format or aspect ratio out of range",
    "ImageDownloadFailure": "image download failure",
    "ImageFormatInvalid": "invalid image format",
    "ImageCheckBodyJointsFailed": "body joints not detected in the image",
    "ImageCheckFaceFailed": "face not detected in the image",
    "ImageObjectsUndetected": "objects not detected in the image",
    "OperationInProcess": "operation in process, please retry later",
    "TaskPromptPolicyViolation": "prompt policy violation",
    "AuditSubmitIllegal": "the input failed the safety review",
    "CreationPolicyViolation": "the output failed the safety review",
    "CreditInsufficient": "insufficient credits",
    "ModelUnavailable": "model unavailable",
    "UserCancelled": "cancelled by the user",
    "Unauthorized": "unauthorized",
    "Forbidden": "forbidden",
    "TaskNotFound": "task not found",
    "CreationNotFound": "creation not found",
    "NotFound": "not found",
    "Conflict": "resource conflict",
    "QuotaExceeded": "quota exceeded (concurrency limit)",
    "TooManyRequests": "too many requests",
    "SystemThrottling": "system is throttling",
    "Canceled": "request canceled",
    "InternalServiceFailure": "internal service failure",
}


_BOOL_KEYS = frozenset({"bgm", "off_peak", "watermark", "audio", "is_rec"})
_INT_KEYS = frozenset({"seed", "duration", "wm_position"})
_LIST_KEYS = frozenset({"subjects", "videos"})
# Consumed by endpoint selection or owned by the adapter; never copied verbatim into the body.
_CONTROL_KEYS = frozenset({"model", "images", "reference_images", "mode", "action"})
_RESOLUTIONS = (360, 540, 720, 1080)
_GEN_A_MODELS = frozenset({"viduq1", "vidu2.0", "vidu1.5"})


# -- request building -----------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _as_list(value: Any) -> list[Any]:
    """Multipart metadata sends lists as JSON text, or a single URL as a plain string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise Rejected(PROVIDER, f"metadata list is not valid JSON: {exc}", vendor_code="metadata") from None
        else:
            return [text] if text else []
    if isinstance(value, list | tuple):
        return list(value)
    raise Rejected(PROVIDER, "metadata list value must be a JSON array", vendor_code="metadata")


def _coerce(key: str, value: Any) -> Any:
    try:
        if key in _BOOL_KEYS:
            return _truthy(value)
        if key in _INT_KEYS:
            return int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise Rejected(PROVIDER, f"metadata '{key}' must be an integer", vendor_code="metadata") from None
    if key in _LIST_KEYS:
        return _as_list(value)
    if key == "meta_data" and not isinstance(value, str):
        return json.dumps(value)
    return value


def _extras(req: GenerationRequest) -> dict[str, Any]:
    return {k: v for k, v in req.extras.items() if not k.startswith("sandbox_")}


def endpoint_for(req: GenerationRequest) -> Endpoint:
    """References → reference2video; first + last frame → start-end2video; one image → img2video."""
    extras = _extras(req)
    hint = str(extras.get("mode") or extras.get("action") or "").strip().lower()
    if (
        hint in {"reference", "reference2video"}
        or _as_list(extras.get("reference_images") or [])
        or _as_list(extras.get("subjects") or [])
        or (req.model == "viduq2" and req.image is not None)
    ):
        return "reference2video"
    if req.last_frame is not None:
        if req.image is None:
            raise Rejected(PROVIDER, "a last frame needs a first frame image", vendor_code="images")
        return "start-end2video"
    return "img2video" if req.image is not None else "text2video"


def _image(img: ImageInput) -> str:
    return img.url or img.data_url()


def _resolution(width: int, height: int) -> int:
    return min(_RESOLUTIONS, key=lambda r: abs(r - min(width, height)))


def _fit(model: str, endpoint: Endpoint, duration: int, res: int) -> tuple[int, int]:
    """Per-endpoint limits the per-model caps cannot express (§5 of the vendor notes)."""
    if model in {"vidu2.0", "vidu1.5"}:
        if model == "vidu2.0" and endpoint == "reference2video":
            return 4, min(res, 720)
        if duration == 8:
            return 8, 720
    if model.startswith("viduq2") and endpoint == "start-end2video":
        return min(duration, 8), res
    return duration, res


def build_body(req: GenerationRequest) -> dict[str, Any]:
    endpoint = endpoint_for(req)
    extras = _extras(req)
    model = req.model
    # Reference-to-video takes only the bare `viduq2` name (new-api does the same rewrite).
    if endpoint == "reference2video" and model.startswith("viduq2"):
        model = "viduq2"
    duration, res = _fit(model, endpoint, req.seconds, _resolution(req.width, req.height))
    body: dict[str, Any] = {"model": model}
    if req.prompt:
        body["prompt"] = req.prompt
    images: list[str] = []
    if req.image is not None:
        images.append(_image(req.image))
    if req.last_frame is not None:  # the tail frame on start-end, one more subject on reference
        images.append(_image(req.last_frame))
    if endpoint == "reference2video":
        images.extend(str(u) for u in _as_list(extras.get("reference_images") or []))
    if images:
        body["images"] = images
    body["duration"] = duration
    body["resolution"] = f"{res}p"
    if endpoint in {"text2video", "reference2video"}:
        choices = _GEN_A_ASPECTS if model in _GEN_A_MODELS else _GEN_B_ASPECTS
        body["aspect_ratio"] = aspect_ratio(req.width, req.height, choices)
    # Echoed in every poll and callback body: ties a Vidu task back to the vidgate id.
    body["payload"] = req.task_id
    for key, value in extras.items():
        if key not in _CONTROL_KEYS:
            body[key] = _coerce(key, value)
    return body


# -- responses --------------------------------------------------------------------------------------


class _Creation(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str | None = None
    url: str | None = None
    cover_url: str | None = None
    watermarked_url: str | None = None


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str | None = None
    state: str
    err_code: str | None = ""
    credits: int | None = None
    off_peak: bool | None = None
    progress: float | None = None
    creations: list[_Creation] = []


class _Created(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    task_id: str
    state: str = "created"
    duration: int | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    credits: int | None = None
    off_peak: bool | None = None


def snapshot(raw: dict[str, Any]) -> TaskSnapshot:
    task = _Task.model_validate(raw)
    status = STATUS.get(task.state)
    if status is None:
        log.warning("vidu: unknown task state %r; treating as in progress", task.state)
        status = VideoStatus.in_progress
    meta: dict[str, Any] = {"state": task.state, "credits": task.credits}
    # Off-peak tasks may wait up to 48 h; polling them every few seconds only burns requests.
    poll_after = 300.0 if task.off_peak and status not in {VideoStatus.completed, VideoStatus.failed} else None
    if status is VideoStatus.failed:
        code = task.err_code or "failed"
        return TaskSnapshot(status=status, error_code=code, error_message=ERROR_MESSAGES.get(code, code), meta=meta)
    if status is VideoStatus.completed:
        creation = next((c for c in task.creations if c.watermarked_url or c.url), None)
        if creation is None:
            return TaskSnapshot(
                status=VideoStatus.failed,
                error_code="NoCreation",
                error_message="Vidu reported success without a video URL",
                meta=meta,
            )
        meta.update(creation_id=creation.id, cover_url=creation.cover_url)
        # `watermarked_url` only exists when the client asked for `watermark`.
        return TaskSnapshot(status=status, progress=100, video_url=creation.watermarked_url or creation.url, meta=meta)
    reported = int(task.progress) if task.progress is not None else None
    return TaskSnapshot(status=status, progress=progress(status, reported), poll_after=poll_after, meta=meta)


def _output_size(resolution: str | None, ar: str | None) -> tuple[int, int] | None:
    if not resolution or not ar or ":" not in ar or not resolution.lower().endswith("p"):
        return None
    try:
        return _pixels(int(resolution[:-1]), ar)
    except ValueError:
        return None
