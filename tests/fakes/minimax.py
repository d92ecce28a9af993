"""A fake MiniMax v1 video server, following the "Fake-server checklist" (§14) of /work/shared/vendors/minimax.md.

Routes: `POST /v1/video_generation`, `GET /v1/query/video_generation?task_id=`, `GET /v1/files/retrieve?file_id=`
(an extra `GroupId` query parameter is tolerated), and the CDN's `GET /inference_output/video/{file_id}/output.mp4`
behind a signed, expiring URL. Auth is exactly `Authorization: Bearer <key>` on all three API routes: missing or
another scheme → HTTP 200 `base_resp 1004 login fail`, another key → `2049 invalid api key`. Business errors
are HTTP 200 with a non-zero `base_resp.status_code`, as MiniMax answers.

The capability table below is the fake's own reading of §4/§5 (not the adapter's): a create the real platform
would refuse gets `2013 invalid params, …` with `task_id: ""`. Images are decoded (data URLs: JPG/PNG/WebP,
< 20 MB, short side > 300 px, aspect between 2:5 and 5:2); http(s) URLs are taken as given (nothing is
reachable from here).

Each query returns the task's state and then moves it one step: Preparing → Queueing → Processing → Success
(numeric-string `file_id`, `video_width`/`video_height`), or Fail with `state.fail_task`'s code. A `callback_url`
is verified at create (a POST `{"challenge": …}` that must be echoed within 3 s), then sent each state change
from Processing on (the query body, lower-case status), when a `callback_client` is given.

Faults: `state.fail_next(code, on=…, http=…)` answers the next call of a route with that `base_resp` code
(1002, 1004, 1008, 1026, 2013, 2049, HTTP 500 + 1000, …); `state.fail_task = (1027, "output new_sensitive")`
makes new tasks end `Fail`; `state.expire_urls` makes download URLs already expired; `state.break_primary`
makes the primary download URL fail while `backup_download_url` works.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import io
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.assets import real_mp4

CDN = "https://video-product.cdn.minimax.io"
VIDEO_BYTES = real_mp4()
VIDEO_SIZE = (96, 64)  # what real_mp4() is
LIFECYCLE = ("Preparing", "Queueing", "Processing", "Success")
URL_TTL_S = 9 * 3600

_HAILUO = {"768P": (6, 10), "1080P": (6,)}
_LEGACY = {"720P": (6,)}
# §5.1: model → mode → resolution → durations
TABLE: dict[str, dict[str, dict[str, tuple[int, ...]]]] = {
    "MiniMax-Hailuo-2.3": {"t2v": _HAILUO, "i2v": _HAILUO},
    "MiniMax-Hailuo-2.3-Fast": {"i2v": _HAILUO},
    "MiniMax-Hailuo-02": {"t2v": _HAILUO, "i2v": {"512P": (6, 10), **_HAILUO}, "fl2v": _HAILUO},
    "T2V-01-Director": {"t2v": _LEGACY},
    "T2V-01": {"t2v": _LEGACY},
    "I2V-01-Director": {"i2v": _LEGACY},
    "I2V-01-live": {"i2v": _LEGACY},
    "I2V-01": {"i2v": _LEGACY},
    "S2V-01": {"s2v": _LEGACY},
}
SWITCHES = ("prompt_optimizer", "fast_pretreatment", "aigc_watermark")
LOGIN_FAIL = "login fail: Please carry the API secret key in the 'Authorization' field of the request header"
MESSAGES = {
    1000: "unknown error",
    1002: "rate limit",
    1004: "not authorized",
    1008: "insufficient balance",
    1026: "input new_sensitive",
    1027: "output new_sensitive",
    2013: "invalid params",
    2049: "invalid api key",
    2056: "usage limit exceeded",
}


@dataclass
class FakeTask:
    id: str
    body: dict[str, Any]
    mode: str
    status: str = "Preparing"
    fail_with: tuple[int, str] | None = None
    file_id: str = ""
    callback_verified: bool = False


@dataclass
class Fault:
    code: int
    on: str  # "create" | "query" | "retrieve" | "any"
    http: int = 200
    msg: str | None = None
    retry_after: str | None = None


@dataclass
class FakeMiniMaxState:
    api_key: str
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    fail_task: tuple[int, str] | None = None
    expire_urls: bool = False
    break_primary: bool = False
    faults: list[Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # file_id → task id
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(106916112212032))
    file_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(362088325627994))

    def fail_next(
        self, code: int, *, on: str = "create", http: int = 200, msg: str | None = None, retry_after: str | None = None
    ) -> None:
        self.faults.append(Fault(code, on, http, msg, retry_after))

    def bodies(self, path: str) -> list[Any]:
        return [r["json"] for r in self.requests if r["path"] == path]

    def sign(self, file_id: str, expires: int) -> str:
        return hmac.new(self.secret, f"{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def _resp(code: int, msg: str | None = None, *, http: int = 200, **fields: Any) -> JSONResponse:
    body = {**fields, "base_resp": {"status_code": code, "status_msg": msg or MESSAGES.get(code, "error")}}
    return JSONResponse(body, status_code=http, headers={"Trace-Id": secrets.token_hex(16)})


class Invalid(Exception):
    """A create the platform refuses with 2013."""


def _check_image(value: Any, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise Invalid(f"invalid params, {name} must be a string")
    if value.startswith(("http://", "https://")):
        return
    head, sep, data = value.partition(",")
    if not sep or head not in {f"data:image/{t};base64" for t in ("jpeg", "jpg", "png", "webp")}:
        raise Invalid(f"invalid params, {name} must be a public URL or a base64 data URL")
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise Invalid(f"invalid params, {name} is not valid base64") from None
    if len(raw) >= 20 * 1024 * 1024:
        raise Invalid(f"invalid params, {name} must be smaller than 20MB")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            fmt, (w, h) = img.format, img.size
    except Exception:
        raise Invalid(f"invalid params, {name} cannot be decoded") from None
    if fmt not in {"JPEG", "PNG", "WEBP"}:
        raise Invalid(f"invalid params, {name} format must be JPG, JPEG, PNG or WebP")
    if min(w, h) <= 300:
        raise Invalid(f"invalid params, {name} short side must be greater than 300px")
    if not 2 / 5 <= w / h <= 5 / 2:
        raise Invalid(f"invalid params, {name} aspect ratio must be between 2:5 and 5:2")


def validate(body: Any) -> tuple[str, dict[str, Any]]:
    """§4/§5 → (mode, body with defaults applied); `Invalid` for what the platform refuses."""
    if not isinstance(body, dict):
        raise Invalid("invalid params, request body must be a JSON object")
    model = body.get("model")
    if not model:
        raise Invalid("invalid params, binding: expr_path=model, cause=missing required parameter")
    if not isinstance(model, str) or model not in TABLE:
        raise Invalid(f"invalid params, model {model} is not supported")
    modes = TABLE[model]
    first, last, subject = body.get("first_frame_image"), body.get("last_frame_image"), body.get("subject_reference")
    if model == "S2V-01":
        mode = "s2v"
        if first is not None or last is not None:
            raise Invalid("invalid params, S2V-01 takes subject_reference only")
    elif last is not None:
        if first is None:
            raise Invalid("invalid params, last_frame_image requires first_frame_image")
        mode = "fl2v"
    else:
        mode = "i2v" if first is not None else "t2v"
    if mode not in modes:
        raise Invalid(f"invalid params, model {model} does not support {mode}")
    if subject is not None and mode != "s2v":
        raise Invalid("invalid params, subject_reference is only supported by S2V-01")
    if mode == "s2v":
        ok = (
            isinstance(subject, list)
            and len(subject) == 1
            and isinstance(subject[0], dict)
            and subject[0].get("type") == "character"
            and isinstance(subject[0].get("image"), list)
            and len(subject[0]["image"]) == 1
        )
        if not ok:
            raise Invalid("invalid params, binding: expr_path=subject_reference, cause=missing required parameter")
        _check_image(subject[0]["image"][0], "subject_reference.image")
    for name, value in (("first_frame_image", first), ("last_frame_image", last)):
        if value is not None:
            _check_image(value, name)
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise Invalid("invalid params, binding: expr_path=prompt, cause=type mismatch")
    if mode in {"t2v", "s2v"} and not (prompt or "").strip():
        raise Invalid("invalid params, binding: expr_path=prompt, cause=missing required parameter")
    if prompt and len(prompt) > 2000:
        raise Invalid("invalid params, prompt must be at most 2000 characters")
    table = modes[mode]
    duration = body.get("duration", 6)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise Invalid("invalid params, binding: expr_path=duration, cause=type mismatch")
    resolution = body.get("resolution", "768P" if model.startswith("MiniMax-Hailuo") else "720P")
    if not isinstance(resolution, str) or resolution not in table:
        raise Invalid(f"invalid params, resolution {resolution} is not supported by {model}")
    if duration not in table[resolution]:
        raise Invalid(f"invalid params, duration {duration} is not supported at {resolution} by {model}")
    for name in SWITCHES:
        if name in body and not isinstance(body[name], bool):
            raise Invalid(f"invalid params, binding: expr_path={name}, cause=type mismatch")
    if "callback_url" in body and not isinstance(body["callback_url"], str):
        raise Invalid("invalid params, binding: expr_path=callback_url, cause=type mismatch")
    return mode, {**body, "duration": duration, "resolution": resolution}


def make_app(
    *, api_key: str = "sk-api-fake-minimax", callback_client: httpx.AsyncClient | None = None
) -> tuple[Starlette, FakeMiniMaxState]:
    state = FakeMiniMaxState(api_key=api_key)

    def fault(route: str) -> Response | None:
        for i, f in enumerate(state.faults):
            if f.on in (route, "any"):
                del state.faults[i]
                extra = {"task_id": ""} if route == "create" else {}
                resp = _resp(f.code, f.msg, http=f.http, **extra)
                if f.retry_after:
                    resp.headers["Retry-After"] = f.retry_after
                return resp
        return None

    async def guard(request: Request, route: str) -> tuple[Response | None, Any]:
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "json": parsed,
            }
        )
        extra = {"task_id": ""} if route == "create" else {}
        auth = request.headers.get("authorization")
        if auth is None or not auth.startswith("Bearer ") or not auth[7:]:
            return _resp(1004, LOGIN_FAIL, **extra), parsed
        if auth != f"Bearer {state.api_key}":
            return _resp(2049, **extra), parsed
        if (early := fault(route)) is not None:
            return early, parsed
        return None, parsed

    def query_body(task: FakeTask, *, lower: bool = False) -> dict[str, Any]:
        done = task.status == "Success"
        code, msg = task.fail_with if task.status == "Fail" and task.fail_with else (0, "success")
        status = task.status
        if lower:
            status = {"Fail": "failed"}.get(status, status.lower())
        return {
            "task_id": task.id,
            "status": status,
            "file_id": task.file_id,
            "video_width": VIDEO_SIZE[0] if done else 0,
            "video_height": VIDEO_SIZE[1] if done else 0,
            "base_resp": {"status_code": code, "status_msg": msg},
        }

    async def verify(task: FakeTask) -> None:
        url = task.body.get("callback_url")
        if not url or callback_client is None:
            return
        challenge = secrets.token_urlsafe(16)
        try:
            resp = await asyncio.wait_for(callback_client.post(url, json={"challenge": challenge}), 3.0)
            echoed = resp.status_code == 200 and resp.json().get("challenge") == challenge
        except (httpx.HTTPError, TimeoutError, ValueError, AttributeError):
            echoed = False
        task.callback_verified = echoed
        state.callbacks.append({"url": url, "json": {"challenge": challenge}, "verified": echoed})

    async def notify(task: FakeTask) -> None:
        url = task.body.get("callback_url")
        if not url or callback_client is None or not task.callback_verified:
            return
        body = query_body(task, lower=True)
        try:
            status = (await callback_client.post(url, json=body)).status_code
        except httpx.HTTPError:
            status = 0
        state.callbacks.append({"url": url, "json": body, "status": status})

    async def advance(task: FakeTask) -> None:
        if task.status in {"Success", "Fail"}:
            return
        nxt = LIFECYCLE[LIFECYCLE.index(task.status) + 1]
        if nxt == "Success" and task.fail_with:
            task.status = "Fail"
        else:
            task.status = nxt
        if task.status == "Success":
            task.file_id = str(next(state.file_ids))
            state.files[task.file_id] = task.id
        if task.status in {"Processing", "Success", "Fail"}:
            await notify(task)

    async def create(request: Request) -> Response:
        early, body = await guard(request, "create")
        if early is not None:
            return early
        try:
            mode, params = validate(body)
        except Invalid as exc:
            return _resp(2013, str(exc), task_id="")
        task = FakeTask(id=str(next(state.ids)), body=params, mode=mode, fail_with=state.fail_task)
        await verify(task)
        state.tasks[task.id] = task
        return _resp(0, "success", task_id=task.id)

    async def query(request: Request) -> Response:
        early, _ = await guard(request, "query")
        if early is not None:
            return early
        task = state.tasks.get(request.query_params.get("task_id", ""))
        if task is None:
            return _resp(2013, "invalid params, task_id not found", task_id="", status="")
        body = query_body(task)
        await advance(task)
        return JSONResponse(body)

    def signed_url(file_id: str, *, backup: bool = False) -> str:
        expires = int(time.time()) + (-60 if state.expire_urls else URL_TTL_S)
        path = f"/inference_output/video/{file_id}/output.mp4"
        query = f"Expires={expires}&sign={state.sign(file_id, expires)}" + ("&backup=1" if backup else "")
        return f"{CDN}{path}?{query}"

    async def retrieve(request: Request) -> Response:
        early, _ = await guard(request, "retrieve")
        if early is not None:
            return early
        raw = request.query_params.get("file_id", "")
        if not raw.isdigit() or raw not in state.files:
            return _resp(2013, "invalid params, file not found")
        file = {
            "file_id": int(raw),
            "bytes": len(VIDEO_BYTES),
            "created_at": int(time.time()),
            "filename": "output_aigc.mp4",
            "purpose": "video_generation",
            "download_url": signed_url(raw),
            "backup_download_url": signed_url(raw, backup=True),
        }
        return _resp(0, "success", file=file)

    async def cdn(request: Request) -> Response:
        file_id: str = request.path_params["file_id"]
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "json": None,
            }
        )
        if "authorization" in request.headers:  # a pre-signed URL: credentials have no business here
            return PlainTextResponse("<Error><Code>InvalidArgument</Code></Error>", status_code=400)
        if state.break_primary and not request.query_params.get("backup"):
            return PlainTextResponse("<Error><Code>NoSuchKey</Code></Error>", status_code=404)
        try:
            expires = int(request.query_params.get("Expires", ""))
        except ValueError:
            expires = 0
        good = hmac.compare_digest(request.query_params.get("sign", ""), state.sign(file_id, expires))
        if not good or expires < time.time() or file_id not in state.files:
            return PlainTextResponse("<Error><Code>AccessDenied</Code></Error>", status_code=403)
        return Response(VIDEO_BYTES, media_type="video/mp4")

    app = Starlette(
        routes=[
            Route("/v1/video_generation", create, methods=["POST"]),
            Route("/v1/query/video_generation", query, methods=["GET"]),
            Route("/v1/files/retrieve", retrieve, methods=["GET"]),
            Route("/inference_output/video/{file_id}/output.mp4", cdn, methods=["GET"]),
        ]
    )
    return app, state
