"""Reading videos a key owns: retrieve, list, delete, and serving their content (signed links too).

An unknown id and another owner's id get the same, byte-identical 404 (`not_found`), so nothing leaks.
Nothing here commits: the request's session (`get_session`) does.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app import errors
from app.db import now
from app.gateway import Gateway
from app.keys import repository as keys_repo
from app.keys.models import ApiKey
from app.providers import base as pb
from app.videos import repository as repo
from app.videos import variants
from app.videos.links import MEDIA_TYPES, VARIANT_FILES
from app.videos.models import Video


def not_found(video_id: str) -> errors.NotFound:
    # identical for unknown ids and other owners' ids: nothing leaks
    # no id in the message, so the body is byte-identical whoever asks about whichever id
    del video_id
    return errors.NotFound("No video found with that id for this API key.", param="video_id", code="video_not_found")


def unfinished(row: Video) -> bool:
    """Queued or in progress: still worked on by the engine."""
    return row.status in repo.ACTIVE


async def get_video(session: AsyncSession, key: ApiKey, video_id: str) -> Video:
    row = await repo.get_owned(session, key.owner, video_id)
    if row is None:
        raise not_found(video_id)
    return row


def poll_after_ms(gw: Gateway, row: Video) -> int:
    """When the next update is due, for `openai-poll-after-ms`."""
    t = now()
    if row.claimed_until and row.claimed_until > t:
        return 500  # being worked on right now
    due = row.next_poll_at or t
    ms = int((due - t) * 1000) + 50
    return max(100, min(ms, gw.settings.poll_max_interval_ms))


async def list_videos(
    session: AsyncSession, key: ApiKey, *, after: str | None, limit: int, order: str
) -> tuple[list[Video], bool]:
    anchor = None
    if after:
        anchor = await repo.cursor_row(session, key.owner, after)
        if anchor is None:
            raise errors.InvalidRequest(f"Unknown 'after' cursor '{after}'.", param="after", code="invalid_value")
    return await repo.list_owned(session, key.owner, after=anchor, limit=limit, order=order)


async def delete_video(gw: Gateway, session: AsyncSession, key: ApiKey, video_id: str) -> None:
    await discard(gw, session, await get_video(session, key, video_id))


async def discard(gw: Gateway, session: AsyncSession, row: Video) -> None:
    """Delete a finished video (its row stays, marked, for usage): the API's DELETE and the dashboard's."""
    video_id = row.id
    if unfinished(row):
        raise errors.InvalidRequest(
            f"Video '{video_id}' is still {row.status}; it can be deleted once it has completed or failed.",
            param="video_id",
            code="video_not_finished",
        )
    row.deleted_at = now()
    row.assets = {}
    await session.flush()
    await gw.storage.delete_prefix(f"videos/{row.id}")
    await gw.storage.delete_prefix(f"inputs/{row.id}")


async def asset(gw: Gateway, row: Video, variant: str, session: AsyncSession | None = None) -> tuple[str, str, str]:
    """(storage key, media type, download filename) of a finished video's variant, or a clear 4xx."""
    if variant not in VARIANT_FILES:
        raise errors.InvalidRequest(
            f"Invalid variant '{variant}': expected one of video, thumbnail, spritesheet.",
            param="variant",
            code="invalid_value",
        )
    if row.status != pb.VideoStatus.completed:
        raise errors.InvalidRequest(
            f"Video '{row.id}' is {row.status}; its content is available once it has completed.",
            param="video_id",
            code="video_not_ready" if unfinished(row) else "video_failed",
        )
    if row.assets_purged_at is not None or _expired(row):
        raise _expired_error(row)
    await variants.ensure(gw, row, variant, session)  # a thumbnail or spritesheet is made on first request
    entry = (row.assets or {}).get(variant)
    if not entry or not await gw.storage.exists(entry["key"]):
        raise errors.NotFound(
            f"The {variant} of video '{row.id}' is not available.", param="variant", code="content_not_found"
        )
    filename = f"{row.id}.{VARIANT_FILES[variant].rsplit('.', 1)[1]}"
    return entry["key"], MEDIA_TYPES[variant], filename


def _expired(row: Video) -> bool:
    return row.expires_at is not None and row.expires_at <= now()


def _expired_error(row: Video) -> errors.NotFound:
    return errors.NotFound(
        f"The content of video '{row.id}' has expired and was deleted.", param="video_id", code="video_expired"
    )


async def serve_asset(
    gw: Gateway,
    row: Video,
    variant: str,
    request: Request,
    *,
    disposition: str = "attachment",
    session: AsyncSession | None = None,
) -> Response:
    """A variant as an HTTP response. The storage opens the object before answering, so an asset deleted
    (DELETE, the retention purge) after the lookup above is a 404 here, and one that was opened is sent whole."""
    storage_key, media_type, filename = await asset(gw, row, variant, session)
    try:
        return await gw.storage.serve(
            storage_key, request, media_type=media_type, filename=filename, disposition=disposition
        )
    except FileNotFoundError:
        # gone since the lookup: the purge deletes expired content; anything else was a DELETE
        raise (_expired_error(row) if _expired(row) else not_found(row.id)) from None


def signed_url(gw: Gateway, row: Video, *, base: str, variant: str = "video") -> str | None:
    if row.status != pb.VideoStatus.completed or row.assets_purged_at is not None:
        return None
    # a fresh link on every retrieve, for the URL TTL; never past the asset's own expiry
    expires = int(now()) + gw.settings.url_ttl_seconds
    if row.expires_at is not None:
        expires = min(expires, int(row.expires_at))
    sig = gw.signer.signature("video", row.id, variant, expires)
    root = gw.base_url(base)
    return f"{root}/files/videos/{row.id}/{variant}?expires={expires}&signature={sig}"


async def check_link_owner(session: AsyncSession, row: Video) -> None:
    """A signed link works only while the key that made the video still could fetch it itself."""
    key = await keys_repo.get(session, row.api_key_id)
    if key is None or not key.active or not key.enabled or (key.expires_at is not None and key.expires_at <= now()):
        raise errors.PermissionDenied(
            "This link no longer works: the API key that created the video was revoked or disabled.",
            code="link_revoked",
        )
