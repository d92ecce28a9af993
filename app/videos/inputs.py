"""Field coercion for create/remix/edit/extend bodies, and reference-image resolution.

Everything here validates; nothing here writes to the database. Errors are OpenAI-shaped 400/413s
with `param` naming the field.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from app import netguard
from app.errors import InvalidRequest, PayloadTooLarge
from app.media import probe
from app.videos.parsing import BodyError, ParsedBody, Upload, load_json

MAX_PROMPT = 32_000
ALLOWED_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


@dataclass
class ImageRef:
    """A reference image after validation: bytes (uploaded, data URL or fetched) and/or a client URL."""

    data: bytes | None = None
    mime: str | None = None
    url: str | None = None  # the client's own http(s) URL


@dataclass
class ImageSource:
    """An image as the client gave it, before it is fetched or decoded."""

    upload: Upload | None = None
    url: str | None = None
    file_id: str | None = None
    param: str = "input_reference"


@dataclass
class VideoSource:
    video_id: str | None = None
    upload: Upload | None = None


@dataclass
class CommonFields:
    prompt: str
    model: str | None
    seconds: str | int | None
    size: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    image: ImageSource | None = None
    last_frame: ImageSource | None = None
    characters: list[str] = field(default_factory=list)
    video: VideoSource | None = None


def _str(value: Any, param: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise InvalidRequest(f"Invalid type for '{param}': expected a string.", param=param, code="invalid_type")
    return str(value)


def prompt_field(fields: dict[str, Any]) -> str:
    prompt = fields.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise InvalidRequest(
            "Missing required parameter: 'prompt'." if prompt is None else "'prompt' must not be empty.",
            param="prompt",
            code="missing_required_parameter" if prompt is None else "invalid_value",
        )
    if not isinstance(prompt, str):
        raise InvalidRequest("Invalid type for 'prompt': expected a string.", param="prompt", code="invalid_type")
    if len(prompt) > MAX_PROMPT:
        raise InvalidRequest(
            f"'prompt' is too long: {len(prompt)} characters, the maximum is {MAX_PROMPT}.",
            param="prompt",
            code="string_above_max_length",
        )
    return prompt


# The relay convention's image URLs in metadata (see common_fields): often data URLs, so they are
# bounded by the image limit (as a data URL) rather than by the metadata size.
METADATA_IMAGE_KEYS = frozenset({"img_url", "first_frame_url", "image_url", "last_frame_url"})


@dataclass(frozen=True)
class MetadataLimits:
    """OpenAI's own metadata is 16 string pairs of at most 512 characters; vidgate passes vendor extras
    (camera controls, seeds, callback URLs) through it, so it takes more, but a bounded amount."""

    max_bytes: int = 16 * 1024
    max_keys: int = 64
    max_depth: int = 5
    max_image_url_chars: int = 28 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Any) -> MetadataLimits:
        return cls(
            max_bytes=settings.max_metadata_bytes,
            max_keys=settings.max_metadata_keys,
            max_depth=settings.max_metadata_depth,
            max_image_url_chars=settings.max_image_bytes * 4 // 3 + 1024,
        )


def _depth(value: Any, stop: int) -> int:
    """Nesting levels of objects and lists (a scalar is 0), counted no further than `stop` + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > stop:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _chars_over(value: Any, limit: int) -> bool:
    """Whether the keys and strings alone already hold more than `limit` characters (stops early)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(str(k)) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        if total > limit:
            return True
    return False


def check_metadata(metadata: dict[str, Any], limits: MetadataLimits) -> None:
    def too_large(why: str) -> InvalidRequest:
        return InvalidRequest(f"'metadata' is too large: {why}.", param="metadata", code="metadata_too_large")

    if len(metadata) > limits.max_keys:
        raise too_large(f"it has {len(metadata)} keys; at most {limits.max_keys} are allowed")
    if (depth := _depth(metadata, limits.max_depth)) > limits.max_depth:
        raise too_large(f"it is nested {depth} or more levels deep; at most {limits.max_depth} are allowed")
    rest: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in METADATA_IMAGE_KEYS and isinstance(value, str):
            if len(value) > limits.max_image_url_chars:
                raise too_large(f"'metadata.{key}' is longer than {limits.max_image_url_chars} characters")
            continue
        rest[key] = value
    if _chars_over(rest, limits.max_bytes):  # a lower bound on the bytes, counted without serializing it
        raise too_large(f"it is more than {limits.max_bytes} bytes as JSON; at most that many are allowed")
    size = len(json.dumps(rest, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise too_large(f"it is {size} bytes as JSON; at most {limits.max_bytes} bytes are allowed")


def metadata_field(value: Any, limits: MetadataLimits | None = None) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = load_json(value)
        except BodyError as exc:
            raise InvalidRequest(f"Invalid 'metadata': {exc.why}.", param="metadata", code="invalid_value") from None
        except ValueError:
            raise InvalidRequest(
                "'metadata' must be a JSON object (as a JSON string in multipart, e.g. "
                "'{\"watermark\": false}'), or bracket fields such as metadata[watermark]=false.",
                param="metadata",
                code="invalid_type",
            ) from None
    if not isinstance(value, dict):
        raise InvalidRequest("'metadata' must be a JSON object.", param="metadata", code="invalid_type")
    check_metadata(value, limits or MetadataLimits())
    return value


def _image_source(value: Any, files: dict[str, Upload], name: str) -> ImageSource | None:
    if name in files:
        return ImageSource(upload=files[name], param=name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        # lenient: a bare URL string is taken as image_url (older relay clients send it that way)
        if value.startswith(("http://", "https://", "data:")):
            return ImageSource(url=value, param=name)
        raise InvalidRequest(
            f"Invalid type for '{name}': expected a file or an object with 'image_url' or 'file_id', "
            "but got a string instead.",
            param=name,
            code="invalid_type",
        )
    if isinstance(value, dict):
        url, file_id = value.get("image_url"), value.get("file_id")
        if bool(url) == bool(file_id):
            raise InvalidRequest(
                f"Provide exactly one of '{name}.image_url' or '{name}.file_id'.", param=name, code="invalid_value"
            )
        if file_id:
            return ImageSource(file_id=str(file_id), param=f"{name}.file_id")
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:")):
            raise InvalidRequest(
                f"'{name}.image_url' must be an http(s) URL or a base64 data URL.",
                param=f"{name}.image_url",
                code="invalid_value",
            )
        return ImageSource(url=url, param=f"{name}.image_url")
    raise InvalidRequest(f"Invalid type for '{name}'.", param=name, code="invalid_type")


def _characters(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    if not isinstance(value, list):
        raise InvalidRequest("'characters' must be an array of {\"id\": ...} objects.", param="characters")
    ids: list[str] = []
    for item in value:
        cid = item.get("id") if isinstance(item, dict) else item if isinstance(item, str) else None
        if not cid:
            raise InvalidRequest("Each entry of 'characters' needs an 'id'.", param="characters")
        ids.append(str(cid))
    if len(ids) > 2:
        raise InvalidRequest("A video can include at most two characters.", param="characters")
    return ids


def _video_source(value: Any, files: dict[str, Upload]) -> VideoSource | None:
    if "video" in files:
        return VideoSource(upload=files["video"])
    if isinstance(value, dict) and value.get("id"):
        return VideoSource(video_id=str(value["id"]))
    if isinstance(value, str) and value:
        return VideoSource(video_id=value)
    return None


def common_fields(
    body: ParsedBody, *, limits: MetadataLimits | None = None, prompt_required: bool = True
) -> CommonFields:
    f = body.fields
    prompt = prompt_field(f) if prompt_required or f.get("prompt") is not None else ""
    metadata = metadata_field(f.get("metadata"), limits)
    size = _str(f.get("size"), "size") or _str(f.get("resolution"), "resolution")
    seconds = f.get("seconds", f.get("duration"))
    if isinstance(seconds, (dict, list)):
        raise InvalidRequest("Invalid type for 'seconds': expected a string.", param="seconds", code="invalid_type")
    image = _image_source(f.get("input_reference"), body.files, "input_reference")
    if image is None:
        # relay convention: the image as a metadata URL (img_url / first_frame_url)
        for key in ("img_url", "first_frame_url", "image_url"):
            if isinstance(metadata.get(key), str) and metadata[key]:
                image = ImageSource(url=metadata[key], param=f"metadata.{key}")
                break
    last = _image_source(f.get("last_frame"), body.files, "last_frame")
    if last is None and isinstance(metadata.get("last_frame_url"), str) and metadata["last_frame_url"]:
        last = ImageSource(url=metadata["last_frame_url"], param="metadata.last_frame_url")
    return CommonFields(
        prompt=prompt,
        model=_str(f.get("model"), "model") or None,
        seconds=seconds if seconds not in ("", None) else None,
        size=size or None,
        metadata=metadata,
        image=image,
        last_frame=last,
        characters=_characters(f.get("characters")),
        video=_video_source(f.get("video"), body.files),
    )


# -- images ------------------------------------------------------------------------------------------


def check_image_bytes(data: bytes, *, param: str, limit: int, max_pixels: int | None = None) -> str:
    """The image's MIME type, or a 4xx: over the byte limit, not JPEG/PNG/WebP, more pixels than
    `max_pixels` (judged from the header), or broken. CPU-bound: callers on the event loop use
    `check_image`."""
    if len(data) > limit:
        raise PayloadTooLarge(
            f"The image is larger than the limit of {limit} bytes.", param=param, code="image_too_large"
        )
    mime = probe.sniff_image(data)
    if mime not in ALLOWED_IMAGE_TYPES:
        raise InvalidRequest(
            "Invalid image: the reference image must be a JPEG, PNG or WebP file.",
            param=param,
            code="invalid_image_format",
        )
    try:
        probe.image_size(data, max_pixels=max_pixels)
    except probe.ImageTooLarge as exc:
        size = f"{exc.size[0]}x{exc.size[1]} = {exc.size[0] * exc.size[1]} pixels" if exc.size else "too many pixels"
        raise InvalidRequest(
            f"The image is {size}; at most {exc.limit} pixels are allowed. Scale it down before sending it.",
            param=param,
            code="image_too_large",
        ) from None
    except probe.MediaError:
        raise InvalidRequest(
            "Invalid image: the file could not be decoded.", param=param, code="invalid_image"
        ) from None
    return mime


async def check_image(data: bytes, *, param: str, limit: int, max_pixels: int | None = None) -> str:
    """`check_image_bytes` off the event loop."""
    return await asyncio.to_thread(check_image_bytes, data, param=param, limit=limit, max_pixels=max_pixels)


def decode_data_url(url: str, *, param: str, limit: int, max_pixels: int | None = None) -> tuple[bytes, str]:
    header, _, payload = url.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        raise InvalidRequest("A data URL must be base64-encoded (data:image/png;base64,...).", param=param)
    if len(payload) > limit * 4 // 3 + 8:
        raise PayloadTooLarge(
            f"The image is larger than the limit of {limit} bytes.", param=param, code="image_too_large"
        )
    try:
        data = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raise InvalidRequest("The data URL is not valid base64.", param=param) from None
    return data, check_image_bytes(data, param=param, limit=limit, max_pixels=max_pixels)


def check_url(url: str, *, param: str) -> httpx.URL:
    """A client's http(s) URL as the fetcher will read it; a URL it cannot parse is the client's 400."""
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL as exc:
        # e.g. 'http://0177.0.0.1/' (octal, which the OS would read as 127.0.0.1), 'http://256.1.1.1/'
        raise InvalidRequest(f"'{param}' is not a valid URL: {exc}.", param=param, code="invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.host:
        raise InvalidRequest(f"'{param}' must be an http(s) URL.", param=param, code="invalid_url")
    return parts


async def fetch_image(
    client: httpx.AsyncClient, url: str, *, param: str, limit: int, max_pixels: int | None = None
) -> tuple[bytes, str]:
    """GET a client's image URL, following up to five redirects. `client` is the gateway's public-only
    client (app.netguard) unless the operator allows private addresses: it resolves each host once and
    connects to the checked address, so neither a redirect hop nor a rebinding DNS answer reaches an
    internal one. The image is checked off the event loop."""
    chunks: list[bytes] = []
    target = check_url(url, param=param)
    try:
        for _ in range(6):  # the first request and up to five redirects, each hop checked
            if target.scheme not in ("http", "https"):
                raise netguard.Refused("only http(s) URLs can be fetched")
            async with client.stream("GET", target, timeout=20.0, follow_redirects=False) as resp:
                if resp.is_redirect and "location" in resp.headers:
                    target = resp.url.join(resp.headers["location"])
                    url = str(target)
                    continue
                if resp.status_code != 200:
                    raise InvalidRequest(
                        f"Could not fetch the image at '{url}': HTTP {resp.status_code}.",
                        param=param,
                        code="image_fetch_failed",
                    )
                total = 0
                async for chunk in resp.aiter_bytes():
                    total += len(chunk)
                    if total > limit:
                        raise PayloadTooLarge(
                            f"The image at '{url}' is larger than the limit of {limit} bytes.",
                            param=param,
                            code="image_too_large",
                        )
                    chunks.append(chunk)
                break
        else:
            raise InvalidRequest(f"Too many redirects fetching '{url}'.", param=param, code="image_fetch_failed")
    except netguard.Refused as exc:
        raise InvalidRequest(
            f"The image URL '{url}' cannot be fetched: {exc}.", param=param, code="image_url_not_allowed"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a redirect to an unparseable Location
        raise InvalidRequest(
            f"Could not fetch the image at '{url}': {type(exc).__name__}.", param=param, code="image_fetch_failed"
        ) from None
    data = b"".join(chunks)
    return data, await check_image(data, param=param, limit=limit, max_pixels=max_pixels)


async def resolve_image(
    src: ImageSource,
    *,
    transport: str,
    client: httpx.AsyncClient,
    limit: int,
    max_pixels: int | None = None,
) -> ImageRef:
    """Bytes when the provider needs bytes (or the client sent them); else the client's URL as-is.
    Decoding and checking run off the event loop."""
    if src.file_id is not None:
        raise InvalidRequest(
            "File ids are not supported by this gateway: upload the image as 'input_reference' or pass "
            "'input_reference[image_url]' (an http(s) or data URL).",
            param=src.param,
            code="unsupported_parameter",
        )
    if src.upload is not None:
        data = await src.upload.read(limit, param=src.param)
        return ImageRef(data=data, mime=await check_image(data, param=src.param, limit=limit, max_pixels=max_pixels))
    assert src.url is not None
    if src.url.startswith("data:"):
        data, mime = await asyncio.to_thread(
            decode_data_url, src.url, param=src.param, limit=limit, max_pixels=max_pixels
        )
        return ImageRef(data=data, mime=mime)
    check_url(src.url, param=src.param)  # also when the provider fetches it: a 400 here, not a vendor error
    if transport in ("bytes", "base64"):
        data, mime = await fetch_image(client, src.url, param=src.param, limit=limit, max_pixels=max_pixels)
        return ImageRef(data=data, mime=mime, url=src.url)
    return ImageRef(url=src.url)
