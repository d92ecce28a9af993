"""The wire shapes: OpenAI's Video object (13 keys, plus the seeds' `quality` and `url`), lists, deletes.

The functions build the bodies (plain dicts: the hot paths skip model validation); the models below
describe the same shapes in `/openapi.json`, after the `components.schemas` of OpenAI's spec."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.providers.base import VideoStatus
from app.videos.models import Character, Video


def video_object(row: Video, *, url: str | None = None) -> dict[str, Any]:
    status = VideoStatus(row.status)
    error = None
    if status == VideoStatus.failed:
        error = {"code": row.error_code or "generation_failed", "message": row.error_message or "Generation failed."}
    body: dict[str, Any] = {
        "id": row.id,
        "object": "video",
        "model": row.model,
        "status": status.value,
        "progress": int(row.progress),
        "created_at": int(row.created_at),
        "completed_at": row.completed_at,
        "expires_at": row.expires_at,
        "prompt": row.prompt,
        "size": f"{row.width}x{row.height}",
        "seconds": str(row.seconds),
        "remixed_from_video_id": row.remixed_from_video_id,
        "error": error,
        "quality": row.quality,
    }
    if status == VideoStatus.completed and url:
        body["url"] = url
    return body


def list_object(items: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


def deleted_object(video_id: str) -> dict[str, Any]:
    return {"id": video_id, "object": "video.deleted", "deleted": True}


def character_object(row: Character) -> dict[str, Any]:
    return {"id": row.id, "object": "video.character", "name": row.name, "created_at": int(row.created_at)}


# -- documentation (`/openapi.json`); tests/docs/test_openapi.py checks real responses against them


class VideoError(BaseModel):
    """Why a generation failed."""

    code: str = Field(description="A machine-readable error code, e.g. `moderation_blocked`.")
    message: str


class VideoResource(BaseModel):
    """A video job: OpenAI's 13 keys (absent values are null), plus `quality` and, once completed, `url`."""

    id: str = Field(examples=["video_123"])
    object: Literal["video"]
    model: str = Field(examples=["sora-2"])
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int = Field(ge=0, le=100)
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    size: str = Field(examples=["1280x720"])
    seconds: str = Field(examples=["4"])
    remixed_from_video_id: str | None
    error: VideoError | None
    quality: str = Field(examples=["standard"])
    url: str | None = Field(
        None, description="Completed videos only: a signed, expiring link to the MP4 that needs no API key."
    )


class VideoListResource(BaseModel):
    object: Literal["list"]
    data: list[VideoResource]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedVideoResource(BaseModel):
    id: str
    object: Literal["video.deleted"]
    deleted: bool


class VideoCharacterResource(BaseModel):
    id: str
    object: Literal["video.character"]
    name: str
    created_at: int
