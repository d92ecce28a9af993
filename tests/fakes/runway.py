"""A fake Runway API server, following the "Fake-server checklist" (§13) of /work/shared/vendors/runway.md.

Routes: `POST /v1/text_to_video`, `POST /v1/image_to_video`, `GET|DELETE /v1/tasks/{id}`, `GET /v1/organization`,
and the CDN path `GET /outputs/{id}/video.mp4?_jwt=…` for results (the signed URLs name a CloudFront host; tests
route every host here). Other methods on these paths answer 405.

Every call needs `Authorization: Bearer <key>` exactly (401 otherwise) and `X-Runway-Version: 2024-11-06`
exactly (400 otherwise). Bodies are validated per model and endpoint like Runway's zod schemas: the model on the
right endpoint, required fields, exact `ratio` strings, integer `duration` from the model's set, `promptText`
1–1000 UTF-16 units, typed optional fields, unknown keys refused; all issues are answered at once as
`{"error": "Validation of body failed", "issues": [...], "docUrl": ...}`. Images: data URIs under 5 MB with an
image media type (decoded, pixel size recorded), or HTTPS URLs on a domain name (with `asset_client`, fetched
with `HEAD` like Runway: 200, `image/*`, a Content-Length, no redirects).

Each poll returns the task and then moves it one step: [THROTTLED →] PENDING → RUNNING (0.4) → RUNNING (0.8) →
SUCCEEDED (`output`, `cost`) or FAILED (`failure`, `failureCode`, `cost.credits: 0`). DELETE cancels a live task
(it reads `CANCELLED` afterwards) and deletes a finished one (404 afterwards).

Faults: `state.fail_next(kind, on="create"|"poll"|"any")` with kind "429" (Retry-After), "500", "502", "503",
"garbage", "moderation" (a synchronous 400), "credits", "asset" (asset fetch failure); `state.task_failure =
(code, text)` makes new tasks end FAILED; `state.throttle = True` starts new tasks THROTTLED;
`state.expire_outputs = True` makes the CDN answer 403.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import ipaddress
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.assets import real_mp4

KEY = "key_" + "0123456789abcdef" * 8
VERSION = "2024-11-06"
CDN = "https://dnznrvs05pmza.cloudfront.net"
DOC_URL = "https://docs.dev.runwayml.com/api"
DATA_URI_LIMIT = 5 * 1024 * 1024
VIDEO_BYTES = real_mp4()
AUDIO_VIDEO_BYTES = real_mp4(audio=True)

VEO = ("1280:720", "720:1280", "1080:1920", "1920:1080")
GEN4_I2V = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")


@dataclass(frozen=True)
class ModelRule:
    """One model on one endpoint, as Runway's per-model schema (SDK 5.24 types) has it."""

    ratios: tuple[str, ...] | None  # None: `ratio` refused
    ratio_required: bool
    durations: tuple[int, ...]
    duration_required: bool
    prompt_required: bool
    optional: frozenset[str] = frozenset()
    positions: frozenset[str] = frozenset({"first"})
    rate: int = 10  # credits per second
    audio: bool = False  # makes a sound track (Veo: unless `audio: false`)


_GEN45 = frozenset({"seed", "contentModeration", "outputFormat", "proresProfile"})
_VEO31 = frozenset({"seed", "audio", "negativePrompt"})
_R2_10 = tuple(range(2, 11))
_R3_10 = tuple(range(3, 11))
_FL = frozenset({"first", "last"})
KLING_T2V = ("1920:1080", "1440:1440", "1080:1920", "1280:720", "720:720", "720:1280")

