"""The admin API (`Authorization: Bearer <VIDGATE_ADMIN_TOKEN>`): API keys and their limits, usage,
channels and their health, and the tasks of every owner."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from app.admin import service
from app.admin.deps import require_admin
from app.admin.schemas import (
    ChannelList,
    KeyCreate,
    KeyList,
    KeyOut,
    KeyUpdate,
    KeyWithSecret,
    TaskList,
    TaskOut,
    TaskStatus,
    UsageReport,
)
from app.deps import GatewayDep, SessionDep
from app.keys import service as keys
from app.videos.links import link_base
from app.videos.models import Video
from app.videos.reads import signed_url

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


# -- keys ------------------------------------------------------------------------------------------


@router.post("/keys", summary="Create an API key (the secret is shown once)")
async def create_key(body: KeyCreate, gw: GatewayDep, session: SessionDep) -> KeyWithSecret:
    key, secret = await service.create_key(session, gw.registry, body)
    return KeyWithSecret.of(key, secret=secret)


@router.get("/keys", summary="List API keys (never their secrets)")
async def list_keys(session: SessionDep) -> KeyList:
    return KeyList(data=[KeyOut.of(k) for k in await keys.list_keys(session)])


@router.get("/keys/{key_id}", summary="Retrieve an API key")
async def get_key(key_id: str, session: SessionDep) -> KeyOut:
    return KeyOut.of(await service.get_key(session, key_id))


@router.patch("/keys/{key_id}", summary="Change a key's name or limits (null clears a limit)")
async def update_key(key_id: str, body: KeyUpdate, gw: GatewayDep, session: SessionDep) -> KeyOut:
    key = await service.get_key(session, key_id)
    return KeyOut.of(await service.update_key(session, gw.registry, key, body))


@router.post("/keys/{key_id}/revoke", summary="Revoke a key: requests with it get 401 at once")
async def revoke_key(key_id: str, session: SessionDep) -> KeyOut:
    return KeyOut.of(await service.revoke_key(session, await service.get_key(session, key_id)))


@router.post("/keys/{key_id}/rotate", summary="A new secret for a key (shown once); the old one stops working")
async def rotate_key(key_id: str, session: SessionDep) -> KeyWithSecret:
    key = await service.get_key(session, key_id)
    secret = await service.rotate_key(session, key)
    return KeyWithSecret.of(key, secret=secret)


# -- usage and channels ----------------------------------------------------------------------------


@router.get("/usage", summary="Tasks, seconds and credits per key and model over [since, until)")
async def usage(
    session: SessionDep,
    since: float | None = Query(None, ge=0, description="Unix seconds, inclusive"),
    until: float | None = Query(None, ge=0, description="Unix seconds, exclusive"),
    key_id: str | None = None,
    model: str | None = None,
) -> UsageReport:
    return await service.usage_report(session, since=since, until=until, key_id=key_id, model=model)


@router.get("/channels", summary="Channels with their health (last error, cool-down)")
async def channels(gw: GatewayDep, session: SessionDep) -> ChannelList:
    return ChannelList(data=await service.channel_report(session, gw.registry))


# -- tasks -----------------------------------------------------------------------------------------


def _task(gw: GatewayDep, request: Request, row: Video) -> TaskOut:
    url = None if row.deleted_at is not None else signed_url(gw, row, base=link_base(gw.settings, request))
    return TaskOut.of(row, url=url)


@router.get("/tasks", summary="Tasks of every owner, newest first")
async def list_tasks(
    request: Request,
    gw: GatewayDep,
    session: SessionDep,
    status: TaskStatus | None = None,
    owner: str | None = None,
    api_key_id: str | None = None,
    model: str | None = None,
    channel: str | None = None,
    deleted: bool | None = Query(None, description="true: only deleted tasks; false: only live ones"),
    after: str | None = Query(None, description="The last id of the previous page"),
    limit: int = Query(20, ge=1, le=100),
) -> TaskList:
    rows, more = await service.list_tasks(
        session,
        status=status,
        owner=owner,
        api_key_id=api_key_id,
        model=model,
        channel=channel,
        deleted=deleted,
        after=after,
        limit=limit,
    )
    data = [_task(gw, request, r) for r in rows]
    return TaskList(
        data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None, has_more=more
    )


@router.get("/tasks/{task_id}", summary="Retrieve a task of any owner")
async def get_task(task_id: str, request: Request, gw: GatewayDep, session: SessionDep) -> TaskOut:
    return _task(gw, request, await service.get_task(session, task_id))
