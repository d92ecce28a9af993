"""Per-key access rules checked on every request: enabled, expiry, IP allow-list; and the request rate
limit checked on requests that start generations (status polling is never starved by it)."""

from __future__ import annotations

import ipaddress
import logging

from fastapi import Request

from app.config import Settings
from app.context import Gateway
from app.db import now
from app.errors import AuthenticationFailed, PermissionDenied, RateLimited
from app.keys.limits import LimiterUnavailable
from app.keys.models import ApiKey

log = logging.getLogger("vidgate.keys")


def client_ip(request: Request, settings: Settings) -> str | None:
    if settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.client.host if request.client else None


def ip_allowed(ip: str | None, allowlist: list[str]) -> bool:
    if ip is None:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in allowlist:
        try:
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            log.warning("ignoring malformed allow-list entry %r", entry)
    return False


def check_key(request: Request, key: ApiKey, settings: Settings) -> None:
    if not key.enabled:
        raise AuthenticationFailed("This API key is disabled.")
    if key.expires_at is not None and key.expires_at <= now():
        raise PermissionDenied("This API key has expired.", code="key_expired")
    if key.ip_allowlist:
        ip = client_ip(request, settings)
        if not ip_allowed(ip, key.ip_allowlist):
            raise PermissionDenied(f"Requests from {ip} are not allowed for this API key.", code="ip_not_allowed")


async def enforce_rate(gw: Gateway, key: ApiKey) -> None:
    if not key.rpm_limit:
        return
    try:
        decision = await gw.limiter.hit(f"rpm:{key.id}", limit=key.rpm_limit, window_s=60.0)
    except LimiterUnavailable as exc:
        # fail open: a Redis outage must not take generation down; it is logged loudly
        log.error("rate limiter unavailable, allowing the request: %s", exc)
        return
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit reached: this API key may start {key.rpm_limit} generations per minute. "
            f"Retry in {decision.retry_after:.1f} s.",
            retry_after=max(1.0, decision.retry_after),
        )
