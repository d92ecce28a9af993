"""How `vidgate serve` runs uvicorn; the tests' live server uses the same options."""

from __future__ import annotations

from typing import Any

from app.config import Settings


def uvicorn_options(settings: Settings, *, host: str, port: int) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`."""
    return {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        # vidgate's own access log (JSON-capable, secrets redacted) replaces uvicorn's
        "log_config": None,
        "access_log": False,
        # uvicorn would take the client address from X-Forwarded-For of any loopback peer; vidgate decides
        # that itself (VIDGATE_TRUST_FORWARDED_FOR, VIDGATE_TRUSTED_PROXIES; app.keys.access.client_ip)
        "proxy_headers": False,
    }
