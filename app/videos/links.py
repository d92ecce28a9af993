"""Signed, expiring links to finished assets: HMAC-SHA256 over (video id, variant, expiry)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

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
        return hmac.compare_digest(self.signature(kind, ident, variant, expires), signature)
