"""Rendering: the Jinja2 environment (autoescaped: a prompt is always text), the template filters, the
security headers every dashboard response carries, and the static files served from the package."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from starlette.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
STATIC_FILES = {p.name: p for p in STATIC_DIR.iterdir() if p.suffix in STATIC_TYPES} if STATIC_DIR.is_dir() else {}

# everything from this origin only: no CDN, no inline script or style, not framed
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NAV = (
    ("videos", "Videos"),
    ("keys", "Keys"),
    ("channels", "Channels"),
    ("usage", "Usage"),
    ("playground", "Playground"),
)
STATUS_BADGES = {
    "queued": "neutral",
    "in_progress": "info",
    "completed": "ok",
    "failed": "bad",
    "active": "ok",
    "disabled": "warn",
    "expired": "warn",
    "revoked": "bad",
    "ok": "ok",
    "cooling_down": "warn",
    "unknown": "neutral",
}


def when(value: float | None) -> str:
    if value is None:
        return "—"
    return dt.datetime.fromtimestamp(float(value), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: float | None) -> str:
    return "" if value is None else dt.datetime.fromtimestamp(float(value), dt.UTC).isoformat()


def number(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return f"{int(value):,}"


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(when=when, iso=iso, number=number)
templates.env.globals.update(nav=NAV, badges=STATUS_BADGES)


def render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200) -> Response:
    resp = templates.TemplateResponse(request, name, context, status_code=status_code)
    resp.headers.update(HEADERS)
    return resp


R = TypeVar("R", bound=Response)


def secure(resp: R) -> R:
    resp.headers.update(HEADERS)
    return resp
