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
    return same(expected, headers.get("x-hmac-signature", ""))


def kling_valid(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> bool:
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    # str.isdigit() also holds for "²" or "١٢٣", which int() refuses or reads: ASCII digits only
    if not msg_id or not (ts.isascii() and ts.isdigit()) or abs((now or time.time()) - int(ts)) > TOLERANCE_S:
        return False
    expected = standard_webhooks_sign(secret, msg_id=msg_id, timestamp=int(ts), body=body)
    return any(same(expected, part) for part in headers.get("webhook-signature", "").split())


def same(expected: str, given: str) -> bool:
    """Constant-time equality of a secret we computed and a value a client sent, whatever its characters.

    `hmac.compare_digest` refuses str with non-ASCII characters (TypeError, a 500); as UTF-8 bytes any
    value compares, and a wrong one is simply unequal. (Headers arrive latin-1-decoded, paths
    percent-decoded: lone surrogates are passed through rather than refused.)"""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def callback_token(secret: bytes, video_id: str) -> str:
    """The unguessable per-task path segment of a callback URL."""
    return hmac.new(secret, f"vendor-callback\n{video_id}".encode(), hashlib.sha256).hexdigest()[:40]
