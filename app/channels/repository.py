"""All SQL for channel records: health shared across replicas and the credential snapshots."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.models import ChannelRecord


def add(session: AsyncSession, record: ChannelRecord) -> None:
    session.add(record)  # inserted at the next flush (the caller's commit)


async def get(session: AsyncSession, fingerprint: str, *, for_update: bool = False) -> ChannelRecord | None:
    return await session.get(ChannelRecord, fingerprint, with_for_update=for_update)


async def by_fingerprints(session: AsyncSession, fingerprints: Collection[str]) -> Sequence[ChannelRecord]:
    return (await session.scalars(select(ChannelRecord).where(ChannelRecord.fingerprint.in_(fingerprints)))).all()


async def all_records(session: AsyncSession) -> Sequence[ChannelRecord]:
    return (await session.scalars(select(ChannelRecord))).all()


async def mark_success(session: AsyncSession, fingerprint: str, *, at: float) -> None:
    """Clear the failure count and any cool-down."""
    await session.execute(
        update(ChannelRecord)
        .where(ChannelRecord.fingerprint == fingerprint)
        .values(failures=0, cooldown_until=None, last_success_at=at)
    )
