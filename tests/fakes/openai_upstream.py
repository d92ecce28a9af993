"""A fake OpenAI Videos API upstream (api.openai.com, a Sora relay or a chained gateway) for adapter tests.

Speaks `spec/openai-videos.md` from the server side: the Gateway checklist items that apply to an upstream
(1-9, 11-16, 19-21) plus edits/extensions (§4). Routes under `/v1`: `POST /videos` (multipart with bracket
fields, or JSON), `GET /videos/{id}`, `GET /videos/{id}/content?variant=`, `POST /videos/{id}/remix`,
`POST /videos/edits`, `POST /videos/extensions`, `DELETE /videos/{id}`; `/cdn/{id}.mp4` is an anonymous
asset link for relays that report a `url`.

* Auth: exactly `Authorization: Bearer <api_key>`, else 401 with OpenAI's envelope.
* Lifecycle: each GET reports the task's current state, then advances it one step:
  queued → in_progress → completed | failed | cancelled. Relay spellings via `spellings=`.
* Faults on demand: `state.arm("500" | "502" | "429" | "429_seconds" | "quota" | "garbage" | "error_200" |
  "hang" | "403" | "404", times=1)`; `state.outcome = "failed" | "cancelled"` for new tasks.
* Every request is recorded (`state.requests`) with its multipart parts in wire order and the nested body.

UNCONFIRMED behaviour (not documented by OpenAI, chosen here): 404 body for unknown ids, 400 for content or
remix of an unfinished video, the `moderation_blocked` code of failed jobs.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

SORA_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
PRO_SIZES = (*SORA_SIZES, "1920x1080", "1080x1920")
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "sora-2": SORA_SIZES,
    "sora-2-pro": PRO_SIZES,
    "sora-2-2025-10-06": SORA_SIZES,
    "sora-2-pro-2025-10-06": PRO_SIZES,
    "sora-2-2025-12-08": SORA_SIZES,
}
SECONDS = ("4", "8", "12", "16", "20")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
STEPS = ("queued", "in_progress")
PROGRESS = {"queued": 0, "in_progress": 50, "completed": 100}
FAILURE = {
    "code": "moderation_blocked",
    "message": "The request is blocked by our moderation system when checking inputs.",
}


# ---------------------------------------------------------------------------------------------
# Assets


@functools.cache
def sample_mp4() -> bytes:
    """A real 1-second 64x64 H.264 MP4, made once."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(8):
            pixels = np.full((64, 64, 3), i * 30, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


@functools.cache
def sample_image(fmt: str, size: tuple[int, int] = (64, 36)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buf, format=fmt)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# State


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    encoding: str  # "multipart" | "json" | "none"
    fields: list[tuple[str, str]]  # multipart text parts, wire order
    files: list[tuple[str, str, str, bytes]]  # (field, filename, content type, data)
    body: dict[str, Any]  # nested: bracket fields expanded, or the JSON object


@dataclass
class FakeState:
    api_key: str
    models: dict[str, tuple[str, ...]]
    create_status: int = 200
    spellings: dict[str, str] = field(default_factory=dict)
    include_url: bool = False
    content_redirect: bool = False
    poll_after_ms: int | None = 1500
    check_image_size: bool = True
    outcome: str = "completed"  # for tasks created from now on: completed | failed | cancelled
    hang_seconds: float = 5.0
    fault: str | None = None
    fault_times: int = 0
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def arm(self, fault: str, times: int = 1) -> None:
        self.fault, self.fault_times = fault, times

    def take_fault(self) -> str | None:
        if self.fault is None or self.fault_times == 0:
            return None
        self.fault_times -= 1
        return self.fault

    def last(self, path_suffix: str = "") -> Recorded:
        return [r for r in self.requests if r.path.endswith(path_suffix)][-1]


class BadBody(Exception):
    pass


def error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


_BRACKETS = re.compile(r"\[([^\]]*)\]")


def nest(fields: list[tuple[str, str]]) -> dict[str, Any]:
    """`metadata[k]=v`, `characters[][id]=…`, `video[id]=…` → nested values, as a compatible server must."""
    out: dict[str, Any] = {}
    for name, value in fields:
        base = name.split("[", 1)[0]
        _assign(out, [base, *_BRACKETS.findall(name[len(base) :])], value)
    return out


def _assign(node: dict[str, Any], keys: list[str], value: str) -> None:
    key, rest = keys[0], keys[1:]
    if not rest:
        if isinstance(node.get(key), dict | list):
            raise BadBody(f"Conflicting values for '{key}'.")
        node[key] = value
        return
    if rest[0] == "":
        items = node.setdefault(key, [])
        if not isinstance(items, list):
            raise BadBody(f"Conflicting values for '{key}'.")
        if len(rest) == 1:
            items.append(value)
            return
        if not items or not isinstance(items[-1], dict) or rest[1] in items[-1]:
            items.append({})
        _assign(items[-1], rest[1:], value)
        return
    child = node.setdefault(key, {})
    if not isinstance(child, dict):
        raise BadBody(f"Conflicting values for '{key}'.")
    _assign(child, rest, value)


async def _record(request: Request) -> Recorded:
    ctype = request.headers.get("content-type", "")
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, str, str, bytes]] = []
    body: dict[str, Any] = {}
    encoding = "none"
    if ctype.startswith("multipart/form-data"):
        encoding = "multipart"
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files.append((name, value.filename or "", value.content_type or "", await value.read()))
                else:
                    fields.append((name, value))
    elif ctype.startswith("application/json"):
        encoding = "json"
        raw = await request.body()
        if raw:
            try:
                parsed = await request.json()
            except ValueError:
                raise BadBody("We could not parse the JSON body of your request.") from None
            if not isinstance(parsed, dict):
                raise BadBody("The JSON body must be an object.")
            body = parsed
    headers = {k: v for k, v in request.headers.items() if k in ("authorization", "accept", "content-type")}
    recorded = Recorded(
        request.method, request.url.path, dict(request.query_params), headers, encoding, fields, files, body
    )
    if encoding == "multipart":
        recorded.body = nest(fields)
    return recorded


