"""Wanxiang request and response mapping (§4, §7, §9 of /work/shared/vendors/wanxiang.md and the wan2.6 / wan2.7 /
HappyHorse fields in the package docstring): pure functions from a `GenerationRequest` to the native create body
and from a task-query body to a `TaskSnapshot`. No I/O; `app.providers.wanxiang.provider` does the HTTP."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from app.providers.base import GenerationRequest, ImageInput, Rejected, TaskSnapshot, Unavailable, VideoStatus
from app.providers.http import parse_bool, progress
from app.providers.wanxiang.models import CAPS, PROVIDER, RATIO_OF, SIZE_CLASS, kind_of, protocol_of

log = logging.getLogger(__name__)

POLL_INTERVAL = 15.0  # the vendor's recommended query interval (§7)

_LIST_KEYS = frozenset({"reference_video_urls", "reference_urls", "reference_image_urls"})
_INPUT_KEYS = frozenset(
    {"negative_prompt", "audio_url", "template", "img_url", "first_frame_url", "last_frame_url", "first_clip_url"}
    | _LIST_KEYS
)
_BOOL_KEYS = frozenset({"prompt_extend", "watermark", "audio"})
_INT_KEYS = frozenset({"seed", "duration"})
# media an i2v / r2v request must carry at least one of
_ANCHORS = frozenset({"first_frame", "first_clip", "reference_image", "reference_video"})
_MAX_SECONDS_WITH_VIDEO = 10  # wan2.7-r2v: 2-10 s when a reference video is given


def _image_ref(image: ImageInput) -> str:
    # A URL keeps the body small; bytes go inline, which needs no public vidgate link.
    return image.url or image.data_url()


def _as_list(key: str, value: Any) -> list[str]:
    """Multipart metadata sends lists as JSON text, or one URL as a plain string."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [text] if text else []
        try:
            value = json.loads(text)
        except ValueError:
            raise Rejected(PROVIDER, f"metadata.{key} is not a JSON array.", vendor_code="InvalidParameter") from None
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise Rejected(PROVIDER, f"metadata.{key} must be a list of URLs.", vendor_code="InvalidParameter")


def _coerce(key: str, value: Any) -> Any:
    """Multipart metadata arrives as strings; DashScope wants real booleans and integers."""
    if key in _BOOL_KEYS:
        if (parsed := parse_bool(value)) is not None:
            return parsed
    elif key in _INT_KEYS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            pass
    elif key in _LIST_KEYS:
        return _as_list(key, value)
    elif key == "resolution":
        return str(value).strip().upper()  # clients write "720p"
    elif key == "size":
        return str(value).strip().lower().replace("x", "*")
    else:
        return value
    message = f"metadata.{key} has an invalid value {value!r}."
    raise Rejected(PROVIDER, message, vendor_code="InvalidParameter")


