"""MiniMax Hailuo: the task query and file bodies (§6, §7), the `base_resp` error table (§10) and the client.

See the package docstring for the flow and the UNCONFIRMED facts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from typing import Any, Final

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from app.providers.base import (
    AuthFailed,
    GenerationRequest,
    NotFoundAtVendor,
    ProviderError,
    RateLimited,
    Rejected,
    TaskSnapshot,
    Unavailable,
    VendorTask,
    VideoStatus,
)
from app.providers.http import by_status, json_body, request, retry_after, stream
from app.providers.minimax.mapping import PROVIDER, build_body, mode_of

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api.minimax.io"
POLL_INTERVAL: Final = 10.0  # §11: about every 10 s
RATE_LIMIT_WAIT: Final = 12.0  # 5 requests a minute (§11), when MiniMax sends no Retry-After
CREATE_PATH: Final = "/v1/video_generation"
QUERY_PATH: Final = "/v1/query/video_generation"
RETRIEVE_PATH: Final = "/v1/files/retrieve"

# ---------------------------------------------------------------------------------------------
# Responses (§6, §7)

# §6.1 plus the lower-case forms of the callback body (§9)
STATUS: dict[str, VideoStatus] = {
    "preparing": VideoStatus.queued,
    "queueing": VideoStatus.queued,
    "processing": VideoStatus.in_progress,
    "success": VideoStatus.completed,
    "fail": VideoStatus.failed,
    "failed": VideoStatus.failed,
}
# MiniMax reports no percentage: each state is worth a little more than the one before (monotone)
PROGRESS: dict[str, int] = {"preparing": 5, "queueing": 10, "processing": 50, "success": 100}

SENSITIVE: Final = frozenset({1026, 1027})


class _BaseResp(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    status_code: int = 0
    status_msg: str = ""


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    task_id: str | None = None
    status: str = ""
    file_id: str | int | None = None
    video_width: int | None = None
    video_height: int | None = None
    base_resp: _BaseResp = _BaseResp()


class _File(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    file_id: int | str | None = None
    bytes: int | None = None
    filename: str | None = None
    download_url: str | None = None
    backup_download_url: str | None = None


class _Retrieved(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    file: _File | None = None
    base_resp: _BaseResp = _BaseResp()


@dataclass(frozen=True)
class Query:
    """One parsed query: the snapshot, or (on `Success`) the file to retrieve first."""

    snapshot: TaskSnapshot
    file_id: str | None = None


def parse_query(raw: dict[str, Any]) -> Query:
    """A query (or callback) body → snapshot. A non-zero code outside `Fail` is the query's own error."""
    q = _Query.model_validate(raw)
    code, msg = q.base_resp.status_code, q.base_resp.status_msg
    key = q.status.strip().lower()
    status = STATUS.get(key)
    meta: dict[str, Any] = {"state": q.status}
    if status is VideoStatus.failed or (code in SENSITIVE and status is not VideoStatus.completed):
        return Query(
            TaskSnapshot(
                status=VideoStatus.failed,
                error_code=str(code) if code else "failed",
                error_message=msg if code else "MiniMax reported the task failed.",
                meta=meta,
            )
        )
    if code != 0:
        raise map_error(200, raw)
    if status is None:
        log.warning("minimax: unknown task status %r for task %s; polling again", q.status, q.task_id)
        status = VideoStatus.in_progress
        return Query(TaskSnapshot(status=status, progress=PROGRESS["processing"], poll_after=POLL_INTERVAL, meta=meta))
    if status is VideoStatus.completed:
        file_id = str(q.file_id) if q.file_id not in (None, "", 0) else None
        if file_id is None:
            return Query(
                TaskSnapshot(
                    status=VideoStatus.failed,
                    error_code="no_file_id",
                    error_message="MiniMax reported success without a file_id.",
                    meta=meta,
                )
            )
        snap = TaskSnapshot(
            status=status,
            progress=100,
            width=q.video_width or None,
            height=q.video_height or None,
            has_audio=False,
            meta={**meta, "file_id": file_id},
        )
        return Query(snap, file_id=file_id)
    return Query(TaskSnapshot(status=status, progress=PROGRESS[key], poll_after=POLL_INTERVAL, meta=meta))