RULES: dict[str, dict[str, ModelRule]] = {
    "text_to_video": {
        "gen4.5": ModelRule(("1280:720", "720:1280"), True, _R2_10, True, True, _GEN45, rate=12),
        "veo3.1": ModelRule(VEO, True, (4, 6, 8), False, True, _VEO31, rate=40, audio=True),
        "veo3.1_fast": ModelRule(VEO, True, (4, 6, 8), False, True, _VEO31, rate=15, audio=True),
        "veo3": ModelRule(VEO, True, (8,), True, True, rate=40, audio=True),
        "kling2.5_turbo_pro": ModelRule(KLING_T2V, False, (5, 10), False, True, frozenset({"cfgScale"})),
        "gemini_omni_flash": ModelRule(("1280:720", "720:1280"), False, _R3_10, False, True),
    },
    "image_to_video": {
        "gen4.5": ModelRule(GEN4_I2V, True, _R2_10, True, True, _GEN45, rate=12),
        "gen4_turbo": ModelRule(GEN4_I2V, True, _R2_10, False, False, frozenset({"seed", "contentModeration"}), rate=5),
        "veo3.1": ModelRule(VEO, True, (4, 6, 8), False, False, _VEO31, _FL, rate=40, audio=True),
        "veo3.1_fast": ModelRule(VEO, True, (4, 6, 8), False, False, _VEO31, _FL, rate=15, audio=True),
        "veo3": ModelRule(VEO, True, (8,), True, False, rate=40, audio=True),
        "kling2.5_turbo_pro": ModelRule(None, False, (5, 10), False, True, frozenset({"cfgScale"}), _FL),
        "gemini_omni_flash": ModelRule(("1280:720", "720:1280"), False, _R3_10, False, False),
    },
}
OUTPUT_FORMATS = ("mp4", "prores", "png_sequence", "hdr10", "hlg")


@dataclass
class FakeTask:
    id: str
    endpoint: str
    body: dict[str, Any]
    credits: int
    audio: bool
    status: str = "PENDING"
    progress: float | None = None
    failure: tuple[str, str] | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z")


