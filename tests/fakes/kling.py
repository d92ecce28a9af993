"""A fake Kling classic API (/work/shared/vendors/kling.md §12 "Fake-server checklist").

- JWT auth exactly as §2.4: HMAC over the received segments, SK looked up by `iss`, `nbf`/`exp` against an
  injectable clock, `typ` not required; plus optional static API keys (§2.5).
- POST / GET one / GET list on text2video, image2video and video-extend; validation → HTTP 400 code 1201.
- Each GET of a task returns its state, then moves it one step: submitted → processing → succeed | failed.
- Result URLs point at cdn.klingai.com; the same app serves a small real MP4 there (through ASGITransport
  every host reaches this app), with an AAC track when the task was made with `sound: "on"`.
- kling-v2-6 / kling-v3: `sound` (v2-6: pro only, and silent with a last frame), `voice_list`; kling-v3:
  durations "3"-"15" and the multi-shot fields.
- Faults on demand (`state.fail_next`): any documented error code with its documented HTTP status (or HTTP
  200), garbage bodies, hangs; `state.fail_next_task` makes the next task end `failed`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import io
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.assets import real_mp4

AK = "ak_fake_0123456789abcdef0123456789"
SK = "sk_fake_fedcba9876543210fedcba9876543210"
CDN = "https://cdn.klingai.com/bs2/upload-kling-api/5739745938"

T2V_MODELS = frozenset(
    {"kling-v1", "kling-v1-6", "kling-v2-master", "kling-v2-1-master", "kling-v2-5-turbo", "kling-v2-6", "kling-v3"}
)
I2V_MODELS = T2V_MODELS | {"kling-v1-5", "kling-v2-1"}
EXTENDABLE = frozenset({"kling-v1", "kling-v1-6"})
TAIL_PRO_ONLY = frozenset({"kling-v1-5", "kling-v1-6", "kling-v2-1", "kling-v2-5-turbo", "kling-v2-6"})
NO_TAIL = frozenset({"kling-v2-master", "kling-v2-1-master"})
# kling-v3 takes any whole second from 3 to 15 and a "4k" mode (newer docs; UNCONFIRMED for the classic API)
DURATIONS: dict[str, tuple[str, ...]] = {"kling-v3": tuple(str(n) for n in range(3, 16))}
MODES: dict[str, tuple[str, ...]] = {"kling-v3": ("std", "pro", "4k")}
SOUND_MODELS = frozenset({"kling-v2-6", "kling-v3"})  # `sound` on/off: v2.6 and later (§5)
CAMERA_TYPES = frozenset({"simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"})
CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")

# §3.1: code → (HTTP status, message)
ERRORS: dict[int, tuple[int, str]] = {
    1000: (401, "Authentication failed"),
    1001: (401, "Authorization is empty"),
    1002: (401, "Authorization is invalid"),
    1003: (401, "Authorization is not yet valid"),
    1004: (401, "Authorization has expired"),
    1100: (429, "Account exception"),
    1101: (429, "Account in arrears"),
    1102: (429, "Account balance not enough"),
    1103: (403, "No permission to access the resource"),
    1200: (400, "Request parameters invalid"),
    1201: (400, "Parameter invalid"),
    1202: (404, "HTTP method invalid"),
    1203: (404, "Requested resource does not exist"),
    1300: (400, "Platform policy triggered"),
    1301: (400, "Content security policy triggered"),
    1302: (429, "Requests too fast, rate limit exceeded"),
    1303: (429, "parallel task over resource pack limit"),
    1304: (429, "IP allow-list policy triggered"),
    5000: (500, "Server internal error"),
    5001: (503, "Service temporarily unavailable"),
    5002: (504, "Server internal timeout"),
}

States = Literal["submitted", "processing", "succeed", "failed"]


@functools.cache
def sample_mp4() -> bytes:
    """A real, tiny MP4 (four 64x64 frames), made once with PyAV."""
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 60, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buf.getvalue()


class KlingError(Exception):
    def __init__(self, code: int, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status if status is not None else ERRORS[code][0]
        self.message = message or ERRORS[code][1]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class Fault:
    kind: Literal["error", "garbage", "hang"]
    code: int = 5000
    status: int | None = None  # override the documented status, e.g. 200 for "HTTP 200 with an error code"
    seconds: float = 30.0


@dataclass
class FakeTask:
    task_id: str
    family: str
    account: str
    model: str
    body: dict[str, Any]
    external_task_id: str | None
    created_at: int
    updated_at: int
    status: States = "submitted"
    fail_message: str | None = None
    video_id: str = ""
    duration: str = "5.1"
    parent: dict[str, str] | None = None

    @property
    def sound(self) -> bool:
        return self.body.get("sound") == "on"

    def view(self) -> dict[str, Any]:
        info: dict[str, Any] = {"external_task_id": self.external_task_id or ""}
        if self.parent:
            info["parent_video"] = self.parent
        data: dict[str, Any] = {
            "task_id": self.task_id,
            "task_status": self.status,
            "task_status_msg": self.fail_message if self.status == "failed" else "",
            "task_info": info,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.status == "succeed":
            data["task_result"] = {"videos": [{"id": self.video_id, "url": self.url, "duration": self.duration}]}
            data["watermark_info"] = {"enabled": bool((self.body.get("watermark_info") or {}).get("enabled"))}
            data["final_unit_deduction"] = "1"
        return data

    @property
    def url(self) -> str:
        return f"{CDN}/{self.family}/{self.task_id}-0_raw_video_1.mp4"


@dataclass
class FakeKlingState:
    keys: dict[str, str]  # AK → SK
    api_keys: frozenset[str] = frozenset()
    clock: Callable[[], float] = time.time
    concurrency: int = 5  # running tasks per account and model (§3.2)
    requests: list[Recorded] = field(default_factory=list)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    failing_tasks: list[str] = field(default_factory=list)
    video: bytes = field(default_factory=sample_mp4)
    sound_video: bytes = field(default_factory=lambda: real_mp4(audio=True))  # made with `sound: "on"`
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(860912345))

    def fail_next(
        self,
        kind: Literal["error", "garbage", "hang"],
        *,
        code: int = 5000,
        status: int | None = None,
        seconds: float = 30.0,
        times: int = 1,
    ) -> None:
        self.faults.extend(Fault(kind, code, status, seconds) for _ in range(times))

    def fail_next_task(self, message: str = "Failure to pass the risk control system") -> None:
        self.failing_tasks.append(message)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def api_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/v1/")]


def make_app(
    *,
    keys: dict[str, str] | None = None,
    api_keys: frozenset[str] = frozenset(),
    clock: Callable[[], float] = time.time,
    concurrency: int = 5,
) -> tuple[Starlette, FakeKlingState]:
    state = FakeKlingState(keys=dict(keys or {AK: SK}), api_keys=api_keys, clock=clock, concurrency=concurrency)

    async def api(request: Request) -> Response:
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        state.requests.append(
            Recorded(request.method, request.url.path, dict(request.query_params), dict(request.headers), parsed)
        )
        try:
            if state.faults:
                fault = state.faults.pop(0)
                if fault.kind == "hang":
                    await asyncio.sleep(fault.seconds)
                elif fault.kind == "garbage":
                    return Response(b"<html>upstream says hi", status_code=fault.status or 200)
                else:
                    raise KlingError(fault.code, status=fault.status)
            account = authenticate(state, request.headers.get("authorization"))
            family = request.path_params["family"]
            if family not in ("text2video", "image2video", "video-extend"):
                raise KlingError(1203, f"unknown path /v1/videos/{family}")
            task_ref = request.path_params.get("task_ref")
            if request.method == "POST" and task_ref is None:
                if not isinstance(parsed, dict):
                    raise KlingError(1200, "request body must be a JSON object")
                return ok(create(state, account, family, parsed).view())
            if request.method == "GET" and task_ref is None:
                return ok([t.view() for t in listing(state, account, family, request.query_params)])
            if request.method == "GET":
                return ok(advance(state, find(state, account, family, task_ref)))
            raise KlingError(1202)
        except KlingError as exc:
            return JSONResponse(
                {"code": exc.code, "message": exc.message, "request_id": request_id()}, status_code=exc.status
            )

    async def cdn(request: Request) -> Response:
        state.requests.append(Recorded("GET", request.url.path, {}, dict(request.headers), None))
        name = request.path_params["name"]
        if not any(name == t.url.rsplit("/", 1)[1] for t in state.tasks.values() if t.status == "succeed"):
            return Response(b"Not Found", status_code=404)
        task = next(t for t in state.tasks.values() if t.url.rsplit("/", 1)[1] == name)
        return Response(state.sound_video if task.sound else state.video, media_type="video/mp4")

    routes = [
        Route("/v1/videos/{family}", api, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/v1/videos/{family}/{task_ref}", api, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/bs2/upload-kling-api/5739745938/{family}/{name}", cdn, methods=["GET"]),
    ]
    return Starlette(routes=routes), state


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data})


def request_id() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------------------------
# §2.4 JWT verification


def _b64decode(segment: str) -> bytes:
    if not segment or any(c in segment for c in "+/="):
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def authenticate(state: FakeKlingState, header: str | None) -> str:
    """The account (AK or API key) behind `Authorization`, or a KlingError with the documented code."""
    if not header:
        raise KlingError(1001)
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        raise KlingError(1002)
    if token in state.api_keys:
        return token
    parts = token.split(".")
    if len(parts) != 3:
        raise KlingError(1002)
    try:
        jose = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error):
        raise KlingError(1002) from None
    if not isinstance(jose, dict) or not isinstance(claims, dict) or jose.get("alg") != "HS256":
        raise KlingError(1002)
    secret = state.keys.get(claims.get("iss")) if isinstance(claims.get("iss"), str) else None
    if secret is None:
        raise KlingError(1000)
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise KlingError(1000)
    now = state.clock()
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(exp, int) or (nbf is not None and not isinstance(nbf, int)):
        raise KlingError(1002)
    if nbf is not None and nbf > now:
        raise KlingError(1003)
    if exp <= now:
        raise KlingError(1004)
    return claims["iss"]


# ---------------------------------------------------------------------------------------------
# §5 / §6 / video-extend validation and the state machine


def _bad(message: str) -> KlingError:
    return KlingError(1201, message)


def _check_text(body: dict[str, Any], key: str, *, required: bool = False) -> None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise _bad(f"{key} is required")
        return
    if not isinstance(value, str) or len(value) > 2500:
        raise _bad(f"{key} must be a string of at most 2500 characters")


def _check_image(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise _bad(f"{key} must be a string")
    if value.startswith(("http://", "https://")):
        return
    if value.startswith("data:"):
        raise _bad(f"{key}: base64 must not carry a data: prefix")
    try:
        base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise _bad(f"{key} is neither a URL nor valid base64") from None


def _check_sound(body: dict[str, Any], model: str) -> None:
    """§5: `sound` on/off (v2.6+; on kling-v2-6 pro only), `voice_list` needs sound; v3's multi-shot fields."""
    sound = body.get("sound")
    if sound is not None:
        if model not in SOUND_MODELS:
            raise _bad(f"{model} does not support sound")
        if sound not in ("on", "off"):
            raise _bad(f"sound {sound!r} is invalid, expected 'on' or 'off'")
        if sound == "on" and model == "kling-v2-6" and body.get("mode") != "pro":
            raise _bad("kling-v2-6 makes sound only in pro mode")
    voices = body.get("voice_list")
    if voices is not None and (sound != "on" or not isinstance(voices, list) or len(voices) > 2):
        raise _bad("voice_list takes at most 2 voices and needs sound 'on'")
    if body.get("multi_shot") is None:
        return
    if model != "kling-v3" or not isinstance(body["multi_shot"], bool):
        raise _bad("multi_shot must be a boolean, on kling-v3 only")
    if body["multi_shot"]:
        if body.get("shot_type") not in ("customize", "intelligence"):
            raise _bad("shot_type must be customize or intelligence when multi_shot is true")
        if body.get("image_tail"):
            raise _bad("multi_shot does not support a last frame")
        if body["shot_type"] == "customize":
            shots = body.get("multi_prompt")
            if not isinstance(shots, list) or not 1 <= len(shots) <= 6:
                raise _bad("multi_prompt needs 1 to 6 shots")
            if sum(int(shot.get("duration", 0)) for shot in shots) != int(body.get("duration", "5")):
                raise _bad("the shot durations must add up to the task duration")


