"""The wire shapes: OpenAI's Video object (13 keys, plus the seeds' `quality` and `url`), lists, deletes."""

from __future__ import annotations

from typing import Any

from app.videos.models import Character, Video


def video_object(row: Video, *, url: str | None = None) -> dict[str, Any]:
    error = None
    if row.status == "failed":
        error = {"code": row.error_code or "generation_failed", "message": row.error_message or "Generation failed."}
    body: dict[str, Any] = {
        "id": row.id,
        "object": "video",
        "model": row.model,
        "status": row.status,
        "progress": int(row.progress),
        "created_at": int(row.created_at),
        "completed_at": row.completed_at,
        "expires_at": row.expires_at,
        "prompt": row.prompt,
        "size": row.size,
        "seconds": str(row.seconds),
        "remixed_from_video_id": row.remixed_from_video_id,
        "error": error,
        "quality": row.quality,
    }
    if row.status == "completed" and url:
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