# ---------------------------------------------------------------------------------------------
# Errors (§10)

ERRORS: dict[int, type[ProviderError]] = {
    1000: Unavailable,  # unknown error
    1001: Unavailable,  # request timeout
    1002: RateLimited,  # RPM
    1004: AuthFailed,  # not authorized / token not match group / login fail
    1008: Rejected,  # insufficient balance
    1024: Unavailable,  # internal error
    1026: Rejected,  # input sensitive
    1027: Rejected,  # output sensitive
    1033: Unavailable,  # system error
    1039: RateLimited,  # TPM
    1041: RateLimited,  # connection limit
    1042: Rejected,  # invisible character ratio
    2013: Rejected,  # invalid params
    2038: AuthFailed,  # real-name verification required: the operator's account setup
    2045: RateLimited,  # rate growth limit
    2049: AuthFailed,  # invalid api key
    2056: RateLimited,  # usage limit exceeded
}


def map_error(http_status: int, body: Any, *, retry_after: float | None = None) -> ProviderError:
    """`base_resp {status_code, status_msg}` (any HTTP status) → the ProviderError; a body without one → by
    HTTP status. Sensitive input or output at create is `moderation_blocked` for the client."""
    resp = body.get("base_resp") if isinstance(body, dict) else None
    code = resp.get("status_code") if isinstance(resp, dict) else None
    msg = resp.get("status_msg") if isinstance(resp, dict) else None
    if not isinstance(code, int) or isinstance(code, bool) or code == 0:
        cls = by_status(http_status) if http_status >= 400 else Unavailable
        if cls is Rejected and not isinstance(body, dict):
            cls = Unavailable  # an error page, not a MiniMax answer
        text = f"MiniMax returned HTTP {http_status}" + ("" if isinstance(body, dict) else " with a non-JSON body")
        return cls(
            PROVIDER, text + ".", vendor_code=f"http_{http_status}", retry_after=retry_after, status_code=http_status
        )
    text = f"MiniMax {code}: {msg or 'error'}"
    if code in SENSITIVE:
        return Rejected(PROVIDER, text, vendor_code="moderation_blocked", status_code=http_status)
    cls = ERRORS.get(code) or (Unavailable if http_status >= 500 else Rejected)
    if cls is RateLimited and retry_after is None:
        retry_after = RATE_LIMIT_WAIT
    return cls(PROVIDER, text, vendor_code=str(code), retry_after=retry_after, status_code=http_status)


def _code(body: dict[str, Any]) -> int:
    resp = body.get("base_resp")
    code = resp.get("status_code") if isinstance(resp, dict) else 0
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


