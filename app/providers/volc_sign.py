"""Volcengine V4 request signature (HMAC-SHA256), written by hand with the stdlib.

Implements /work/shared/vendors/jimeng.md §5: 5.1 inputs, 5.2 steps (payload hash, canonical URI, query
and headers, canonical request, string to sign, signing key, Authorization) and the 5.5 pitfalls.
tests/providers/test_volc_sign.py checks it byte for byte against the §5.3 worked examples.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

import httpx

ALGORITHM = "HMAC-SHA256"
REGION = "cn-north-1"
SERVICE = "cv"
# What the official visual HTTP sample and new-api sign (§5.2 step 4).
SIGNED_HEADERS = ("content-type", "host", "x-content-sha256", "x-date")
_UNRESERVED = "-_.~"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """RFC 3986 encoding (space → %20, never +), sorted by name then value."""
    encoded = sorted((quote(k, safe=_UNRESERVED), quote(v, safe=_UNRESERVED)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_hash: str
) -> tuple[str, str]:
    """`headers` are exactly the headers to sign. Returns (canonical request, SignedHeaders)."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    names = sorted(lowered)
    # every header line ends in \n, so the join leaves the documented empty line before SignedHeaders
    canon_headers = "".join(f"{n}:{lowered[n]}\n" for n in names)
    signed = ";".join(names)
    uri = quote(path or "/", safe="/" + _UNRESERVED)
    return "\n".join([method.upper(), uri, query, canon_headers, signed, payload_hash]), signed


def signing_key(secret_key: str, short_date: str, region: str = REGION, service: str = SERVICE) -> bytes:
    # the raw secret, not "AWS4" + secret, and never base64-decoded
    k = _hmac(secret_key.encode(), short_date)
    return _hmac(_hmac(_hmac(k, region), service), "request")


@dataclass(frozen=True)
class Signature:
    canonical_request: str
    string_to_sign: str
    signature: str
    authorization: str


def sign(
    *,
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    x_date: str,
    region: str = REGION,
    service: str = SERVICE,
) -> Signature:
    creq, signed = canonical_request(method, path, query, headers, payload_hash)
    scope = f"{x_date[:8]}/{region}/{service}/request"
    sts = "\n".join([ALGORITHM, x_date, scope, sha256_hex(creq.encode())])
    key = signing_key(secret_key, x_date[:8], region, service)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    auth = f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={sig}"
    return Signature(creq, sts, sig, auth)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class VolcV4Auth(httpx.Auth):
    """Signs each request over the exact body bytes httpx will send (pass `content=`, not `json=`)."""

    requires_request_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        region: str = REGION,
        service: str = SERVICE,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._ak = access_key
        self._sk = secret_key
        self._region = region
        self._service = service
        self._now = now

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        x_date = self._now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        payload_hash = sha256_hex(request.content)
        request.headers["X-Date"] = x_date
        request.headers["X-Content-Sha256"] = payload_hash
        # httpx has already set Host (port kept only when non-default, as the SDK does)
        headers = {n: request.headers[n] for n in SIGNED_HEADERS if n in request.headers}
        query = canonical_query(parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True))
        sig = sign(
            access_key=self._ak,
            secret_key=self._sk,
            method=request.method,
            path=request.url.path,
            query=query,
            headers=headers,
            payload_hash=payload_hash,
            x_date=x_date,
            region=self._region,
            service=self._service,
        )
        request.headers["Authorization"] = sig.authorization
        yield request
