"""`/files/...`: signed, expiring links that work without an API key (players, vendors fetching inputs)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import errors
from app.db import now
from app.deps import GatewayDep, SessionDep
from app.videos import reads
from app.videos import repository as repo

router = APIRouter(prefix="/files", tags=["files"], include_in_schema=False)


def _check(gw: GatewayDep, kind: str, ident: str, variant: str, expires: int, signature: str) -> None:
    if not gw.signer.verify(kind, ident, variant, expires, signature):
        raise errors.PermissionDenied("Invalid link signature.", code="invalid_signature")
    if expires < now():
        raise errors.PermissionDenied("This link has expired.", code="link_expired")


@router.api_route("/videos/{video_id}/{variant}", methods=["GET", "HEAD"])
async def signed_video(
    video_id: str, variant: str, expires: int, signature: str, request: Request, gw: GatewayDep, session: SessionDep
) -> Response:
    _check(gw, "video", video_id, variant, expires, signature)
    row = await repo.get(session, video_id)
    if row is None or row.deleted_at is not None:
        raise reads.not_found(video_id)
    await reads.check_link_owner(session, row)
    return await reads.serve_asset(gw, row, variant, request, disposition="inline", session=session)


@router.api_route("/inputs/{video_id}/{name}", methods=["GET", "HEAD"])
async def signed_input(
    video_id: str, name: str, expires: int, signature: str, request: Request, gw: GatewayDep, session: SessionDep
) -> Response:
    _check(gw, "input", video_id, name, expires, signature)
    row = await repo.get(session, video_id)
    entry = row.inputs.image(name) if row is not None else None
    gone = errors.NotFound("This input is no longer available.", code="input_not_found")
    if entry is None or not entry.key:
        raise gone
    mime = entry.mime or "application/octet-stream"
    try:
        # opened before answering: inputs are discarded when their task finishes, maybe right now
        return await gw.storage.serve(entry.key, request, media_type=mime, filename=name, disposition="inline")
    except FileNotFoundError:
        raise gone from None