# ---------------------------------------------------------------------------------------------
# The app


def make_app(
    *,
    api_key: str = "sk-upstream-test",
    models: dict[str, tuple[str, ...]] | None = None,
    create_status: int = 200,
    spellings: dict[str, str] | None = None,
    include_url: bool = False,
    content_redirect: bool = False,
    poll_after_ms: int | None = 1500,
    check_image_size: bool = True,
) -> tuple[Starlette, FakeState]:
    state = FakeState(
        api_key=api_key,
        models=dict(models or DEFAULT_MODELS),
        create_status=create_status,
        spellings=dict(spellings or {}),
        include_url=include_url,
        content_redirect=content_redirect,
        poll_after_ms=poll_after_ms,
        check_image_size=check_image_size,
    )

    Handler = Callable[[Request, Recorded], Awaitable[Response]]

    def endpoint(handler: Handler, *, anonymous: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                rec = await _record(request)
            except BadBody as exc:
                response: Response = error(400, str(exc))
            else:
                state.requests.append(rec)
                response = (None if anonymous else _auth(request)) or await _fault() or await handler(request, rec)
            response.headers["x-request-id"] = f"req_{secrets.token_hex(8)}"
            return response

        return run

    def _auth(request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if not header:
            return error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if header != f"Bearer {state.api_key}":
            given = header.removeprefix("Bearer ")
            masked = f"{given[:3]}***{given[-2:]}" if len(given) > 6 else "***"
            return error(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    async def _fault() -> Response | None:
        match state.take_fault():
            case None:
                return None
            case "500":
                return error(
                    500,
                    "The server had an error while processing your request. Sorry about that!",
                    type="server_error",
                )
            case "502":
                return Response("<html><h1>502 Bad Gateway</h1></html>", 502, media_type="text/html")
            case "429":
                return error(
                    429,
                    "Rate limit reached for sora-2 on requests per min (RPM): Limit 5, Used 5.",
                    type="requests",
                    code="rate_limit_exceeded",
                    headers={"retry-after-ms": "1500", "retry-after": "2"},
                )
            case "429_seconds":
                return error(429, "Too many requests.", type="rate_limit_error", headers={"retry-after": "7"})
            case "quota":
                return error(
                    429,
                    "You exceeded your current quota, please check your plan and billing details.",
                    type="insufficient_quota",
                    code="insufficient_quota",
                )
            case "garbage":
                return Response("<html>upstream maintenance</html>", 200, media_type="text/html")
            case "error_200":
                return JSONResponse({"error": {**FAILURE, "type": "invalid_request_error", "param": None}})
            case "hang":
                await asyncio.sleep(state.hang_seconds)
                return error(504, "Gateway timeout.", type="server_error")
            case "403":
                return error(403, "Your organization must be verified to use this model.", type="permission_error")
            case "404":
                return error(404, "Not found.")
            case other:
                raise AssertionError(f"unknown fault {other!r}")

    # -- helpers

    def video_json(task: dict[str, Any]) -> dict[str, Any]:
        status = task["status"]
        out = {
            "id": task["id"],
            "object": "video",
            "model": task["model"],
            "status": state.spellings.get(status, status),
            "progress": task["progress"],
            "created_at": task["created_at"],
            "completed_at": task["completed_at"],
            "expires_at": task["completed_at"] + 3600 if task["completed_at"] else None,
            "prompt": task["prompt"],
            "size": task["size"],
            "seconds": task["seconds"],
            "remixed_from_video_id": task["remixed_from"],
            "error": task["error"],
        }
        if state.include_url and status == "completed":
            out["url"] = f"http://upstream.test/cdn/{task['id']}.mp4"
        return out

    def new_task(*, model: str, prompt: str, size: str, seconds: str, remixed_from: str | None = None) -> Response:
        task = {
            "id": f"video_{secrets.token_hex(12)}",
            "model": model,
            "prompt": prompt,
            "size": size,
            "seconds": seconds,
            "status": "queued",
            "progress": 0,
            "step": 0,
            "outcome": state.outcome,
            "created_at": int(time.time()),
            "completed_at": None,
            "remixed_from": remixed_from,
            "error": None,
        }
        state.tasks[task["id"]] = task
        return JSONResponse(video_json(task), status_code=state.create_status)

    def advance(task: dict[str, Any]) -> None:
        if task["status"] in ("completed", "failed", "cancelled"):
            return
        task["step"] += 1
        if task["step"] < len(STEPS):
            task["status"] = STEPS[task["step"]]
            task["progress"] = PROGRESS[task["status"]]
        elif task["outcome"] == "completed":
            task.update(status="completed", progress=100, completed_at=int(time.time()))
        elif task["outcome"] == "failed":
            task.update(status="failed", error=dict(FAILURE))
        else:
            task.update(status=task["outcome"])

    def prompt_error(body: dict[str, Any]) -> Response | None:
        prompt = body.get("prompt")
        if prompt is None:
            return error(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 32000:
            return error(
                400,
                "Invalid 'prompt': expected a string of 1 to 32000 characters.",
                param="prompt",
                code="invalid_value",
            )
        return None

    def seconds_error(value: Any, allowed: tuple[str, ...] = SECONDS) -> Response | None:
        if not isinstance(value, str):
            return error(
                400,
                "Invalid type for 'seconds': expected one of '4', '8', or '12', but got an integer instead.",
                param="seconds",
                code="invalid_type",
            )
        if value not in allowed:
            return error(
                400,
                f"Invalid value: '{value}'. Supported values are: {', '.join(allowed)}.",
                param="seconds",
                code="invalid_value",
            )
        return None

    def completed_source(video_id: str) -> tuple[dict[str, Any] | None, Response | None]:
        task = state.tasks.get(video_id)
        if task is None:
            return None, error(404, f"Video with id '{video_id}' not found.", param="video_id")
        if task["status"] != "completed":
            return None, error(400, f"Video '{video_id}' is not completed yet.", param="video_id")
        return task, None

    # -- routes

    async def create(request: Request, rec: Recorded) -> Response:
        body = rec.body
        if bad := prompt_error(body):
            return bad
        model = body.get("model", "sora-2")
        if model not in state.models:
            return error(
                400,
                f"Invalid value: '{model}'. Supported values are: {', '.join(state.models)}.",
                param="model",
                code="invalid_value",
            )
        seconds = body.get("seconds", "4")
        if bad := seconds_error(seconds):
            return bad
        size = body.get("size", "720x1280")
        if size not in state.models[model]:
            return error(
                400,
                f"Invalid value: '{size}'. Supported values for {model} are: {', '.join(state.models[model])}.",
                param="size",
                code="invalid_value",
            )
        files = [f for f in rec.files if f[0] == "input_reference"]
        ref = body.get("input_reference")
        if isinstance(ref, str):
            return error(
                400,
                "Invalid type for 'input_reference': expected an object, but got a string instead.",
                param="input_reference",
                code="invalid_type",
            )
        if files:
            _, _, mime, data = files[0]
            if mime not in IMAGE_TYPES:
                return error(
                    400,
                    f"Invalid file 'input_reference': unsupported mimetype ('{mime}'). Supported "
                    "file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
                    param="input_reference",
                    code="unsupported_file_mimetype",
                )
            if state.check_image_size:
                try:
                    dims = Image.open(io.BytesIO(data)).size
                except OSError:
                    return error(400, "Invalid image file.", param="input_reference", code="invalid_image")
                if f"{dims[0]}x{dims[1]}" != size:
                    return error(400, "Inpaint image must match the requested width and height")
        elif isinstance(ref, dict):
            url, file_id = ref.get("image_url"), ref.get("file_id")
            if bool(url) == bool(file_id):
                return error(400, "Provide exactly one of `image_url` or `file_id`.", param="input_reference")
            if url and not str(url).startswith(("https://", "http://", "data:")):
                return error(
                    400,
                    "Invalid 'input_reference.image_url': expected a URL.",
                    param="input_reference.image_url",
                    code="invalid_value",
                )
        return new_task(model=model, prompt=body["prompt"], size=size, seconds=seconds)

    async def retrieve(request: Request, rec: Recorded) -> Response:
        task = state.tasks.get(request.path_params["video_id"])
        if task is None:
            return error(404, f"Video with id '{request.path_params['video_id']}' not found.", param="video_id")
        response = JSONResponse(video_json(task))
        if task["status"] in ("queued", "in_progress") and state.poll_after_ms is not None:
            response.headers["openai-poll-after-ms"] = str(state.poll_after_ms)
        advance(task)
        return response

    async def delete(request: Request, rec: Recorded) -> Response:
        video_id = request.path_params["video_id"]
        if state.tasks.pop(video_id, None) is None:
            return error(404, f"Video with id '{video_id}' not found.", param="video_id")
        return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})

    async def content(request: Request, rec: Recorded) -> Response:
        video_id = request.path_params["video_id"]
        variant = request.query_params.get("variant", "video")
        if variant not in ("video", "thumbnail", "spritesheet"):
            return error(
                400,
                f"Invalid value: '{variant}'. Supported values are: 'video', 'thumbnail', and 'spritesheet'.",
                param="variant",
                code="invalid_value",
            )
        _, bad = completed_source(video_id)
        if bad:
            return bad
        if variant == "thumbnail":
            return Response(sample_image("WEBP"), media_type="image/webp")
        if variant == "spritesheet":
            return Response(sample_image("JPEG", (256, 36)), media_type="image/jpeg")
        if state.content_redirect:
            return RedirectResponse(f"/cdn/{video_id}.mp4", status_code=302)
        return mp4_response(video_id)

    def mp4_response(video_id: str) -> Response:
        data = sample_mp4()

        async def chunks() -> Any:
            for i in range(0, len(data), 512):
                yield data[i : i + 512]

        return StreamingResponse(
            chunks(),
            media_type="video/mp4",
            headers={
                "content-length": str(len(data)),
                "content-disposition": f'attachment; filename="{video_id}.mp4"',
            },
        )

    async def cdn(request: Request, rec: Recorded) -> Response:
        video_id = request.path_params["name"].removesuffix(".mp4")
        _, bad = completed_source(video_id)
        return bad or mp4_response(video_id)

    async def remix(request: Request, rec: Recorded) -> Response:
        if bad := prompt_error(rec.body):
            return bad
        source, bad = completed_source(request.path_params["video_id"])
        if bad or source is None:
            return bad or error(404, "Not found.")
        return new_task(
            model=source["model"],
            prompt=rec.body["prompt"],
            size=source["size"],
            seconds=source["seconds"],
            remixed_from=source["id"],
        )

    def source_of(rec: Recorded) -> tuple[dict[str, Any] | None, Response | None]:
        """`video[id]` (or JSON `video.id`) → the stored task; an uploaded MP4 → a stand-in source."""
        video = rec.body.get("video")
        uploads = [f for f in rec.files if f[0] == "video"]
        if uploads:
            if uploads[0][2] != "video/mp4":
                return None, error(
                    400,
                    "Invalid file 'video': expected video/mp4.",
                    param="video",
                    code="unsupported_file_mimetype",
                )
            model = rec.body.get("model", "sora-2")
            return {"model": model, "size": "720x1280", "seconds": "4", "id": None}, None
        if not isinstance(video, dict) or not video.get("id"):
            return None, error(
                400, "Missing required parameter: 'video'.", param="video", code="missing_required_parameter"
            )
        return completed_source(video["id"])

    async def edits(request: Request, rec: Recorded) -> Response:
        if bad := prompt_error(rec.body):
            return bad
        source, bad = source_of(rec)
        if bad or source is None:
            return bad or error(404, "Not found.")
        return new_task(
            model=source["model"], prompt=rec.body["prompt"], size=source["size"], seconds=source["seconds"]
        )

    async def extensions(request: Request, rec: Recorded) -> Response:
        if bad := prompt_error(rec.body):
            return bad
        if "seconds" not in rec.body:
            return error(
                400,
                "Missing required parameter: 'seconds'.",
                param="seconds",
                code="missing_required_parameter",
            )
        if bad := seconds_error(rec.body["seconds"]):
            return bad
        source, bad = source_of(rec)
        if bad or source is None:
            return bad or error(404, "Not found.")
        total = int(source["seconds"]) + int(rec.body["seconds"])
        if total > 120:
            return error(
                400,
                "An extended video can be at most 120 seconds long.",
                param="seconds",
                code="invalid_value",
            )
        return new_task(model=source["model"], prompt=rec.body["prompt"], size=source["size"], seconds=str(total))

    routes = [
        Route("/v1/videos", endpoint(create), methods=["POST"]),
        Route("/v1/videos/edits", endpoint(edits), methods=["POST"]),
        Route("/v1/videos/extensions", endpoint(extensions), methods=["POST"]),
        Route("/v1/videos/{video_id}", endpoint(retrieve), methods=["GET"]),
        Route("/v1/videos/{video_id}", endpoint(delete), methods=["DELETE"]),
        Route("/v1/videos/{video_id}/content", endpoint(content), methods=["GET"]),
        Route("/v1/videos/{video_id}/remix", endpoint(remix), methods=["POST"]),
        Route("/cdn/{name}", endpoint(cdn, anonymous=True), methods=["GET"]),
    ]

    async def not_routed(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return error(status, f"Invalid URL ({request.method} {request.url.path})")

    return Starlette(routes=routes, exception_handlers={404: not_routed, 405: not_routed}), state
