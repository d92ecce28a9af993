"""A fake Volcengine cv endpoint for Jimeng video (jimeng.md §1-§5, following its §7 checklist).

`POST /?Action=...&Version=2022-08-31`, routed by `Action`; every request must carry a valid V4
signature (§5.6: recomputed with the known secret, `X-Date` within ±15 min of the fake's clock).
Gateway failures answer in the `ResponseMetadata.Error` shape, service failures in the `{code, message}`
shape. A task walks one state per GetResult: `in_queue` → `generating` → `done`; tasks older than 12 h
or unknown ids are `not_found`; result URLs expire after 1 h. Faults are injected with `state.fail_next`,
`state.doom_next_task` and `state.expire`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.providers.volc_sign import canonical_query, sha256_hex, sign
from tests.fakes.assets import real_mp4

ACCESS_KEY = "AKLTfakeAccessKey000000000000000000000000000"
SECRET_KEY = "ZmFrZVNlY3JldEtleTAwMDAwMDAwMDAwMDAwMDAwMA=="
VERSION = "2022-08-31"
ACTIONS = ("CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult")
MAX_SKEW = 15 * 60
TASK_TTL = 12 * 3600
URL_TTL = 3600
MAX_IMAGE = 4 * 1024 * 1024 + 700 * 1024

# req_key → (accepted image counts, documents `frames`) per §2
KEYS: dict[str, tuple[tuple[int, ...], bool]] = {
    "jimeng_t2v_v30": ((0,), True),
    "jimeng_t2v_v30_1080p": ((0,), True),
    "jimeng_i2v_first_v30": ((1,), True),
    "jimeng_i2v_first_v30_1080": ((1,), True),
    "jimeng_i2v_first_tail_v30": ((2,), True),
    "jimeng_i2v_first_tail_v30_1080": ((2,), True),
    "jimeng_ti2v_v30_pro": ((0, 1), True),
    "jimeng_vgfm_t2v_l20": ((0,), False),
    "jimeng_vgfm_i2v_l20": ((1,), False),
}
RATIOS = {"16:9", "4:3", "1:1", "3:4", "9:16", "21:9"}

# A real H.264 MP4, large enough to arrive in several chunks.
VIDEO_BYTES = real_mp4()

GATEWAY: dict[str, tuple[int, int]] = {  # Code → (CodeN, HTTP) per §4.2
    "MissingParameter": (100002, 400),
    "MissingAuthenticationToken": (100003, 401),
    "MissingSignature": (100005, 401),
    "InvalidTimestamp": (100006, 400),
    "ServiceNotFound": (100007, 404),
    "InvalidActionOrVersion": (100008, 404),
    "InvalidAccessKey": (100009, 401),
    "SignatureDoesNotMatch": (100010, 401),
}

_AUTH_RE = re.compile(
    r"^HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/request, ?"
    r"SignedHeaders=([a-z0-9;\-]+), ?Signature=([0-9a-f]{64})$"
)


def verify_signature(
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    secrets_by_ak: Mapping[str, str],
    now: float,
) -> str | None:
    """§5.6. `headers` keyed by lowercase name. Returns the gateway error Code, or None if valid."""
    auth = headers.get("authorization")
    if not auth:
        return "MissingAuthenticationToken"
    m = _AUTH_RE.match(auth)
    if not m:
        return "MissingSignature"
    ak, short_date, region, service, signed, signature = m.groups()
    if service != "cv":
        return "ServiceNotFound"
    if region != "cn-north-1":
        return "SignatureDoesNotMatch"
    x_date = headers.get("x-date", "")
    try:
        stamp = datetime.strptime(x_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return "InvalidTimestamp"
    if short_date != x_date[:8] or abs(now - stamp) > MAX_SKEW:
        return "InvalidTimestamp"
    secret = secrets_by_ak.get(ak)
    if secret is None:
        return "InvalidAccessKey"
    payload_hash = sha256_hex(body)
    names = signed.split(";")
    if "x-content-sha256" in names and headers.get("x-content-sha256") != payload_hash:
        return "SignatureDoesNotMatch"
    if any(n not in headers for n in names):
        return "SignatureDoesNotMatch"
    expected = sign(
        access_key=ak,
        secret_key=secret,
        method=method,
        path=path,
        query=canonical_query(query),
        headers={n: headers[n] for n in names},
        payload_hash=payload_hash,
        x_date=x_date,
    )
    if not hmac.compare_digest(expected.signature, signature):
        return "SignatureDoesNotMatch"
    return None


@dataclass
class Fault:
    """One injected failure: a service-shaped error, a non-JSON body, or a hang."""

    action: str | None  # None = the next request of any action
    http: int = 500
    code: int = 50500
    message: str = "Internal Error"
    garbage: bool = False
    hang: bool = False
    retry_after: str | None = None


@dataclass
class FakeTask:
    task_id: str
    req_key: str
    body: dict[str, Any]
    created: float
    polls: int = 0
    fail_code: int | None = None
    fail_message: str = ""
    forced: str | None = None  # e.g. "expired"


@dataclass
class Received:
    action: str | None
    headers: dict[str, str]
    body: Any


@dataclass
class FakeState:
    access_key: str
    secret_key: str
    clock: Callable[[], float]
    hang_seconds: float = 3600.0
    requests: list[Received] = field(default_factory=list)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    doomed: tuple[int, str] | None = None

    def fail_next(self, action: str | None = None, **kw: Any) -> None:
        self.faults.append(Fault(action=action, **kw))

    def doom_next_task(self, code: int = 50516, message: str = "Post Video Risk Not Pass") -> None:
        """The next submitted task fails post-moderation when it would be done (HTTP 400, data null)."""
        self.doomed = (code, message)

    def expire(self, task_id: str) -> None:
        self.tasks[task_id].forced = "expired"

    def bodies(self, action: str) -> list[Any]:
        return [r.body for r in self.requests if r.action == action]

    def _take_fault(self, action: str) -> Fault | None:
        for i, f in enumerate(self.faults):
            if f.action in (None, action):
                return self.faults.pop(i)
        return None


def _request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(9).upper()


def _service(code: int, message: str, data: Any, http: int = 200, **headers: str) -> JSONResponse:
    body = {
        "code": code,
        "data": data,
        "message": message,
        "request_id": _request_id(),
        "status": code,
        "time_elapsed": "12.3456ms",
    }
    return JSONResponse(body, status_code=http, headers=headers or None)


def _gateway(code: str, action: str | None, message: str = "") -> JSONResponse:
    code_n, http = GATEWAY[code]
    meta = {
        "RequestId": _request_id(),
        "Action": action or "",
        "Version": VERSION,
        "Service": "cv",
        "Region": "cn-north-1",
        "Error": {"CodeN": code_n, "Code": code, "Message": message or code},
    }
    return JSONResponse({"ResponseMetadata": meta}, status_code=http)


def _bad(detail: str) -> JSONResponse:
    # the real generic parameter code is UNCONFIRMED (§4.1); 50400 is invented
    return _service(50400, f"Invalid Parameter: {detail}", None, http=400)


def validate_submit(body: Any) -> str | None:
    """§2 rules by req_key; returns what is wrong, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    key = body.get("req_key")
    if key not in KEYS:
        return f"unknown req_key {key!r}"
    counts, has_frames = KEYS[key]
    if "image_urls" in body and "binary_data_base64" in body:
        return "send image_urls or binary_data_base64, not both"
    images = body.get("image_urls", body.get("binary_data_base64", []))
    if not isinstance(images, list) or len(images) not in counts:
        return f"{key} takes {' or '.join(map(str, counts))} image(s)"
    prompt = body.get("prompt")
    if not (isinstance(prompt, str) and prompt.strip()) and not (key == "jimeng_ti2v_v30_pro" and images):
        return "prompt is required"
    if "seed" in body and (not isinstance(body["seed"], int) or isinstance(body["seed"], bool)):
        return "seed must be an integer"
    if has_frames and "frames" in body and body["frames"] not in (121, 241):
        return "frames must be 121 or 241"
    if not images and "aspect_ratio" in body and body["aspect_ratio"] not in RATIOS:
        return f"aspect_ratio {body['aspect_ratio']!r} is not supported"
    for url in body.get("image_urls", []):
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            return "image_urls must be http(s) URLs"
    for b64 in body.get("binary_data_base64", []):
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, TypeError):
            return "binary_data_base64 is not valid base64"
        if len(raw) > MAX_IMAGE:
            return "image larger than 4.7MB"
        if not raw.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
            return "image must be JPEG or PNG"
    return None