# ---------------------------------------------------------------------------------------------
# Transport


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <api_key>` (§2), on create, query and retrieve alike."""

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class MiniMaxProvider:
    """MiniMax Hailuo through the v1 video API (create, query, files/retrieve)."""

    name = PROVIDER

    def __init__(
        self, client: httpx.AsyncClient, *, api_key: str, base_url: str = DEFAULT_BASE_URL, timeout: float = 60.0
    ) -> None:
        self._client = client
        self._auth = BearerAuth(api_key)
        # a common mistake: the base with the `/v1` prefix already on it (§1)
        self._base = base_url.rstrip("/").removesuffix("/v1")
        self._timeout = timeout

    async def _call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], float | None]:
        """The JSON body of a 2xx answer and its Retry-After; anything else raised as the mapped error.
        A non-zero `base_resp` in a 2xx body is left to the caller (a query's `Fail` carries one)."""
        headers = {"Accept": "application/json"}
        if json is not None:
            headers["Content-Type"] = "application/json"
        resp = await request(
            self._client,
            PROVIDER,
            method,
            f"{self._base}{path}",
            vendor="MiniMax",
            params=params,
            json=json,
            headers=headers,
            auth=self._auth,
            timeout=self._timeout,
        )
        body, wait = json_body(resp), retry_after(resp.headers)
        if not resp.is_success or not isinstance(body, dict):
            raise map_error(resp.status_code, body, retry_after=wait)
        return body, wait

    async def submit(self, req: GenerationRequest) -> VendorTask:
        body = build_body(req)
        data, wait = await self._call("POST", CREATE_PATH, json=body)
        if _code(data):
            raise map_error(200, data, retry_after=wait)
        task_id = data.get("task_id")
        if not isinstance(task_id, str | int) or isinstance(task_id, bool) or not str(task_id):
            raise Unavailable(PROVIDER, "MiniMax accepted the task but returned no task_id.", vendor_code="no_task_id")
        meta = {
            "model": req.model,
            "mode": mode_of(req),
            "duration": body["duration"],
            "resolution": body["resolution"],
        }
        return VendorTask(provider=PROVIDER, vendor_task_id=str(task_id), meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        data, wait = await self._call("GET", QUERY_PATH, params={"task_id": task.vendor_task_id})
        code, state = _code(data), str(data.get("status") or "").lower()
        if code == 2013 and not state:
            raise NotFoundAtVendor(PROVIDER, _message(data), vendor_code="2013")
        if code and code not in SENSITIVE and STATUS.get(state) is not VideoStatus.failed:
            raise map_error(200, data, retry_after=wait)  # the query's own error (rate limit, auth)
        try:
            parsed = parse_query(data)
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"unexpected query body: {exc.errors()[:1]}") from None
        snap = parsed.snapshot
        if parsed.file_id is None:
            return snap
        file = await self._retrieve(parsed.file_id)
        duration = task.meta.get("duration")
        meta = {**snap.meta, "backup_download_url": file.backup_download_url, "filename": file.filename}
        return TaskSnapshot(
            status=snap.status,
            progress=100,
            video_url=file.download_url,
            seconds=duration if isinstance(duration, int) else None,
            width=snap.width,
            height=snap.height,
            has_audio=False,
            meta=meta,
        )

    async def _retrieve(self, file_id: str) -> _File:
        data, wait = await self._call("GET", RETRIEVE_PATH, params={"file_id": file_id})
        code = _code(data)
        if code == 2013:
            raise NotFoundAtVendor(PROVIDER, _message(data), vendor_code="2013")
        if code:
            raise map_error(200, data, retry_after=wait)
        try:
            file = _Retrieved.model_validate(data).file
        except ValidationError as exc:
            raise Unavailable(PROVIDER, f"unexpected files/retrieve body: {exc.errors()[:1]}") from None
        if file is None or not (file.download_url or file.backup_download_url):
            raise Unavailable(PROVIDER, "MiniMax returned the file without a download_url.", vendor_code="no_output")
        if not file.download_url:
            return _File(**{**file.model_dump(), "download_url": file.backup_download_url})
        return file

    async def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        # a pre-signed CDN URL: no Authorization, so our key never reaches the storage host
        expired = "The MiniMax download URL has expired (valid for hours); the next poll retrieves a fresh one."
        backup = snap.meta.get("backup_download_url")
        kw: dict[str, Any] = {"expired": expired, "timeout": self._timeout, "follow_redirects": True}
        started = False
        try:
            async for chunk in stream(self._client, PROVIDER, snap.video_url, **kw):
                started = True
                yield chunk
        except (Unavailable, NotFoundAtVendor):
            if started or not isinstance(backup, str) or not backup or backup == snap.video_url:
                raise
            log.info("minimax: download of task %s failed; trying its backup_download_url", task.vendor_task_id)
            async for chunk in stream(self._client, PROVIDER, backup, **kw):
                yield chunk


def _message(data: dict[str, Any]) -> str:
    resp = data.get("base_resp")
    msg = resp.get("status_msg") if isinstance(resp, dict) else None
    return f"MiniMax does not know the task: {msg or 'invalid params'}"
