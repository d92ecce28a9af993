"""Kling request and response mapping (§5, §6, §7.1 of /work/shared/vendors/kling.md, and video-extend):
pure functions from a `GenerationRequest` to the native JSON body and from a native task object to a
`TaskSnapshot`. No I/O; `app.providers.kling.provider` does the HTTP."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from app.providers.base import GenerationRequest, ImageInput, Rejected, TaskSnapshot, VideoStatus
from app.providers.capabilities import aspect_ratio
from app.providers.http import progress
from app.providers.kling.models import (
    _SINGLE_TIER,
    _SOUND,
    _SOUND_PRO_ONLY,
    _TAIL_PRO,
    _TAIL_SILENT,
    _TWO_TIER,
    ASPECT_RATIOS,
    DURATION_RANGES,
    DURATIONS,
    EXTEND,
    I2V,
    PROVIDER,
    T2V,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Status and errors (§7.1, §3.1)

STATUS: dict[str, VideoStatus] = {
    "submitted": VideoStatus.queued,
    "processing": VideoStatus.in_progress,
    "succeed": VideoStatus.completed,  # sic: the classic API spells it "succeed"
    "failed": VideoStatus.failed,
}

# --------------------------------------------------------------------------------------------
# Request mapping (§5, §6, video-extend)

_PROTECTED: Final = frozenset({"model_name", "model", "external_task_id", "duration", "video_id"})
_EXTEND_KEYS: Final = frozenset({"negative_prompt", "cfg_scale", "watermark_info", "callback_url"})
_SOUND_KEYS: Final = ("sound", "generate_audio", "audio")  # read by `sound_for`, never copied verbatim


def family_for(req: GenerationRequest) -> str:
    if req.operation == "extend":
        return EXTEND
    has_image = req.image is not None or req.last_frame is not None
    return I2V if has_image or req.extras.get("image") or req.extras.get("image_tail") else T2V


def duration_for(seconds: int, model: str | None = None) -> str:
    """The native `duration` string: any whole second in range for kling-v3, else the nearest of 5 and 10."""
    span = DURATION_RANGES.get(model or "")
    if span is not None:
        return str(min(max(seconds, span[0]), span[1]))
    if seconds in DURATIONS:
        return DURATIONS[seconds]
    return DURATIONS[min(DURATIONS, key=lambda s: (abs(s - seconds), -s))]


def image_value(image: ImageInput) -> str:
    """Raw base64 when we hold the bytes (no public URL needed), else the URL; never a data: URL."""
    if image.data is not None:
        return image.b64()
    if image.url:
        return _strip_data_url(image.url)
    raise Rejected(PROVIDER, "image has neither bytes nor a URL", vendor_code="invalid_image")


def _strip_data_url(value: str) -> str:
    if value.startswith("data:") and "," in value:
        return value.split(",", 1)[1]
    return value


def build_body(req: GenerationRequest) -> dict[str, Any]:
    """The native JSON body of a text2video or image2video create."""
    family = family_for(req)
    body: dict[str, Any] = {"model_name": req.model}
    if req.prompt:
        body["prompt"] = req.prompt
    if family == T2V:
        body["aspect_ratio"] = aspect_ratio(req.width, req.height, ASPECT_RATIOS)
    body["duration"] = duration_for(req.seconds, req.model)
    sound = sound_for(req)
    if req.model not in _SINGLE_TIER:
        hd = min(req.width, req.height) >= 1080 and req.model in _TWO_TIER
        tail_needs_pro = req.last_frame is not None and req.model in _TAIL_PRO
        sound_needs_pro = sound == "on" and req.model in _SOUND_PRO_ONLY
        body["mode"] = "pro" if hd or tail_needs_pro or sound_needs_pro else "std"
    if sound is not None:
        body["sound"] = sound
    if req.image is not None:
        body["image"] = image_value(req.image)
    if req.last_frame is not None:
        body["image_tail"] = image_value(req.last_frame)
    body.update(coerce_extras(req.extras))
    body["external_task_id"] = req.task_id
    return body


def sound_for(req: GenerationRequest) -> str | None:
    """`sound` on/off from `metadata.sound` (native) or `generate_audio` / `audio`; None: not asked (vendor: off)."""
    raw = next((req.extras[k] for k in _SOUND_KEYS if req.extras.get(k) is not None), None)
    if raw is None:
        return None
    sound = _as_switch("sound", raw)
    if req.model not in _SOUND:
        if sound == "on":
            raise Rejected(PROVIDER, f"{req.model} makes no sound", vendor_code="invalid_metadata")
        return None
    if sound == "on" and req.last_frame is not None and req.model in _TAIL_SILENT:
        message = f"{req.model} makes first+last frame videos without sound"
        raise Rejected(PROVIDER, message, vendor_code="invalid_metadata")
    return sound


def build_extend_body(req: GenerationRequest, video_id: str) -> dict[str, Any]:
    """The native body of a video-extend create: model and mode always follow the source video."""
    body: dict[str, Any] = {"video_id": video_id}
    if req.prompt:
        body["prompt"] = req.prompt
    body.update({k: v for k, v in coerce_extras(req.extras).items() if k in _EXTEND_KEYS})
    body["external_task_id"] = req.task_id
    return body


def coerce_extras(extras: dict[str, Any]) -> dict[str, Any]:
    """Client metadata → native fields; multipart sends strings, so known keys get their real types."""
    out: dict[str, Any] = {}
    for key, value in extras.items():
        if key.startswith("sandbox_") or key in _PROTECTED or key in _SOUND_KEYS:
            continue
        coerce = _COERCE.get(key)
        out[key] = coerce(key, value) if coerce else value
    return out


def _as_str(key: str, value: Any) -> str:
    return str(value)


def _as_mode(key: str, value: Any) -> str:
    return str(value).strip().lower()


def _as_float(key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise Rejected(PROVIDER, f"metadata.{key} must be a number", vendor_code="invalid_metadata")
    return number


def _as_json(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise Rejected(PROVIDER, f"metadata.{key} must be JSON", vendor_code="invalid_metadata") from None


def _as_image(key: str, value: Any) -> str:
    return _strip_data_url(str(value))


def _as_switch(key: str, value: Any) -> str:
    text = str(value).strip().lower()
    return "on" if text in ("on", "true", "1", "yes") else "off"


def _as_bool(key: str, value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("on", "true", "1", "yes")


def _as_watermark(key: str, value: Any) -> Any:
    parsed = _as_json(key, value) if isinstance(value, str) and value.strip().startswith("{") else value
    if isinstance(parsed, dict):
        return parsed
    return {"enabled": str(parsed).strip().lower() in ("true", "1", "yes", "on")}


_COERCE: dict[str, Callable[[str, Any], Any]] = {
    "mode": _as_mode,
    "prompt": _as_str,
    "negative_prompt": _as_str,
    "callback_url": _as_str,
    "cfg_scale": _as_float,
    "camera_control": _as_json,
    "dynamic_masks": _as_json,
    "voice_list": _as_json,
    "image": _as_image,
    "image_tail": _as_image,
    "static_mask": _as_image,
    "multi_shot": _as_bool,
    "multi_prompt": _as_json,
    "shot_type": _as_str,
    "watermark_info": _as_watermark,
}

# --------------------------------------------------------------------------------------------
# Response mapping (§7.1)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Video(_Model):
    id: str | None = None
    url: str | None = None
    watermark_url: str | None = None
    duration: str | None = None


class _Result(_Model):
    videos: list[_Video] = []


class _TaskInfo(_Model):
    external_task_id: str | None = None
    parent_video: _Video | None = None


class _Task(_Model):
    task_id: str
    task_status: str
    task_status_msg: str | None = None
    task_info: _TaskInfo | None = None
    task_result: _Result | None = None
    created_at: int | None = None  # milliseconds
    updated_at: int | None = None
    final_unit_deduction: str | None = None


def snapshot(raw: dict[str, Any]) -> TaskSnapshot:
    """One Kling task object (an envelope's `data`, or a bare callback body) as a TaskSnapshot."""
    task = _Task.model_validate(raw)
    status = STATUS.get(task.task_status)
    if status is None:
        log.warning("kling task %s has unknown status %r; still polling", task.task_id, task.task_status)
        status = VideoStatus.in_progress
    meta: dict[str, Any] = {"task_id": task.task_id}
    for key in ("created_at", "updated_at"):
        ms = getattr(task, key)
        if ms is not None:
            meta[key] = ms / 1000
    if task.final_unit_deduction is not None:
        meta["final_unit_deduction"] = task.final_unit_deduction
    if task.task_info and task.task_info.parent_video and task.task_info.parent_video.id:
        meta["parent_video_id"] = task.task_info.parent_video.id
    if status == VideoStatus.failed:
        return TaskSnapshot(
            status=status,
            error_code="task_failed",
            error_message=task.task_status_msg or "Kling reported the task as failed",
            meta=meta,
        )
    video = task.task_result.videos[0] if task.task_result and task.task_result.videos else None
    if status != VideoStatus.completed:
        return TaskSnapshot(status=status, progress=progress(status), meta=meta)
    if video is None or not video.url:
        return TaskSnapshot(
            status=VideoStatus.failed,
            error_code="no_output",
            error_message="Kling reported success without a video URL",
            meta=meta,
        )
    meta["video_id"] = video.id  # extension needs it (video-extend `video_id`)
    if video.watermark_url:
        meta["watermark_url"] = video.watermark_url
    if video.duration:
        meta["duration"] = video.duration
    return TaskSnapshot(
        status=status,
        progress=100,
        video_url=video.url,
        seconds=_seconds(video.duration),
        meta=meta,
        usage=_units(task.final_unit_deduction),
    )


def _units(deduction: str | None) -> dict[str, float]:
    """The units Kling charged (`final_unit_deduction`, a string such as "1")."""
    try:
        return {"final_unit_deduction": float(deduction)} if deduction else {}
    except ValueError:
        return {}


def _seconds(duration: str | None) -> int | None:
    try:
        return round(float(duration)) if duration else None
    except ValueError:
        return None
