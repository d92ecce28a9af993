"""Dashboard sign-in: a signed, expiring session cookie, a per-session CSRF token, and the same-origin check.

The cookie holds no secret: `<issued>.<expires>.<nonce>.<mac>`, the MAC keyed by a key derived from the
gateway's signing secret (so every replica accepts every replica's sessions) and the admin token (so
changing the token ends every session). The admin token itself never reaches the browser after sign-in.

State-changing requests need both: the browser's own word that the request comes from this origin
(`Sec-Fetch-Site: same-origin`, or an `Origin` equal to ours) — a page on another port of 127.0.0.1 is
same-site for cookies, so SameSite alone is no defence — and the session's CSRF token, which a page on
another origin cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.exceptions import HTTPException

from app.config import Settings
from app.deps import get_gateway
from app.errors import AuthenticationFailed, PermissionDenied, RateLimited
from app.gateway import Gateway
from app.keys.access import client_ip
from app.keys.limits import LimiterUnavailable

log = logging.getLogger("vidgate.dashboard")

COOKIE = "vidgate_dashboard"
SESSION_TTL_S = 12 * 3600
SIGN_IN_LIMIT = 10  # attempts per client address per minute
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
PREFIX = "/dashboard"


@dataclass(frozen=True)
class DashboardSession:
    issued: int
    expires: int
    nonce: str
    csrf: str


def admin_token(settings: Settings) -> str:
    return settings.admin_token.get_secret_value() if settings.admin_token else ""


def enabled(settings: Settings) -> bool:
    return bool(admin_token(settings))


def _key(gw: Gateway) -> bytes:
    token_hash = hashlib.sha256(admin_token(gw.settings).encode()).digest()
    return hashlib.sha256(b"vidgate dashboard session\n" + gw.signer.secret + b"\n" + token_hash).digest()


def _mac(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def token_matches(gw: Gateway, given: str) -> bool:
    """Constant-time comparison with VIDGATE_ADMIN_TOKEN (never true while it is unset)."""
    token = admin_token(gw.settings)
    # digests first: compare_digest's time then says nothing about either length
    same = hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest())
    return bool(token) and same


def new_cookie(gw: Gateway, *, at: float | None = None) -> str:
    issued = int(time.time() if at is None else at)
    body = f"{issued}.{issued + SESSION_TTL_S}.{secrets.token_urlsafe(18)}"
    return body + "." + _mac(_key(gw), "session\n" + body)


def read_cookie(gw: Gateway, value: str | None, *, at: float | None = None) -> DashboardSession | None:
    if not value or not enabled(gw.settings):
        return None
    parts = value.split(".")
    if len(parts) != 4:
        return None
    issued, expires, nonce, mac = parts
    key = _key(gw)
    body = f"{issued}.{expires}.{nonce}"
    if not hmac.compare_digest(_mac(key, "session\n" + body).encode(), mac.encode("utf-8", "surrogatepass")):
        return None
    try:
        if int(expires) <= (time.time() if at is None else at):
            return None
    except ValueError:
        return None
    return DashboardSession(int(issued), int(expires), nonce, _mac(key, "csrf\n" + nonce)[:43])


def is_https(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or (settings.public_base_url or "").startswith("https://")


def _origins(request: Request, settings: Settings) -> set[str]:
    own = {f"{request.url.scheme}://{request.headers.get('host', '')}".lower()}
    if settings.public_base_url:
        u = urlsplit(settings.public_base_url)
        own.add(f"{u.scheme}://{u.netloc}".lower())
    return own


def same_origin(request: Request, settings: Settings) -> bool:
    """What the browser says about where a request comes from. Clients that send neither header (curl,
    scripts) are no cross-site threat; they still need the CSRF token."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin.lower().rstrip("/") not in _origins(request, settings):
        return False
    return True


async def limit_sign_in(gw: Gateway, request: Request) -> None:
    ip = client_ip(request, gw.settings) or "unknown"
    try:
        decision = await gw.limiter.hit(f"dashboard-sign-in:{ip}", limit=SIGN_IN_LIMIT, window_s=60.0)
    except LimiterUnavailable as exc:
        log.error("rate limiter unavailable, allowing the sign-in attempt: %s", exc)
        return
    if not decision.allowed:
        raise RateLimited(
            f"Too many sign-in attempts. Retry in {decision.retry_after:.0f} s.",
            retry_after=max(1.0, decision.retry_after),
        )


# -- dependencies -------------------------------------------------------------------------------------


def _current(request: Request, gw: Gateway) -> DashboardSession | None:
    return read_cookie(gw, request.cookies.get(COOKIE))


async def page_session(request: Request, gw: Annotated[Gateway, Depends(get_gateway)]) -> DashboardSession:
    """For pages: no valid session -> 303 to the sign-in form (which says when the dashboard is off)."""
    found = _current(request, gw)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "Sign in first.", headers={"Location": f"{PREFIX}/sign-in?next={quote(target)}"})
    return found


async def data_session(request: Request, gw: Annotated[Gateway, Depends(get_gateway)]) -> DashboardSession:
    """For data endpoints (fetched by the page's script): no valid session -> 401."""
    if not enabled(gw.settings):
        raise PermissionDenied(
            "The dashboard is disabled: set VIDGATE_ADMIN_TOKEN to enable it.", code="dashboard_disabled"
        )
    found = _current(request, gw)
    if found is None:
        raise AuthenticationFailed("Sign in to the dashboard first.", code="dashboard_session_required")
    return found


async def _given_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        value = (await request.form()).get(CSRF_FIELD)  # cached: the handler reads the same form
        return value if isinstance(value, str) else ""
    return ""


async def csrf_session(
    request: Request,
    gw: Annotated[Gateway, Depends(get_gateway)],
    sess: Annotated[DashboardSession, Depends(data_session)],
) -> DashboardSession:
    """For state-changing requests: a session, the same origin, and the session's CSRF token (a form field
    `csrf_token` of an urlencoded form, or the `X-CSRF-Token` header of a script's request)."""
    if not same_origin(request, gw.settings):
        raise PermissionDenied("Cross-site request refused.", code="csrf_origin")
    given = await _given_token(request)
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), sess.csrf.encode()):
        raise PermissionDenied("Missing or invalid CSRF token; reload the page.", code="csrf_token")
    return sess


PageSession = Annotated[DashboardSession, Depends(page_session)]
DataSession = Annotated[DashboardSession, Depends(data_session)]
CsrfSession = Annotated[DashboardSession, Depends(csrf_session)]
