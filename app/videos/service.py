"""Decisions about videos: validation against capabilities, ownership, submission, reads.

Creation spans a vendor call, so, like the engine, it commits in short steps of its own: the task
row is stored before the vendor is asked (a crash in between is recovered by the engine), and the
vendor's id is stored right after. Reads use the request's session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app import errors
from app.context import Gateway
from app.db import new_id, now
from app.keys.models import ApiKey
from app.media import probe
from app.observability.logs import redact
from app.providers import base as pb
from app.providers.capabilities import CapabilityError, ModelCaps, parse_seconds, parse_size
from app.providers.registry import Route, enable_hint
from app.providers.vendors import VENDORS
from app.usage import service as usage
from app.videos import idempotency
from app.videos import repository as repo
from app.videos.idempotency import Claim
from app.videos.inputs import (
    CommonFields,
    ImageRef,
    MetadataLimits,
    common_fields,
    resolve_image,
)
from app.videos.links import MEDIA_TYPES, VARIANT_FILES
from app.videos.models import Character, Video
from app.videos.parsing import ParsedBody, Upload

log = logging.getLogger("vidgate.videos")

DEFAULT_MODEL = "sora-2"
IMAGE_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def not_found(video_id: str) -> errors.NotFound:
    # identical for unknown ids and other owners' ids: nothing leaks
    # no id in the message, so the body is byte-identical whoever asks about whichever id
    del video_id
    return errors.NotFound("No video found with that id for this API key.", param="video_id", code="video_not_found")


def provider_error(exc: pb.ProviderError) -> errors.GatewayError:
    """The one border between vendor errors and HTTP errors."""
    # vendors may quote our request back, credentials included: redact before a client sees it
    message = redact(exc.message)
    if isinstance(exc, pb.Rejected):
        return errors.InvalidRequest(message, code=exc.vendor_code or "vendor_rejected")
    if isinstance(exc, pb.Unsupported):
        return errors.InvalidRequest(message, code="unsupported_operation")
    if isinstance(exc, pb.RateLimited):
        return errors.RateLimited(
            f"The upstream provider is rate limiting requests: {message}", retry_after=exc.retry_after or 5
        )
    if isinstance(exc, pb.AuthFailed):
        log.error("provider %s refused our credentials: %s", exc.provider, message)
        return errors.UpstreamError(
            "The upstream provider refused the gateway's credentials; the operator has to fix its configuration.",
            code="upstream_auth_failed",
        )
    if isinstance(exc, pb.Unavailable):
        return errors.UpstreamUnavailable(f"The upstream provider is unavailable: {message}")
    return errors.UpstreamError(f"The upstream provider failed: {message}")


# -- routing and capabilities ------------------------------------------------------------------------


def available_models(gw: Gateway, key: ApiKey) -> list[str]:
    return [m for m in gw.registry.names() if key.may_use(m)]


def unknown_model_message(gw: Gateway, key: ApiKey, model: str) -> str:
    """Why `model` cannot be used: for a known vendor's model, which settings enable that vendor."""
    names = ", ".join(available_models(gw, key)) or "(none)"
    hint = enable_hint(model)
    if hint is None:
        return f"The model '{model}' does not exist or is not served by this gateway. Available models: {names}."
    return f"{hint} Available models: {names}."


def route_for(gw: Gateway, key: ApiKey, model: str) -> Route:
    route = gw.registry.resolve(model)
    if route is None:
        raise errors.InvalidRequest(unknown_model_message(gw, key, model), param="model", code="model_not_found")
    if not key.may_use(model):
        names = ", ".join(available_models(gw, key)) or "(none)"
        raise errors.PermissionDenied(
            f"This API key may not use the model '{model}'. Allowed models: {names}.",
            param="model",
            code="model_not_allowed",
        )
    return route


def _policy(gw: Gateway, caps: ModelCaps) -> Any:
    # the sandbox is a test tool: its limits are exact, so client authors see their mistakes
    spec = VENDORS.get(caps.provider)
    return "strict" if spec is not None and spec.strict_params else gw.settings.param_policy


