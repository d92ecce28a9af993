"""A fake DashScope (Tongyi Wanxiang video) server, per /work/shared/vendors/wanxiang.md §12.

Speaks the native protocol: both create paths (with or without a trailing `/`), task query, cancel,
Bearer auth with the vendor's `InvalidApiKey` shape, the mandatory `X-DashScope-Async` header, per-model
validation from its own copy of the §5 matrix (deliberately not the adapter's table) plus the wan2.6 /
wan2.7 / HappyHorse rows (legacy or `media[]` protocol), one task state per query, a real MP4 behind a
pre-signed-looking OSS URL (with an AAC track for the models that make sound), and faults injected on demand.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.assets import real_mp4

T2V_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
KF2V_PATH = "/api/v1/services/aigc/image2video/video-synthesis"
RESULT_HOST = "https://dashscope-result-wlcb.oss-cn-wulanchabu.aliyuncs.com"

_S480 = ("832*480", "480*832", "624*624")
_S720 = ("1280*720", "720*1280", "960*960", "1088*832", "832*1088")
_S1080 = ("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632")
_SHORT = {size: min(int(x) for x in size.split("*")) for size in _S480 + _S720 + _S1080}


_HQ = ("720P", "1080P")
_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")


# a media item: `{type, url}`, plus a voice sample or a description on references (SDK example)
_ITEM_KEYS = frozenset({"type", "url", "reference_voice", "reference_description"})


def _span(lo: int, hi: int) -> tuple[int, ...]:
    return tuple(range(lo, hi + 1))


@dataclass(frozen=True)
class FakeModel:
    kind: str  # t2v | i2v | kf2v | r2v
    choices: tuple[str, ...]  # sizes (legacy t2v, r2v) or resolutions
    default: str
    durations: tuple[int, ...] = (5,)
    audio: bool = False  # makes a sound track unless `parameters.audio` is false
    protocol: str = "legacy"  # or "media": wan2.7 / HappyHorse
    media: tuple[str, ...] = ()  # the allowed `input.media[].type`s (media protocol)


FAKE_MODELS: dict[str, FakeModel] = {
    "wan2.5-t2v-preview": FakeModel("t2v", _S480 + _S720 + _S1080, "1920*1080", (5, 10), audio=True),
    "wan2.2-t2v-plus": FakeModel("t2v", _S480 + _S1080, "1920*1080"),
    "wanx2.1-t2v-turbo": FakeModel("t2v", _S480 + _S720, "1280*720"),
    "wanx2.1-t2v-plus": FakeModel("t2v", _S720, "1280*720"),
    "wan2.5-i2v-preview": FakeModel("i2v", ("480P", "720P", "1080P"), "1080P", (5, 10), audio=True),
    "wan2.2-i2v-flash": FakeModel("i2v", ("480P", "720P", "1080P"), "720P"),
    "wan2.2-i2v-plus": FakeModel("i2v", ("480P", "1080P"), "1080P"),
    "wanx2.1-i2v-plus": FakeModel("i2v", ("720P",), "720P"),
    "wanx2.1-i2v-turbo": FakeModel("i2v", ("480P", "720P"), "720P", (3, 4, 5)),
    "wan2.2-kf2v-flash": FakeModel("kf2v", ("480P", "720P", "1080P"), "720P"),
    "wanx2.1-kf2v-plus": FakeModel("kf2v", ("720P",), "720P"),
    "wan2.1-kf2v-plus": FakeModel("kf2v", ("720P",), "720P"),  # international spelling (§1)
    # wan2.6: legacy protocol, sound, 720P/1080P only (SDK legacy example, Bailian console samples)
    "wan2.6-t2v": FakeModel("t2v", _S720 + _S1080, "1920*1080", (5, 10, 15), audio=True),
    "wan2.6-i2v": FakeModel("i2v", _HQ, "1080P", (5, 10, 15), audio=True),
    "wan2.6-i2v-flash": FakeModel("i2v", _HQ, "1080P", _span(2, 15), audio=True),
    "wan2.6-r2v": FakeModel("r2v", _S720 + _S1080, "1920*1080", (5, 10), audio=True),
    # wan2.7 / HappyHorse: the media protocol (`input.media[]`, `resolution` + `ratio`)
    "wan2.7-t2v": FakeModel("t2v", _HQ, "1080P", _span(2, 15), audio=True, protocol="media"),
    "wan2.7-i2v": FakeModel(
        "i2v",
        _HQ,
        "1080P",
        _span(2, 15),
        audio=True,
        protocol="media",
        media=("first_frame", "last_frame", "driving_audio", "first_clip"),
    ),
    "wan2.7-r2v": FakeModel(
        "r2v",
        _HQ,
        "1080P",
        _span(2, 15),
        audio=True,
        protocol="media",
        media=("reference_image", "reference_video", "first_frame"),
    ),
    "happyhorse-1.0-t2v": FakeModel("t2v", _HQ, "1080P", _span(3, 15), protocol="media"),
    "happyhorse-1.0-i2v": FakeModel("i2v", _HQ, "1080P", _span(3, 15), protocol="media", media=("first_frame",)),
    "happyhorse-1.0-r2v": FakeModel("r2v", _HQ, "1080P", _span(3, 15), protocol="media", media=("reference_image",)),
}

# Canned vendor errors (§9) for `FakeState.fail_next`.
FAULTS: dict[str, tuple[int, str, str]] = {
    "http500": (500, "InternalError", "An internal error has occured, please try again later."),
    "http503": (503, "ServiceUnavailable", "Service temporarily unavailable."),
    "throttle": (429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
    "quota": (
        429,
        "Throttling.AllocationQuota",
        "Allocated quota exceeded, please increase your quota limit.",
    ),
    "moderation": (400, "DataInspectionFailed", "Input or output data may contain inappropriate content."),
    "arrearage": (400, "Arrearage", "Access denied, plesase make sure your account is in good standing."),
    "unpurchased": (403, "AccessDenied.Unpurchased", "Access to model denied."),
    # DashScope-compatible gateways sometimes answer 200 with an error code (§11).
    "error200": (200, "InvalidParameter", "Required parameter(s) missing or invalid."),
}


@functools.cache
def tiny_mp4() -> bytes:
    """A real, tiny H.264 MP4 (4 frames, 64x64), made once per process."""
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 50, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass
class FakeTask:
    task_id: str
    model: str
    body: dict[str, Any]
    states: list[str]  # reported one per query; the last one sticks
    failure: tuple[str, str] | None = None
    index: int = 0
    submit_time: str = field(default_factory=_now)

    @property
    def current(self) -> str:
        return self.states[max(self.index - 1, 0)]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class FakeState:
    api_key: str
    lifecycle: tuple[str, ...] = ("PENDING", "RUNNING")
    video: bytes = b""  # what silent models produce
    sound_video: bytes = b""  # what models with a sound track produce
    task_failure: tuple[str, str] | None = None  # (code, message) for tasks created while set
    results_expired: bool = False
    hang_seconds: float = 30.0
    requests: list[Recorded] = field(default_factory=list)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    faults: list[tuple[str, str]] = field(default_factory=list)  # (kind, route)

    def fail_next(self, kind: str, *, on: str = "any", times: int = 1) -> None:
        """Make the next `times` matching requests fail. kind: a FAULTS key, "garbage" or "hang";
        on: "create" | "query" | "cancel" | "result" | "any"."""
        assert kind in FAULTS or kind in {"garbage", "hang"}, kind
        self.faults.extend([(kind, on)] * times)

    def creates(self) -> list[dict[str, Any]]:
        return [r.json for r in self.requests if r.method == "POST" and "video-synthesis" in r.path]

    def _take_fault(self, route: str) -> str | None:
        for i, (kind, on) in enumerate(self.faults):
            if on in {route, "any"}:
                del self.faults[i]
                return kind
        return None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"request_id": str(uuid.uuid4()), "code": code, "message": message}, status_code=status)


def _bad(message: str, code: str = "InvalidParameter") -> JSONResponse:
    return _error(400, code, message)


def _check_image(value: Any, field_name: str) -> JSONResponse | None:
    if not isinstance(value, str) or not value:
        return _bad(f"Field required: input.{field_name}")
    if value.startswith("data:"):
        head, _, data = value.partition(",")
        if not (head.startswith("data:image/") and head.endswith(";base64")):
            return _bad(f"input.{field_name}: unsupported data URI.")
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error:
            return _bad(f"input.{field_name}: invalid base64 data.")
        return None
    if not value.startswith(("http://", "https://", "oss://")):
        return _error(400, "InvalidURL", "Invalid URL provided in your request.")
    return None


def _check_url(value: Any, name: str) -> JSONResponse | None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://", "oss://")):
        return _error(400, "InvalidURL", f"Invalid URL provided in your request: {name}.")
    return None


def _check_legacy(model: FakeModel, inp: dict[str, Any], params: dict[str, Any]) -> JSONResponse | None:
    if "media" in inp:
        return _bad("input.media is not supported by this model.")
    if model.kind == "i2v" and (problem := _check_image(inp.get("img_url"), "img_url")):
        return problem
    if model.kind == "kf2v":
        if problem := _check_image(inp.get("first_frame_url"), "first_frame_url"):
            return problem
        if "template" not in inp and (problem := _check_image(inp.get("last_frame_url"), "last_frame_url")):
            return problem
    if model.kind == "r2v":
        refs = inp.get("reference_video_urls") or inp.get("reference_urls")
        if not isinstance(refs, list) or not refs:
            return _bad("Field required: input.reference_video_urls")
        for url in refs:
            if problem := _check_url(url, "reference_video_urls"):
                return problem
    key = "size" if model.kind in {"t2v", "r2v"} else "resolution"
    if key in params and params[key] not in model.choices:
        return _bad(f"The {key} is not match the allowed {key}s: {', '.join(model.choices)}.")
    return None


def _check_media(model: FakeModel, inp: dict[str, Any], params: dict[str, Any]) -> JSONResponse | None:
    """wan2.7 / HappyHorse: typed assets in `input.media[]`; `resolution` + `ratio`, never a pixel `size`."""
    if "size" in params:
        return _bad("parameters.size is not supported by this model; use resolution and ratio.")
    if "img_url" in inp:
        return _bad("input.img_url is not supported by this model; use input.media.")
    if "resolution" in params and params["resolution"] not in model.choices:
        return _bad(f"The resolution is not match the allowed resolutions: {', '.join(model.choices)}.")
    if "ratio" in params and params["ratio"] not in _RATIOS:
        return _bad(f"The ratio is not match the allowed ratios: {', '.join(_RATIOS)}.")
    media = inp.get("media", [])
    if not isinstance(media, list):
        return _bad("input.media must be an array.")
    types = []
    for item in media:
        if not isinstance(item, dict) or item.get("type") not in model.media or set(item) - _ITEM_KEYS:
            return _bad(f"input.media items must be {{type, url}} with type in {', '.join(model.media)}.")
        check = _check_image if "frame" in item["type"] or item["type"] == "reference_image" else _check_url
        if problem := check(item.get("url"), "media.url"):
            return problem
        types.append(item["type"])
    if model.kind == "t2v" and media:
        return _bad("input.media is not supported by this model.")
    if model.kind == "i2v" and not {"first_frame", "first_clip"} & set(types):
        return _bad("input.media needs a first_frame or a first_clip.")
    if model.kind == "r2v" and not {"reference_image", "reference_video"} & set(types):
        return _bad("input.media needs a reference_image or a reference_video.")
    if any(types.count(t) > 1 for t in ("first_frame", "last_frame", "driving_audio", "first_clip")):
        return _bad("input.media has the same asset type twice.")
    return None


def validate(path_kind: str, body: Any) -> JSONResponse | None:
    """The vendor's create-time checks (§4, §5, §9)."""
    if not isinstance(body, dict):
        return _bad("The request body is not valid JSON.")
    model_name = body.get("model")
    if not model_name:
        return _bad('Required parameter "model" missing from request.', "BadRequest.EmptyModel")
    model = FAKE_MODELS.get(model_name)
    # kf2v lives on the image2video path only; the real error for a mixed-up path is UNCONFIRMED.
    if model is None or (model.kind == "kf2v") != (path_kind == "kf2v"):
        return _bad("Model not exist.")
    inp = body.get("input")
    if not isinstance(inp, dict) or not inp:
        return _bad("Required input parameter missing from request.", "BadRequest.EmptyInput")
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        return _bad("parameters must be an object.")

    if model.kind in {"t2v", "r2v"} and not inp.get("prompt"):
        return _bad("Field required: input.prompt")
    if model.protocol == "media":
        if problem := _check_media(model, inp, params):
            return problem
    else:
        if problem := _check_legacy(model, inp, params):
            return problem
    duration = params.get("duration", 5)
    if type(duration) is not int or duration not in model.durations:
        return _bad(f"The duration {duration!r} is not supported by {model_name}.")
    videos = [m for m in inp.get("media", []) if isinstance(m, dict) and m.get("type") == "reference_video"]
    if videos and duration > 10:
        return _bad("The duration must be in [2, 10] when reference videos are given.")
    for flag in ("prompt_extend", "watermark", "audio"):
        if flag in params and not isinstance(params[flag], bool):
            return _bad(f"parameters.{flag} must be a boolean.")
    seed = params.get("seed", 0)
    if type(seed) is not int or not 0 <= seed <= 2147483647:
        return _bad("parameters.seed must be an integer in [0, 2147483647].")
    return None


