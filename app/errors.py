"""One error tree, rendered by one handler as OpenAI's envelope:
`{"error": {"message", "type", "param", "code"}}`, all four keys present."""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("vidgate.errors")


class GatewayError(Exception):
    status_code = 500
    type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status_code = 400
    type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status_code = 413


class AuthenticationFailed(GatewayError):
    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status_code = 403
    type = "invalid_request_error"


class NotFound(GatewayError):
    status_code = 404
    type = "invalid_request_error"


class Conflict(GatewayError):
    status_code = 409
    type = "invalid_request_error"


class MethodNotAllowed(GatewayError):
    status_code = 405
    type = "invalid_request_error"


class RateLimited(GatewayError):
    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        if retry_after is not None:
            # the SDK ignores waits above 120 s and retries on its own backoff instead
            self.headers.setdefault("Retry-After", str(max(1, min(120, round(retry_after)))))


class InsufficientQuota(RateLimited):
    """OpenAI's shape for an exhausted balance: 429, and the SDK is told not to retry."""

    type = "insufficient_quota"
    code = "insufficient_quota"

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.headers["x-should-retry"] = "false"


class UpstreamError(GatewayError):
    status_code = 502
    type = "server_error"
    code = "upstream_error"


class UpstreamUnavailable(GatewayError):
    status_code = 503
    type = "server_error"
    code = "upstream_unavailable"


class Error(BaseModel):
    """The body of every error (documentation of `GatewayError.body()`, as in OpenAI's spec)."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: Error


class StorageFull(GatewayError):
    """The database or the asset storage has no space left: the client may retry later."""

    status_code = 503
    type = "server_error"
    code = "storage_full"

    def __init__(
        self,
        message: str = "The gateway's storage is full, so the request could not be stored. Try again later.",
        *,
        retry_after: int = 30,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.headers.setdefault("Retry-After", str(retry_after))


_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def is_storage_full(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps) says a disk is full: OSError ENOSPC/EDQUOT, SQLite's SQLITE_FULL,
    PostgreSQL's disk_full (53100; asyncpg's DiskFullError). Only the OS's or the database's own words."""
    stack: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, sqlite3.Error) and (
            getattr(e, "sqlite_errorcode", None) == _SQLITE_FULL or "database or disk is full" in str(e)
        ):
            return True
        if _PG_DISK_FULL in (getattr(e, "sqlstate", None), getattr(e, "pgcode", None)):
            return True
        stack.extend([getattr(e, "orig", None), e.__cause__, e.__context__])  # SQLAlchemy wraps the driver's
    return False


def unexpected(exc: BaseException, *, context: str = "") -> GatewayError:
    """What a client is told about an error nothing else handled (logged here)."""
    if is_storage_full(exc):
        log.error("storage is full%s: %r", context, exc)
        return StorageFull()
    log.error("unhandled error%s", context, exc_info=exc)
    return GatewayError("The server had an error while processing your request.")


def error_response(exc: GatewayError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


_HTTP_STATUS_ERRORS: dict[int, type[GatewayError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    429: RateLimited,
}


def _first_param(errors: list[Any]) -> str | None:
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        if loc:
            return ".".join(loc)
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway(_: Request, exc: GatewayError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        param = _first_param(errors)
        msg = errors[0].get("msg", "Invalid request") if errors else "Invalid request"
        text = f"Invalid value for '{param}': {msg}" if param else str(msg)
        return error_response(InvalidRequest(text, param=param, code="invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _HTTP_STATUS_ERRORS.get(exc.status_code)
        if exc.status_code == 404:
            err: GatewayError = NotFound(
                "Unknown route. See the API reference for the available endpoints.", code="unknown_url"
            )
        elif exc.status_code == 405:
            err = MethodNotAllowed("Method not allowed for this route.", code="method_not_allowed")
        elif cls is not None:
            err = cls(str(exc.detail))
        else:
            err = GatewayError(str(exc.detail))
            err.status_code = exc.status_code
        return JSONResponse(err.body(), status_code=exc.status_code, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(unexpected(exc))