@dataclass
class FakeRunwayState:
    api_key: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    faults: list[tuple[str, str]] = field(default_factory=list)
    task_failure: tuple[str, str] | None = None
    throttle: bool = False
    expire_outputs: bool = False
    url_ttl: float = 3600.0
    images: list[dict[str, Any]] = field(default_factory=list)  # what each promptImage decoded to
    secret: bytes = field(default_factory=lambda: uuid.uuid4().bytes)

    def fail_next(self, kind: str, *, on: str = "create") -> None:
        self.faults.append((kind, on))

    def creates(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests if r["method"] == "POST"]

    def take_fault(self, where: str) -> str | None:
        for i, (kind, on) in enumerate(self.faults):
            if on in (where, "any"):
                del self.faults[i]
                return kind
        return None

    def sign(self, task_id: str, expires: int) -> str:
        mac = hmac.new(self.secret, f"{task_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{expires}.{mac}"


def _error(status: int, text: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": text, **extra}, status_code=status)


def _issue(code: str, path: list[Any], message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "path": path, "message": message, **extra}


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _options(values: tuple[Any, ...]) -> str:
    return "|".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values)


class AssetError(Exception):
    pass


async def _check_uri(uri: Any, path: list[Any], asset_client: httpx.AsyncClient | None) -> dict[str, Any]:
    """§4.1: a data URI under 5 MB, a runway:// upload URI, or an HTTPS URL on a domain; raises AssetError."""
    if not isinstance(uri, str) or not uri:
        raise AssetError("Invalid input: expected string")
    if uri.startswith("data:"):
        if len(uri) >= DATA_URI_LIMIT:
            raise AssetError("Data URI must be under 5MB.")
        head, sep, payload = uri.partition(",")
        if not sep or not head.endswith(";base64") or not head[5:].startswith("image/"):
            raise AssetError("Invalid data URI.")
        media = head[5:].removesuffix(";base64")
        if media not in {"image/png", "image/jpeg", "image/jpg", "image/webp"}:
            raise AssetError("Unsupported asset type.")
        try:
            data = base64.b64decode(payload, validate=True)
            with Image.open(io.BytesIO(data)) as img:
                return {"kind": "data", "media": media, "size": img.size}
        except (binascii.Error, OSError, ValueError):
            raise AssetError("Invalid data URI.") from None
    if uri.startswith("runway://"):
        return {"kind": "upload", "uri": uri}
    parts = urlsplit(uri)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise AssetError("Invalid URL")
    if parts.scheme != "https":
        raise AssetError("Only HTTPS URLs are allowed.")
    try:
        ipaddress.ip_address(parts.hostname)
        raise AssetError("URLs must be hosted on a domain.")
    except ValueError:
        pass
    if len(uri) > 2048:
        raise AssetError("Invalid URL")
    if asset_client is not None:
        try:
            resp = await asset_client.head(uri, follow_redirects=False)
        except httpx.HTTPError:
            raise AssetError("Timeout while fetching asset.") from None
        if resp.status_code != 200:
            raise AssetError(f'Failed to fetch asset. Received HTTP response code "{resp.status_code}"')
        if not resp.headers.get("content-type", "").startswith("image/") or "content-length" not in resp.headers:
            raise AssetError("Unsupported asset type.")
    return {"kind": "url", "uri": uri}


async def validate(
    endpoint: str, body: Any, asset_client: httpx.AsyncClient | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The zod issues of one create body (all at once) and the decoded images."""
    if not isinstance(body, dict):
        return [_issue("invalid_type", [], "Invalid input: expected object")], []
    model = body.get("model")
    if not isinstance(model, str):
        return [_issue("invalid_type", ["model"], "Invalid input: expected string, received undefined")], []
    rule = RULES[endpoint].get(model)
    if rule is None:
        issue = _issue("invalid_union", ["model"], "Invalid input", note="No matching discriminator")
        return [{**issue, "errors": [], "discriminator": "model"}], []
    issues: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    allowed = {"model", "promptText", "ratio", "duration", *rule.optional}
    if endpoint == "image_to_video":
        allowed.add("promptImage")
    if rule.ratios is None:
        allowed.discard("ratio")
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        keys = ", ".join(f'"{k}"' for k in unknown)
        issues.append(_issue("unrecognized_keys", [], f"Unrecognized key(s) in object: {keys}", keys=unknown))
    prompt = body.get("promptText")
    if prompt is None:
        if rule.prompt_required:
            issues.append(_issue("invalid_type", ["promptText"], "Invalid input: expected string, received undefined"))
    elif not isinstance(prompt, str):
        issues.append(_issue("invalid_type", ["promptText"], "Invalid input: expected string"))
    elif not 1 <= _utf16(prompt) <= 1000:
        if prompt:
            issues.append(_issue("too_big", ["promptText"], "Too big: expected string to have <=1000 characters"))
        else:
            issues.append(_issue("too_small", ["promptText"], "Too small: expected string to have >=1 characters"))
    if rule.ratios is not None:
        ratio = body.get("ratio")
        if ratio is None:
            if rule.ratio_required:
                issues.append(_issue("invalid_type", ["ratio"], "Invalid input: expected string, received undefined"))
        elif ratio not in rule.ratios:
            msg = f"Invalid option: expected one of {_options(rule.ratios)}"
            issues.append(_issue("invalid_value", ["ratio"], msg, values=list(rule.ratios)))
    duration = body.get("duration")
    if duration is None:
        if rule.duration_required:
            issues.append(_issue("invalid_type", ["duration"], "Invalid input: expected number, received undefined"))
    elif isinstance(duration, bool) or not isinstance(duration, int):
        issues.append(_issue("invalid_type", ["duration"], "Invalid input: expected int"))
    elif duration not in rule.durations:
        lo, hi = min(rule.durations), max(rule.durations)
        if rule.durations == tuple(range(lo, hi + 1)):
            code, msg = (
                ("too_small", f"Too small: expected number to be >={lo}")
                if duration < lo
                else (
                    "too_big",
                    f"Too big: expected number to be <={hi}",
                )
            )
            issues.append(_issue(code, ["duration"], msg))
        else:
            issues.append(
                _issue("invalid_value", ["duration"], f"Invalid option: expected one of {_options(rule.durations)}")
            )
    if "seed" in body and "seed" in rule.optional:
        seed = body["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 4_294_967_295:
            issues.append(_issue("invalid_type", ["seed"], "Invalid input: expected int between 0 and 4294967295"))
    if "audio" in body and "audio" in rule.optional and not isinstance(body["audio"], bool):
        issues.append(_issue("invalid_type", ["audio"], "Invalid input: expected boolean"))
    if "negativePrompt" in body and "negativePrompt" in rule.optional and not isinstance(body["negativePrompt"], str):
        issues.append(_issue("invalid_type", ["negativePrompt"], "Invalid input: expected string"))
    if "cfgScale" in body and "cfgScale" in rule.optional:
        cfg = body["cfgScale"]
        if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1:
            issues.append(_issue("invalid_type", ["cfgScale"], "Invalid input: expected number from 0 to 1"))
    if "contentModeration" in body and "contentModeration" in rule.optional:
        cm = body["contentModeration"]
        if (
            not isinstance(cm, dict)
            or set(cm) - {"publicFigureThreshold"}
            or cm.get("publicFigureThreshold", "auto") not in ("auto", "low")
        ):
            issues.append(
                _issue("invalid_value", ["contentModeration"], 'Invalid option: expected one of "auto"|"low"')
            )
    if "outputFormat" in body and "outputFormat" in rule.optional and body["outputFormat"] not in OUTPUT_FORMATS:
        issues.append(
            _issue("invalid_value", ["outputFormat"], f"Invalid option: expected one of {_options(OUTPUT_FORMATS)}")
        )
    if endpoint == "image_to_video":
        issues += await _check_images(body.get("promptImage"), rule, images, asset_client)
    return issues, images


async def _check_images(
    value: Any, rule: ModelRule, images: list[dict[str, Any]], asset_client: httpx.AsyncClient | None
) -> list[dict[str, Any]]:
    if value is None:
        return [_issue("invalid_type", ["promptImage"], "Invalid input: expected string, received undefined")]
    items = [{"uri": value, "position": "first"}] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        return [_issue("invalid_union", ["promptImage"], "Invalid input")]
    issues = []
    positions = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"uri", "position"}:
            issues.append(_issue("invalid_type", ["promptImage", i], "Invalid input: expected {uri, position}"))
            continue
        if item["position"] not in rule.positions:
            msg = f"Invalid option: expected one of {_options(tuple(sorted(rule.positions)))}"
            issues.append(_issue("invalid_value", ["promptImage", i, "position"], msg))
        positions.append(item["position"])
        try:
            images.append(
                {**await _check_uri(item["uri"], ["promptImage", i], asset_client), "position": item["position"]}
            )
        except AssetError as exc:
            issues.append(
                _issue("custom", ["promptImage"] if isinstance(value, str) else ["promptImage", i, "uri"], str(exc))
            )
    if positions and ("first" not in positions or len(set(positions)) != len(positions)):
        issues.append(_issue("custom", ["promptImage"], "A first frame is required; each position may appear once."))
    return issues


def make_app(*, api_key: str = KEY, asset_client: httpx.AsyncClient | None = None) -> tuple[Starlette, FakeRunwayState]:
    state = FakeRunwayState(api_key=api_key)

    def fault(where: str) -> Response | None:
        match state.take_fault(where):
            case "429":
                return _with(
                    _error(429, "You have exceeded the daily task limit for this model."), {"Retry-After": "7"}
                )
            case "500" | "502" | "503" as code:
                return _error(int(code), "Internal server error")
            case "garbage":
                return PlainTextResponse("{not json", media_type="application/json")
            case "moderation":
                return _error(400, "Your prompt was flagged by our content moderation system.")
            case "credits":
                return _error(400, "You do not have enough credits to run this task.")
            case "asset":
                issue = _issue(
                    "custom",
                    ["promptImage"],
                    "Failed to fetch asset. The URL may be incorrect or the server hosting the asset may be down.",
                )
                return _error(400, "Validation of body failed", issues=[issue], docUrl=DOC_URL)
        return None

    async def guard(request: Request, where: str) -> tuple[Response | None, Any]:
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        state.requests.append(
            {"method": request.method, "path": request.url.path, "headers": dict(request.headers), "json": parsed}
        )
        if request.headers.get("authorization") != f"Bearer {state.api_key}":
            return _error(401, "Invalid API key. Make sure the key is correct and active."), parsed
        version = request.headers.get("x-runway-version")
        if version != VERSION:
            text = (
                "The X-Runway-Version header is required." if version is None else f"Unsupported API version: {version}"
            )
            return _error(400, text), parsed
        if (early := fault(where)) is not None:
            return early, parsed
        if isinstance(parsed, str):
            return _error(400, "Invalid JSON body"), parsed
        return None, parsed

    async def create(request: Request) -> Response:
        endpoint = request.url.path.removeprefix("/v1/")
        early, body = await guard(request, "create")
        if early is not None:
            return early
        issues, images = await validate(endpoint, body, asset_client)
        if issues:
            return _error(400, "Validation of body failed", issues=issues, docUrl=DOC_URL)
        rule = RULES[endpoint][body["model"]]
        duration = body.get("duration", rule.durations[-1] if 8 in rule.durations else rule.durations[0])
        task = FakeTask(
            id=str(uuid.uuid4()),
            endpoint=endpoint,
            body=body,
            credits=rule.rate * duration,
            audio=rule.audio and body.get("audio", True),
            status="THROTTLED" if state.throttle else "PENDING",
            failure=state.task_failure,
        )
        state.tasks[task.id] = task
        state.images.extend(images)
        return JSONResponse({"id": task.id, "estimatedCost": {"credits": task.credits}})

    def task_body(task: FakeTask) -> dict[str, Any]:
        out: dict[str, Any] = {"id": task.id, "createdAt": task.created_at, "status": task.status}
        if task.status == "RUNNING":
            out["progress"] = task.progress
        if task.status in {"PENDING", "THROTTLED", "RUNNING"}:
            out["estimatedCost"] = {"credits": task.credits}
        if task.status == "SUCCEEDED":
            expires = int(time.time() + state.url_ttl)
            out["output"] = [f"{CDN}/outputs/{task.id}/video.mp4?_jwt={state.sign(task.id, expires)}"]
            out["cost"] = {"credits": task.credits}
        if task.status == "FAILED":
            assert task.failure is not None
            out["failureCode"], out["failure"] = task.failure
            out["cost"] = {"credits": 0}
        if task.status == "CANCELLED":
            out["cost"] = {"credits": 0}
        return out

    def advance(task: FakeTask) -> None:
        if task.status == "THROTTLED":
            task.status = "PENDING"
        elif task.status == "PENDING":
            task.status, task.progress = "RUNNING", 0.4
        elif task.status == "RUNNING" and task.progress is not None and task.progress < 0.8:
            task.progress = 0.8
        elif task.status == "RUNNING":
            task.status = "FAILED" if task.failure else "SUCCEEDED"

    async def tasks(request: Request) -> Response:
        early, _ = await guard(request, "poll")
        if early is not None:
            return early
        task = state.tasks.get(request.path_params["task_id"])
        if task is None:
            return _error(404, "Task not found")
        if request.method == "DELETE":
            if task.status in {"PENDING", "THROTTLED", "RUNNING"}:
                task.status = "CANCELLED"
            else:
                del state.tasks[task.id]
            return Response(status_code=204)
        body = task_body(task)
        advance(task)
        return JSONResponse(body)

    async def organization(request: Request) -> Response:
        early, _ = await guard(request, "poll")
        if early is not None:
            return early
        models = {m: {"maxConcurrentGenerations": 2, "maxDailyGenerations": 200} for m in RULES["image_to_video"]}
        return JSONResponse(
            {
                "creditBalance": 1000,
                "tier": {"maxMonthlyCreditSpend": 10000, "models": models},
                "usage": {"models": {}},
            }
        )

    async def outputs(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        state.requests.append(
            {"method": request.method, "path": request.url.path, "headers": dict(request.headers), "json": None}
        )
        token = request.query_params.get("_jwt", "")
        expires, _, _ = token.partition(".")
        task = state.tasks.get(task_id)
        valid = expires.isdigit() and hmac.compare_digest(token, state.sign(task_id, int(expires)))
        if state.expire_outputs or not valid or int(expires or 0) < time.time():
            return PlainTextResponse("<Error><Code>AccessDenied</Code></Error>", status_code=403)
        if task is None or task.status != "SUCCEEDED":
            return PlainTextResponse("<Error><Code>NoSuchKey</Code></Error>", status_code=404)
        if "authorization" in request.headers:  # CloudFront signed URLs take no bearer key
            return PlainTextResponse("<Error><Code>InvalidArgument</Code></Error>", status_code=400)
        return Response(AUDIO_VIDEO_BYTES if task.audio else VIDEO_BYTES, media_type="video/mp4")

    app = Starlette(
        routes=[
            Route("/v1/text_to_video", create, methods=["POST"]),
            Route("/v1/image_to_video", create, methods=["POST"]),
            Route("/v1/tasks/{task_id}", tasks, methods=["GET", "DELETE"]),
            Route("/v1/organization", organization, methods=["GET"]),
            Route("/outputs/{task_id}/video.mp4", outputs, methods=["GET"]),
        ]
    )
    return app, state


def _with(resp: Response, headers: dict[str, str]) -> Response:
    resp.headers.update(headers)
    return resp