def _check_common(body: dict[str, Any], model: str) -> None:
    _check_text(body, "negative_prompt")
    durations = DURATIONS.get(model, ("5", "10"))
    if str(body.get("duration", "5")) not in durations:  # a string per the docs; numbers tolerated (§12)
        raise _bad(f"duration {body.get('duration')!r} is invalid, expected one of {', '.join(durations)}")
    if body.get("mode", "std") not in MODES.get(model, ("std", "pro")):
        raise _bad(f"mode {body.get('mode')!r} is invalid")
    _check_sound(body, model)
    cfg = body.get("cfg_scale")
    if cfg is not None and (isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1):
        raise _bad("cfg_scale must be a number in [0, 1]")
    camera = body.get("camera_control")
    if camera is not None:
        if not isinstance(camera, dict) or camera.get("type") not in CAMERA_TYPES:
            raise _bad("camera_control.type is invalid")
        if camera["type"] == "simple":
            config = camera.get("config")
            if not isinstance(config, dict):
                raise _bad("camera_control.config is required for type simple")
            values = [config.get(axis, 0) for axis in CAMERA_AXES]
            if any(not isinstance(v, int | float) or not -10 <= v <= 10 for v in values):
                raise _bad("camera_control.config values must be numbers in [-10, 10]")
            if sum(1 for v in values if v) != 1:
                raise _bad("camera_control.config needs exactly one non-zero field")


