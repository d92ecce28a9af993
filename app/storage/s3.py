"""Asset storage on any S3-compatible object store (AWS S3, MinIO, Cloudflare R2, Ceph RGW, ...).

Uses aiobotocore: botocore's own request signing, retries and endpoint rules on an aiohttp transport, so
large transfers never tie up a thread. Implements the `Storage` Protocol of `app.storage.base`.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC
from email.utils import format_datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app.storage.base import StorageError
from app.storage.ranges import RangeNotSatisfiable, not_satisfiable_response, parse_ranges

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import (
        CompletedPartTypeDef,
        GetObjectOutputTypeDef,
        HeadObjectOutputTypeDef,
    )

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's floor for every multipart part but the last
READ_CHUNK = 1 * MiB  # downloads and served bodies are relayed in pieces of this size
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})


def content_disposition(disposition: str, filename: str) -> str:
    """The header exactly as Starlette's FileResponse writes it."""
    quoted = quote(filename)
    if quoted != filename:
        return f"{disposition}; filename*=utf-8''{quoted}"
    return f'{disposition}; filename="{filename}"'


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single range a `Range` header asks for, as inclusive (first, last); None means the whole object.

    Decided by `app.storage.ranges` (ignored when malformed, RangeNotSatisfiable when it misses the
    object); a set of several ranges is answered with the whole object too (RFC 9110 §14.2 allows it)."""
    spans = parse_ranges(header, size)
    return spans[0] if spans is not None and len(spans) == 1 else None


class S3Storage:
    """Objects under `prefix` in `bucket`; temporary local copies under `scratch_dir`.

    One aiobotocore client is opened on first use and bound to that event loop; `aclose()` closes it.
    Without `access_key`/`secret_key` botocore's default chain (environment, profile, instance role) applies.
    """

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key: str | None,
        secret_key: str | None,
        prefix: str = "",
        scratch_dir: Path,
        content_redirect: bool = False,
        presign_ttl_s: int = 300,
        part_size: int = 8 * MiB,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (the S3 minimum)")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.scratch_dir = scratch_dir.resolve()
        self.content_redirect = content_redirect
        self.presign_ttl_s = presign_ttl_s
        self.part_size = part_size
        self._credentials = (access_key, secret_key)
        self._config = AioConfig(
            signature_version="s3v4",
            # custom endpoints (MinIO, Ceph, ...) rarely have wildcard DNS for virtual-hosted buckets
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            # botocore's default CRC trailers on every upload are refused by several S3-compatible stores
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=10,
            read_timeout=60,
        )
        self._client: S3Client | None = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    # -- client lifecycle

    async def _s3(self) -> S3Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    access_key, secret_key = self._credentials
                    self._client = await stack.enter_async_context(
                        get_session().create_client(
                            "s3",
                            region_name=self.region,
                            endpoint_url=self.endpoint_url,
                            aws_access_key_id=access_key,
                            aws_secret_access_key=secret_key,
                            config=self._config,
                        )
                    )
                    self._stack = stack
        return self._client

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> S3Storage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- keys and errors

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or "\\" in key or any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"invalid storage key {key!r}")
        return self.prefix + key

    def _redact(self, text: str) -> str:
        for secret in self._credentials:
            if secret:
                text = text.replace(secret, "***")
        return text

    @contextmanager
    def _errors(self, op: str, key: str) -> Iterator[None]:
        """Translate client errors: a missing object is FileNotFoundError, anything else StorageError."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "")) or "unknown"
            if code in _NOT_FOUND:
                raise FileNotFoundError(key) from exc
            message = self._redact(str(error.get("Message", "")))
            raise StorageError(f"S3 {op} of {key!r} failed: {code} {message}".rstrip()) from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {op} of {key!r} failed: {self._redact(str(exc))}") from exc

    # -- writing

    async def write_stream(self, key: str, chunks: AsyncIterable[bytes], *, limit: int | None = None) -> int:
        """Up to `part_size` in memory at a time: one PUT for small objects, a multipart upload otherwise,
        aborted on any error so that no partial object ever appears."""
        full = self._key(key)
        s3 = await self._s3()
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        buf = bytearray()
        total = 0
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []

        async def flush(data: bytes) -> None:
            nonlocal upload_id
            if upload_id is None:
                created = await s3.create_multipart_upload(Bucket=self.bucket, Key=full, ContentType=content_type)
                upload_id = created["UploadId"]
            number = len(parts) + 1
            part = await s3.upload_part(Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=data)
            parts.append({"PartNumber": number, "ETag": part["ETag"]})

        try:
            with self._errors("upload", key):
                async for chunk in chunks:
                    total += len(chunk)
                    if limit is not None and total > limit:
                        raise StorageError(f"object larger than {limit} bytes")
                    buf += chunk
                    while len(buf) >= self.part_size:
                        data = bytes(buf[: self.part_size])
                        del buf[: self.part_size]
                        await flush(data)
                if upload_id is None:
                    await s3.put_object(Bucket=self.bucket, Key=full, Body=bytes(buf), ContentType=content_type)
                    return total
                if buf:
                    await flush(bytes(buf))
                    buf.clear()
                await s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(self._abort(s3, full, upload_id))
            raise
        return total

    async def _abort(self, s3: S3Client, full: str, upload_id: str) -> None:
        try:
            await s3.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            # the store's lifecycle rule for incomplete uploads is the backstop; the original error matters more
            log.warning("could not abort multipart upload of %s: %s", full, self._redact(str(exc)))

    async def write_bytes(self, key: str, data: bytes) -> None:
        full = self._key(key)
        s3 = await self._s3()
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        with self._errors("upload", key):
            await s3.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=content_type)

    async def put_file(self, key: str, src: Path) -> None:
        """Upload `src` (multipart when larger than `part_size`), then delete it."""
        await self.write_stream(key, self._file_chunks(src))
        await asyncio.to_thread(src.unlink, missing_ok=True)

    async def _file_chunks(self, path: Path) -> AsyncIterator[bytes]:
        fh = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(fh.read, self.part_size):
                yield chunk
        finally:
            fh.close()

    # -- reading

    async def _head(self, key: str) -> HeadObjectOutputTypeDef:
        full = self._key(key)
        s3 = await self._s3()
        with self._errors("head", key):
            return await s3.head_object(Bucket=self.bucket, Key=full)

    async def read_bytes(self, key: str) -> bytes:
        full = self._key(key)
        s3 = await self._s3()
        with self._errors("download", key):
            obj = await s3.get_object(Bucket=self.bucket, Key=full)
            async with obj["Body"] as body:
                return await body.read()

    async def exists(self, key: str) -> bool:
        try:
            await self._head(key)
        except FileNotFoundError:
            return False
        return True

    async def size(self, key: str) -> int:
        return (await self._head(key))["ContentLength"]

    async def delete_prefix(self, prefix: str) -> None:
        """Delete the object named `prefix` and every object below `prefix/` (never `prefix2/...`)."""
        base = self._key(prefix.rstrip("/"))
        s3 = await self._s3()
        with self._errors("delete", prefix):
            keys = [base]
            async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base + "/"):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
            for i in range(0, len(keys), DELETE_BATCH):
                batch = keys[i : i + DELETE_BATCH]
                result = await s3.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
                if failed := result.get("Errors"):
                    codes = sorted({str(e.get("Code")) for e in failed})
                    raise StorageError(f"S3 delete of {prefix!r} left {len(failed)} objects: {', '.join(codes)}")

    # -- local copies

    def scratch_path(self, suffix: str = "") -> Path:
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        return self.scratch_dir / f"{uuid.uuid4().hex}{suffix}"

    async def materialize(self, key: str) -> Path:
        """Download `key` to a fresh file under `scratch_dir`; hand it back to `release` when done."""
        full = self._key(key)
        s3 = await self._s3()
        dest = self.scratch_path(PurePosixPath(key).suffix)
        try:
            with self._errors("download", key):
                obj = await s3.get_object(Bucket=self.bucket, Key=full)
                fh = await asyncio.to_thread(dest.open, "wb")
                try:
                    async with obj["Body"] as body:
                        async for chunk in body.iter_chunks(READ_CHUNK):
                            await asyncio.to_thread(fh.write, chunk)
                finally:
                    fh.close()
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest

    async def release(self, path: Path) -> None:
        await asyncio.to_thread(self._release, path)

    def _release(self, path: Path) -> None:
        resolved = path.resolve()
        if self.scratch_dir in resolved.parents:  # never a file this storage did not hand out
            resolved.unlink(missing_ok=True)

    # -- HTTP

    async def serve(
        self, key: str, request: Request, *, media_type: str, filename: str, disposition: str = "attachment"
    ) -> Response:
        """A 302 to a presigned URL when `content_redirect`; else the object relayed through the gateway."""
        head = await self._head(key)  # FileNotFoundError before any response is chosen
        cd = content_disposition(disposition, filename)
        if self.content_redirect:
            return await self._redirect(key, request, media_type=media_type, content_disposition=cd)
        size = head["ContentLength"]
        headers = {"accept-ranges": "bytes", "content-disposition": cd}
        if etag := head.get("ETag"):
            headers["etag"] = etag
        if modified := head.get("LastModified"):
            headers["last-modified"] = format_datetime(modified.astimezone(UTC), usegmt=True)
        range_header = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if if_range is not None and if_range not in (headers.get("etag"), headers.get("last-modified")):
            range_header = None  # the client's copy is stale: send the whole current object
        try:
            span = byte_range(range_header, size)
        except RangeNotSatisfiable:
            return not_satisfiable_response(size)
        status = 200
        headers["content-length"] = str(size)
        if span is not None:
            status = 206
            headers["content-range"] = f"bytes {span[0]}-{span[1]}/{size}"
            headers["content-length"] = str(span[1] - span[0] + 1)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media_type)
        # open the object before answering: one deleted since the HEAD above is FileNotFoundError (the
        # caller's 404), not a 200 whose body never comes; the headers describe the bytes actually opened
        obj = await self._open(key, span)
        headers["content-length"] = str(obj["ContentLength"])
        if span is not None and (content_range := obj.get("ContentRange")):
            headers["content-range"] = content_range
        if etag := obj.get("ETag"):
            headers["etag"] = etag
        return _BodyResponse(obj["Body"], self._relay(key, obj["Body"]), status, headers, media_type)

    async def _redirect(self, key: str, request: Request, *, media_type: str, content_disposition: str) -> Response:
        s3 = await self._s3()
        # the signature covers the method: a HEAD that follows a GET-signed URL would get 403
        method = "head_object" if request.method == "HEAD" else "get_object"
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "ResponseContentType": media_type,
            "ResponseContentDisposition": content_disposition,
        }
        with self._errors("presign", key):
            url = await s3.generate_presigned_url(method, Params=params, ExpiresIn=self.presign_ttl_s)
        return RedirectResponse(url, status_code=302, headers={"cache-control": "no-store"})

    async def _open(self, key: str, span: tuple[int, int] | None) -> GetObjectOutputTypeDef:
        s3 = await self._s3()
        extra: dict[str, Any] = {"Range": f"bytes={span[0]}-{span[1]}"} if span else {}
        with self._errors("download", key):
            return await s3.get_object(Bucket=self.bucket, Key=self._key(key), **extra)

    async def _relay(self, key: str, body: Any) -> AsyncIterator[bytes]:
        while True:
            with self._errors("download", key):
                chunk = await body.read(READ_CHUNK)
            if not chunk:
                break
            yield chunk


class _BodyResponse(StreamingResponse):
    """Relays an S3 body that is already open and closes it however the response ends. A body that
    fails half-way aborts the connection short of its Content-Length, which every client detects: it is
    never mistaken for a whole download."""

    def __init__(
        self, body: Any, chunks: AsyncIterator[bytes], status: int, headers: dict[str, str], media_type: str
    ) -> None:
        super().__init__(chunks, status_code=status, headers=headers, media_type=media_type)
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._body.aclose()
