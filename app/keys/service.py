"""API keys: creation, lookup by SHA-256, revocation. Secrets are shown once and never stored.

No commits here: the request's session (or the CLI's) commits.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import new_id, now
from app.keys import repository as repo
from app.keys.models import ApiKey

KEY_PREFIX = "sk-vg-"


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[: len(KEY_PREFIX) + 6] if secret.startswith(KEY_PREFIX) else secret[:8]


# the limits an operator may set on a key (None = unlimited / no restriction)
LIMIT_FIELDS = ("models", "rpm_limit", "max_concurrent", "quota_credits", "expires_at", "ip_allowlist", "enabled")


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    owner: str | None = None,
    models: list[str] | None = None,
    secret: str | None = None,
    **limits: Any,
) -> tuple[ApiKey, str]:
    unknown = set(limits) - set(LIMIT_FIELDS)
    if unknown:
        raise TypeError(f"unknown key fields: {', '.join(sorted(unknown))}")
    secret = secret or generate_secret()
    key = ApiKey(
        id=new_id("key", 12),
        name=name,
        owner=owner or new_id("user", 12),
        key_hash=hash_secret(secret),
        prefix=display_prefix(secret),
        models=models or None,
        created_at=now(),
        enabled=limits.pop("enabled", True),
        used_credits=0.0,
        **limits,
    )
    await repo.add(session, key)
    return key, secret


async def get_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await repo.get(session, key_id)


async def update_key(session: AsyncSession, key: ApiKey, **changes: Any) -> ApiKey:
    """Change limits (fields in LIMIT_FIELDS, plus name). `models=[]` means every model again."""
    for field, value in changes.items():
        if field not in (*LIMIT_FIELDS, "name"):
            raise TypeError(f"unknown key field: {field}")
        if field == "models":
            value = value or None
        setattr(key, field, value)
    await session.flush()
    return key


async def rotate_key(session: AsyncSession, key: ApiKey) -> str:
    """A new secret for the same key (same owner, limits and usage); the old secret stops working at once."""
    secret = generate_secret()
    key.key_hash = hash_secret(secret)
    key.prefix = display_prefix(secret)
    await session.flush()
    return secret


async def ensure_key(session: AsyncSession, *, secret: str, name: str) -> ApiKey:
    """Create the key for `secret` unless it exists (the bootstrap key). A revoked one stays revoked."""
    existing = await repo.by_hash(session, hash_secret(secret))
    if existing is not None:
        return existing
    key, _ = await create_key(session, name=name, owner="bootstrap", secret=secret)
    return key


async def authenticate(session: AsyncSession, secret: str) -> ApiKey | None:
    digest = hash_secret(secret)
    key = await repo.by_hash(session, digest)
    # the index lookup already matched; compare again in constant time so timing says nothing
    if key is None or not hmac.compare_digest(key.key_hash, digest) or not key.active:
        return None
    return key


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return await repo.list_all(session)


async def revoke_key(session: AsyncSession, ident: str) -> int:
    """Revoke by id, display prefix or name. Returns how many keys were revoked."""
    return await repo.revoke_matching(session, ident, at=now())
