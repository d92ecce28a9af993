"""Characters: a name and a short reference clip, usable by id in later creates.

Nothing here commits: the character and its Idempotency-Key go into the request's transaction, which the
`get_session` dependency commits.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.db import new_id, now
from app.gateway import Gateway
from app.keys.models import ApiKey
from app.media import probe
from app.videos import idempotency
from app.videos import repository as repo
from app.videos.models import Character
from app.videos.parsing import ParsedBody


async def create(
    gw: Gateway, session: AsyncSession, key: ApiKey, body: ParsedBody, *, idempotency_key: str | None, path: str
) -> tuple[Character, bool]:
    """The new character, or the one an earlier or concurrent request with the same Idempotency-Key made;
    and whether it is that replay."""
    claim = await idempotency.claim(idempotency_key, path, body)
    if claim is not None and (earlier := await idempotency.replay(session, key, claim)) is not None:
        return await get_character(session, key, earlier), True
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
    await repo.add_character(session, char)
    return char, False


async def get_character(session: AsyncSession, key: ApiKey, character_id: str) -> Character:
    char = await repo.get_character(session, key.owner, character_id)
    if char is None:
        raise errors.NotFound(
            f"Character with id '{character_id}' not found.", param="character_id", code="character_not_found"
        )
    return char
