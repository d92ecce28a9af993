"""`/v1/videos`: thin handlers — parse, call one service function, return the wire shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.deps import ApiKeyDep, CreatorKeyDep, GatewayDep, SessionDep
from app.keys.models import ApiKey
from app.videos import openapi, schemas, service, submission
from app.videos.models import Video
from app.videos.parsing import parse_body

router = APIRouter(prefix="/v1", tags=["videos"])


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _video(gw: Any, request: Request, row: Video) -> dict[str, Any]:
    return schemas.video_object(row, url=service.signed_url(gw, row, base=_base(request)))


def _with_poll_header(gw: Any, request: Request, row: Video) -> JSONResponse:
    resp = JSONResponse(_video(gw, request, row))
    if row.status in ("queued", "in_progress"):
        resp.headers["openai-poll-after-ms"] = str(service.poll_after_ms(gw, row))
    return resp


async def _body(gw: Any, request: Request) -> Any:
    limit = int(gw.settings.max_image_bytes * 1.4) + 1024  # a data URL in a text part
    videos = gw.settings.max_video_upload_bytes
    return await parse_body(
        request, max_part_bytes=limit, max_file_bytes=gw.settings.max_image_bytes, file_limits={"video": videos}
    )


async def _submit(gw: Any, session: AsyncSession, key: ApiKey, draft: service.Draft) -> Video:
    # Hand the request's connection back first: submission commits in short sessions of its own, and
    # requests that each hold one pooled connection while waiting for a second deadlock the pool.
    await session.commit()
    return await submission.submit_draft(gw, key, draft)


@router.post("/videos", summary="Create a video", openapi_extra=openapi.CREATE)
async def create_video(request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep) -> JSONResponse:
    draft = await service.draft_create(gw, session, key, await _body(gw, request))
    row = await _submit(gw, session, key, draft)
    return _with_poll_header(gw, request, row)


@router.get("/videos", summary="List videos")
async def list_videos(
    request: Request,
    gw: GatewayDep,
    session: SessionDep,
    key: ApiKeyDep,
    after: str | None = None,
    limit: str | None = None,
    order: str | None = None,
) -> dict[str, Any]:
    try:
        n = 20 if limit in (None, "") else int(limit)
    except ValueError:
        n = -1
    if not 0 <= n <= 100:
        raise errors.InvalidRequest(
            f"Invalid 'limit': {limit!r}; expected an integer from 0 to 100.", param="limit", code="invalid_value"
        )
    order = (order or "desc").lower()
    if order not in ("asc", "desc"):
        raise errors.InvalidRequest(
            f"Invalid 'order': {order!r}; expected 'asc' or 'desc'.", param="order", code="invalid_value"
        )
    rows, more = await service.list_videos(session, key, after=after or None, limit=n, order=order)
    return schemas.list_object([_video(gw, request, r) for r in rows], has_more=more)


@router.post("/videos/edits", summary="Edit a video", openapi_extra=openapi.EDIT)
async def edit_video(request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep) -> JSONResponse:
    draft = await service.draft_edit(gw, session, key, await _body(gw, request))
    return _with_poll_header(gw, request, await _submit(gw, session, key, draft))


@router.post("/videos/extensions", summary="Extend a video", openapi_extra=openapi.EXTEND)
async def extend_video(request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep) -> JSONResponse:
    draft = await service.draft_extend(gw, session, key, await _body(gw, request))
    return _with_poll_header(gw, request, await _submit(gw, session, key, draft))


@router.post("/videos/characters", summary="Create a character", openapi_extra=openapi.CHARACTER)
async def create_character(request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep) -> dict[str, Any]:
    char = await service.create_character(gw, session, key, await _body(gw, request))
    return schemas.character_object(char)


@router.get("/videos/characters/{character_id}", summary="Get a character")
async def get_character(character_id: str, session: SessionDep, key: ApiKeyDep) -> dict[str, Any]:
    return schemas.character_object(await service.get_character(session, key, character_id))


@router.get("/videos/{video_id}", summary="Retrieve a video")
async def retrieve_video(
    video_id: str, request: Request, gw: GatewayDep, session: SessionDep, key: ApiKeyDep
) -> JSONResponse:
    return _with_poll_header(gw, request, await service.get_video(session, key, video_id))


@router.delete("/videos/{video_id}", summary="Delete a video")
async def delete_video(video_id: str, gw: GatewayDep, session: SessionDep, key: ApiKeyDep) -> dict[str, Any]:
    await service.delete_video(gw, session, key, video_id)
    return schemas.deleted_object(video_id)


@router.get("/videos/{video_id}/content", summary="Download video content", operation_id="RetrieveVideoContent")
@router.head("/videos/{video_id}/content", include_in_schema=False)
async def video_content(
    video_id: str,
    request: Request,
    gw: GatewayDep,
    session: SessionDep,
    key: ApiKeyDep,
    variant: str = Query("video"),
) -> Response:
    row = await service.get_video(session, key, video_id)
    storage_key, media_type, filename = await service.asset(gw, row, variant)
    return await gw.storage.serve(storage_key, request, media_type=media_type, filename=filename)


@router.post("/videos/{video_id}/remix", summary="Remix a video", openapi_extra=openapi.REMIX)
async def remix_video(
    video_id: str, request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep
) -> JSONResponse:
    draft = await service.draft_remix(gw, session, key, video_id, await _body(gw, request))
    return _with_poll_header(gw, request, await _submit(gw, session, key, draft))
