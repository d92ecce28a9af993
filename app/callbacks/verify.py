"""Signatures on vendor callbacks: Vidu's HMAC headers (vidu.md §9) and Kling's Standard Webhooks headers
(kling.md §8.1). Hand-written: each is a few lines of stdlib HMAC over a vendor-specific signing string."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from app.webhooks.signing import sign as standard_webhooks_sign

TOLERANCE_S = 300


def vidu_signing_string(method: str, path: str, query: str, headers: Mapping[str, str]) -> str | None:
    names = [n for n in headers.get("x-hmac-signed-headers", "").split(";") if n]
    if not names or "date" not in {n.lower() for n in names}:
        return None
    signed = "".join(f"{name}:{headers.get(name.lower(), '')}\n" for name in names)
    return f"{method.upper()}\n{path or '/'}\n{query}\nvidu\n{headers.get('date', '')}\n{signed}"


def vidu_valid(token: str, method: str, path: str, query: str, headers: Mapping[str, str], *, now: float) -> bool:
    """The signature is keyed by the API token that created the task; Date must be within 5 minutes."""
    if headers.get("x-hmac-algorithm", "").lower() != "hmac-sha256":
        return False
    text = vidu_signing_string(method, path, query, headers)
    if text is None:
        return False
    try:
        sent = parsedate_to_datetime(headers.get("date", "")).timestamp()
    except (TypeError, ValueError):
        return False
    if abs(now - sent) > TOLERANCE_S:
        return False
    expected = base64.b64encode(hmac.new(token.encode(), text.encode(), hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, headers.get("x-hmac-signature", ""))


def kling_valid(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> bool:
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not ts.isdigit() or abs((now or time.time()) - int(ts)) > TOLERANCE_S:
        return False
    expected = standard_webhooks_sign(secret, msg_id=msg_id, timestamp=int(ts), body=body)
    return any(hmac.compare_digest(expected, part) for part in headers.get("webhook-signature", "").split())


def callback_token(secret: bytes, video_id: str) -> str:
    """The unguessable per-task path segment of a callback URL."""
    return hmac.new(secret, f"vendor-callback\n{video_id}".encode(), hashlib.sha256).hexdigest()[:40]
