"""Operator decisions behind the admin API and the CLI: key limits, usage totals, channel health, any task.

No commits here: the request's session (or the CLI's) commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.schemas import ChannelOut, KeyCreate, KeyUpdate, UsageReport, UsageRow, UsageTotals
from app.channels import repository as channels_repo
from app.channels.models import ChannelRecord
from app.db import now
from app.errors import InvalidRequest, NotFound
from app.gateway import Gateway
from app.keys import repository as keys_repo
from app.keys import service as keys
from app.keys.models import ApiKey
from app.providers.base import VideoStatus
from app.providers.registry import ProviderRegistry, enable_hint
from app.usage import service as usage
from app.videos import reads
from app.videos import repository as videos_repo
from app.videos.models import Video

# -- keys ------------------------------------------------------------------------------------------


def check_models(registry: ProviderRegistry, models: list[str] | None) -> None:
    unknown = [m for m in models or [] if m not in registry.names()]
    if unknown:
        hints = "".join(f" {h}" for h in map(enable_hint, unknown) if h)  # a known vendor that is off
        raise InvalidRequest(
            f"Unknown model(s): {', '.join(unknown)}. Available models: {', '.join(registry.names()) or '(none)'}."
            + hints,
            param="models",
            code="model_not_found",
        )


async def create_key(session: AsyncSession, registry: ProviderRegistry, body: KeyCreate) -> tuple[ApiKey, str]:
    check_models(registry, body.models)
    return await keys.create_key(session, **body.model_dump())


async def get_key(session: AsyncSession, key_id: str) -> ApiKey:
    key = await keys.get_key(session, key_id)
    if key is None:
        raise NotFound(f"No API key with id '{key_id}'.", param="key_id", code="key_not_found")
    return key


async def find_key(session: AsyncSession, ident: str) -> list[ApiKey]:
    """Keys matching an id, or else a display prefix or name (the CLI's way of naming a key)."""
    exact = await keys.get_key(session, ident)
    if exact is not None:
        return [exact]
    return await keys_repo.by_prefix_or_name(session, ident)


async def update_key(session: AsyncSession, registry: ProviderRegistry, key: ApiKey, body: KeyUpdate) -> ApiKey:
    changes = body.changes()
    if "models" in changes:
        check_models(registry, changes["models"])
    return await keys.update_key(session, key, **changes)


async def revoke_key(session: AsyncSession, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = now()
        await session.flush()
    return key


async def rotate_key(session: AsyncSession, key: ApiKey) -> str:
    if key.revoked_at is not None:
        raise InvalidRequest(
            f"API key '{key.id}' is revoked; create a new key instead.", param="key_id", code="key_revoked"
        )
    return await keys.rotate_key(session, key)


# -- usage -----------------------------------------------------------------------------------------


async def usage_report(
    session: AsyncSession, *, since: float | None, until: float | None, key_id: str | None, model: str | None
) -> UsageReport:
    if since is not None and until is not None and until < since:
        raise InvalidRequest("'until' is before 'since'.", param="until", code="invalid_value")
    rows = await usage.report(session, since=since, until=until, key_id=key_id, model=model)
    ids = {r["api_key_id"] for r in rows}
    named = {k.id: k for k in await keys_repo.by_ids(session, ids)}
    data = [
        UsageRow(
            **r,
            key_name=named[r["api_key_id"]].name if r["api_key_id"] in named else None,
            owner=named[r["api_key_id"]].owner if r["api_key_id"] in named else None,
        )
        for r in rows
    ]
    totals = UsageTotals(
        tasks=sum(r.tasks for r in data),
        completed=sum(r.completed for r in data),
        failed=sum(r.failed for r in data),
        seconds=sum(r.seconds for r in data),
        credits_charged=round(sum(r.credits_charged for r in data), 6),
        credits_reserved=round(sum(r.credits_reserved for r in data), 6),
    )
    return UsageReport(since=since, until=until, data=data, totals=totals)


# -- channels --------------------------------------------------------------------------------------


def _ts(value: float | None) -> int | None:
    return None if value is None else int(value)


def _health(rec: ChannelRecord | None, at: float) -> dict[str, Any]:
    if rec is None:
        return {
            "health": "unknown",
            "failures": 0,
            "last_error": None,
            "last_error_at": None,
            "cooldown_until": None,
            "last_success_at": None,
            "first_seen": None,
            "last_seen": None,
        }
    cooling = rec.cooldown_until is not None and rec.cooldown_until > at
    return {
        "health": "cooling_down" if cooling else "ok",
        "failures": int(rec.failures or 0),
        "last_error": rec.last_error,
        "last_error_at": _ts(rec.last_error_at),
        "cooldown_until": _ts(rec.cooldown_until) if cooling else None,
        "last_success_at": _ts(rec.last_success_at),
        "first_seen": _ts(rec.first_seen),
        "last_seen": _ts(rec.last_seen),
    }


async def channel_report(session: AsyncSession, registry: ProviderRegistry) -> list[ChannelOut]:
    """Every configured channel with its shared health, then retired channels that still have tasks."""
    at = now()
    records = {r.fingerprint: r for r in await channels_repo.all_records(session)}
    unfinished = await videos_repo.unfinished_by_channel(session)
    out = [
        ChannelOut(
            name=ch.name,
            vendor=ch.vendor,
            base_url=ch.base_url,
            models=sorted(ch.models),
            priority=ch.priority,
            weight=ch.weight,
            enabled=ch.enabled,
            fingerprint=ch.fingerprint,
            retired=False,
            unfinished_tasks=unfinished.get(ch.fingerprint, 0),
            **_health(records.get(ch.fingerprint), at),
        )
        for ch in registry.channels.values()
    ]
    live = {ch.fingerprint for ch in registry.channels.values()}
    for fp, rec in sorted(records.items(), key=lambda item: item[1].name):
        if fp in live or not unfinished.get(fp):
            continue
        out.append(
            ChannelOut(
                name=rec.name,
                vendor=rec.vendor,
                base_url=rec.base_url,
                models=sorted(rec.models or []),
                priority=None,
                weight=None,
                enabled=False,
                fingerprint=fp,
                retired=True,
                unfinished_tasks=unfinished[fp],
                **_health(rec, at),
            )
        )
    return out


# -- tasks -----------------------------------------------------------------------------------------


async def list_tasks(
    session: AsyncSession,
    *,
    status: VideoStatus | str | None = None,
    owner: str | None = None,
    api_key_id: str | None = None,
    model: str | None = None,
    channel: str | None = None,
    deleted: bool | None = None,
    after: str | None = None,
    limit: int = 20,
) -> tuple[list[Video], bool]:
    """Tasks of every owner, newest first; `after` is the last id of the previous page."""
    anchor = None
    if after:
        anchor = await videos_repo.get(session, after)
        if anchor is None:
            raise InvalidRequest(f"Unknown 'after' cursor '{after}'.", param="after", code="invalid_value")
    filters: dict[str, str | VideoStatus | None] = {
        "status": None if status is None else VideoStatus(status),
        "owner": owner,
        "api_key_id": api_key_id,
        "model": model,
        "channel": channel,
    }
    return await videos_repo.list_all(session, filters=filters, deleted=deleted, after=anchor, limit=limit)


async def get_task(session: AsyncSession, task_id: str) -> Video:
    row = await videos_repo.get(session, task_id)
    if row is None:
        raise NotFound(f"No task with id '{task_id}'.", param="task_id", code="task_not_found")
    return row


async def delete_task(gw: Gateway, session: AsyncSession, task_id: str) -> Video:
    """Delete any owner's finished task, as its owner's DELETE would (the dashboard's Delete)."""
    row = await get_task(session, task_id)
    if row.deleted_at is None:
        await reads.discard(gw, session, row)
    return row
