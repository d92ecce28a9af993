"""All SQL for API keys, their credit counters included."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.keys.models import ApiKey


async def add(session: AsyncSession, key: ApiKey) -> None:
    session.add(key)
    await session.flush()


async def get(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    return await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


async def by_ids(session: AsyncSession, ids: Collection[str]) -> list[ApiKey]:
    if not ids:
        return []
    return list((await session.scalars(select(ApiKey).where(ApiKey.id.in_(ids)))).all())


async def by_prefix_or_name(session: AsyncSession, ident: str) -> list[ApiKey]:
    q = select(ApiKey).where(or_(ApiKey.prefix == ident, ApiKey.name == ident)).order_by(ApiKey.created_at)
    return list((await session.scalars(q)).all())


async def first_active_of(session: AsyncSession, owner: str) -> ApiKey | None:
    """The oldest unrevoked key of `owner` (the dashboard playground's key)."""
    q = select(ApiKey).where(ApiKey.owner == owner, ApiKey.revoked_at.is_(None)).order_by(ApiKey.created_at)
    return await session.scalar(q.limit(1))


async def list_all(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all())


async def revoke_matching(session: AsyncSession, ident: str, *, at: float) -> int:
    """Revoke the unrevoked keys whose id, display prefix or name is `ident`; how many were."""
    result = await session.execute(
        update(ApiKey)
        .where(or_(ApiKey.id == ident, ApiKey.prefix == ident, ApiKey.name == ident))
        .where(ApiKey.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def reserve_credits(session: AsyncSession, key_id: str, amount: float) -> bool:
    """Atomically add `amount` to the key's used credits unless that would pass its quota."""
    used = ApiKey.used_credits
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.quota_credits.is_(None), used + amount <= ApiKey.quota_credits))
        .values(used_credits=used + amount)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_used_credits(session: AsyncSession, key_id: str, delta: float) -> None:
    """Add `delta` (negative: give back) to the key's used credits, quota or not."""
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(used_credits=ApiKey.used_credits + delta))


async def touch(session: AsyncSession, key_id: str, *, at: float) -> None:
    """Stamp `last_used_at` (the status-read fast path; app.readcache ignores this column)."""
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