def _cap(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except CapabilityError as exc:
        raise errors.InvalidRequest(exc.message, param=exc.param, code=exc.code) from None


def resolve_size_seconds(gw: Gateway, route: Route, size: str | None, seconds: Any) -> tuple[int, int, int]:
    caps, model = route.caps, route.requested  # messages name what the client asked for, not an alias target
    spec = _cap(parse_size, size) if size else None
    secs = _cap(parse_seconds, seconds) if seconds is not None else None
    policy = _policy(gw, caps)
    w, h = _cap(caps.resolve_size, spec, policy, model=model)
    s = _cap(caps.resolve_seconds, secs, policy, model=model)
    return w, h, s


# -- creation ----------------------------------------------------------------------------------------


@dataclass
class Draft:
    """A validated task, not yet stored."""

    video: Video
    image: ImageRef | None = None
    last_frame: ImageRef | None = None
    source_upload: Upload | None = None
    route: Route | None = None
    idempotency: Claim | None = None  # stored with the row: a retry with this key answers this video


def _priced(gw: Gateway, route: Route, draft: Draft, *, seconds: int) -> Draft:
    """Attach the route and the credits to reserve for the seconds this task will produce."""
    row = draft.video
    w, h = (int(x) for x in row.size.split("x"))
    names = [route.requested, route.caps.name]
    row.reserved_credits = usage.cost(gw.registry.prices, names, w, h, seconds)
    draft.route = route
    return draft


async def _images(gw: Gateway, route: Route, f: CommonFields, draft: Draft) -> None:
    limit = gw.settings.max_image_bytes
    client = gw.image_http()
    if f.image is not None:
        if route.caps.image == "none":
            raise errors.InvalidRequest(
                f"Model '{route.requested}' does not take a reference image.", param="input_reference"
            )
        draft.image = await resolve_image(
            f.image,
            transport=route.image_transport,
            client=client,
            limit=limit,
            max_pixels=gw.settings.max_image_pixels,
        )
    elif route.caps.image == "required":
        raise errors.InvalidRequest(
            f"Model '{route.requested}' needs a reference image: send 'input_reference' "
            "(a file, or input_reference[image_url]).",
            param="input_reference",
            code="missing_required_parameter",
        )
    if f.last_frame is not None:
        if not route.caps.last_frame:
            raise errors.InvalidRequest(
                f"Model '{route.requested}' does not take a last frame.", param=f.last_frame.param
            )
        draft.last_frame = await resolve_image(
            f.last_frame,
            transport=route.image_transport,
            client=client,
            limit=limit,
            max_pixels=gw.settings.max_image_pixels,
        )
    needs_url = route.image_transport == "url"
    uploaded = [i for i in (draft.image, draft.last_frame) if i is not None and i.url is None]
    if needs_url and uploaded and not gw.settings.public_base_url:
        raise errors.InvalidRequest(
            f"Model '{route.requested}' fetches reference images by URL, and this gateway has no public "
            "address to serve uploaded images from. Pass 'input_reference[image_url]' instead, or ask the "
            "operator to set VIDGATE_PUBLIC_BASE_URL.",
            param="input_reference",
            code="public_base_url_required",
        )


async def _characters(session: AsyncSession, key: ApiKey, ids: list[str]) -> list[str]:
    names = []
    for cid in ids:
        char = await repo.get_character(session, key.owner, cid)
        if char is None:
            raise errors.InvalidRequest(f"Character '{cid}' not found.", param="characters", code="invalid_value")
        names.append(char.name)
    return names


def _new_row(key: ApiKey, route: Route, *, prompt: str, w: int, h: int, seconds: int, op: str) -> Video:
    t = time.time_ns()
    return Video(
        id=new_id("video"),
        owner=key.owner,
        api_key_id=key.id,
        operation=op,
        model=route.requested,
        provider=route.caps.provider,
        vendor_model=route.caps.name,
        status=pb.VideoStatus.queued.value,
        progress=0,
        prompt=prompt,
        size=f"{w}x{h}",
        seconds=str(seconds),
        quality="standard",
        params={},
        created_ns=t,
        created_at=t // 1_000_000_000,
        updated_at=t / 1e9,
        vendor_meta={},
        assets={},
        poll_count=0,
        poll_errors=0,
    )


async def draft_create(gw: Gateway, session: AsyncSession, key: ApiKey, body: ParsedBody) -> Draft:
    f = common_fields(body, limits=MetadataLimits.from_settings(gw.settings))
    route = route_for(gw, key, f.model or DEFAULT_MODEL)
    w, h, s = resolve_size_seconds(gw, route, f.size, f.seconds)
    row = _new_row(key, route, prompt=f.prompt, w=w, h=h, seconds=s, op="create")
    draft = Draft(row)
    await _images(gw, route, f, draft)
    row.params = {"metadata": f.metadata, "characters": await _characters(session, key, f.characters)}
    return _priced(gw, route, draft, seconds=s)


async def _source_video(session: AsyncSession, key: ApiKey, video_id: str, *, op: str, param: str) -> Video:
    src = await repo.get_owned(session, key.owner, video_id)
    if src is None:
        raise not_found(video_id)
    if src.status != pb.VideoStatus.completed.value:
        raise errors.InvalidRequest(
            f"Video '{video_id}' is {src.status}; only a completed video can be used for {op}.",
            param=param,
            code="video_not_ready",
        )
    return src


def _require(route: Route, op: str, flag: bool) -> None:
    if not flag:
        raise errors.InvalidRequest(
            f"Model '{route.requested}' does not support {op}.", param="model", code="unsupported_operation"
        )


async def draft_remix(gw: Gateway, session: AsyncSession, key: ApiKey, video_id: str, body: ParsedBody) -> Draft:
    f = common_fields(body, limits=MetadataLimits.from_settings(gw.settings))
    src = await _source_video(session, key, video_id, op="remix", param="video_id")
    route = route_for(gw, key, src.model)
    _require(route, "remix", route.caps.remix)
    w, h = (int(x) for x in src.size.split("x"))
    row = _new_row(key, route, prompt=f.prompt, w=w, h=h, seconds=int(src.seconds), op="remix")
    row.remixed_from_video_id = src.id
    row.source_video_id = src.id
    row.params = {"metadata": f.metadata, "characters": []}
    return _priced(gw, route, Draft(row), seconds=int(row.seconds))


async def _edit_like(
    gw: Gateway, session: AsyncSession, key: ApiKey, body: ParsedBody, *, op: str
) -> tuple[CommonFields, Route, Draft, int, int, int]:
    f = common_fields(body, limits=MetadataLimits.from_settings(gw.settings))
    if f.video is None:
        raise errors.InvalidRequest(
            "Missing required parameter: 'video' (an uploaded MP4 file, or video[id] of one of your videos).",
            param="video",
            code="missing_required_parameter",
        )
    if f.video.video_id is not None:
        src = await _source_video(session, key, f.video.video_id, op=op, param="video")
        route = route_for(gw, key, f.model or src.model)
        w, h = (int(x) for x in src.size.split("x"))
        secs = int(src.seconds)
        row = _new_row(key, route, prompt=f.prompt, w=w, h=h, seconds=secs, op=op)
        row.source_video_id = src.id
        return f, route, Draft(row), w, h, secs
    assert f.video.upload is not None
    route = route_for(gw, key, f.model or DEFAULT_MODEL)
    upload = f.video.upload
    tmp = gw.storage.scratch_path(".mp4")
    try:
        await upload.save_to(tmp, gw.settings.max_video_upload_bytes, param="video")
        info = await asyncio.to_thread(probe.probe_video, tmp)
    except probe.MediaError:
        raise errors.InvalidRequest(
            "The uploaded 'video' is not a decodable video file.", param="video", code="invalid_video"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    w, h, secs = info.width, info.height, max(1, round(info.seconds))
    row = _new_row(key, route, prompt=f.prompt, w=w, h=h, seconds=secs, op=op)
    return f, route, Draft(row, source_upload=upload), w, h, secs


async def draft_edit(gw: Gateway, session: AsyncSession, key: ApiKey, body: ParsedBody) -> Draft:
    f, route, draft, *_ = await _edit_like(gw, session, key, body, op="edit")
    _require(route, "edits", route.caps.edit)
    draft.video.params = {"metadata": f.metadata, "characters": []}
    return _priced(gw, route, draft, seconds=int(draft.video.seconds))


async def draft_extend(gw: Gateway, session: AsyncSession, key: ApiKey, body: ParsedBody) -> Draft:
    f, route, draft, _, _, src_secs = await _edit_like(gw, session, key, body, op="extend")
    _require(route, "extensions", route.caps.extend)
    if f.seconds is None:
        raise errors.InvalidRequest(
            "Missing required parameter: 'seconds' (the length of the extension).",
            param="seconds",
            code="missing_required_parameter",
        )
    segment = _cap(
        route.caps.resolve_seconds,
        _cap(parse_seconds, f.seconds),
        _policy(gw, route.caps),
        model=route.requested,
    )
    total = src_secs + segment
    if total > route.caps.max_total_seconds:
        raise errors.InvalidRequest(
            f"The extended video would be {total} seconds long; the maximum for model '{route.requested}' is "
            f"{route.caps.max_total_seconds}.",
            param="seconds",
            code="invalid_value",
        )
    draft.video.seconds = str(total)
    draft.video.params = {
        "metadata": f.metadata,
        "characters": [],
        "segment_seconds": segment,
        "source_seconds": src_secs,
    }
    return _priced(gw, route, draft, seconds=segment)


# -- reads -------------------------------------------------------------------------------------------


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
    row = await get_video(session, key, video_id)
    if row.status in repo.ACTIVE:
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


async def asset(gw: Gateway, row: Video, variant: str) -> tuple[str, str, str]:
    """(storage key, media type, download filename) of a finished video's variant, or a clear 4xx."""
    if variant not in VARIANT_FILES:
        raise errors.InvalidRequest(
            f"Invalid variant '{variant}': expected one of video, thumbnail, spritesheet.",
            param="variant",
            code="invalid_value",
        )
    if row.status != pb.VideoStatus.completed.value:
        raise errors.InvalidRequest(
            f"Video '{row.id}' is {row.status}; its content is available once it has completed.",
            param="video_id",
            code="video_not_ready" if row.status in repo.ACTIVE else "video_failed",
        )
    if row.assets_purged_at is not None or _expired(row):
        raise _expired_error(row)
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
    gw: Gateway, row: Video, variant: str, request: Request, *, disposition: str = "attachment"
) -> Response:
    """A variant as an HTTP response. The storage opens the object before answering, so an asset deleted
    (DELETE, the retention purge) after the lookup above is a 404 here, and one that was opened is sent whole."""
    storage_key, media_type, filename = await asset(gw, row, variant)
    try:
        return await gw.storage.serve(
            storage_key, request, media_type=media_type, filename=filename, disposition=disposition
        )
    except FileNotFoundError:
        # gone since the lookup: the purge deletes expired content; anything else was a DELETE
        raise (_expired_error(row) if _expired(row) else not_found(row.id)) from None


def signed_url(gw: Gateway, row: Video, *, base: str, variant: str = "video") -> str | None:
    if row.status != pb.VideoStatus.completed.value or row.assets_purged_at is not None:
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
    key = await session.get(ApiKey, row.api_key_id)
    if key is None or not key.active or not key.enabled or (key.expires_at is not None and key.expires_at <= now()):
        raise errors.PermissionDenied(
            "This link no longer works: the API key that created the video was revoked or disabled.",
            code="link_revoked",
        )


# -- characters --------------------------------------------------------------------------------------


async def create_character(
    gw: Gateway, session: AsyncSession, key: ApiKey, body: ParsedBody, *, claim: Claim | None = None
) -> tuple[Character, bool]:
    """The new character, or (with `claim`) the one a concurrent request with the same key made; and
    whether it is that replay."""
    name = body.fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidRequest(
            "Missing required parameter: 'name'.", param="name", code="missing_required_parameter"
        )
    if len(name) > 80:
        raise errors.InvalidRequest(
            "'name' must be at most 80 characters.", param="name", code="string_above_max_length"
        )
    upload = body.files.get("video")
    if upload is None:
        raise errors.InvalidRequest(
            "Missing required parameter: 'video' (an MP4 file, sent as multipart/form-data).",
            param="video",
            code="missing_required_parameter",
        )
    cid = new_id("char", 16)
    key_name = f"characters/{cid}.mp4"
    tmp = gw.storage.scratch_path(".mp4")
    try:
        await upload.save_to(tmp, gw.settings.max_video_upload_bytes, param="video")
        try:
            await asyncio.to_thread(probe.probe_video, tmp)
        except probe.MediaError:
            raise errors.InvalidRequest(
                "The uploaded 'video' is not a decodable video file.", param="video", code="invalid_video"
            ) from None
        await gw.storage.put_file(key_name, tmp)
    finally:
        tmp.unlink(missing_ok=True)  # moved into storage, or not wanted
    # the key goes into this request's transaction with the character, as a video's goes with its row
    record = claim.record(key.id, cid) if claim is not None else None
    if record is not None and not await repo.add_idempotency(
        session, record, expired_before=idempotency.expired_before()
    ):
        # a concurrent request with this key stored its character first: answer that one
        await gw.storage.delete_prefix(key_name)
        assert claim is not None
        earlier = await idempotency.replay(session, key, claim)
        if earlier is None:
            raise idempotency.in_progress()
        return await get_character(session, key, earlier), True
    char = Character(id=cid, owner=key.owner, name=name.strip(), created_at=int(now()), asset_key=key_name)
    session.add(char)
    await session.flush()
    return char, False


async def get_character(session: AsyncSession, key: ApiKey, character_id: str) -> Character:
    char = await repo.get_character(session, key.owner, character_id)
    if char is None:
        raise errors.NotFound(
            f"Character with id '{character_id}' not found.", param="character_id", code="character_not_found"
        )
    return char
