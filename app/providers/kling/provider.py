"""Kling transport: AK/SK JWT auth (§2.1), error mapping (§3.1) and the HTTP calls of `KlingProvider`."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, Final

import httpx
import jwt
from pydantic import ValidationError

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    NotFoundAtVendor,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    Unsupported,
    VendorTask,
    VideoStatus,
)
from app.providers.http import by_status, json_body, request, retry_after, stream
from app.providers.kling.mapping import (
    _Task,
    build_body,
    build_extend_body,
    family_for,
    snapshot,
)
from app.providers.kling.models import EXTEND, FAMILIES, PROVIDER, T2V

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api-singapore.klingai.com"

TOKEN_TTL: Final = 1800  # the official samples' exp = now + 30 min
TOKEN_SKEW: Final = 5  # the official samples' nbf = now - 5
TOKEN_REFRESH_MARGIN: Final = 60  # mint a new token this long before the cached one expires

# --------------------------------------------------------------------------------------------
# Errors (§3.1)

ERRORS: dict[int, type[ProviderError]] = {
    1000: AuthFailed,
    1001: AuthFailed,
    1002: AuthFailed,
    1003: AuthFailed,
    1004: AuthFailed,
    1100: Rejected,
    1101: Rejected,
    1102: Rejected,  # account / arrears / balance: HTTP 429 but not retryable
    1103: AuthFailed,  # this account may not use the API or model: an operator problem, try another key
    1200: Rejected,
    1201: Rejected,
    1202: Rejected,
    1203: Rejected,
    1300: Rejected,
    1301: Rejected,
    1302: RateLimited,
    1303: RateLimited,
    1304: AuthFailed,  # IP allow-list: our deployment is refused, not the request
    5000: Unavailable,
    5001: Unavailable,
    5002: Unavailable,
}
_MIN_BACKOFF: Final = 1.0  # §3.2: back off at least 1 s on 1302/1303


def map_error(http_status: int, body: dict[str, Any] | None, *, retry_after: float | None = None) -> ProviderError:
    """The ProviderError for a Kling error reply: by business code first, HTTP status second."""
    body = body if isinstance(body, dict) else {}
    code = body.get("code")
    message = str(body.get("message") or f"Kling returned HTTP {http_status}")
    cls = ERRORS.get(code) if isinstance(code, int) else None
    if cls is None:
        cls = _by_range(code) or by_status(http_status)
    vendor_code = str(code) if code is not None else f"http_{http_status}"
    if cls is RateLimited:
        retry_after = max(retry_after or 0.0, _MIN_BACKOFF)
    return cls(PROVIDER, message, vendor_code=vendor_code, retry_after=retry_after, status_code=http_status)


def _by_range(code: Any) -> type[ProviderError] | None:
    if not isinstance(code, int) or code == 0:
        return None
    if 1000 <= code < 1100:
        return AuthFailed
    if 1100 <= code < 1300:
        return Rejected
    if code >= 5000:
        return Unavailable
    return None


# --------------------------------------------------------------------------------------------
# Auth (§2.1)


class KlingAuth(httpx.Auth):
    """Bearer JWT minted from AK/SK; the SK is the HMAC key as UTF-8 text, never base64-decoded."""

    requires_response_body = True  # to read the business code of a 401 before re-minting

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: int = TOKEN_REFRESH_MARGIN,
    ) -> None:
        self._ak = access_key
        self._sk = secret_key
        self._clock = clock
        self._margin = refresh_margin
        self._token: str | None = None
        self._exp = 0

    def token(self, *, force: bool = False) -> str:
        now = int(self._clock())
        if force or self._token is None or now >= self._exp - self._margin:
            self._exp = now + TOKEN_TTL
            claims = {"iss": self._ak, "exp": self._exp, "nbf": now - TOKEN_SKEW}
            self._token = jwt.encode(claims, self._sk, algorithm="HS256", headers={"alg": "HS256", "typ": "JWT"})
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        # 1003/1004: our token's time window was refused (clock skew); one fresh token, then give up
        if response.status_code == 401 and _code_of(response) in (1003, 1004):
            request.headers["Authorization"] = f"Bearer {self.token(force=True)}"
            yield request


def _code_of(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


# --------------------------------------------------------------------------------------------


class KlingProvider:
    """Kling's classic task API: text2video / image2video / video-extend over one injected client."""

    name = PROVIDER

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        access_key: str,
        secret_key: str,
        base_url: str = DEFAULT_BASE_URL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._auth = KlingAuth(access_key, secret_key, clock=clock)

    async def submit(self, req: GenerationRequest) -> VendorTask:
        if req.operation == "extend":
            video_id = await self._source_video_id(req)
            family, body = EXTEND, build_extend_body(req, video_id)
        elif req.operation == "create":
            family, body = family_for(req), build_body(req)
        else:
            raise Unsupported(PROVIDER, f"Kling cannot {req.operation} a video", vendor_code="unsupported")
        data = await self._call("POST", f"/v1/videos/{family}", body)
        task = _parse_task(data)
        meta: dict[str, Any] = {"family": family, "model": req.model, "external_task_id": req.task_id}
        if family == EXTEND:
            meta["parent_video_id"] = body["video_id"]
        return VendorTask(provider=PROVIDER, vendor_task_id=task.task_id, meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        family = _family_of(task)
        data = await self._call("GET", f"/v1/videos/{family}/{task.vendor_task_id}")
        try:
            return snapshot(data)
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"unexpected Kling task shape: {exc}", vendor_code="bad_body") from None

    async def check_credentials(self) -> str | None:
        """The dashboard's Test: listing one text-to-video task costs nothing and needs a valid JWT."""
        await self._call("GET", "/v1/videos/text2video?pageNum=1&pageSize=1")
        return "Kling accepted the access key and secret (listed tasks)."

    async def find_by_external_id(self, external_task_id: str, *, family: str) -> VendorTask | None:
        """The task created with `external_task_id` (vidgate's id) on `family`, or None if Kling has none."""
        if family not in FAMILIES:
            raise ValueError(f"unknown Kling family {family!r}")
        try:
            data = await self._call("GET", f"/v1/videos/{family}/{external_task_id}")
        except NotFoundAtVendor:
            return None
        task = _parse_task(data)
        meta: dict[str, Any] = {"family": family, "external_task_id": external_task_id}
        return VendorTask(provider=PROVIDER, vendor_task_id=task.task_id, meta=meta)

    async def recover(self, req: GenerationRequest) -> VendorTask | None:
        """After a crash between submit and commit: the task Kling already holds for `req`, if any."""
        return await self.find_by_external_id(req.task_id, family=family_for(req))

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # the CDN URL is pre-authorised: our bearer token must not travel to it
        return stream(
            self._client, PROVIDER, snap.video_url, expired="Kling no longer serves this video (kept 30 days)"
        )

    # ----------------------------------------------------------------------------------------

    async def _source_video_id(self, req: GenerationRequest) -> str:
        explicit = req.extras.get("video_id")
        if explicit:
            return str(explicit)
        if req.source is None:
            raise Rejected(PROVIDER, "extension needs a source video", vendor_code="no_source")
        known = req.source.meta.get("video_id")
        if known:
            return str(known)
        # the source row may predate video_id being stored: ask Kling for it
        snap = await self.poll(req.source)
        video_id = snap.meta.get("video_id")
        if snap.status != VideoStatus.completed or not video_id:
            raise Rejected(PROVIDER, "the source video is not finished", vendor_code="source_not_ready")
        return str(video_id)

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = await request(
            self._client,
            PROVIDER,
            method,
            f"{self._base}{path}",
            vendor="Kling",
            json=body,
            auth=self._auth,
            headers={"Content-Type": "application/json"},
        )
        payload = json_body(resp)
        if not isinstance(payload, dict):
            if resp.status_code < 400 or resp.status_code >= 500:
                raise Unavailable(
                    PROVIDER,
                    f"unparsable Kling reply (HTTP {resp.status_code})",
                    vendor_code="bad_body",
                    status_code=resp.status_code,
                )
            raise map_error(resp.status_code, None, retry_after=retry_after(resp.headers))
        if resp.status_code != 200 or payload.get("code") != 0:
            if resp.status_code == 404 and payload.get("code") == 1203 and method == "GET":
                raise NotFoundAtVendor(
                    PROVIDER,
                    str(payload.get("message") or "task not found"),
                    vendor_code="1203",
                    status_code=404,
                )
            raise map_error(resp.status_code, payload, retry_after=retry_after(resp.headers))
        data = payload.get("data")
        if isinstance(data, list) and method == "GET":
            return {"items": data}  # a task listing
        if not isinstance(data, dict):
            raise Unavailable(PROVIDER, "Kling reply has no data object", vendor_code="bad_body")
        return data


def _parse_task(data: dict[str, Any]) -> _Task:
    try:
        return _Task.model_validate(data)
    except ValidationError as exc:
        raise Unavailable(PROVIDER, f"unexpected Kling task shape: {exc}", vendor_code="bad_body") from None


def _family_of(task: VendorTask) -> str:
    family = task.meta.get("family", T2V)
    return family if family in FAMILIES else T2V
