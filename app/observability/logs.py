"""Logging: plain text or JSON lines, request/task context from contextvars, and secret redaction.

Context and redaction are applied when a record is created (a record factory), so every handler —
ours, uvicorn's, pytest's caplog — sees the same redacted record with the same context fields.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.observability.metrics import route_label

CONTEXT_FIELDS = ("request_id", "task_id", "key_prefix", "provider")
REDACTED = "[redacted]"
ACCESS_LOG = "vidgate.access"
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # probes: DEBUG, not INFO

_fields: ContextVar[Mapping[str, Any]] = ContextVar("vidgate_log_fields", default=MappingProxyType({}))
# the request's scope["state"]: request_id and api_key_prefix land there after binding (other middleware,
# the auth dependency), so they are read when a record is made rather than copied up front
_request_state: ContextVar[Mapping[str, Any] | None] = ContextVar("vidgate_request_state", default=None)

# (pattern, replacement): keep the scheme or field name so a reader still knows what was there
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]{6,}=*"), rf"\1 {REDACTED}"),
    (re.compile(r"\b(Token)\s+[A-Za-z0-9._~+/\-]{12,}=*"), rf"\1 {REDACTED}"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), REDACTED),  # full keys; a 12-char display prefix stays
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_\-]+"), REDACTED),
    (
        re.compile(
            r"(?i)\b(api[_-]?key|access[_-]?key|secret[_-]?key|secret|password|signature)"
            r"([\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
)
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", *CONTEXT_FIELDS}


# what every pattern above needs somewhere in the text: one scan rules most lines out (the access log's)
_MAYBE_SECRET = re.compile(
    r"(?i)bearer|token|sk-[A-Za-z0-9_\-]{16}|whsec_|api[_-]?key|access[_-]?key|secret|password|signature"
)


def redact(text: str) -> str:
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


# -- context
def current_context() -> dict[str, Any]:
    out: dict[str, Any] = {}
    state = _request_state.get()
    if state is not None:
        if state.get("request_id"):
            out["request_id"] = state["request_id"]
        if state.get("api_key_prefix"):
            out["key_prefix"] = state["api_key_prefix"]
    out.update((k, v) for k, v in _fields.get().items() if v is not None)
    return out


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (task_id=..., provider=...) to every record logged inside the block."""
    token = _fields.set({**_fields.get(), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def bind(**fields: Any) -> None:
    """Add fields for the rest of the current context (an engine task's own asyncio task, say)."""
    _fields.set({**_fields.get(), **fields})


# -- records
def _prepare(record: logging.LogRecord) -> logging.LogRecord:
    """Context fields and redaction; idempotent, so the factory and the handler filter can both run it."""
    if hasattr(record, "_vidgate_ctx"):
        return record
    # private until emit: `extra={"task_id": ...}` must not collide with an attribute set here
    record._vidgate_ctx = current_context()
    try:
        message = record.getMessage()
    except Exception:
        message = None  # a malformed call: leave it to the handler's own error path
    if message is not None:
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def record_context(record: logging.LogRecord) -> dict[str, Any]:
    """The record's context fields; an explicit `extra=` value wins over the bound one."""
    _prepare(record)
    ctx: dict[str, Any] = dict(getattr(record, "_vidgate_ctx", {}))
    d = record.__dict__
    for key in CONTEXT_FIELDS:
        value = d.get(key)
        if value is not None:
            ctx[key] = value
    return ctx


_templates: dict[tuple[str, int, str, int], dict[str, Any]] = {}


def quick_record(
    name: str, level: int, msg: str, args: tuple[Any, ...], *, extra: dict[str, Any], ctx: dict[str, Any], clean: bool
) -> logging.LogRecord:
    """A record for a line logged once per request (the status poll's access line), made from a template
    of what never changes for one logger, message and thread (file, module, thread and process names)
    rather than by `LogRecord.__init__`, which looks them all up again. `msg % args` and `ctx` must need
    no redaction when `clean` (the caller vouches); otherwise the formatter redacts the context fields."""
    key = (name, level, msg, threading.get_ident())
    template = _templates.get(key)
    if template is None:
        template = dict(logging.LogRecord(name, level, __file__, 0, msg, (), None).__dict__)
        _templates[key] = template
    record = logging.LogRecord.__new__(logging.LogRecord)
    d = record.__dict__
    d.update(template)
    created = time.time()
    d["created"] = created
    d["msecs"] = int((created - int(created)) * 1000) + 0.0
    d["relativeCreated"] = template["relativeCreated"] + (created - template["created"]) * 1000
    d["args"] = args
    d.update(extra)
    d["_vidgate_ctx"] = ctx
    d["_vidgate_clean"] = clean
    return record


class ContextFilter(logging.Filter):
    """Puts the context fields on the record as attributes (for `%(request_id)s` style formats)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in record_context(record).items():
            setattr(record, key, value)
        return True


_factory_installed = False


def _install_record_factory() -> None:
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _prepare(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _factory_installed = True


# -- formatting
def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, context fields, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = record_context(record)
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        clean = record.__dict__.get("_vidgate_clean")
        out.update((k, v if clean or not isinstance(v, str) else redact(v)) for k, v in ctx.items())
        for key, value in _extras(record).items():
            out.setdefault(key, redact(value) if isinstance(value, str) else value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = redact(record.exc_text)
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger: message key=value ...` with the context fields that are set.

    The message, the exception and the stack were redacted when the record was made (`_prepare`); what is
    added here is redacted here: the context fields (a request id is the client's to choose). The timestamp
    is formatted once per second, not per line (the access log writes one line per request)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second[0]:
            self._second = (second, time.strftime(self.default_time_format, self.converter(second)))
        return f"{self._second[1]},{int(record.msecs):03d}"  # as logging.Formatter.default_msec_format

    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(f"{k}={v}" for k, v in record_context(record).items())
        line = super().format(record)
        if ctx:
            if not record.__dict__.get("_vidgate_clean"):
                ctx = redact(ctx)
            head, sep, tail = line.partition("\n")
            line = f"{head} [{ctx}]{sep}{tail}"
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Looks sys.stderr up at each write, so a swapped stream (test capture, a closed pipe) is followed."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Install our handler on the root logger (replacing a previous one of ours) and return it."""
    _install_record_factory()
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_vidgate", False):
            root.removeHandler(h)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler._vidgate = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if settings.log_json else TextFormatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # httpx logs every vendor request at INFO (each create, poll and download): a line per request is
    # CPU a busy gateway spends on the log, and its failures are logged by vidgate itself; kept at DEBUG
    quiet = root.level > logging.DEBUG
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
    return handler


# -- access log
class RequestLogMiddleware:
    """Binds the request's context for every record logged while it runs; one access line at the end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOG)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        token = _request_state.set(state)
        start = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            status = 500
            raise
        finally:
            self._access(scope, status, time.perf_counter() - start)
            _request_state.reset(token)

    def _access(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_label(scope)
        if status >= 500:
            level = logging.WARNING
        elif route in QUIET_ROUTES:
            level = logging.DEBUG
        else:
            level = logging.INFO
        if not self.log.isEnabledFor(level):
            return
        method = scope["method"]
        ms = round(seconds * 1000, 1)
        self.log.log(
            level,
            "%s %s %d %.1fms",
            method,
            route,
            status,
            ms,
            extra={"method": method, "route": route, "path": scope["path"], "status": status, "duration_ms": ms},
        )
