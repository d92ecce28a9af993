"""Usage accounting: prices, reservation at submit, settlement (charge or refund) exactly once.

Credits are reserved on the key when a task is accepted (atomically against the quota, so parallel
creates never overspend), refunded when the task fails or never reaches a vendor, and reconciled to
the seconds and resolution actually produced when it completes. Settlement is a compare-and-set on the
task row, so nothing is charged or refunded twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import now
from app.keys.models import ApiKey
from app.videos.models import Video

RESOLUTION_CLASSES = ((480, "480p"), (540, "540p"), (720, "720p"), (1080, "1080p"), (1440, "1440p"), (2160, "2160p"))


def resolution_class(width: int, height: int) -> str:
    short = min(width, height)
    return min(RESOLUTION_CLASSES, key=lambda c: abs(c[0] - short))[1]


def price_per_second(prices: dict[str, Any], model_names: list[str], width: int, height: int) -> float:
    """The first price found for the requested name, the model it resolves to, then `*`; 0 when none."""
    for name in [*model_names, "*"]:
        entry = prices.get(name)
        if entry is None:
            continue
        if isinstance(entry, dict):
            cls = resolution_class(width, height)
            value = entry.get(cls, entry.get("default"))
            if value is None:
                continue
            return float(value)
        return float(entry)
    return 0.0


def cost(prices: dict[str, Any], model_names: list[str], width: int, height: int, seconds: float) -> float:
    return round(price_per_second(prices, model_names, width, height) * max(0.0, seconds), 6)


async def reserve(session: AsyncSession, key_id: str, amount: float) -> bool:
    """Atomically add `amount` to the key's used credits unless that would pass its quota."""
    used = ApiKey.used_credits
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.quota_credits.is_(None), used + amount <= ApiKey.quota_credits))
        .values(used_credits=used + amount)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def settle(session: AsyncSession, video: Video, *, charged: float) -> bool:
    """Charge `charged` (refund when 0) against what was reserved, once. Returns whether this call settled."""
    result = await session.execute(
        update(Video)
        .where(Video.id == video.id, Video.settlement.is_(None))
        .values(
            settlement="charged" if charged > 0 else "refunded",
            charged_credits=charged,
            settled_at=now(),
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    delta = charged - float(video.reserved_credits or 0.0)
    if delta:
        await session.execute(
            update(ApiKey).where(ApiKey.id == video.api_key_id).values(used_credits=ApiKey.used_credits + delta)
        )
    return True


async def refund_unstored(session: AsyncSession, key_id: str, amount: float) -> None:
    """Give back a reservation whose task row never became visible (rejected at submit)."""
    if amount:
        await session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(used_credits=ApiKey.used_credits - amount)
        )


async def report(
    session: AsyncSession, *, since: float | None, until: float | None, key_id: str | None, model: str | None
) -> list[dict[str, Any]]:
    """Per key and model over [since, until): tasks, outcomes, seconds and credits."""
    conds = []
    if since is not None:
        conds.append(Video.created_at >= since)
    if until is not None:
        conds.append(Video.created_at < until)
    if key_id:
        conds.append(Video.api_key_id == key_id)
    if model:
        conds.append(Video.model == model)
    completed = Video.status == "completed"
    q = (
        select(
            Video.api_key_id,
            Video.model,
            func.count().label("tasks"),
            func.sum(case((completed, 1), else_=0)).label("completed"),
            func.sum(case((Video.status == "failed", 1), else_=0)).label("failed"),
            func.sum(case((completed, func.cast(Video.seconds, _float())), else_=0.0)).label("seconds"),
            func.coalesce(func.sum(Video.charged_credits), 0.0).label("credits_charged"),
            func.sum(case((Video.settlement.is_(None), Video.reserved_credits), else_=0.0)).label("credits_reserved"),
        )
        .where(and_(*conds) if conds else True)
        .group_by(Video.api_key_id, Video.model)
        .order_by(Video.api_key_id, Video.model)
    )
    rows = (await session.execute(q)).all()
    return [
        {
            "api_key_id": r.api_key_id,
            "model": r.model,
            "tasks": int(r.tasks),
            "completed": int(r.completed or 0),
            "failed": int(r.failed or 0),
            "seconds": float(r.seconds or 0.0),
            "credits_charged": round(float(r.credits_charged or 0.0), 6),
            "credits_reserved": round(float(r.credits_reserved or 0.0), 6),
        }
        for r in rows
    ]


def _float() -> Any:
    from sqlalchemy import Float

    return Float()
