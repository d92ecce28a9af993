"""A fake Vidu `/ent/v2` server, following the "Fake-server checklist" of /work/shared/vendors/vidu.md.

Routes: `POST /ent/v2/{text2video|img2video|start-end2video|reference2video}`,
`GET /ent/v2/tasks/{id}/creations`, `POST /ent/v2/tasks/{id}/cancel`, `GET /ent/v2/credits`, and
`GET /files/{name}` for the results.
Auth is `Authorization: Token <key>` exactly; errors use `{code, reason, message, metadata.trace_id}`.
Each poll returns the task's state and then moves it one step: created → queueing → processing → success
(or failed). At most `concurrency` tasks run at once; the rest wait in `queueing`. State changes to
processing/success/failed are POSTed to `callback_url` with the HMAC-SHA256 headers of the
"Callback Signature" doc, when a `callback_client` is given.

Faults: set `state.fail` to "500", "429", "garbage", "hang", "200_error" (HTTP 200 + error body) or
"html502"; `state.fail_task` to an `err_code` to make new tasks end `failed`; `state.expire_files` to 403
the result URLs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import itertools
import json
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.assets import real_mp4

ENDPOINTS = ("text2video", "img2video", "start-end2video", "reference2video")
LIFECYCLE = ("created", "queueing", "processing", "success")
CALLBACK_STATES = frozenset({"processing", "success", "failed"})


def _mp4(size: int = 150_000) -> bytes:
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    payload = bytes((i * 31 + 7) % 251 for i in range(size))
    return ftyp + (len(payload) + 8).to_bytes(4, "big") + b"mdat" + payload


VIDEO_BYTES = real_mp4()
COVER_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-cover\xff\xd9"


@dataclass(frozen=True)
class Rule:
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    default_duration: int
    default_resolution: str
    eight_seconds_720_only: bool = False

    def allowed(self, duration: int) -> tuple[str, ...]:
        return ("720p",) if self.eight_seconds_720_only and duration == 8 else self.resolutions

    def default_res(self, duration: int) -> str:
        return "720p" if self.eight_seconds_720_only and duration == 8 else self.default_resolution


_Q1 = Rule((5,), ("1080p",), 5, "1080p")
_GEN_A = Rule((4, 8), ("360p", "720p", "1080p"), 4, "360p", eight_seconds_720_only=True)
_V20_REF = Rule((4,), ("360p", "720p"), 4, "360p")
_Q2 = Rule(tuple(range(1, 11)), ("540p", "720p", "1080p"), 5, "720p")
_Q2_SE = Rule(tuple(range(1, 9)), ("540p", "720p", "1080p"), 5, "720p")
_Q3 = Rule(tuple(range(1, 17)), ("540p", "720p", "1080p"), 5, "720p")

# §5 of the vendor notes: endpoint → model → rule.
MATRIX: dict[str, dict[str, Rule]] = {
    "text2video": {"viduq1": _Q1, "vidu1.5": _GEN_A, "viduq2": _Q2, "viduq3-pro": _Q3, "viduq3-turbo": _Q3},
    "img2video": {
        "viduq1": _Q1,
        "viduq1-classic": _Q1,
        "vidu2.0": _GEN_A,
        "vidu1.5": _GEN_A,
        "viduq2-pro": _Q2,
        "viduq2-turbo": _Q2,
        "viduq2-pro-fast": _Q2,
        "viduq3-pro": _Q3,
        "viduq3-turbo": _Q3,
        "viduq3-pro-fast": _Q3,
    },
    "start-end2video": {
        "viduq1": _Q1,
        "viduq1-classic": _Q1,
        "vidu2.0": _GEN_A,
        "vidu1.5": _GEN_A,
        "viduq2-pro": _Q2_SE,
        "viduq2-turbo": _Q2_SE,
        "viduq2-pro-fast": _Q2_SE,
        "viduq3-pro": _Q3,
        "viduq3-turbo": _Q3,
    },
    "reference2video": {"viduq1": _Q1, "vidu2.0": _V20_REF, "vidu1.5": _GEN_A, "viduq2": _Q2},
}
IMAGE_COUNT = {
    "text2video": (0, 0),
    "img2video": (1, 1),
    "start-end2video": (2, 2),
    "reference2video": (1, 7),
}
GEN_A_ASPECTS = ("16:9", "9:16", "1:1")
GEN_B_ASPECTS = (*GEN_A_ASPECTS, "3:4", "4:3")
BOOL_FIELDS = ("bgm", "off_peak", "watermark", "audio", "is_rec")
AMPLITUDES = ("auto", "small", "medium", "large")
MESSAGES = {
    "BadRequest": "bad request",
    "FieldLacking": "field is missing or empty: {}",
    "FieldUnwanted": "unwanted field: {}",
    "FieldItemCountOutOfRange": "field item count out of range: {}",
    "FieldInvalid": "invalid field: {}",
    "ImageFormatInvalid": "invalid image format",
    "Unauthorized": "unauthorized",
    "TaskNotFound": "task not found",
    "TooManyRequests": "too many requests",
    "CreditInsufficient": "insufficient credits",
    "InternalServiceFailure": "internal service failure",
}


@dataclass
class FakeTask:
    id: str
    token: str
    endpoint: str
    params: dict[str, Any]
    state: str = "created"
    err_code: str = ""
    fail_with: str | None = None
    credits: int = 4


@dataclass
class FakeViduState:
    api_key: str
    concurrency: int = 5
    fail: str | None = None
    fail_task: str | None = None
    expire_files: bool = False
    hang_seconds: float = 30.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count = field(default_factory=lambda: itertools.count(885482446060003328))

    def bodies(self, path_suffix: str) -> list[Any]:
        return [r["json"] for r in self.requests if r["path"].endswith(path_suffix)]


def signing_string(method: str, url: str, date: str, headers: list[tuple[str, str]]) -> str:
    """METHOD, path, query, "vidu", Date, then `Name:Value` per signed header, newline-separated."""
    parts = urlsplit(url)
    signed = "".join(f"{name}:{value}\n" for name, value in headers)
    return f"{method.upper()}\n{parts.path or '/'}\n{parts.query}\nvidu\n{date}\n{signed}"


def sign(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


def _error(status: int, reason: str, *fields: str, message: str | None = None) -> JSONResponse:
    message = message or MESSAGES.get(reason, reason).format(",".join(fields))
    body = {
        "code": status,
        "reason": reason,
        "message": message,
        "metadata": {"trace_id": secrets.token_hex(16)},
    }
    return JSONResponse(body, status_code=status)


def _valid_image(item: Any) -> bool | None:
    """True: fine; False: not a URL/data URI at all; None: a data URI with a bad payload."""
    if not isinstance(item, str):
        return False
    if item.startswith(("http://", "https://")):
        return True
    head, _, data = item.partition(",")
    if head not in {f"data:image/{t};base64" for t in ("png", "jpeg", "jpg", "webp")}:
        return False
    try:
        base64.b64decode(data, validate=True)
    except binascii.Error:
        return None
    return bool(data) or None


def _validate(endpoint: str, body: Any) -> tuple[JSONResponse | None, dict[str, Any]]:
    if not isinstance(body, dict):
        return _error(400, "BadRequest"), {}
    model = body.get("model")
    if not model:
        return _error(400, "FieldLacking", "model"), {}
    rule = MATRIX[endpoint].get(model)
    if rule is None:
        return _error(400, "FieldInvalid", "model"), {}
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str):
        return _error(400, "FieldInvalid", "prompt"), {}
    if endpoint in {"text2video", "reference2video"} and not prompt:
        return _error(400, "FieldLacking", "prompt"), {}
    limit = 5000 if model.startswith("viduq3") else 2000 if model.startswith("viduq2") else 1500
    if len(prompt) > limit:
        return _error(400, "FieldInvalid", "prompt"), {}
    images = body.get("images") or []
    if not isinstance(images, list):
        return _error(400, "FieldInvalid", "images"), {}
    lo, hi = IMAGE_COUNT[endpoint]
    subjects = endpoint == "reference2video" and bool(body.get("subjects"))
    if endpoint == "text2video" and images:
        return _error(400, "FieldUnwanted", "images"), {}
    if not subjects and not lo <= len(images) <= hi:
        return _error(400, "FieldItemCountOutOfRange", "images"), {}
    for item in images:
        ok = _valid_image(item)
        if ok is None:
            return _error(400, "ImageFormatInvalid"), {}
        if not ok:
            return _error(400, "FieldInvalid", "images"), {}
    duration = body.get("duration", rule.default_duration)
    if isinstance(duration, str) and duration.isdigit():  # gateways send "5"; the platform accepts it
        duration = int(duration)
    if isinstance(duration, bool) or not isinstance(duration, int) or duration not in rule.durations:
        return _error(400, "FieldInvalid", "duration"), {}
    resolution = body.get("resolution", rule.default_res(duration))
    if resolution not in rule.allowed(duration):
        return _error(400, "FieldInvalid", "resolution"), {}
    aspect = ""
    if endpoint in {"text2video", "reference2video"}:
        aspect = body.get("aspect_ratio", "16:9")
        if aspect not in (GEN_A_ASPECTS if model in {"viduq1", "vidu1.5", "vidu2.0"} else GEN_B_ASPECTS):
            return _error(400, "FieldInvalid", "aspect_ratio"), {}
    for name in BOOL_FIELDS:
        if name in body and not isinstance(body[name], bool):
            return _error(400, "FieldInvalid", name), {}
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        return _error(400, "FieldInvalid", "seed"), {}
    amplitude = body.get("movement_amplitude", "auto")
    if amplitude not in AMPLITUDES:
        return _error(400, "FieldInvalid", "movement_amplitude"), {}
    if endpoint == "text2video" and body.get("style", "general") not in {"general", "anime"}:
        return _error(400, "FieldInvalid", "style"), {}
    payload = body.get("payload", "")
    if not isinstance(payload, str) or len(payload) > 1_048_576:
        return _error(400, "FieldInvalid", "payload"), {}
    # Unknown fields are ignored and known ones echoed with defaults applied, like Gen-B responses.
    params = {
        **body,
        "model": model,
        "prompt": prompt,
        "duration": duration,
        "resolution": resolution,
        "aspect_ratio": aspect,
        "seed": seed or random.randint(1, 2**31 - 1),
        "movement_amplitude": amplitude,
        "bgm": body.get("bgm", False),
        "payload": payload,
        "off_peak": body.get("off_peak", False),
    }
    if images:
        params["images"] = images
    if endpoint == "text2video":
        params["style"] = body.get("style", "general")
    return None, params


def make_app(
    *, api_key: str = "vda_test_key", concurrency: int = 5, callback_client: httpx.AsyncClient | None = None
) -> tuple[Starlette, FakeViduState]:
    state = FakeViduState(api_key=api_key, concurrency=concurrency)

    async def fault() -> Response | None:
        match state.fail:
            case "500":
                return _error(500, "InternalServiceFailure")
            case "429":
                resp = _error(429, "TooManyRequests")
                resp.headers["Retry-After"] = "7"
                return resp
            case "garbage":
                return PlainTextResponse("{not json", media_type="application/json")
            case "html502":
                return PlainTextResponse("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            case "200_error":
                body = {
                    "code": 400,
                    "reason": "CreditInsufficient",
                    "message": "insufficient credits",
                    "metadata": {"trace_id": secrets.token_hex(16)},
                }
                return JSONResponse(body, status_code=200)
            case "hang":
                await asyncio.sleep(state.hang_seconds)
        return None

    async def guard(request: Request) -> tuple[Response | None, Any]:
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "json": parsed,
            }
        )
        if (early := await fault()) is not None:
            return early, parsed
        if request.headers.get("authorization") != f"Token {state.api_key}":
            return _error(401, "Unauthorized"), parsed
        if isinstance(parsed, str):
            return _error(400, "BadRequest"), parsed
        return None, parsed

    def poll_body(task: FakeTask, base: str) -> dict[str, Any]:
        creations = []
        if task.state == "success":
            creation = {
                "id": f"{task.id}01",
                "url": f"{base}/files/{task.id}.mp4",
                "cover_url": f"{base}/files/{task.id}.jpg",
            }
            if task.params.get("watermark"):
                creation["watermarked_url"] = f"{base}/files/{task.id}-wm.mp4"
            creations.append(creation)
        return {
            "id": task.id,
            "state": task.state,
            "err_code": task.err_code,
            "credits": task.credits,
            "payload": task.params.get("payload", ""),
            "bgm": task.params.get("bgm", False),
            "off_peak": task.params.get("off_peak", False),
            "creations": creations,
        }

    async def notify(task: FakeTask, base: str) -> None:
        url = task.params.get("callback_url")
        if not url or task.state not in CALLBACK_STATES or callback_client is None:
            return
        date = format_datetime(datetime.now(UTC), usegmt=True)
        nonce = secrets.token_hex(16)
        signed = [("Date", date), ("x-request-nonce", nonce)]
        headers = {
            **dict(signed),
            "X-HMAC-SIGNED-HEADERS": "Date;x-request-nonce",
            "X-HMAC-ALGORITHM": "hmac-sha256",
            "X-HMAC-ACCESS-KEY": "vidu",
            "X-HMAC-SIGNATURE": sign(task.token, signing_string("POST", url, date, signed)),
        }
        body = poll_body(task, base)
        attempts = 4 if task.state in {"success", "failed"} else 1  # first try + 3 retries
        for _ in range(attempts):
            try:
                status = (await callback_client.post(url, json=body, headers=headers)).status_code
            except httpx.HTTPError:
                status = 0
            state.callbacks.append({"url": url, "headers": headers, "json": body, "status": status})
            if 200 <= status < 300:
                return

    async def advance(task: FakeTask, base: str) -> None:
        if task.state in {"success", "failed"}:
            return
        nxt = LIFECYCLE[LIFECYCLE.index(task.state) + 1]
        if nxt == "processing":
            running = sum(1 for t in state.tasks.values() if t.state == "processing")
            if running >= state.concurrency:
                return
        if nxt == "success" and task.fail_with:
            task.state, task.err_code = "failed", task.fail_with
        else:
            task.state = nxt
        await notify(task, base)

    def base_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def create(request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        if endpoint not in ENDPOINTS:
            return _error(404, "NotFound")
        early, body = await guard(request)
        if early is not None:
            return early
        error, params = _validate(endpoint, body)
        if error is not None:
            return error
        task = FakeTask(
            id=str(next(state.ids)),
            token=state.api_key,
            endpoint=endpoint,
            params=params,
            fail_with=state.fail_task,
            credits=params["duration"] * 2,
        )
        state.tasks[task.id] = task
        created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return JSONResponse(
            {
                "task_id": task.id,
                "state": "created",
                **params,
                "type": endpoint,
                "credits": task.credits,
                "created_at": created_at,
            }
        )

    async def creations(request: Request) -> Response:
        early, _ = await guard(request)
        if early is not None:
            return early
        task = state.tasks.get(request.path_params["task_id"])
        if task is None:
            return _error(404, "TaskNotFound")
        body = poll_body(task, base_of(request))
        await advance(task, base_of(request))
        return JSONResponse(body)

    async def cancel(request: Request) -> Response:
        early, _ = await guard(request)
        if early is not None:
            return early
        task = state.tasks.get(request.path_params["task_id"])
        if task is None:
            return _error(404, "TaskNotFound")
        if task.state not in {"created", "queueing"}:
            return _error(400, "BadRequest", message=f"task state is {task.state}, can not cancel")
        task.state, task.err_code = "failed", "UserCancelled"
        return JSONResponse({})

    async def credits(request: Request) -> Response:
        early, _ = await guard(request)
        if early is not None:
            return early
        running = sum(1 for t in state.tasks.values() if t.state == "processing")
        queued = sum(1 for t in state.tasks.values() if t.state in {"created", "queueing"})
        return JSONResponse(
            {
                "remains": [
                    {
                        "type": "test",
                        "credit_remain": 1000,
                        "concurrency_limit": state.concurrency,
                        "current_concurrency": running,
                        "queue_count": queued,
                    }
                ]
            }
        )

    async def files(request: Request) -> Response:
        name: str = request.path_params["name"]
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "json": None,
            }
        )
        task_id = name.split(".")[0].removesuffix("-wm")
        if state.expire_files:
            return PlainTextResponse("<Error><Code>AccessDenied</Code></Error>", status_code=403)
        task = state.tasks.get(task_id)
        if task is None or task.state != "success":
            return PlainTextResponse("not found", status_code=404)
        if name.endswith(".jpg"):
            return Response(COVER_BYTES, media_type="image/jpeg")
        return Response(VIDEO_BYTES, media_type="video/mp4")

    app = Starlette(
        routes=[
            Route("/ent/v2/tasks/{task_id}/creations", creations, methods=["GET"]),
            Route("/ent/v2/tasks/{task_id}/cancel", cancel, methods=["POST"]),
            Route("/ent/v2/credits", credits, methods=["GET"]),
            Route("/ent/v2/{endpoint}", create, methods=["POST"]),
            Route("/files/{name}", files, methods=["GET"]),
        ]
    )
    return app, state
