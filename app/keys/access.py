"""Per-key access rules checked on every request: enabled, expiry, IP allow-list; and the request rate
limit checked on requests that start generations (status polling is never starved by it)."""

from __future__ import annotations

import ipaddress
import logging

from fastapi import Request

from app.config import Settings
from app.db import now
from app.errors import AuthenticationFailed, PermissionDenied, RateLimited
from app.gateway import Gateway
from app.keys.limits import LimiterUnavailable
from app.keys.models import ApiKey

log = logging.getLogger("vidgate.keys")


def client_ip(request: Request, settings: Settings) -> str | None:
    """The direct peer; behind a trusted proxy (VIDGATE_TRUST_FORWARDED_FOR and the peer in
    VIDGATE_TRUSTED_PROXIES) the right-most X-Forwarded-For hop that is not a trusted proxy itself:
    each proxy appends the address it saw, so everything left of that is the client's to forge."""
    peer = request.client.host if request.client else None
    if not settings.trust_forwarded_for or not _trusted(peer, settings):
        return peer
    hops = [h.strip() for value in request.headers.getlist("x-forwarded-for") for h in value.split(",")]
    hops = [h for h in hops if h]
    for hop in reversed(hops):
        if not _trusted(hop, settings):
            return hop
    return hops[0] if hops else peer


def _trusted(ip: str | None, settings: Settings) -> bool:
    try:
        addr = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(addr in net for net in settings.trusted_proxy_networks)


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