def _extras(extras: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split client metadata into `input` and `parameters` keys (new-api convention, §11)."""
    inp: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for key, value in extras.items():
        # `model` and `prompt` come from the OpenAI fields; credentials travel only in headers.
        if key in {"model", "prompt"} or key.startswith("sandbox_") or value is None:
            continue
        if key in {"input", "parameters"} and isinstance(value, dict):
            target = inp if key == "input" else params
            target.update({k: _coerce(k, v) for k, v in value.items() if k not in {"model", "prompt"}})
        elif key in _INPUT_KEYS:
            inp[key] = _coerce(key, value)
        else:
            params[key] = _coerce(key, value)
    return inp, params


def _resolution(req: GenerationRequest) -> str:
    return SIZE_CLASS.get((req.width, req.height)) or f"{min(req.width, req.height)}P"


def _legacy(req: GenerationRequest, inp: dict[str, Any], params: dict[str, Any]) -> None:
    """wan2.6 and older: `size` (t2v, r2v) or `resolution` (i2v, kf2v), images in named input fields."""
    kind = kind_of(req.model)
    if kind in {"t2v", "r2v"}:
        params["size"] = f"{req.width}*{req.height}"
        if kind == "r2v" and not (inp.get("reference_video_urls") or inp.get("reference_urls")):
            raise Rejected(
                PROVIDER,
                f"{req.model} needs reference videos: send metadata.reference_video_urls.",
                vendor_code="InvalidParameter",
            )
        return
    params["resolution"] = _resolution(req)
    first = _image_ref(req.image) if req.image else None
    if kind == "i2v":
        first = first or inp.get("img_url")
        if first:
            inp["img_url"] = first
        return
    # metadata.img_url is the relay's generic "the image" key; kf2v calls it first_frame_url.
    fallback = inp.pop("img_url", None)
    first = first or inp.get("first_frame_url") or fallback
    if first:
        inp["first_frame_url"] = first
    if req.last_frame:
        inp["last_frame_url"] = _image_ref(req.last_frame)


def _media(req: GenerationRequest, inp: dict[str, Any], params: dict[str, Any]) -> None:
    """wan2.7 and HappyHorse: `resolution` + `ratio`, every asset a typed item of `input.media[]`."""
    kind = kind_of(req.model)
    params["resolution"] = _resolution(req)
    if kind != "i2v":  # image-to-video follows the first frame's shape
        params["ratio"] = RATIO_OF.get((req.width, req.height), "16:9")
    media: list[dict[str, str]] = list(inp.pop("media", None) or [])
    generic = inp.pop("img_url", None)
    if kind != "t2v":
        first = _image_ref(req.image) if req.image and kind == "i2v" else None
        first = first or inp.pop("first_frame_url", None) or (generic if kind == "i2v" else None)
        if first:
            media.append({"type": "first_frame", "url": first})
    if kind == "i2v":
        last = _image_ref(req.last_frame) if req.last_frame else inp.pop("last_frame_url", None)
        if last:
            media.append({"type": "last_frame", "url": last})
        if clip := inp.pop("first_clip_url", None):
            media.append({"type": "first_clip", "url": clip})
        if audio := inp.pop("audio_url", None):
            media.append({"type": "driving_audio", "url": audio})
    elif kind == "r2v":
        images = [_image_ref(req.image)] if req.image else []
        images += [generic] if generic else []
        images += inp.pop("reference_image_urls", [])
        videos = inp.pop("reference_video_urls", [])
        media += [{"type": "reference_image", "url": url} for url in images]
        media += [{"type": "reference_video", "url": url} for url in videos]
        if videos and req.seconds > _MAX_SECONDS_WITH_VIDEO:
            params["duration"] = _MAX_SECONDS_WITH_VIDEO
    if kind != "t2v" and not {m.get("type") for m in media} & _ANCHORS:
        wanted = "a first frame or metadata.first_clip_url" if kind == "i2v" else "a reference image or video"
        raise Rejected(PROVIDER, f"{req.model} needs {wanted}.", vendor_code="InvalidParameter")
    if media:
        inp["media"] = media


def build_body(req: GenerationRequest) -> dict[str, Any]:
    """The native create body, by the model's protocol (legacy or media)."""
    extra_input, extra_params = _extras(req.extras)
    inp: dict[str, Any] = {"prompt": req.prompt} if req.prompt else {}
    params: dict[str, Any] = {}
    caps = CAPS.get(req.model)
    # Models with one fixed duration are sent none: the docs call it "cannot be modified" (§5).
    if caps is None or len(caps.seconds) != 1:
        params["duration"] = req.seconds
    if protocol_of(req.model) == "media":
        _media(req, extra_input, params)
    else:
        _legacy(req, extra_input, params)
    inp.update(extra_input)
    params.update(extra_params)
    return {"model": req.model, "input": inp, "parameters": params}


# ---------------------------------------------------------------------------------------------
# Response translation (§7, §9)

STATUS: dict[str, VideoStatus] = {
    "PENDING": VideoStatus.queued,
    "RUNNING": VideoStatus.in_progress,
    "SUSPENDED": VideoStatus.in_progress,
    "SUCCEEDED": VideoStatus.completed,
    "FAILED": VideoStatus.failed,
    "CANCELED": VideoStatus.failed,
    "UNKNOWN": VideoStatus.failed,  # no such task, or purged after 24 h
}
# CANCELED / UNKNOWN tasks carry no output.code; give clients a stable one.
_TERMINAL_DEFAULTS = {
    "FAILED": ("TaskFailed", "The video generation task failed."),
    "CANCELED": ("Canceled", "The task was canceled."),
    "UNKNOWN": ("TaskNotFound", "DashScope does not know this task (expired after 24 h or never existed)."),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Results(_Frozen):
    video_url: str | None = None


class _Output(_Frozen):
    task_id: str | None = None
    task_status: str | None = None
    video_url: str | None = None
    results: _Results | None = None  # s2v-style nesting; harmless to accept
    code: str | None = None
    message: str | None = None
    actual_prompt: str | None = None


class _Usage(_Frozen):
    video_duration: float | None = None
    duration: float | None = None
    output_video_duration: float | None = None  # wan2.7 / HappyHorse (§7.3)


class _Envelope(_Frozen):
    request_id: str | None = None
    code: str | None = None
    message: str | None = None
    output: _Output | None = None
    usage: _Usage | None = None


def parse(raw: dict[str, Any]) -> _Envelope:
    try:
        return _Envelope.model_validate(raw)
    except ValidationError as exc:
        raise Unavailable(PROVIDER, f"Unexpected DashScope response: {exc.errors()[0]['msg']}") from None


def _usage_units(raw: dict[str, Any]) -> dict[str, float]:
    """Every number DashScope bills by (`video_duration`, `duration`, `video_count`, `SR`, ...), as it says them."""
    usage = raw.get("usage")
    if not isinstance(usage, dict):
        return {}
    return {k: float(v) for k, v in usage.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def snapshot(raw: dict[str, Any]) -> TaskSnapshot:
    """A task-query body → TaskSnapshot. A failed task is a snapshot, not an exception."""
    env = parse(raw)
    out = env.output
    if out is None or not out.task_status:
        raise Unavailable(PROVIDER, "DashScope task response has no output.task_status.")
    vendor_state = out.task_status
    status = STATUS.get(vendor_state)
    if status is None:
        log.warning("wanxiang: unknown task_status %r for task %s; polling again", vendor_state, out.task_id)
        status = VideoStatus.in_progress
    meta = {"actual_prompt": out.actual_prompt} if out.actual_prompt else {}

    if status is VideoStatus.failed:
        code, message = _TERMINAL_DEFAULTS.get(vendor_state, _TERMINAL_DEFAULTS["FAILED"])
        return TaskSnapshot(status=status, error_code=out.code or code, error_message=out.message or message)
    if status is VideoStatus.completed:
        url = out.video_url or (out.results.video_url if out.results else None)
        if not url:
            return TaskSnapshot(
                status=VideoStatus.failed,
                error_code="NoVideoUrl",
                error_message="DashScope reported success without a video URL.",
            )
        usage = env.usage or _Usage()
        produced = usage.output_video_duration or usage.video_duration or usage.duration
        return TaskSnapshot(
            status=status,
            progress=100,
            video_url=url,
            seconds=round(produced) if produced else None,
            meta=meta,
            usage=_usage_units(raw),
        )
    return TaskSnapshot(status=status, progress=progress(status), poll_after=POLL_INTERVAL, meta=meta)