def _task_view(task: FakeTask) -> dict[str, Any]:
    status = task.states[min(task.index, len(task.states) - 1)]
    task.index += 1
    out: dict[str, Any] = {"task_id": task.task_id, "task_status": status, "submit_time": task.submit_time}
    if status != "PENDING":
        out["scheduled_time"] = task.submit_time
    view: dict[str, Any] = {"request_id": str(uuid.uuid4()), "output": out}
    if status in {"SUCCEEDED", "FAILED", "CANCELED"}:
        out["end_time"] = _now()
    params, inp = task.body.get("parameters", {}), task.body["input"]
    if status == "SUCCEEDED":
        out["video_url"] = (
            f"{RESULT_HOST}/1d/{task.task_id}.mp4?Expires=1761000000&OSSAccessKeyId=LTAIfake&Signature=abc%3D"
        )
        out["orig_prompt"] = inp.get("prompt", "")
        if params.get("prompt_extend", True):
            out["actual_prompt"] = inp.get("prompt", "") + " (rewritten)"
        model = FAKE_MODELS[task.model]
        legacy_size = model.kind in {"t2v", "r2v"} and model.protocol == "legacy"
        chosen = params.get("size" if legacy_size else "resolution", model.default)
        short = _SHORT[chosen] if "*" in chosen else int(chosen.rstrip("P"))
        seconds = params.get("duration", 5)
        if model.protocol == "media":  # the newer usage shape (§7.3)
            view["usage"] = {"duration": seconds, "output_video_duration": seconds, "video_count": 1, "SR": short}
            if "ratio" in params:
                view["usage"]["ratio"] = params["ratio"]
        else:
            view["usage"] = {"video_duration": seconds, "video_count": 1, "SR": short}
    elif status == "FAILED":
        out["code"], out["message"] = task.failure or ("InternalError.Algo", "Algorithm error.")
    return view