def make_app(
    *,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    clock: Callable[[], float] = time.time,
) -> tuple[Starlette, FakeState]:
    state = FakeState(access_key=access_key, secret_key=secret_key, clock=clock)

    async def api(request: Request) -> Response:
        raw = await request.body()
        action, version = request.query_params.get("Action"), request.query_params.get("Version")
        try:
            parsed: Any = json.loads(raw or b"null")
        except ValueError:
            parsed = raw
        state.requests.append(Received(action, dict(request.headers), parsed))
        if not action or not version:
            return _gateway("MissingParameter", action, "Action and Version are required")
        if action not in ACTIONS or version != VERSION:
            return _gateway("InvalidActionOrVersion", action, f"{action} {version}")
        denied = verify_signature(
            method=request.method,
            path=request.url.path,
            query=request.query_params.multi_items(),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=raw,
            secrets_by_ak={state.access_key: state.secret_key},
            now=state.clock(),
        )
        if denied:
            return _gateway(denied, action)
        if (fault := state._take_fault(action)) is not None:
            if fault.hang:
                await asyncio.sleep(state.hang_seconds)
            if fault.garbage:
                return Response(b"<html>502 Bad Gateway</html>", status_code=fault.http)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return _service(fault.code, fault.message, None, http=fault.http, **headers)
        if parsed is raw:
            return _bad("body is not JSON")
        if action == "CVSync2AsyncSubmitTask":
            return _submit(parsed)
        return _result(parsed, str(request.base_url))

    def _submit(body: Any) -> Response:
        if (problem := validate_submit(body)) is not None:
            return _bad(problem)
        task = FakeTask(str(7392616336519610409 + len(state.tasks)), body["req_key"], body, state.clock())
        if state.doomed:
            task.fail_code, task.fail_message = state.doomed
            state.doomed = None
        state.tasks[task.task_id] = task
        return _service(10000, "Success", {"task_id": task.task_id})

    def _result(body: Any, base: str) -> Response:
        if not isinstance(body, dict) or not body.get("req_key") or not body.get("task_id"):
            return _bad("req_key and task_id are required")
        task = state.tasks.get(str(body["task_id"]))
        # a req_key differing from the submit's: real behaviour UNCONFIRMED (§7.5)
        if task is None or task.req_key != body["req_key"] or state.clock() - task.created > TASK_TTL:
            return _service(10000, "Success", {"status": "not_found", "video_url": ""})
        if task.forced:
            return _service(10000, "Success", {"status": task.forced, "video_url": ""})
        task.polls += 1
        if task.polls < 3:
            status = "in_queue" if task.polls == 1 else "generating"
            return _service(10000, "Success", {"status": status, "video_url": ""})
        if task.fail_code is not None:
            return _service(task.fail_code, task.fail_message, None, http=400)
        url = f"{base}media/{task.task_id}.mp4?X-Expires={int(state.clock()) + URL_TTL}"
        return _service(10000, "Success", {"aigc_meta_tagged": False, "status": "done", "video_url": url})

    async def media(request: Request) -> Response:
        task = state.tasks.get(request.path_params["task_id"])
        expires = int(request.query_params.get("X-Expires", "0"))
        if task is None:
            return Response(b"NoSuchKey", status_code=404)
        if state.clock() > expires:
            return Response(b"Request has expired", status_code=403)
        return Response(VIDEO_BYTES, media_type="video/mp4")

    app = Starlette(routes=[Route("/", api, methods=["POST"]), Route("/media/{task_id}.mp4", media, methods=["GET"])])
    return app, state
