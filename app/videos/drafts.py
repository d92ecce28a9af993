"""Turning a parsed request body into a `Draft`: the model's route, its capabilities (size, seconds,
images, remix/edit/extend), the source video, and the credits to reserve.

Drafts only read (the key's characters, its source videos); nothing here writes or commits. A draft is
stored and sent to a vendor by `submission`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.db import new_id
from app.gateway import Gateway
from app.keys.models import ApiKey
from app.media import probe
from app.providers import base as pb
from app.providers.capabilities import CapabilityError, ModelCaps, parse_seconds, parse_size
from app.providers.registry import Route, enable_hint
from app.providers.vendors import VENDORS
from app.usage import service as usage
from app.videos import repository as repo
from app.videos.idempotency import Claim
from app.videos.inputs import (
    CommonFields,
    ImageRef,
    MetadataLimits,
    common_fields,
    resolve_image,
)
from app.videos.models import Video, VideoInputs
from app.videos.parsing import ParsedBody, Upload
from app.videos.reads import not_found

DEFAULT_MODEL = "sora-2"
IMAGE_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


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
    s = _cap(caps.resolve_seconds, secs, policy, model=model, size=(w, h))
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
    names = [route.requested, route.caps.name]
    row.reserved_credits = usage.cost(gw.registry.prices, names, row.width, row.height, seconds)
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
        status=pb.VideoStatus.queued,
        progress=0,
        prompt=prompt,
        width=w,
        height=h,
        seconds=seconds,
        quality="standard",
        inputs=VideoInputs(),
        created_ns=t,
        created_at=t // 1_000_000_000,
        updated_at=t / 1e9,
        vendor_meta={},
        assets={},
        poll_count=0,
        poll_errors=0,
        submit_attempts=0,
        download_attempts=0,
    )


async def draft_create(gw: Gateway, session: AsyncSession, key: ApiKey, body: ParsedBody) -> Draft:
    f = common_fields(body, limits=MetadataLimits.from_settings(gw.settings))
    route = route_for(gw, key, f.model or DEFAULT_MODEL)
    w, h, s = resolve_size_seconds(gw, route, f.size, f.seconds)
    row = _new_row(key, route, prompt=f.prompt, w=w, h=h, seconds=s, op="create")
    draft = Draft(row)
    await _images(gw, route, f, draft)
    row.inputs = VideoInputs(metadata=f.metadata, characters=await _characters(session, key, f.characters))
    return _priced(gw, route, draft, seconds=s)


async def _source_video(session: AsyncSession, key: ApiKey, video_id: str, *, op: str, param: str) -> Video:
    src = await repo.get_owned(session, key.owner, video_id)
    if src is None:
        raise not_found(video_id)
    if src.status != pb.VideoStatus.completed:
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
    row = _new_row(key, route, prompt=f.prompt, w=src.width, h=src.height, seconds=src.seconds, op="remix")
    row.remixed_from_video_id = src.id
    row.source_video_id = src.id
    row.inputs = VideoInputs(metadata=f.metadata)
    return _priced(gw, route, Draft(row), seconds=row.seconds)


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
        w, h, secs = src.width, src.height, src.seconds
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
    draft.video.inputs = VideoInputs(metadata=f.metadata)
    return _priced(gw, route, draft, seconds=draft.video.seconds)


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
    draft.video.seconds = total
    draft.video.inputs = VideoInputs(metadata=f.metadata, segment_seconds=segment, source_seconds=src_secs)
    return _priced(gw, route, draft, seconds=segment)
