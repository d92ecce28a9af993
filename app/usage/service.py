"""Usage accounting: prices, reservation at submit, settlement (charge or refund) exactly once.

Credits are reserved on the key when a task is accepted (atomically against the quota, so parallel
creates never overspend), refunded when the task fails or never reaches a vendor, and reconciled to
the seconds and resolution actually produced when it completes. Settlement is a compare-and-set on the
task row, so nothing is charged or refunded twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.keys import repository as keys_repo
from app.usage import repository as repo
from app.videos import repository as videos_repo
from app.videos.models import Video

RESOLUTION_CLASSES = ((480, "480p"), (540, "540p"), (720, "720p"), (1080, "1080p"), (1440, "1440p"), (2160, "2160p"))


def resolution_class(width: int, height: int) -> str:
    short = min(width, height)
    return min(RESOLUTION_CLASSES, key=lambda c: abs(c[0] - short))[1]


def price_per_second(prices: dict[str, Any], model_names: list[str], width: int, height: int) -> float:
    """The first price found for the requested name, the model it resolves to, then `*`; 0 when none.
    An entry priced in vendor units only (no per-second price for the size) reserves nothing up front."""
    for name in [*model_names, "*"]:
        entry = prices.get(name)
        if entry is None:
            continue
        if isinstance(entry, dict):
            cls = resolution_class(width, height)
            value = entry.get(cls, entry.get("default"))
            if value is None:
                if entry.get("units"):
                    return 0.0
                continue
            return float(value)
        return float(entry)
    return 0.0


def unit_cost(prices: dict[str, Any], model_names: list[str], units: dict[str, float]) -> float | None:
    """What the vendor-reported `units` cost under the first entry (same lookup as per second) that prices
    any of them; None when no entry does (the task is charged per second)."""
    if not units:
        return None
    for name in [*model_names, "*"]:
        entry = prices.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("units"), dict):
            continue
        priced = {u: float(p) for u, p in entry["units"].items() if u in units}
        if priced:
            return round(sum(p * max(0.0, float(units[u])) for u, p in priced.items()), 6)
    return None


def cost(
    prices: dict[str, Any],
    model_names: list[str],
    width: int,
    height: int,
    seconds: float,
    *,
    units: dict[str, float] | None = None,
) -> float:
    """Credits for a video: by the vendor's billed units when they are reported and priced, else per second."""
    by_units = unit_cost(prices, model_names, units or {})
    if by_units is not None:
        return by_units
    return round(price_per_second(prices, model_names, width, height) * max(0.0, seconds), 6)


async def reserve(session: AsyncSession, key_id: str, amount: float) -> bool:
    """Atomically add `amount` to the key's used credits unless that would pass its quota."""
    return await keys_repo.reserve_credits(session, key_id, amount)


async def settle(session: AsyncSession, video: Video, *, charged: float) -> bool:
    """Charge `charged` (refund when 0) against what was reserved, once. Returns whether this call settled."""
    if not await videos_repo.mark_settled(session, video.id, charged=charged):
        return False
    delta = charged - float(video.reserved_credits or 0.0)
    if delta:
        await keys_repo.add_used_credits(session, video.api_key_id, delta)
    return True


async def refund_unstored(session: AsyncSession, key_id: str, amount: float) -> None:
    """Give back a reservation whose task row never became visible (rejected at submit)."""
    if amount:
        await keys_repo.add_used_credits(session, key_id, -amount)


async def report(
    session: AsyncSession, *, since: float | None, until: float | None, key_id: str | None, model: str | None
) -> list[dict[str, Any]]:
    """Per key and model over [since, until): tasks, outcomes, seconds and credits."""
    rows = await repo.totals(session, since=since, until=until, key_id=key_id, model=model)
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
