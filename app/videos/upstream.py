"""The one border between vendor errors (`ProviderError`, raised only in app/providers) and HTTP errors.

Submission and the engine both convert here, so a vendor's failure reads the same to a client whether
it happened at create time or while the task was polled.
"""

from __future__ import annotations

import logging

from app import errors
from app.observability.logs import redact
from app.providers import base as pb

log = logging.getLogger("vidgate.videos")


def provider_error(exc: pb.ProviderError) -> errors.GatewayError:
    """The one border between vendor errors and HTTP errors."""
    # vendors may quote our request back, credentials included: redact before a client sees it
    message = redact(exc.message)
    if isinstance(exc, pb.Rejected):
        return errors.InvalidRequest(message, code=exc.vendor_code or "vendor_rejected")
    if isinstance(exc, pb.Unsupported):
        return errors.InvalidRequest(message, code="unsupported_operation")
    if isinstance(exc, pb.RateLimited):
        return errors.RateLimited(
            f"The upstream provider is rate limiting requests: {message}", retry_after=exc.retry_after or 5
        )
    if isinstance(exc, pb.AuthFailed):
        log.error("provider %s refused our credentials: %s", exc.provider, message)
        return errors.UpstreamError(
            "The upstream provider refused the gateway's credentials; the operator has to fix its configuration.",
            code="upstream_auth_failed",
        )
    if isinstance(exc, pb.Unavailable):
        return errors.UpstreamUnavailable(f"The upstream provider is unavailable: {message}")
    return errors.UpstreamError(f"The upstream provider failed: {message}")
