"""A fake Ark content-generation server (Volcengine Ark / BytePlus ModelArk), per the fake-server checklist
(§13) of /work/shared/vendors/seedance.md.

Routes: `POST /api/v3/contents/generations/tasks`, `GET …/tasks/{id}`, `GET …/tasks` (list with `page_num`,
`page_size`, `filter.status`, `filter.task_ids`, `filter.model`, `filter.service_tier`), `DELETE …/tasks/{id}`,
and `GET /tos/{name}` for the pre-signed results (`RESULT_HOST` names the TOS host; tests route it here).

Auth is exactly `Authorization: Bearer <key>`; errors are `{"error": {code, message, param, type}}` with the
request id at the end of the message and in `X-Request-Id`. Validation follows its own copy of the §5 matrix
(deliberately not the adapter's table): the model first, then `content[]` and roles, then typed fields and
per-model ranges. Image data URIs are decoded (lower-case format, size and aspect rules); http(s) URLs are
accepted unread. Text commands (`--rs --rt --dur --wm --seed --cf`) apply when the body field is absent.

Each GET returns the task and then moves it one step: queued → running → succeeded (or failed / expired).
Results: a real MP4 (with an AAC track when the task generates audio), a PNG last frame with
`return_last_frame`. State changes are POSTed to `callback_url` when a `callback_client` is given.

Faults: `state.fail_next(kind, on=...)` with a kind of `FAULTS` (or "garbage", "html502"), on "create",
"get", "delete" or "any"; `state.fail_task = (code, message)` makes new tasks end `failed`;
`state.expire_tasks = True` makes them end `expired`; `state.expire_files = True` 403s the result URLs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.assets import real_mp4

TASKS = "/api/v3/contents/generations/tasks"
RESULT_HOST = "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com"
_SIGNING_KEY = secrets.token_bytes(16)

RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
ALL_RES = ("480p", "720p", "1080p")
PNG_FRAME = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@dataclass(frozen=True)
class FakeModel:
    modes: frozenset[str]  # t2v, first, first_last, reference
    resolutions: tuple[str, ...]
    default_resolution: str
    durations: tuple[int, int]
    minus_one: bool  # duration -1 (model picks)
    audio: bool
    frames: bool
    max_refs: int = 0
    multimodal: bool = False  # video/audio references (2.0)
    draft: bool = False
    service_tier: bool = True


_PRO = FakeModel(frozenset({"t2v", "first", "first_last"}), ALL_RES, "1080p", (2, 12), False, False, True)
_PRO_FAST = FakeModel(frozenset({"t2v", "first"}), ALL_RES, "1080p", (2, 12), False, False, True)
_LITE_T2V = FakeModel(frozenset({"t2v"}), ALL_RES, "720p", (2, 12), False, False, True)
_LITE_I2V = FakeModel(
    frozenset({"first", "first_last", "reference"}), ALL_RES, "720p", (2, 12), False, False, True, max_refs=4
)
_V15 = FakeModel(frozenset({"t2v", "first", "first_last"}), ALL_RES, "720p", (4, 12), True, True, False, draft=True)
_V20 = FakeModel(
    frozenset({"t2v", "first", "first_last", "reference"}),
    ALL_RES,
    "720p",
    (4, 15),
    True,
    True,
    False,
    max_refs=9,
    multimodal=True,
    service_tier=False,
)
_V20_FAST = FakeModel(
    _V20.modes, ("480p", "720p"), "720p", (4, 15), True, True, False, max_refs=9, multimodal=True, service_tier=False
)

FAKE_MODELS: dict[str, FakeModel] = {}
for _suffix, _model in (
    ("seedance-1-0-pro-250528", _PRO),
    ("seedance-1-0-pro-fast-251015", _PRO_FAST),
    ("seedance-1-0-lite-t2v-250428", _LITE_T2V),
    ("seedance-1-0-lite-i2v-250428", _LITE_I2V),
    ("seedance-1-5-pro-251215", _V15),
):
    FAKE_MODELS[f"doubao-{_suffix}"] = _model
    FAKE_MODELS[_suffix] = _model
for _suffix, _model in (("seedance-2-0-260128", _V20), ("seedance-2-0-fast-260128", _V20_FAST)):
    FAKE_MODELS[f"doubao-{_suffix}"] = _model
    FAKE_MODELS[f"dreamina-{_suffix}"] = _model

KNOWN_FIELDS = frozenset(
    "model content resolution ratio duration frames seed camera_fixed watermark generate_audio return_last_frame "
    "callback_url service_tier execution_expires_after draft priority safety_identifier tools output_format "
    "omni_reference_task_type".split()
)
BOOL_FIELDS = ("camera_fixed", "watermark", "generate_audio", "return_last_frame", "draft")
TYPES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests"}

# kind → (HTTP status, code, message)
FAULTS: dict[str, tuple[int, str, str]] = {
    "moderation": (
        400,
        "InputTextSensitiveContentDetected",
        "The request failed because the input text may contain sensitive information.",
    ),
    "image_moderation": (
        400,
        "InputImageSensitiveContentDetected.PrivacyInformation",
        "The request failed because the input image may contain real person.",
    ),
    "rate_limit": (
        429,
        "RateLimitExceeded.EndpointRPMExceeded",
        "The request has exceeded the rate limit (RPM) of the endpoint.",
    ),
    "quota": (429, "QuotaExceeded", "The request has exceeded the quota of your account."),
    "overloaded": (429, "ServerOverloaded", "The service is overloaded. Please try again later."),
    "overdue": (403, "AccountOverdueError", "The request failed because your account has an overdue balance."),
    "access": (403, "AccessDenied", "The request failed because you do not have access to the requested resource."),
    "server": (500, "InternalServiceError", "The service encountered an unexpected internal error."),
    "not_open": (404, "ModelNotOpen", "Your account has not activated the model."),
}


class Invalid(Exception):
    def __init__(self, status: int, code: str, message: str, param: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def _bad(param: str, why: str = "") -> Invalid:
    text = f"The parameter `{param}` specified in the request is not valid" + (f": {why}" if why else ".")
    return Invalid(400, "InvalidParameter", text, param)


def error_response(status: int, code: str, message: str, param: str = "") -> JSONResponse:
    rid = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(12)
    body = {
        "error": {
            "code": code,
            "message": f"{message} Request id: {rid}",
            "param": param,
            "type": TYPES.get(status, "InternalServerError"),
        }
    }
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": rid})


@dataclass
class FakeTask:
    id: str
    model: str
    params: dict[str, Any]
    created_at: int
    status: str = "queued"
    updated_at: int = 0
    fail_with: tuple[str, str] | None = None
    expire: bool = False
    error: dict[str, str] | None = None


@dataclass
class FakeState:
    api_key: str
    fail_task: tuple[str, str] | None = None
    expire_tasks: bool = False
    expire_files: bool = False
    faults: list[tuple[str, str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    downloads: list[dict[str, Any]] = field(default_factory=list)

    def fail_next(self, kind: str, *, on: str = "any") -> None:
        self.faults.append((kind, on))

    def creates(self) -> list[Any]:
        return [r["json"] for r in self.requests if r["method"] == "POST"]

    def _take_fault(self, op: str) -> str | None:
        for i, (kind, on) in enumerate(self.faults):
            if on in (op, "any"):
                del self.faults[i]
                return kind
        return None


# -- validation -----------------------------------------------------------------------------------------


def _check_image(url: Any, param: str) -> None:
    if not isinstance(url, str) or not url:
        raise _bad(param)
    if url.startswith(("http://", "https://", "asset://")):
        return
    m = re.fullmatch(r"data:image/([a-z]+);base64,(.*)", url, flags=re.S)
    if m is None:
        raise _bad(param, "the image must be an http(s) URL or data:image/<format>;base64,<data> (lower case)")
    try:
        data = base64.b64decode(m.group(2), validate=True)
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            fmt = (img.format or "").lower()
    except (binascii.Error, ValueError, OSError):
        raise _bad(param, "the image cannot be decoded") from None
    if fmt not in {"jpeg", "png", "webp", "bmp", "tiff", "gif", "heif", "heic"}:
        raise _bad(param, f"unsupported image format {fmt}")
    if not (300 < w < 6000 and 300 < h < 6000):
        raise _bad(param, f"each side must be within (300, 6000) px, got {w}x{h}")
    if not 0.4 < w / h < 2.5:
        raise _bad(param, "the aspect ratio must be within (0.4, 2.5)")
    if len(data) >= 30 * 1024 * 1024:
        raise _bad(param, "the image must be smaller than 30 MB")


def _int_field(body: dict[str, Any], name: str) -> int | None:
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, "expected an integer")
    return value


_COMMANDS = {
    "rs": "resolution",
    "resolution": "resolution",
    "rt": "ratio",
    "ratio": "ratio",
    "dur": "duration",
    "duration": "duration",
    "wm": "watermark",
    "watermark": "watermark",
    "seed": "seed",
    "cf": "camera_fixed",
    "camerafixed": "camera_fixed",
}


def text_commands(text: str) -> dict[str, Any]:
    """`--rs 720p --dur 5 --wm true` → fields (weakly validated: a bad value is dropped)."""
    out: dict[str, Any] = {}
    for name, value in re.findall(r"--([a-z]+)\s+(\S+)", text):
        key = _COMMANDS.get(name)
        if key in {"duration", "seed"}:
            try:
                out[key] = int(value)
            except ValueError:
                pass
        elif key in {"watermark", "camera_fixed"}:
            if value.lower() in {"true", "false"}:
                out[key] = value.lower() == "true"
        elif key is not None:
            out[key] = value
    return out


def validate(body: Any, state: FakeState) -> tuple[str, FakeModel, dict[str, Any]]:
    if not isinstance(body, dict):
        raise Invalid(400, "InvalidParameter", "The request body is not a JSON object.")
    model_id = body.get("model")
    if not model_id:
        raise Invalid(400, "MissingParameter", "The request failed because it is missing `model`.", "model")
    model = FAKE_MODELS.get(model_id) if isinstance(model_id, str) else None
    if model is None:
        raise Invalid(
            404,
            "InvalidEndpointOrModel.NotFound",
            f"The model or endpoint {model_id} does not exist or you do not have access to it.",
            "model",
        )
    state.unknown_fields.extend(k for k in body if k not in KNOWN_FIELDS)
    content = body.get("content")
    if content is None:
        raise Invalid(400, "MissingParameter", "The request failed because it is missing `content`.", "content")
    if not isinstance(content, list) or not content:
        raise _bad("content", "expected a non-empty array")
    texts: list[str] = []
    images: list[tuple[str | None, int]] = []
    videos = audios = 0
    draft_task = False
    for i, item in enumerate(content):
        if not isinstance(item, dict):
            raise _bad(f"content[{i}]")
        kind = item.get("type")
        if kind == "text":
            if not isinstance(item.get("text"), str):
                raise _bad(f"content[{i}].text")
            texts.append(item["text"])
        elif kind in {"image_url", "video_url", "audio_url"}:
            obj = item.get(kind)
            if not isinstance(obj, dict):
                raise _bad(f"content[{i}].{kind}")
            role = item.get("role")
            if kind == "image_url":
                _check_image(obj.get("url"), f"content[{i}].image_url.url")
                if role not in (None, "first_frame", "last_frame", "reference_image"):
                    raise _bad(f"content[{i}].role")
                images.append((role, i))
            else:
                if not model.multimodal:
                    raise _bad(f"content[{i}].type", f"{kind} is not supported by {model_id}")
                if not isinstance(obj.get("url"), str) or not obj["url"]:
                    raise _bad(f"content[{i}].{kind}.url")
                want = "reference_video" if kind == "video_url" else "reference_audio"
                if role != want:
                    raise _bad(f"content[{i}].role")
                videos += kind == "video_url"
                audios += kind == "audio_url"
        elif kind == "draft_task":
            obj = item.get("draft_task")
            if not model.draft or not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise _bad(f"content[{i}].draft_task")
            draft_task = True
        else:
            raise _bad(f"content[{i}].type")
    if len(texts) > 1:
        raise _bad("content", "at most one text item")
    if draft_task and len(content) > 1:
        raise _bad("content", "a draft_task item cannot be mixed with other items")
    roles = [r for r, _ in images]
    if not images:
        mode = "t2v"
    elif all(r == "reference_image" for r in roles):
        mode = "reference"
    elif len(images) == 1 and roles[0] in (None, "first_frame"):
        mode = "first"
    elif len(images) == 2 and roles == ["first_frame", "last_frame"]:
        mode = "first_last"
    else:
        raise _bad("content", "invalid combination of image roles")
    if draft_task:
        mode = "draft"
    elif mode not in model.modes and not (mode == "t2v" and model.multimodal and videos):
        raise _bad("content", f"{model_id} does not support this input mode ({mode})")
    if mode == "reference" and len(images) > model.max_refs:
        raise _bad("content", f"at most {model.max_refs} reference images")
    if videos > 3 or audios > 3:
        raise _bad("content", "at most 3 reference videos and 3 reference audios")
    if audios and not (images or videos):
        raise _bad("content", "reference audio needs at least one image or video")
    text = texts[0] if texts else ""
    if mode == "t2v" and not text.strip() and not videos:
        raise Invalid(400, "MissingParameter", "The request failed because it is missing a text prompt.", "content")
    commands = text_commands(text)

    params: dict[str, Any] = {"mode": mode}
    for name in BOOL_FIELDS:
        if name in body and body[name] is not None and not isinstance(body[name], bool):
            raise _bad(name, "expected a boolean")
    resolution = body.get("resolution", commands.get("resolution"))
    default_res = "480p" if body.get("draft") else model.default_resolution
    resolution = resolution if resolution is not None else default_res
    allowed_res = ("480p", "720p") if mode == "reference" and not model.multimodal else model.resolutions
    if body.get("draft"):
        if not model.draft:
            raise _bad("draft", f"not supported by {model_id}")
        allowed_res = ("480p",)
    if resolution not in allowed_res:
        if "resolution" in body:
            raise _bad("resolution", f"supported: {', '.join(allowed_res)}")
        resolution = default_res
    ratio = body.get("ratio", commands.get("ratio"))
    adaptive_ok = mode in {"first", "first_last"} or (mode == "t2v" and not model.frames) or model.multimodal
    if ratio is None:
        ratio = "adaptive" if mode in {"first", "first_last"} or not model.frames else "16:9"
    if ratio not in RATIOS and not (ratio == "adaptive" and adaptive_ok):
        if "ratio" in body:
            raise _bad("ratio")
        ratio = "16:9"
    frames = _int_field(body, "frames")
    if frames is not None:
        if not model.frames:
            raise _bad("frames", f"not supported by {model_id}")
        if not (29 <= frames <= 289 and (frames - 25) % 4 == 0):
            raise _bad("frames", "must be 25 + 4n in [29, 289]")
    duration = _int_field(body, "duration")
    if duration is None and frames is None:
        duration = commands.get("duration", 5)
        if not isinstance(duration, int) or not model.durations[0] <= duration <= model.durations[1]:
            duration = 5
    if frames is None:
        assert duration is not None
        lo, hi = model.durations
        if not (lo <= duration <= hi or (duration == -1 and model.minus_one)):
            raise _bad("duration", f"must be an integer in [{lo}, {hi}]" + (" or -1" if model.minus_one else ""))
    seed = _int_field(body, "seed")
    if seed is None:
        seed = commands.get("seed", -1)
    if not -1 <= seed <= 2**32 - 1:
        raise _bad("seed")
    if seed == -1:
        seed = secrets.randbelow(2**31)
    tier = body.get("service_tier")
    if tier is not None:
        if not model.service_tier:
            raise _bad("service_tier", "must be empty")
        if tier not in {"default", "flex"}:
            raise _bad("service_tier")
    expires = _int_field(body, "execution_expires_after")
    if expires is not None and not 3600 <= expires <= 259200:
        raise _bad(
            "execution_expires_after",
            f"the specified execution_expires_after {expires} does not support content generation",
        )
    camera_fixed = body.get("camera_fixed", commands.get("camera_fixed", False))
    if camera_fixed and mode == "reference":
        raise _bad("camera_fixed", "not supported with reference images")
    callback = body.get("callback_url")
    if callback is not None and (not isinstance(callback, str) or not callback.startswith(("http://", "https://"))):
        raise _bad("callback_url")
    generate_audio = body.get("generate_audio")
    params.update(
        resolution=resolution,
        ratio="16:9" if ratio == "adaptive" else ratio,
        duration=duration,
        frames=frames,
        seed=seed,
        camera_fixed=bool(camera_fixed),
        watermark=bool(body.get("watermark", commands.get("watermark", False))),
        generate_audio=model.audio and (True if generate_audio is None else generate_audio),
        return_last_frame=bool(body.get("return_last_frame", False)),
        callback_url=callback,
        service_tier=tier or "default",
        execution_expires_after=expires or 172800,
        draft=bool(body.get("draft", False)),
        text=text,
        images=len(images),
    )
    return model_id, model, params


# -- the app ---------------------------------------------------------------------------------------------


def _signature(name: str, expires: int) -> str:
    return hmac.new(_SIGNING_KEY, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(name: str, *, host: str = RESULT_HOST, ttl: int = 86400) -> str:
    expires = int(time.time()) + ttl
    return f"{host}/tos/{name}?X-Tos-Expires={ttl}&X-Tos-Date={expires}&X-Tos-Signature={_signature(name, expires)}"


def make_app(
    *, api_key: str = "ark-test-key", callback_client: httpx.AsyncClient | None = None
) -> tuple[Starlette, FakeState]:
    state = FakeState(api_key=api_key)

    def task_body(task: FakeTask) -> dict[str, Any]:
        p = task.params
        body: dict[str, Any] = {
            "id": task.id,
            "model": task.model,
            "status": task.status,
            "created_at": task.created_at,
            "updated_at": task.updated_at or task.created_at,
            "seed": p["seed"],
            "resolution": p["resolution"],
            "ratio": p["ratio"],
            "framespersecond": 24,
            "service_tier": p["service_tier"],
            "execution_expires_after": p["execution_expires_after"],
        }
        if p["frames"] is not None:
            body["frames"] = p["frames"]
        else:
            body["duration"] = 5 if p["duration"] == -1 else p["duration"]
        if FAKE_MODELS[task.model].audio:
            body["generate_audio"] = p["generate_audio"]
            body["draft"] = p["draft"]
        if task.status == "succeeded":
            content = {"video_url": signed_url(f"{task.id}.mp4")}
            if p["return_last_frame"]:
                content["last_frame_url"] = signed_url(f"{task.id}.png")
            body["content"] = content
            seconds = (p["frames"] / 24) if p["frames"] else body["duration"]
            tokens = int(1920 * 1088 * 24 * seconds / 1024)
            body["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
        if task.error:
            body["error"] = task.error
        return body

    async def notify(task: FakeTask) -> None:
        url = task.params.get("callback_url")
        if not url or callback_client is None:
            return
        try:
            status = (await callback_client.post(url, json=task_body(task))).status_code
        except httpx.HTTPError:
            status = 0
        state.callbacks.append({"url": url, "status": status, "task_status": task.status})

    async def advance(task: FakeTask) -> None:
        if task.status == "queued":
            task.status = "running"
        elif task.status == "running":
            if task.expire:
                task.status = "expired"
            elif task.fail_with:
                task.status = "failed"
                task.error = {"code": task.fail_with[0], "message": task.fail_with[1]}
            else:
                task.status = "succeeded"
        else:
            return
        task.updated_at = int(time.time())
        await notify(task)

    async def guard(request: Request, op: str) -> tuple[Response | None, Any]:
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": str(request.url.query),
                "headers": dict(request.headers),
                "json": parsed,
            }
        )
        if request.headers.get("authorization") != f"Bearer {state.api_key}":
            return error_response(
                401, "AuthenticationError", "The API key or AK/SK in the request is missing or invalid."
            ), parsed
        kind = state._take_fault(op)
        if kind == "garbage":
            return PlainTextResponse("{not json", media_type="application/json"), parsed
        if kind == "html502":
            return PlainTextResponse("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html"), parsed
        if kind is not None:
            status, code, message = FAULTS[kind]
            resp = error_response(status, code, message)
            if status == 429:
                resp.headers["Retry-After"] = "3"
            return resp, parsed
        if isinstance(parsed, str):
            return error_response(400, "InvalidParameter", "The request body is not valid JSON."), parsed
        return None, parsed

    async def create(request: Request) -> Response:
        early, body = await guard(request, "create")
        if early is not None:
            return early
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return error_response(400, "InvalidParameter", "Content-Type must be application/json.")
        try:
            model_id, _, params = validate(body, state)
        except Invalid as exc:
            return error_response(exc.status, exc.code, exc.message, exc.param)
        now = int(time.time())
        task_id = f"cgt-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)[:5]}"
        state.tasks[task_id] = FakeTask(
            id=task_id,
            model=model_id,
            params=params,
            created_at=now,
            fail_with=state.fail_task,
            expire=state.expire_tasks,
        )
        return JSONResponse({"id": task_id})

    async def get(request: Request) -> Response:
        early, _ = await guard(request, "get")
        if early is not None:
            return early
        task = state.tasks.get(request.path_params["task_id"])
        if task is None:
            return error_response(404, "ResourceNotFound", "The specified task does not exist.")
        body = task_body(task)
        await advance(task)
        return JSONResponse(body)

    async def list_tasks(request: Request) -> Response:
        early, _ = await guard(request, "get")
        if early is not None:
            return early
        q = request.query_params
        items = list(state.tasks.values())
        if q.get("filter.status"):
            items = [t for t in items if t.status == q["filter.status"]]
        if q.get("filter.model"):
            items = [t for t in items if t.model == q["filter.model"]]
        if q.get("filter.service_tier"):
            items = [t for t in items if t.params["service_tier"] == q["filter.service_tier"]]
        ids = q.getlist("filter.task_ids")
        if ids:
            items = [t for t in items if t.id in ids]
        items.sort(key=lambda t: t.created_at, reverse=True)
        try:
            num, size = int(q.get("page_num", 1)), int(q.get("page_size", 10))
        except ValueError:
            return error_response(400, "InvalidParameter", "page_num and page_size must be integers.")
        page = items[(num - 1) * size : num * size]
        return JSONResponse({"total": len(items), "items": [task_body(t) for t in page]})

    async def delete(request: Request) -> Response:
        early, _ = await guard(request, "delete")
        if early is not None:
            return early
        task = state.tasks.get(request.path_params["task_id"])
        if task is None:
            return error_response(404, "ResourceNotFound", "The specified task does not exist.")
        if task.status == "queued":
            task.status = "cancelled"
            task.updated_at = int(time.time())
        elif task.status in {"running", "cancelled"}:
            why = f"The task is {task.status} and cannot be cancelled or deleted."
            return error_response(400, "InvalidParameter", why, "id")
        else:
            del state.tasks[task.id]
        return JSONResponse({})

    async def tos(request: Request) -> Response:
        name: str = request.path_params["name"]
        state.downloads.append({"name": name, "headers": dict(request.headers)})
        if "authorization" in request.headers:
            return PlainTextResponse("<Error><Code>InvalidArgument</Code></Error>", status_code=400)
        q = request.query_params
        try:
            expires = int(q.get("X-Tos-Date", "0"))
        except ValueError:
            expires = 0
        good = hmac.compare_digest(q.get("X-Tos-Signature", ""), _signature(name, expires))
        if not good or state.expire_files or expires < time.time():
            return PlainTextResponse("<Error><Code>AccessDenied</Code></Error>", status_code=403)
        task = state.tasks.get(name.rsplit(".", 1)[0])
        if task is None or task.status != "succeeded":
            return PlainTextResponse("<Error><Code>NoSuchKey</Code></Error>", status_code=404)
        if name.endswith(".png"):
            return Response(PNG_FRAME, media_type="image/png")
        return Response(real_mp4(audio=bool(task.params["generate_audio"])), media_type="video/mp4")

    app = Starlette(
        routes=[
            Route(TASKS, create, methods=["POST"]),
            Route(TASKS, list_tasks, methods=["GET"]),
            Route(TASKS + "/{task_id}", get, methods=["GET"]),
            Route(TASKS + "/{task_id}", delete, methods=["DELETE"]),
            Route("/tos/{name}", tos, methods=["GET"]),
        ]
    )
    return app, state
