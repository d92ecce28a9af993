"""Request-body documentation for the routes that parse their bodies themselves (multipart with bracket
fields, or JSON), so `/openapi.json` and `/docs` describe what clients really send; and the responses of
the routes that build their bodies as dicts (`response_model=None`: no validation on the hot paths), by
the models of `app.videos.schemas`. Error responses are added to every operation by `app.docs`."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from app.videos import schemas


def _returns(model: type, description: str) -> dict[str, Any]:
    return {"response_model": None, "responses": {200: {"model": model, "description": description}}}


VIDEO = _returns(schemas.VideoResource, "The video job (`openai-poll-after-ms` is set while it is unfinished).")
VIDEO_LIST = _returns(schemas.VideoListResource, "A page of the key owner's videos.")
DELETED = _returns(schemas.DeletedVideoResource, "The video and its assets are gone.")
CHARACTER_OBJ = _returns(schemas.VideoCharacterResource, "The character.")
_BINARY = {"schema": {"type": "string", "format": "binary"}}
CONTENT: dict[str, Any] = {
    "response_class": Response,  # no JSON 200 beside the media types
    "responses": {
        200: {
            "description": "The MP4, or the thumbnail (WebP) or spritesheet (JPEG) `variant`.",
            "content": {"video/mp4": _BINARY, "image/webp": _BINARY, "image/jpeg": _BINARY},
        },
        206: {
            "description": "The byte range asked for with `Range` (a malformed `Range` is ignored).",
            "content": {"video/mp4": _BINARY, "image/webp": _BINARY, "image/jpeg": _BINARY},
        },
        416: {
            "description": "No requested range is satisfiable (`Content-Range: bytes */<size>`).",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        },
    },
}

_IMAGE_REF = {
    "type": "object",
    "properties": {
        "image_url": {"type": "string", "description": "An http(s) URL or a base64 data URL."},
        "file_id": {"type": "string", "description": "Not supported by vidgate: answered with a 400."},
    },
}
_METADATA = {
    "type": "object",
    "additionalProperties": True,
    "description": "Vendor extras passed to the native call (a JSON string in multipart, or bracket fields).",
}
_COMMON: dict[str, Any] = {
    "prompt": {"type": "string", "minLength": 1, "maxLength": 32000},
    "model": {"type": "string", "default": "sora-2"},
    "seconds": {"type": "string", "description": 'Whole seconds, e.g. "4" (an integer is accepted too).'},
    "size": {"type": "string", "description": "WxH, W*H or a resolution class such as 720P.", "default": "720x1280"},
    "metadata": _METADATA,
}


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retried create safe: the same key with the same request from the same API key within "
        "24 hours answers the video the first request made (same id, current state, charged once) with "
        "`Idempotent-Replayed: true`; the same key with a different request is a 409 "
        "(`idempotency_key_reused`). 1 to 255 printable ASCII characters."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}


def _body(json_props: dict[str, Any], multipart_props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object", "properties": json_props, "required": required}},
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": multipart_props, "required": required}
                },
            },
        },
    }


_VIDEO_REF = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}

CREATE = _body(
    {**_COMMON, "input_reference": _IMAGE_REF, "characters": {"type": "array", "items": _VIDEO_REF}},
    {**_COMMON, "metadata": {"type": "string"}, "input_reference": {"type": "string", "format": "binary"}},
    ["prompt"],
)
REMIX = _body({"prompt": _COMMON["prompt"]}, {"prompt": _COMMON["prompt"]}, ["prompt"])
EDIT = _body(
    {"prompt": _COMMON["prompt"], "video": _VIDEO_REF, "model": _COMMON["model"]},
    {"prompt": _COMMON["prompt"], "video": {"type": "string", "format": "binary"}, "model": _COMMON["model"]},
    ["prompt", "video"],
)
EXTEND = _body(
    {"prompt": _COMMON["prompt"], "video": _VIDEO_REF, "seconds": _COMMON["seconds"]},
    {"prompt": _COMMON["prompt"], "video": {"type": "string", "format": "binary"}, "seconds": _COMMON["seconds"]},
    ["prompt", "video", "seconds"],
)
CHARACTER = {
    "parameters": [IDEMPOTENCY_KEY],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 80},
                        "video": {"type": "string", "format": "binary"},
                    },
                    "required": ["name", "video"],
                }
            }
        },
    },
}