def _check_model(body: dict[str, Any], allowed: frozenset[str]) -> str:
    model = body.get("model_name") or "kling-v1"  # legacy `model` counts as an empty model_name (§5)
    if model not in allowed:
        raise _bad(f"model_name {model!r} is invalid")
    return str(model)


def create(state: FakeKlingState, account: str, family: str, body: dict[str, Any]) -> FakeTask:
    parent: dict[str, str] | None = None
    if family == "text2video":
        model = _check_model(body, T2V_MODELS)
        _check_text(body, "prompt", required=True)
        if body.get("aspect_ratio", "16:9") not in ("16:9", "9:16", "1:1"):
            raise _bad(f"aspect_ratio {body.get('aspect_ratio')!r} is invalid")
        _check_common(body, model)
    elif family == "image2video":
        model = _check_model(body, I2V_MODELS)
        _check_text(body, "prompt")
        _check_common(body, model)
        for key in ("image", "image_tail", "static_mask"):
            _check_image(body, key)
        if not body.get("image") and not body.get("image_tail"):
            raise _bad("image and image_tail cannot both be empty")
        groups = [
            bool(body.get("image_tail")),
            bool(body.get("static_mask") or body.get("dynamic_masks")),
            body.get("camera_control") is not None,
        ]
        if sum(groups) > 1:
            raise _bad("image_tail, motion brush masks and camera_control are mutually exclusive")
        if body.get("image_tail"):
            if model in NO_TAIL:
                raise _bad(f"{model} does not support image_tail")
            if model in TAIL_PRO_ONLY and body.get("mode") != "pro":
                raise _bad(f"{model} supports image_tail only in pro mode")
            if model == "kling-v2-6" and body.get("sound") == "on":
                raise _bad("kling-v2-6 makes first+last frame videos only without sound")
            if model == "kling-v1" and str(body.get("duration", "5")) != "5":
                raise _bad("kling-v1 supports image_tail only for 5 s videos")
    else:
        _check_text(body, "prompt")
        _check_text(body, "negative_prompt")
        cfg = body.get("cfg_scale")
        if cfg is not None and (not isinstance(cfg, int | float) or not 0 <= cfg <= 1):
            raise _bad("cfg_scale must be a number in [0, 1]")
        source = next((t for t in state.tasks.values() if t.video_id and t.video_id == body.get("video_id")), None)
        if not body.get("video_id"):
            raise _bad("video_id is required")
        if source is None or source.account != account:
            raise _bad(f"video_id {body.get('video_id')!r} does not exist")
        if source.model not in EXTENDABLE:
            raise _bad(f"videos made by {source.model} cannot be extended")
        if float(source.duration) + 4.5 > 180:
            raise _bad("the extended video would exceed 3 minutes")
        model = source.model
        parent = {"id": source.video_id, "url": source.url, "duration": source.duration}
    external = body.get("external_task_id") or None
    if external is not None:
        if not isinstance(external, str):
            raise _bad("external_task_id must be a string")
        if any(t.account == account and t.external_task_id == external for t in state.tasks.values()):
            raise _bad(f"external_task_id {external!r} already exists")
    running = [
        t
        for t in state.tasks.values()
        if t.account == account and t.model == model and t.status in ("submitted", "processing")
    ]
    if len(running) >= state.concurrency:
        raise KlingError(1303)
    now = state.now_ms()
    task = FakeTask(
        task_id=str(next(state._ids)),
        family=family,
        account=account,
        model=model,
        body=body,
        external_task_id=external,
        created_at=now,
        updated_at=now,
        parent=parent,
    )
    if state.failing_tasks:
        task.fail_message = state.failing_tasks.pop(0)
    if parent is not None:
        task.duration = f"{float(parent['duration']) + 4.5:.1f}"
    else:
        task.duration = f"{body.get('duration', '5')}.1"
    state.tasks[task.task_id] = task
    return task


