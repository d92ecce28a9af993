"""Signed, expiring links to finished assets: HMAC-SHA256 over (video id, variant, expiry)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from starlette.requests import Request

from app.config import Settings, host_only

VARIANT_FILES = {"video": "video.mp4", "thumbnail": "thumbnail.webp", "spritesheet": "spritesheet.jpg"}
MEDIA_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}


def load_or_create_secret(storage_dir: Path) -> bytes:
    """A signing key kept beside the data, so links survive restarts without configuration."""
    path = storage_dir / ".signing_key"
    if path.is_file():
        return path.read_bytes()
    storage_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".signing_key.{secrets.token_hex(6)}.tmp")
    tmp.write_bytes(key)
    tmp.chmod(0o600)
    try:
        # first writer wins when two processes start together
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


class LinkSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @property
    def secret(self) -> bytes:
        return self._secret

    def signature(self, kind: str, ident: str, variant: str, expires: int) -> str:
        msg = f"{kind}\n{ident}\n{variant}\n{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:40]

    def verify(self, kind: str, ident: str, variant: str, expires: int, signature: str) -> bool:
        # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, once a 500)
        expected = self.signature(kind, ident, variant, expires).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


def link_base(settings: Settings, request: Request) -> str:
    """Where signed links point: VIDGATE_PUBLIC_BASE_URL; else the request's host when it is one of
    VIDGATE_ALLOWED_HOSTS (any port); else this server's own address. A forged Host header never gets
    into a link."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    if host_only(request.headers.get("host", "")) in settings.allowed_host_list:
        return str(request.base_url).rstrip("/")
    host, port = request.scope.get("server") or ("127.0.0.1", None)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = request.url.scheme
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")
