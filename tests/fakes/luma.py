"""A fake Luma Dream Machine API, following the "Fake-server checklist" (§13) of /work/shared/vendors/luma.md.

Routes under `/dream-machine/v1`: `POST /generations/video` and `POST /generations`, `GET|DELETE
/generations/{id}`, `GET /generations?limit&offset`, `GET /credits`, `GET /ping`; the results at
`GET /cdn/{id}.mp4|.jpg` (pre-signed: `?sig=`; no Authorization header expected).
Auth is exactly `Authorization: Bearer <key>`, else 401 `{"detail": "Invalid API key is provided"}`.
Validation follows §4 / §10.2 (400 `{"detail": "400: <message>"}`; schema errors are a FastAPI-style 422
list). Image keyframes are fetched (through `image_client`, or a plain httpx client) and must decode as an
image, else `400: failed to moderate image`; generation keyframes must name a completed generation.
Each GET returns the generation's state and then moves it one step: queued → dreaming → completed (or
failed with `fail_task`'s `failure_reason`). When a `callback_url` was given and `callback_client` is set,
the Generation is POSTed to it on every state change (up to 3 retries on non-200).

Faults: `state.fail_next(kind, on="create"|"get"|"any", times=1)` with kind "429", "500", "502html",
"garbage", "402", "moderation" (400 `failed to moderate image`) or "hang"; `state.fail_task` = a §10.3
`failure_reason` for new generations; `state.expire_assets` makes the CDN answer 403.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import uuid
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

PREFIX = "/dream-machine/v1"
API_KEY = "luma-test-key-0123456789"
MODELS = ("ray-2", "ray-flash-2", "ray-1-6")
ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
DURATIONS = ("5s", "9s")
LIFECYCLE = ("queued", "dreaming", "completed")
FAILURE_REASONS = (
    "Contains blacklisted words",
    "Failed to read user input frames",
    "Frame moderation failed",
    "Advanced prompt moderation failed",
    "Prompt processing failed",
    "Error dispatching job",
    "Job failed",
    "Error processing callback",
)
THUMB = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00luma-thumb\xff\xd9"


@dataclass
class Generation:
    id: str
    request: dict[str, Any]
    created_at: str
    state: str = "queued"
    failure_reason: str | None = None
    fail_with: str | None = None
    sig: str = field(default_factory=lambda: secrets.token_urlsafe(12))


@dataclass
class FakeLumaState:
    api_key: str
    fail_task: str | None = None
    expire_assets: bool = False
    hang_seconds: float = 30.0
    faults: list[tuple[str, str]] = field(default_factory=list)
    generations: dict[str, Generation] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # creation order
    requests: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)  # fetched keyframe images: url, size
    asset: bytes = field(default_factory=real_mp4)

    def fail_next(self, kind: str, *, on: str = "any", times: int = 1) -> None:
        self.faults.extend([(kind, on)] * times)

    def bodies(self) -> list[Any]:
        return [r["json"] for r in self.requests if r["method"] == "POST"]


def _detail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": f"{status}: {message}"}, status_code=status)


def _schema_error(loc: str, msg: str, value: Any, kind: str = "literal_error") -> JSONResponse:
    return JSONResponse({"detail": [{"type": kind, "loc": ["body", loc], "msg": msg, "input": value}]}, status_code=422)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_app(
    *,
    api_key: str = API_KEY,
    image_client: httpx.AsyncClient | None = None,
    callback_client: httpx.AsyncClient | None = None,
    fetch_images: bool = True,
) -> tuple[Starlette, FakeLumaState]:
    state = FakeLumaState(api_key=api_key)

    async def fault(on: str) -> Response | None:
        index = next((i for i, (_, where) in enumerate(state.faults) if where in ("any", on)), None)
        if index is None:
            return None
        kind, _ = state.faults.pop(index)
        match kind:
            case "429":
                resp = _detail(429, "Too many requests, please slow down")
                resp.headers["Retry-After"] = "7"
                return resp
            case "500":
                return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
            case "502html":
                return PlainTextResponse("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            case "garbage":
                return PlainTextResponse("{not json", media_type="application/json", status_code=201)
            case "402":
                return _detail(402, "Insufficient credits")
            case "moderation":
                return _detail(400, "failed to moderate image")
            case "hang":
                await asyncio.sleep(state.hang_seconds)
                return None
        raise AssertionError(f"unknown fault {kind!r}")

    async def guard(request: Request, on: str) -> tuple[Response | None, Any]:
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "json": parsed,
            }
        )
        if request.headers.get("authorization") != f"Bearer {state.api_key}":
            return JSONResponse({"detail": "Invalid API key is provided"}, status_code=401), parsed
        if (early := await fault(on)) is not None:
            return early, parsed
        if isinstance(parsed, bytes):
            return JSONResponse(
                {"detail": [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"}]},
                status_code=422,
            ), parsed
        return None, parsed

    async def fetch_image(url: str) -> bool:
        if not fetch_images:
            state.images.append({"url": url, "size": None})
            return True
        client = image_client or httpx.AsyncClient(timeout=5)
        try:
            resp = await client.get(url, follow_redirects=True)
            if resp.status_code != 200:
                return False
            with Image.open(io.BytesIO(resp.content)) as im:
                state.images.append({"url": url, "size": im.size, "format": im.format})
            return True
        except (httpx.HTTPError, OSError):
            return False
        finally:
            if image_client is None:
                await client.aclose()

    async def check_frame(frame: Any, name: str) -> Response | None:
        if frame is None:
            return None
        if not isinstance(frame, dict) or frame.get("type") not in ("image", "generation"):
            return _schema_error(
                f"keyframes.{name}",
                "Input tag does not match any of: 'generation', 'image'",
                frame,
                "union_tag_invalid",
            )
        if frame["type"] == "image":
            url = frame.get("url")
            if not isinstance(url, str):
                return _schema_error(f"keyframes.{name}.image.url", "Field required", frame, "missing")
            if not url.startswith(("http://", "https://")) or not await fetch_image(url):
                return _detail(400, "failed to moderate image")
            return None
        gid = frame.get("id")
        if not isinstance(gid, str):
            return _schema_error(f"keyframes.{name}.generation.id", "Field required", frame, "missing")
        source = state.generations.get(gid)
        if source is None or source.state != "completed":
            return _detail(400, f"Generation {gid} is not completed")
        return None

    async def validate(body: Any) -> Response | dict[str, Any]:
        if not isinstance(body, dict):
            return _schema_error("body", "Input should be a valid dictionary", body, "dict_type")
        model = body.get("model")
        if model is None:
            return _schema_error("model", "Field required", body, "missing")
        if model not in MODELS:
            return _schema_error("model", "Input should be 'ray-2' or 'ray-flash-2'", model)
        aspect = body.get("aspect_ratio", "16:9")
        if aspect not in ASPECTS:
            return _schema_error("aspect_ratio", f"Input should be one of {', '.join(ASPECTS)}", aspect)
        if "resolution" in body:
            if model == "ray-1-6":
                return _detail(400, "Resolution is not supported in the Ray 1.6 API")
            if not isinstance(body["resolution"], str):
                return _schema_error("resolution", "Input should be a valid string", body["resolution"], "string_type")
            if body["resolution"] not in RESOLUTIONS:
                return _detail(400, f"Invalid resolution: {body['resolution']}")
        if "duration" in body:
            if model == "ray-1-6":
                return _detail(400, "Duration is not supported in the Ray 1.6 API")
            if not isinstance(body["duration"], str):
                return _schema_error("duration", "Input should be a valid string", body["duration"], "string_type")
            if body["duration"] not in DURATIONS:
                return _detail(400, f"Invalid duration: {body['duration']}")
        loop = body.get("loop", False)
        if not isinstance(loop, bool):
            return _schema_error("loop", "Input should be a valid boolean", loop, "bool_type")
        concepts = body.get("concepts")
        if concepts is not None:
            if model == "ray-1-6":
                return _detail(400, "concepts are not supported for this model")
            if not isinstance(concepts, list) or not all(
                isinstance(c, dict) and isinstance(c.get("key"), str) for c in concepts
            ):
                return _schema_error("concepts", "Input should be a valid list", concepts, "list_type")
        callback = body.get("callback_url")
        if callback is not None and not isinstance(callback, str):
            return _schema_error("callback_url", "Input should be a valid string", callback, "string_type")
        keyframes = body.get("keyframes")
        frame0 = frame1 = None
        if keyframes is not None:
            if not isinstance(keyframes, dict):
                return _schema_error("keyframes", "Input should be a valid dictionary", keyframes, "dict_type")
            frame0, frame1 = keyframes.get("frame0"), keyframes.get("frame1")
            if frame0 is None and frame1 is None:
                return _detail(400, "No keyframes provided")
        prompt = body.get("prompt")
        has_image = any(isinstance(f, dict) and f.get("type") == "image" for f in (frame0, frame1))
        if prompt is None or prompt == "":
            if not has_image:
                return _detail(400, "Prompt is required")
        elif not isinstance(prompt, str):
            return _schema_error("prompt", "Input should be a valid string", prompt, "string_type")
        elif len(prompt) < 3:
            return _detail(400, "Prompt is too short, minimum length is 3 characters")
        elif len(prompt) > 5000:
            return _detail(400, "Prompt is too long, maximum length is 5000 characters")
        if loop:
            kinds = tuple(f.get("type") if isinstance(f, dict) else None for f in (frame0, frame1))
            if kinds == (None, "image"):
                return _detail(400, "Loop is not supported for end frame")
            if kinds == ("image", "image"):
                return _detail(400, "Loop is not supported for keyframes")
            if kinds == (None, "generation"):
                return _detail(400, "Loop is not supported for extend reverse")
            if kinds == ("generation", "image"):
                return _detail(400, "Loop is not supported for interpolate video to image")
            if kinds == ("image", "generation"):
                return _detail(400, "Loop is not supported for interpolate image to video")
            if kinds == ("generation", "generation"):
                return _detail(400, "Loop is not supported for interpolate between two videos")
        for name, frame in (("frame0", frame0), ("frame1", frame1)):
            if (bad := await check_frame(frame, name)) is not None:
                return bad
        # unknown fields are ignored; the request echo holds the known ones only
        echo = {
            "generation_type": "video",
            "model": model,
            "prompt": prompt,
            "aspect_ratio": aspect,
            "loop": loop,
            "resolution": body.get("resolution"),
            "duration": body.get("duration"),
            "keyframes": keyframes,
            "callback_url": callback,
            "concepts": concepts,
        }
        return echo

    def base_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    def render(gen: Generation, base: str) -> dict[str, Any]:
        assets = None
        if gen.state == "completed":
            assets = {
                "video": f"{base}/cdn/{gen.id}.mp4?sig={gen.sig}",
                "image": f"{base}/cdn/{gen.id}.jpg?sig={gen.sig}",
            }
        elif gen.state == "dreaming":
            assets = {"progress_video": f"{base}/cdn/{gen.id}-progress.mp4?sig={gen.sig}"}
        return {
            "id": gen.id,
            "generation_type": "video",
            "state": gen.state,
            "failure_reason": gen.failure_reason,
            "created_at": gen.created_at,
            "assets": assets,
            "model": gen.request["model"],
            "request": gen.request,
        }

    async def notify(gen: Generation, base: str) -> None:
        url = gen.request.get("callback_url")
        if not url or callback_client is None:
            return
        body = render(gen, base)
        for _ in range(4):  # the first call and up to 3 retries (§9)
            try:
                status = (await callback_client.post(url, json=body, timeout=5)).status_code
            except httpx.HTTPError:
                status = 0
            state.callbacks.append({"url": url, "json": body, "status": status})
            if status == 200:
                return
            await asyncio.sleep(0.1)

    async def advance(gen: Generation, base: str) -> None:
        if gen.state in ("completed", "failed"):
            return
        nxt = LIFECYCLE[LIFECYCLE.index(gen.state) + 1]
        if nxt == "completed" and gen.fail_with:
            gen.state, gen.failure_reason = "failed", gen.fail_with
        else:
            gen.state = nxt
        await notify(gen, base)

    async def create(request: Request) -> Response:
        early, body = await guard(request, "create")
        if early is not None:
            return early
        checked = await validate(body)
        if isinstance(checked, Response):
            return checked
        gen = Generation(id=str(uuid.uuid4()), request=checked, created_at=_now(), fail_with=state.fail_task)
        state.generations[gen.id] = gen
        state.order.append(gen.id)
        return JSONResponse(render(gen, base_of(request)), status_code=201)

    async def get_one(request: Request) -> Response:
        early, _ = await guard(request, "get")
        if early is not None:
            return early
        gen = state.generations.get(request.path_params["gid"])
        if gen is None:
            return JSONResponse({"detail": "Generation not found"}, status_code=404)
        body = render(gen, base_of(request))
        await advance(gen, base_of(request))
        return JSONResponse(body)

    async def delete_one(request: Request) -> Response:
        early, _ = await guard(request, "delete")
        if early is not None:
            return early
        gid = request.path_params["gid"]
        if state.generations.pop(gid, None) is None:
            return JSONResponse({"detail": "Generation not found"}, status_code=404)
        state.order.remove(gid)
        return Response(status_code=204)

    async def list_all(request: Request) -> Response:
        early, _ = await guard(request, "list")
        if early is not None:
            return early
        try:
            limit = int(request.query_params.get("limit", "10"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            return _schema_error("limit", "Input should be a valid integer", None, "int_parsing")
        newest = list(reversed(state.order))
        page = newest[offset : offset + limit]
        base = base_of(request)
        return JSONResponse(
            {
                "generations": [render(state.generations[g], base) for g in page],
                "count": len(page),
                "has_more": offset + limit < len(newest),
                "limit": limit,
                "offset": offset,
            }
        )

    async def credits(request: Request) -> Response:
        early, _ = await guard(request, "credits")
        return early or JSONResponse({"credit_balance": 123456.0})

    async def ping(request: Request) -> Response:
        early, _ = await guard(request, "ping")
        return early or JSONResponse({"message": "pong"})

    async def cdn(request: Request) -> Response:
        name: str = request.path_params["name"]
        state.requests.append(
            {
                "method": "GET",
                "path": request.url.path,
                "query": dict(request.query_params),
                "headers": dict(request.headers),
                "json": None,
            }
        )
        gid, _, ext = name.rpartition(".")
        gen = state.generations.get(gid)
        if state.expire_assets or gen is None or request.query_params.get("sig") != gen.sig:
            return PlainTextResponse("<Error><Code>AccessDenied</Code></Error>", status_code=403)
        if gen.state != "completed":
            return PlainTextResponse("not found", status_code=404)
        if ext == "jpg":
            return Response(THUMB, media_type="image/jpeg")
        return Response(state.asset, media_type="video/mp4")

    app = Starlette(
        routes=[
            Route(f"{PREFIX}/generations/video", create, methods=["POST"]),
            Route(f"{PREFIX}/generations", create, methods=["POST"]),
            Route(f"{PREFIX}/generations", list_all, methods=["GET"]),
            Route(f"{PREFIX}/generations/{{gid}}", get_one, methods=["GET"]),
            Route(f"{PREFIX}/generations/{{gid}}", delete_one, methods=["DELETE"]),
            Route(f"{PREFIX}/credits", credits, methods=["GET"]),
            Route(f"{PREFIX}/ping", ping, methods=["GET"]),
            Route("/cdn/{name}", cdn, methods=["GET"]),
        ]
    )
    return app, state