def find(state: FakeKlingState, account: str, family: str, ref: str) -> FakeTask:
    """§7.1: the path id is a task_id or an external_task_id; task_id wins."""
    mine = [t for t in state.tasks.values() if t.account == account and t.family == family]
    for task in mine:
        if task.task_id == ref:
            return task
    for task in mine:
        if task.external_task_id == ref:
            return task
    raise KlingError(1203, "task not found")


def advance(state: FakeKlingState, task: FakeTask) -> dict[str, Any]:
    """Report the current state, then take one step towards the end."""
    view = task.view()
    if task.status == "submitted":
        task.status = "processing"
    elif task.status == "processing":
        task.status = "failed" if task.fail_message else "succeed"
        if task.status == "succeed":
            task.video_id = f"{task.task_id}-video"
    else:
        return view
    task.updated_at = state.now_ms()
    return view


def listing(state: FakeKlingState, account: str, family: str, query: Any) -> list[FakeTask]:
    try:
        page, size = int(query.get("pageNum", 1)), int(query.get("pageSize", 30))
    except ValueError:
        raise _bad("pageNum and pageSize must be integers") from None
    if not 1 <= page <= 1000 or not 1 <= size <= 500:
        raise _bad("pageNum must be in [1, 1000] and pageSize in [1, 500]")
    mine = [t for t in state.tasks.values() if t.account == account and t.family == family]
    mine.sort(key=lambda t: t.created_at, reverse=True)
    return mine[(page - 1) * size : page * size]