def make_app(
    *, api_key: str = "sk-fake-wanxiang", lifecycle: tuple[str, ...] = ("PENDING", "RUNNING")
) -> tuple[Starlette, FakeState]:
    """`lifecycle`: the non-terminal states walked before SUCCEEDED/FAILED, one per query."""
    state = FakeState(api_key=api_key, lifecycle=lifecycle, video=tiny_mp4(), sound_video=real_mp4(audio=True))

    async def guard(request: Request, route: str) -> Response | None:
        """Record, then apply auth and injected faults the way the vendor's front door would."""
        raw = await request.body()
        try:
            parsed: Any = await request.json() if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        state.requests.append(Recorded(request.method, request.url.path, dict(request.headers), parsed))
        fault = state._take_fault(route)
        if fault == "hang":
            await asyncio.sleep(state.hang_seconds)
        elif fault == "garbage":
            return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
        elif fault is not None:
            return _error(*FAULTS[fault])
        if route != "result" and request.headers.get("authorization") != f"Bearer {state.api_key}":
            return _error(401, "InvalidApiKey", "Invalid API-key provided.")
        return None

    def create_endpoint(path_kind: str) -> Any:
        async def create(request: Request) -> Response:
            if refused := await guard(request, "create"):
                return refused
            if request.headers.get("x-dashscope-async") != "enable":
                return _error(403, "AccessDenied", "current user api does not support synchronous calls")
            body = state.requests[-1].json
            if problem := validate(path_kind, body):
                return problem
            task_id = str(uuid.uuid4())
            terminal = "FAILED" if state.task_failure else "SUCCEEDED"
            state.tasks[task_id] = FakeTask(
                task_id, body["model"], body, [*state.lifecycle, terminal], failure=state.task_failure
            )
            return JSONResponse(
                {"request_id": str(uuid.uuid4()), "output": {"task_id": task_id, "task_status": "PENDING"}}
            )

        return create

    async def query(request: Request) -> Response:
        if refused := await guard(request, "query"):
            return refused
        task_id = request.path_params["task_id"]
        task = state.tasks.get(task_id)
        if task is None:
            out = {"task_id": task_id, "task_status": "UNKNOWN"}
            return JSONResponse({"request_id": str(uuid.uuid4()), "output": out})
        return JSONResponse(_task_view(task))

    async def cancel(request: Request) -> Response:
        if refused := await guard(request, "cancel"):
            return refused
        task = state.tasks.get(request.path_params["task_id"])
        if task is None or task.current != "PENDING":
            return _bad("The operation is unsupported on the referee object.", "UnsupportedOperation")
        task.states, task.index = ["CANCELED"], 0
        return JSONResponse({"request_id": str(uuid.uuid4())})

    async def result(request: Request) -> Response:
        if refused := await guard(request, "result"):
            return refused
        task_id = request.path_params["name"]
        signed = "Signature" in request.query_params and "Expires" in request.query_params
        if state.results_expired or not signed or task_id not in state.tasks:
            # OSS answers an expired or unsigned link with an XML AccessDenied.
            xml = "<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>"
            return Response(xml, status_code=403, media_type="application/xml")
        task = state.tasks[task_id]
        voiced = FAKE_MODELS[task.model].audio and task.body.get("parameters", {}).get("audio", True) is not False
        return Response(state.sound_video if voiced else state.video, media_type="video/mp4")

    routes = [
        Route(T2V_PATH, create_endpoint("video"), methods=["POST"]),
        Route(T2V_PATH + "/", create_endpoint("video"), methods=["POST"]),
        Route(KF2V_PATH, create_endpoint("kf2v"), methods=["POST"]),
        Route(KF2V_PATH + "/", create_endpoint("kf2v"), methods=["POST"]),
        Route("/api/v1/tasks/{task_id}", query, methods=["GET"]),
        Route("/api/v1/tasks/{task_id}/cancel", cancel, methods=["POST"]),
        Route("/1d/{name}.mp4", result, methods=["GET"]),
    ]
    return Starlette(routes=routes), state
