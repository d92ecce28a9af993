"""A fake Vertex AI for Veo, token endpoint included, following the "Fake-server checklist" of
/work/shared/vendors/vertex.md (§12).

Routes: `POST /token` (the key file's `token_uri`), `POST /v1/projects/{p}/locations/{l}/publishers/google/models/
{m}:predictLongRunning` and `…:fetchPredictOperation`.
`/token` takes a form-encoded JWT-bearer grant only and verifies the RS256 assertion with the service account's
public key (kid, iss, aud, iat/exp window, scope), then issues `ya29.` tokens that live `token_ttl` seconds.
API calls need `Authorization: Bearer` with an issued, unexpired token (401 CREDENTIALS_MISSING /
ACCESS_TOKEN_TYPE_UNSUPPORTED / ACCESS_TOKEN_EXPIRED), the right project (403) and location and a known model
(404). Create bodies: top-level names limited to instances/parameters/labels, one instance, typed known
parameters, Media with `bytesBase64Encoded` xor `gcsUri` and a matching `mimeType`; unknown keys inside
instances/parameters are ignored as Vertex does, and recorded in `state.ignored` so tests can flag them.
Each fetch answers `{"name"}` `polls_before_done` times, then done with `videos[{bytesBase64Encoded, mimeType}]`.

Faults: `state.fail_next(kind)` for the next create: "500", "429", "moderation"; `state.outcome` for new
operations: "ok", "filtered", "error" (code 13); `state.expire_tokens()` makes every issued token expired
(an expired token mid-run); `state.token_faults = n` makes the next n token requests answer 503.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.assets import real_mp4
from tests.fakes.gemini import error

PROJECT = "vidgate-test-project"
LOCATION = "us-central1"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_AUD = "https://oauth2.googleapis.com/token"
MODERATION_TEXT = (
    "The prompt could not be submitted. This prompt contains sensitive words that violate Vertex AI's usage "
    "guidelines. If you think this was an error, send feedback. Support codes: 42876398"
)
FILTER_REASON = (
    "Veo could not generate videos because the input image violates Vertex AI's usage guidelines. "
    "Support codes: 64151117"
)


@dataclass(frozen=True)
class Rule:
    family: str
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    last_frame: bool = False
    references: bool = False


_31 = Rule("3.1", (4, 6, 8), ("720p", "1080p", "4k"), last_frame=True, references=True)
MODELS: dict[str, Rule] = {
    "veo-3.1-generate-001": _31,
    "veo-3.1-fast-generate-001": _31,
    "veo-3.1-generate-preview": _31,
    "veo-3.1-fast-generate-preview": _31,
    "veo-3.0-generate-001": Rule("3.0", (4, 6, 8), ("720p", "1080p")),
    "veo-3.0-fast-generate-001": Rule("3.0", (4, 6, 8), ("720p", "1080p")),
    "veo-2.0-generate-001": Rule("2.0", (5, 6, 7, 8), ("720p",), last_frame=True),
}
# the known parameters and their JSON types (anything else is ignored, as Vertex ignores it)
PARAMETER_TYPES: dict[str, type | tuple[type, ...]] = {
    "aspectRatio": str,
    "durationSeconds": int,
    "resolution": str,
    "generateAudio": bool,
    "sampleCount": int,
    "seed": int,
    "negativePrompt": str,
    "personGeneration": str,
    "enhancePrompt": bool,
    "resizeMode": str,
    "compressionQuality": str,
    "storageUri": str,
    "fps": int,
    "pubsubTopic": str,
}
INSTANCE_KEYS = {"prompt", "image", "lastFrame", "referenceImages", "video", "mask"}
MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


@dataclass
class ServiceAccount:
    """A service account and its key: writes the JSON key file google-auth reads."""

    email: str = "vidgate@vidgate-test-project.iam.gserviceaccount.com"
    key_id: str = field(default_factory=lambda: secrets.token_hex(20))
    private_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def key_file(self, path: Path, *, token_uri: str, project: str = PROJECT) -> Path:
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": project,
                    "private_key_id": self.key_id,
                    "private_key": self.pem(),
                    "client_email": self.email,
                    "client_id": "123456789012345678901",
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                    "token_uri": token_uri,
                    "universe_domain": "googleapis.com",
                }
            )
        )
        return path


def _invalid(message: str) -> JSONResponse:
    return error(400, "INVALID_ARGUMENT", message)


def _token_error(kind: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": kind, "error_description": description}, status_code=status)


def _check_media(obj: Any, where: str) -> JSONResponse | None:
    if not isinstance(obj, dict):
        return _invalid(f"Invalid value at '{where}'.")
    has_bytes, has_gcs = "bytesBase64Encoded" in obj, "gcsUri" in obj
    if has_bytes == has_gcs:
        return _invalid(f"'{where}' needs exactly one of bytesBase64Encoded and gcsUri.")
    mime = obj.get("mimeType")
    if mime not in MAGIC:
        return _invalid(f"'{where}.mimeType' must be image/png or image/jpeg, got {mime!r}.")
    if has_bytes:
        try:
            raw = base64.b64decode(obj["bytesBase64Encoded"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            return _invalid(f"Invalid base64 at '{where}.bytesBase64Encoded'.")
        if not raw.startswith(MAGIC[mime]):
            return _invalid(f"The image at '{where}' is not {mime}.")
    return None


@dataclass
class FakeOperation:
    name: str
    model: str
    body: dict[str, Any]
    outcome: str
    polls_left: int


@dataclass
class FakeVertexState:
    accounts: dict[str, ServiceAccount]
    project: str = PROJECT
    location: str = LOCATION
    polls_before_done: int = 2
    token_ttl: int = 3599
    outcome: str = "ok"
    faults: list[str] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # access token → expiry
    assertions: list[dict[str, Any]] = field(default_factory=list)  # verified JWT claims
    operations: dict[str, FakeOperation] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # unknown keys Vertex would silently ignore
    rejected_tokens: list[str] = field(default_factory=list)
    token_faults: int = 0  # the next N token requests answer 503

    def fail_next(self, kind: str) -> None:
        self.faults.append(kind)

    def expire_tokens(self) -> None:
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    def creates(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests if r["path"].endswith(":predictLongRunning")]


def make_app(
    account: ServiceAccount | None = None, *, project: str = PROJECT, location: str = LOCATION
) -> tuple[Starlette, FakeVertexState]:
    account = account or ServiceAccount()
    state = FakeVertexState(accounts={account.email: account}, project=project, location=location)

    async def token(request: Request) -> Response:
        if state.token_faults:
            state.token_faults -= 1
            return _token_error("temporarily_unavailable", "The service is currently unavailable.", 503)
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _token_error("invalid_request", "Invalid request: form-encoded body required.")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != GRANT:
            return _token_error("unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}")
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _token_error("invalid_grant", "Invalid JWT: malformed assertion.")
        sa = state.accounts.get(str(claims.get("iss")))
        if sa is None:
            return _token_error("invalid_grant", "Invalid grant: account not found")
        if header.get("alg") != "RS256" or ("kid" in header and header["kid"] != sa.key_id):
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        try:
            jwt.decode(
                assertion,
                sa.private_key.public_key(),
                algorithms=["RS256"],
                audience=[GOOGLE_AUD, str(request.url)],
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError:
            return _token_error("invalid_grant", "Invalid JWT: Failed audience check.")
        except jwt.PyJWTError:
            return _token_error("invalid_grant", "Invalid JWT Signature.")
        iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
        if not isinstance(iat, int) or not isinstance(exp, int) or exp <= now or exp - iat > 3600 or iat > now + 300:
            return _token_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                "Check your iat and exp values in the JWT claim.",
            )
        if SCOPE not in str(claims.get("scope", "")).split():
            return _token_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        state.assertions.append(claims)
        access = f"ya29.c.{secrets.token_urlsafe(24)}"
        state.tokens[access] = now + state.token_ttl
        return JSONResponse({"access_token": access, "expires_in": state.token_ttl, "token_type": "Bearer"})

    def auth(request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if not header:
            return error(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential.",
                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CREDENTIALS_MISSING"}],
            )
        scheme, _, value = header.partition(" ")
        expiry = state.tokens.get(value) if scheme == "Bearer" else None
        if expiry is None or expiry <= time.time():
            state.rejected_tokens.append(value)
            reason = "ACCESS_TOKEN_TYPE_UNSUPPORTED" if expiry is None else "ACCESS_TOKEN_EXPIRED"
            return error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}],
            )
        return None

    async def api(request: Request) -> Response:
        path = request.url.path
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        state.requests.append({"path": path, "json": body, "headers": dict(request.headers)})
        if (denied := auth(request)) is not None:
            return denied
        m = re.fullmatch(
            r"/v1/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):(predictLongRunning|fetchPredictOperation)",
            path,
        )
        if m is None:
            return error(404, "NOT_FOUND", "The requested URL was not found on this server.")
        project, location, model, method = m.groups()
        host = request.url.hostname or ""
        if host not in ("127.0.0.1", "localhost") and host != f"{location}-aiplatform.googleapis.com":
            return _invalid(f"Location {location} does not match the endpoint {host}.")
        if project != state.project:
            return error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/"
                f"projects/{project}/locations/{location}/publishers/google/models/{model}' (or it may not exist).",
            )
        if location != state.location or model not in MODELS:
            return error(
                404,
                "NOT_FOUND",
                f"Publisher Model `projects/{project}/locations/{location}/publishers/google/models/{model}` was "
                "not found or your project does not have access to it.",
            )
        if not isinstance(body, dict):
            return _invalid("Invalid JSON payload received.")
        if method == "predictLongRunning":
            return create(project, location, model, body)
        return fetch(path.rsplit(":", 1)[0].removeprefix("/v1/"), body)

    def create(project: str, location: str, model: str, body: dict[str, Any]) -> Response:
        if state.faults:
            kind = state.faults.pop(0)
            if kind == "500":
                return error(500, "INTERNAL", "Internal error encountered.")
            if kind == "429":
                return error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with "
                    f"base model: {model}. Please submit a quota increase request.",
                )
            if kind == "moderation":
                return _invalid(MODERATION_TEXT)
        if (bad := check_create(body, MODELS[model])) is not None:
            return bad
        name = f"projects/{project}/locations/{location}/publishers/google/models/{model}/operations/{uuid.uuid4()}"
        state.operations[name] = FakeOperation(name, model, body, state.outcome, state.polls_before_done)
        return JSONResponse({"name": name})

    def check_create(body: dict[str, Any], rule: Rule) -> JSONResponse | None:
        for key in body:
            if key not in {"instances", "parameters", "labels"}:
                return _invalid(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
        instances = body.get("instances")
        if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
            return _invalid("Exactly one instance is required.")
        inst, params = instances[0], body.get("parameters") or {}
        if not isinstance(params, dict):
            return _invalid("Invalid value at 'parameters'.")
        state.ignored += [f"instances[0].{k}" for k in inst if k not in INSTANCE_KEYS]
        state.ignored += [f"parameters.{k}" for k in params if k not in PARAMETER_TYPES]
        for key, kind in PARAMETER_TYPES.items():
            value = params.get(key)
            if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                return _invalid(f"Invalid value at 'parameters.{key}'.")
        if not inst.get("prompt") and "image" not in inst:
            return _invalid("A prompt or an image is required.")
        for key in ("image", "lastFrame"):
            if key in inst and (bad := _check_media(inst[key], f"instances[0].{key}")):
                return bad
        if "lastFrame" in inst and ("image" not in inst or not rule.last_frame):
            return _invalid("lastFrame is not supported here.")
        refs = inst.get("referenceImages")
        if refs is not None:
            if not rule.references or not isinstance(refs, list) or not 1 <= len(refs) <= 3 or "image" in inst:
                return _invalid("referenceImages takes 1 to 3 asset images, without image or lastFrame.")
            for i, ref in enumerate(refs):
                if not isinstance(ref, dict) or ref.get("referenceType") != "asset":
                    return _invalid(f"Invalid referenceImages[{i}].referenceType.")
                if bad := _check_media(ref.get("image"), f"instances[0].referenceImages[{i}].image"):
                    return bad
        if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            return _invalid("Unsupported aspect ratio.")
        resolution = params.get("resolution", "720p")
        if resolution not in rule.resolutions or (rule.family == "2.0" and "resolution" in params):
            return _invalid(f"Unsupported resolution: {resolution}.")
        dur = params.get("durationSeconds", 8)
        if dur not in rule.durations or (refs and dur != 8):
            return _invalid(f"Unsupported output video duration {dur} seconds.")
        if rule.family == "2.0" and "generateAudio" in params:
            return _invalid("generateAudio is not supported by this model.")
        if rule.family != "2.0" and "generateAudio" not in params:
            return _invalid("generateAudio is required for Veo 3 models.")
        if not 1 <= params.get("sampleCount", 1) <= 4:
            return _invalid("sampleCount must be between 1 and 4.")
        if params.get("personGeneration", "allow_adult") not in ("allow_adult", "dont_allow", "allow_all"):
            return _invalid(f"{params['personGeneration']} for personGeneration is currently not supported.")
        if "storageUri" in params and not str(params["storageUri"]).startswith("gs://"):
            return _invalid("storageUri must be a gs:// URI.")
        return None

    def fetch(resource: str, body: dict[str, Any]) -> Response:
        if set(body) != {"operationName"}:
            extra = next(iter(set(body) - {"operationName"}), "operationName")
            return _invalid(f'Invalid JSON payload received. Unknown name "{extra}": Cannot find field.')
        name = body["operationName"]
        op = state.operations.get(name)
        if op is None or not str(name).startswith(resource + "/operations/"):
            return error(404, "NOT_FOUND", "The operation does not exist.")
        if op.polls_left > 0:
            op.polls_left -= 1
            return JSONResponse({"name": name})
        done: dict[str, Any] = {"name": name, "done": True}
        kind = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
        if op.outcome == "error":
            done["error"] = {"code": 13, "message": "Internal error encountered while generating the video."}
        elif op.outcome == "filtered":
            done["response"] = {"@type": kind, "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [FILTER_REASON]}
        else:
            params = op.body.get("parameters") or {}
            audio = MODELS[op.model].family != "2.0" and params.get("generateAudio") is True
            video = base64.b64encode(real_mp4(audio=audio)).decode()
            done["response"] = {
                "@type": kind,
                "raiMediaFilteredCount": 0,
                "videos": [{"bytesBase64Encoded": video, "mimeType": "video/mp4"}],
            }
        return JSONResponse(done)

    routes = [Route("/token", token, methods=["POST"]), Route("/{path:path}", api, methods=["GET", "POST"])]
    return Starlette(routes=routes), state
