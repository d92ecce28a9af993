"""`/v1/videos`: thin handlers — parse, call one service function, return the wire shape.

Nothing here commits: the `get_session` dependency commits the request's session (creation hands it
back before submission).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.deps import ApiKeyDep, CreatorKeyDep, GatewayDep, SessionDep
from app.keys.models import ApiKey
from app.videos import characters, creation, drafts, idempotency, openapi, reads, schemas
from app.videos.links import link_base
from app.videos.models import Video
from app.videos.parsing import ParsedBody, parse_body

router = APIRouter(prefix="/v1", tags=["videos"])


def _video(gw: Any, request: Request, row: Video) -> dict[str, Any]:
    return schemas.video_object(row, url=reads.signed_url(gw, row, base=link_base(gw.settings, request)))


def _with_poll_header(gw: Any, request: Request, row: Video, *, replayed: bool = False) -> JSONResponse:
    resp = JSONResponse(_video(gw, request, row))
    if replayed:
        resp.headers[idempotency.REPLAYED_HEADER] = "true"
    if reads.unfinished(row):
        resp.headers["openai-poll-after-ms"] = str(reads.poll_after_ms(gw, row))
    return resp


async def _body(gw: Any, request: Request) -> Any:
    limit = int(gw.settings.max_image_bytes * 1.4) + 1024  # a data URL in a text part
    videos = gw.settings.max_video_upload_bytes
    return await parse_body(
        request, max_part_bytes=limit, max_file_bytes=gw.settings.max_image_bytes, file_limits={"video": videos}
    )


async def _create(
    request: Request,
    gw: Any,
    session: AsyncSession,
    key: ApiKey,
    make_draft: Callable[[ParsedBody], Awaitable[drafts.Draft]],
) -> JSONResponse:
    """Draft and submit a video, or answer the one an earlier request with the same Idempotency-Key made."""
    idem_key = idempotency.header_value(request.headers)
    body = await _body(gw, request)
    row, replayed = await creation.create(
        gw, session, key, body, idempotency_key=idem_key, path=request.url.path, make_draft=make_draft
    )
    return _with_poll_header(gw, request, row, replayed=replayed)


@router.post("/videos", summary="Create a video", openapi_extra=openapi.CREATE, **openapi.VIDEO)
async def create_video(request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep) -> JSONResponse:
    return await _create(request, gw, session, key, lambda body: drafts.draft_create(gw, session, key, body))


@router.get("/videos", summary="List videos", **openapi.VIDEO_LIST)
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
    rows, more = await reads.list_videos(session, key, after=after or None, limit=n, order=order)
    return schemas.list_object([_video(gw, request, r) for r in rows], has_more=more)


@router.post("/videos/edits", summary="Edit a video", openapi_extra=openapi.EDIT, **openapi.VIDEO)
async def edit_video(request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep) -> JSONResponse:
    return await _create(request, gw, session, key, lambda body: drafts.draft_edit(gw, session, key, body))


@router.post("/videos/extensions", summary="Extend a video", openapi_extra=openapi.EXTEND, **openapi.VIDEO)
async def extend_video(request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep) -> JSONResponse:
    return await _create(request, gw, session, key, lambda body: drafts.draft_extend(gw, session, key, body))


@router.post(
    "/videos/characters", summary="Create a character", openapi_extra=openapi.CHARACTER, **openapi.CHARACTER_OBJ
)
async def create_character(request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep) -> JSONResponse:
    idem_key = idempotency.header_value(request.headers)
    body = await _body(gw, request)
    char, replayed = await characters.create(gw, session, key, body, idempotency_key=idem_key, path=request.url.path)
    headers = {idempotency.REPLAYED_HEADER: "true"} if replayed else None
    return JSONResponse(schemas.character_object(char), headers=headers)


@router.get("/videos/characters/{character_id}", summary="Get a character", **openapi.CHARACTER_OBJ)
async def get_character(character_id: str, session: SessionDep, key: ApiKeyDep) -> dict[str, Any]:
    return schemas.character_object(await characters.get_character(session, key, character_id))


@router.get("/videos/{video_id}", summary="Retrieve a video", **openapi.VIDEO)
async def retrieve_video(
    video_id: str, request: Request, gw: GatewayDep, session: SessionDep, key: ApiKeyDep
) -> JSONResponse:
    return _with_poll_header(gw, request, await reads.get_video(session, key, video_id))


@router.delete("/videos/{video_id}", summary="Delete a video", **openapi.DELETED)
async def delete_video(video_id: str, gw: GatewayDep, session: SessionDep, key: ApiKeyDep) -> dict[str, Any]:
    await reads.delete_video(gw, session, key, video_id)
    return schemas.deleted_object(video_id)


@router.get(
    "/videos/{video_id}/content",
    summary="Download video content",
    operation_id="RetrieveVideoContent",
    **openapi.CONTENT,
)
@router.head("/videos/{video_id}/content", include_in_schema=False)
async def video_content(
    video_id: str,
    request: Request,
    gw: GatewayDep,
    session: SessionDep,
    key: ApiKeyDep,
    variant: str = Query("video"),
) -> Response:
    row = await reads.get_video(session, key, video_id)
    return await reads.serve_asset(gw, row, variant, request, session=session)


@router.post("/videos/{video_id}/remix", summary="Remix a video", openapi_extra=openapi.REMIX, **openapi.VIDEO)
async def remix_video(
    video_id: str, request: Request, gw: GatewayDep, session: SessionDep, key: CreatorKeyDep
) -> JSONResponse:
    return await _create(request, gw, session, key, lambda body: drafts.draft_remix(gw, session, key, video_id, body))
