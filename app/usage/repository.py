"""All SQL for usage reports: totals per key and model over the task table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.providers.base import VideoStatus
from app.videos.models import Video


async def totals(
    session: AsyncSession, *, since: float | None, until: float | None, key_id: str | None, model: str | None
) -> list[Any]:
    """Per key and model over [since, until): rows of (api_key_id, model, tasks, completed, failed, seconds,
    credits_charged, credits_reserved); sums are None where a group has nothing to add."""
    conds = []
    if since is not None:
        conds.append(Video.created_at >= since)
    if until is not None:
        conds.append(Video.created_at < until)
    if key_id:
        conds.append(Video.api_key_id == key_id)
    if model:
        conds.append(Video.model == model)
    completed = Video.status == VideoStatus.completed
    q = (
        select(
            Video.api_key_id,
            Video.model,
            func.count().label("tasks"),
            func.sum(case((completed, 1), else_=0)).label("completed"),
            func.sum(case((Video.status == VideoStatus.failed, 1), else_=0)).label("failed"),
            func.sum(case((completed, Video.seconds), else_=0)).label("seconds"),
            func.coalesce(func.sum(Video.charged_credits), 0.0).label("credits_charged"),
            func.sum(case((Video.settlement.is_(None), Video.reserved_credits), else_=0.0)).label("credits_reserved"),
        )
        .where(and_(true(), *conds))
        .group_by(Video.api_key_id, Video.model)
        .order_by(Video.api_key_id, Video.model)
    )
    return list((await session.execute(q)).all())
