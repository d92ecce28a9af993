"""A fake Gemini API for Veo, following the "Fake-server checklist" of /work/shared/vendors/gemini.md (§13).

Routes: `POST /v1beta/models/{model}:predictLongRunning`, `GET /v1beta/models/{model}/operations/{id}`,
`GET /v1beta/files/{id}:download?alt=media` (302 to a signed, expiring `/storage/{id}` URL that needs no key),
`GET /v1beta/models[/{model}]`.
Auth on every route but the storage one: `x-goog-api-key` or `?key=`; none → 403 PERMISSION_DENIED; wrong →
400 API_KEY_INVALID (with `details`); `Authorization: Bearer` alone → 401 UNAUTHENTICATED.
Bodies are checked per model (§4, §5): unknown top-level names, unsupported keys ("`x` isn't supported by this
model."), types, the 1080p/4k/reference ⇒ 8 s couplings, Veo 3 1080p ⇒ 16:9, `personGeneration` per mode,
images `{bytesBase64Encoded, mimeType}` whose bytes match the type.
Each poll of a running Operation answers `{"name"}` (no `done`) `polls_before_done` times, then done.

Faults: `state.fail_next(kind)` for the next create: "500", "429", "503", "moderation" (create-time 400);
`state.outcome` for new operations: "ok", "filtered" (no samples + raiMediaFilteredReasons), "error" (code 13).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.assets import real_mp4

API_KEY = "AIzaFakeGeminiKey-0123456789abcdefghij"
MODERATION_TEXT = (
    "The prompt could not be submitted. This prompt contains words that violate Gemini API's usage guidelines. "
    "Try rephrasing the prompt. Support codes: 42876398"
)
FILTER_REASON = (
    "Veo could not generate videos because the generated video violates the usage guidelines. Support codes: 64151117"
)


@dataclass(frozen=True)
class Rule:
    family: str
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]  # () → the `resolution` field is refused (Veo 2)
    last_frame: bool = False
    references: bool = False

    @property
    def veo3(self) -> bool:
        return self.family != "2.0"


MODELS: dict[str, Rule] = {
    "veo-3.1-generate-preview": Rule("3.1", (4, 6, 8), ("720p", "1080p", "4k"), last_frame=True, references=True),
    "veo-3.1-fast-generate-preview": Rule("3.1", (4, 6, 8), ("720p", "1080p", "4k"), last_frame=True, references=True),
    "veo-3.0-generate-001": Rule("3.0", (4, 6, 8), ("720p", "1080p")),
    "veo-3.0-fast-generate-001": Rule("3.0", (4, 6, 8), ("720p", "1080p")),
    "veo-2.0-generate-001": Rule("2.0", (5, 6, 8), ()),
}
INSTANCE_KEYS = {"prompt", "image", "lastFrame", "referenceImages", "video"}
PARAMETER_KEYS = {
    "aspectRatio",
    "durationSeconds",
    "resolution",
    "personGeneration",
    "negativePrompt",
    "sampleCount",
    "seed",
    "enhancePrompt",
}
MIMES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


def error(http: int, status: str, message: str, details: list[Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": http, "message": message, "status": status}}
    if details:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=http)


def invalid(message: str) -> JSONResponse:
    return error(400, "INVALID_ARGUMENT", message)


def unsupported(key: str) -> JSONResponse:
    return invalid(f"`{key}` isn't supported by this model.")


def check_image(obj: Any, where: str, *, gcs: bool = False) -> JSONResponse | None:
    """Exactly `{bytesBase64Encoded, mimeType}` (or `{gcsUri, mimeType}` where allowed) with matching bytes."""
    if not isinstance(obj, dict):
        return invalid(f"Invalid value at '{where}': expected an object.")
    for key in obj:
        if key not in {"bytesBase64Encoded", "mimeType"} and not (gcs and key == "gcsUri"):
            return unsupported(key)
    mime = obj.get("mimeType")
    if mime not in MIMES and mime != "image/webp":
        return invalid(f"Invalid mimeType at '{where}': {mime!r}.")
    data = obj.get("bytesBase64Encoded")
    if not isinstance(data, str):
        return invalid(f"'{where}.bytesBase64Encoded' is required.")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return invalid(f"Invalid base64 at '{where}.bytesBase64Encoded'.")
    ok = raw[:4] == b"RIFF" and raw[8:12] == b"WEBP" if mime == "image/webp" else raw.startswith(MIMES[mime])
    if not ok:
        return invalid(f"The image at '{where}' is not {mime}.")
    return None


def check_person(value: Any, family: str, mode: str) -> JSONResponse | None:
    """§5.2: which personGeneration values each family takes, text vs image modes."""
    if family in ("3.1", "3.0"):
        allowed = {"allow_all"} if mode == "text" else {"allow_adult"}
    else:
        allowed = {"allow_all", "allow_adult", "dont_allow"} if mode == "text" else {"allow_adult", "dont_allow"}
    if value not in allowed:
        return invalid(f"{value} for personGeneration is currently not supported.")
    return None


def check_body(body: Any, rule: Rule) -> JSONResponse | None:
    if not isinstance(body, dict):
        return invalid("Invalid JSON payload received.")
    for key in body:
        if key not in {"instances", "parameters", "model", "webhookConfig"}:
            return invalid(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return invalid("Exactly one instance is required.")
    inst = instances[0]
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        return invalid("Invalid value at 'parameters'.")
    for key in inst:
        if key not in INSTANCE_KEYS:
            return unsupported(key)
    for key in params:
        if key not in PARAMETER_KEYS or (key == "resolution" and not rule.resolutions):
            return unsupported(key)
        if key == "seed" and not rule.veo3:
            return unsupported(key)
    prompt = inst.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return invalid("Invalid value at 'instances[0].prompt'.")
    if not prompt and "image" not in inst:
        return invalid("A prompt or an image is required.")
    for key in ("image", "lastFrame"):
        if key in inst and (bad := check_image(inst[key], f"instances[0].{key}")):
            return bad
    if "lastFrame" in inst and ("image" not in inst or not rule.last_frame):
        return unsupported("lastFrame") if not rule.last_frame else invalid("lastFrame needs image.")
    refs = inst.get("referenceImages")
    if refs is not None:
        if not rule.references:
            return unsupported("referenceImages")
        if not isinstance(refs, list) or not 1 <= len(refs) <= 3 or "image" in inst or "lastFrame" in inst:
            return invalid("referenceImages takes 1 to 3 asset images and no image/lastFrame.")
        for i, ref in enumerate(refs):
            if (
                not isinstance(ref, dict)
                or set(ref) - {"image", "referenceType"}
                or ref.get("referenceType") != "asset"
            ):
                return invalid(f"Invalid referenceImages[{i}]: only 'asset' references are supported.")
            if bad := check_image(ref.get("image"), f"instances[0].referenceImages[{i}].image"):
                return bad
    if "video" in inst:
        return invalid("Video URI not found in the request.")
    ratio = params.get("aspectRatio", "16:9")
    if ratio not in ("16:9", "9:16"):
        return invalid(f"Unsupported aspect ratio: {ratio}.")
    resolution = params.get("resolution", "720p")
    if rule.resolutions and resolution not in rule.resolutions:
        return invalid(f"Unsupported resolution: {resolution}.")
    dur = params.get("durationSeconds", 8)
    if isinstance(dur, str):
        return invalid("durationSeconds needs to be a number.")
    if isinstance(dur, bool) or not isinstance(dur, int) or dur not in rule.durations:
        return invalid(f"Unsupported output video duration {dur} seconds.")
    if (resolution in ("1080p", "4k") or refs) and dur != 8:
        return invalid(f"{resolution} and reference images need durationSeconds 8.")
    if rule.family == "3.0" and resolution == "1080p" and ratio != "16:9":
        return invalid("1080p is supported with 16:9 only.")
    if "personGeneration" in params:
        mode = "text" if "image" not in inst and not refs else "image"
        if bad := check_person(params["personGeneration"], rule.family, mode):
            return bad
    if "sampleCount" in params and params["sampleCount"] not in ((1,) if rule.veo3 else (1, 2)):
        return invalid("sampleCount out of range.")
    if "seed" in params and (not isinstance(params["seed"], int) or not 0 <= params["seed"] < 2**32):
        return invalid("seed must be a uint32.")
    if "enhancePrompt" in params and not isinstance(params["enhancePrompt"], bool):
        return invalid("enhancePrompt must be a boolean.")
    if "negativePrompt" in params and not isinstance(params["negativePrompt"], str):
        return invalid("negativePrompt must be a string.")
    return None


@dataclass
class FakeOperation:
    id: str
    model: str
    body: dict[str, Any]
    outcome: str
    polls_left: int
    file_id: str | None = None
    created: float = field(default_factory=time.time)


@dataclass
class FakeGeminiState:
    api_key: str
    polls_before_done: int = 2
    outcome: str = "ok"
    file_ttl: float = 2 * 24 * 3600
    faults: list[str] = field(default_factory=list)
    operations: dict[str, FakeOperation] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, tuple[bytes, float]] = field(default_factory=dict)  # id → (mp4, created)
    storage_headers: list[dict[str, str]] = field(default_factory=list)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def fail_next(self, kind: str) -> None:
        self.faults.append(kind)

    def creates(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests if r["path"].endswith(":predictLongRunning")]

    def sign(self, file_id: str, exp: int) -> str:
        return hmac.new(self.secret, f"{file_id}:{exp}".encode(), hashlib.sha256).hexdigest()


def _op_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))


def make_app(*, api_key: str = API_KEY, polls_before_done: int = 2) -> tuple[Starlette, FakeGeminiState]:
    state = FakeGeminiState(api_key=api_key, polls_before_done=polls_before_done)

    def auth(request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if key is None:
            if request.headers.get("authorization", "").lower().startswith("bearer "):
                return error(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                    "or other valid authentication credential.",
                )
            return error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use "
                "API Key or other form of API consumer identity to call this API.",
            )
        if not hmac.compare_digest(key, state.api_key):
            return error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        return None

    def not_found_model(model: str) -> JSONResponse:
        return error(
            404,
            "NOT_FOUND",
            f"models/{model} is not found for API version v1beta, or is not supported for predictLongRunning. "
            "Call ListModels to see the list of available models and their supported methods.",
        )

    async def dispatch(request: Request) -> Response:
        path = request.url.path
        raw = await request.body()
        try:
            parsed = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            parsed = None
        state.requests.append(
            {"method": request.method, "path": path, "json": parsed, "headers": dict(request.headers)}
        )
        if path.startswith("/storage/"):
            return storage(request, path.removeprefix("/storage/"))
        if (denied := auth(request)) is not None:
            return denied
        if m := re.fullmatch(r"/v1beta/models/([^/:]+):predictLongRunning", path):
            if request.method != "POST":
                return error(405, "METHOD_NOT_ALLOWED", "Method not allowed.")
            return create(m.group(1), raw, parsed)
        if m := re.fullmatch(r"/v1beta/models/([^/:]+)/operations/([a-z0-9]+)", path):
            return poll(request, m.group(1), m.group(2))
        if m := re.fullmatch(r"/v1beta/files/([a-z0-9]+):download", path):
            return download(request, m.group(1))
        if path == "/v1beta/models":
            return JSONResponse({"models": [{"name": f"models/{n}"} for n in MODELS]})
        if m := re.fullmatch(r"/v1beta/models/([^/:]+)", path):
            if m.group(1) not in MODELS:
                return not_found_model(m.group(1))
            return JSONResponse({"name": path[len("/v1beta/") :], "supportedGenerationMethods": ["predictLongRunning"]})
        return error(404, "NOT_FOUND", "Requested entity was not found.")

    def create(model: str, raw: bytes, body: Any) -> Response:
        if state.faults:
            kind = state.faults.pop(0)
            if kind == "500":
                return error(
                    500,
                    "INTERNAL",
                    "An internal error has occurred. Please retry or report in "
                    "https://developers.generativeai.google/guide/troubleshooting",
                )
            if kind == "503":
                return error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
            if kind == "429":
                return error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "You exceeded your current quota, please check your plan and billing details.",
                    [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
                )
            if kind == "moderation":
                return invalid(MODERATION_TEXT)
        rule = MODELS.get(model)
        if rule is None:
            return not_found_model(model)
        if body is None:
            return invalid("Invalid JSON payload received.")
        if (bad := check_body(body, rule)) is not None:
            return bad
        op = FakeOperation(
            id=_op_id(), model=model, body=body, outcome=state.outcome, polls_left=state.polls_before_done
        )
        state.operations[op.id] = op
        return JSONResponse({"name": f"models/{model}/operations/{op.id}"})

    def poll(request: Request, model: str, op_id: str) -> Response:
        op = state.operations.get(op_id)
        if op is None or op.model != model:
            return error(404, "NOT_FOUND", "Requested entity was not found.")
        name = f"models/{model}/operations/{op_id}"
        if op.polls_left > 0:
            op.polls_left -= 1
            return JSONResponse({"name": name})
        done: dict[str, Any] = {"name": name, "done": True}
        if op.outcome == "error":
            done["error"] = {"code": 13, "message": "Video generation failed due to an internal error."}
            return JSONResponse(done)
        kind = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
        if op.outcome == "filtered":
            done["response"] = {
                "@type": kind,
                "generateVideoResponse": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [FILTER_REASON]},
            }
            return JSONResponse(done)
        if op.file_id is None:
            op.file_id = _op_id()
            state.files[op.file_id] = (real_mp4(audio=MODELS[model].veo3), time.time())
        uri = f"{str(request.base_url).rstrip('/')}/v1beta/files/{op.file_id}:download?alt=media"
        done["response"] = {"@type": kind, "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]}}
        return JSONResponse(done)

    def download(request: Request, file_id: str) -> Response:
        entry = state.files.get(file_id)
        if entry is None or time.time() - entry[1] > state.file_ttl or request.query_params.get("alt") != "media":
            return error(404, "NOT_FOUND", "Requested entity was not found.")
        exp = int(time.time()) + 300
        return RedirectResponse(f"/storage/{file_id}?exp={exp}&sig={state.sign(file_id, exp)}", status_code=302)

    def storage(request: Request, file_id: str) -> Response:
        state.storage_headers.append(dict(request.headers))
        exp = request.query_params.get("exp", "")
        sig = request.query_params.get("sig", "")
        entry = state.files.get(file_id)
        if (
            entry is None
            or not exp.isdigit()
            or int(exp) < time.time()
            or not hmac.compare_digest(sig, state.sign(file_id, int(exp)))
        ):
            return Response("AccessDenied", status_code=403, media_type="text/plain")
        return Response(entry[0], media_type="video/mp4")

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", dispatch, methods=methods)]), state
