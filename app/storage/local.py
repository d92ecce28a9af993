"""Local-disk asset storage (the embedded default)."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.types import Receive, Scope, Send

from app.storage.base import StorageError
from app.storage.ranges import RangeNotSatisfiable, not_satisfiable_response, parse_ranges


class _BigChunkFileResponse(FileResponse):
    # 4 MiB reads instead of 64 KiB: each read is a thread hop, and small reads cap throughput
    # (bench/p2_content.py: 64 KiB ~0.9, 1 MiB ~1.7-2.8, 4 MiB ~3.3 GiB/s; memory stays bounded by a chunk or two,
    # uvicorn's flow control pausing the body while the socket is full)
    chunk_size = 4 * 1024 * 1024

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        # the ranges module decides, as for S3 (Starlette answers a plain-text 400 to a malformed header);
        # Starlette wants end-exclusive pairs, and an empty list means "send the whole file"
        spans = parse_ranges(http_range, file_size)
        return [(first, last + 1) for first, last in spans or ()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except RangeNotSatisfiable as exc:  # raised while parsing the header, before anything was sent
            await not_satisfiable_response(exc.size)(scope, receive, send)


class _OpenFileResponse(_BigChunkFileResponse):
    """A FileResponse over a file that is already open.

    Starlette's FileResponse stats and opens the path only when it is sent, so a file deleted in
    between (DELETE, the retention purge) became a 500 or a body cut off after the headers. Here the
    caller opened it first; the held descriptor keeps an unlinked file readable on POSIX, so a download
    that was answered completes whole. Everything else (HEAD, Range, If-Range, 416) is FileResponse's."""

    def __init__(
        self, fh: BinaryIO, st: os.stat_result, path: Path, *, media_type: str, filename: str, disposition: str
    ) -> None:
        self._fh = fh
        super().__init__(
            path, media_type=media_type, filename=filename, stat_result=st, content_disposition_type=disposition
        )

    # every FileResponse body handler reads through this hook (Starlette 1.x); should it go away,
    # tests/videos/test_content_races.py::test_a_started_download_completes_after_the_file_is_unlinked fails
    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        yield anyio.AsyncFile(self._fh)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.pathsend" in scope.get("extensions", {}):
            # pathsend hands the server the path, which may be gone by now: send from the descriptor
            scope = {
                **scope,
                "extensions": {k: v for k, v in scope["extensions"].items() if k != "http.response.pathsend"},
            }
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._fh.close()


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise StorageError(f"invalid storage key {key!r}")
        return p

    def scratch_path(self, suffix: str = "") -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{uuid.uuid4().hex}{suffix}"

    async def write_stream(self, key: str, chunks: AsyncIterable[bytes], *, limit: int | None = None) -> int:
        """Stream to a temporary file, then rename: a reader never sees a half-written asset."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        total = 0
        try:
            with tmp.open("wb") as fh:
                async for chunk in chunks:
                    total += len(chunk)
                    if limit is not None and total > limit:
                        raise StorageError(f"object larger than {limit} bytes")
                    await asyncio.to_thread(fh.write, chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return total

    async def write_bytes(self, key: str, data: bytes) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            await asyncio.to_thread(tmp.write_bytes, data)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)  # a full disk leaves no partial file behind

    async def put_file(self, key: str, src: Path) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.move, str(src), dest)

    async def read_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    async def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    async def delete_prefix(self, prefix: str) -> None:
        target = self.path(prefix)
        if target.is_dir():
            await asyncio.to_thread(shutil.rmtree, target, True)
        else:
            target.unlink(missing_ok=True)

    async def materialize(self, key: str) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    async def release(self, path: Path) -> None:
        return None  # materialize hands out the stored file itself

    async def serve(
        self, key: str, request: Request, *, media_type: str, filename: str, disposition: str = "attachment"
    ) -> Response:
        """Opens the file before answering: FileNotFoundError if it is gone (the caller's 404)."""
        path = self.path(key)
        fh, st = await asyncio.to_thread(_open_regular, path)
        # FileResponse streams from the file in chunks and answers HEAD and Range (206) itself
        return _OpenFileResponse(fh, st, path, media_type=media_type, filename=filename, disposition=disposition)


def _open_regular(path: Path) -> tuple[BinaryIO, os.stat_result]:
    try:
        fh = path.open("rb")
    except IsADirectoryError:
        raise FileNotFoundError(str(path)) from None
    st = os.fstat(fh.fileno())
    if not stat.S_ISREG(st.st_mode):
        fh.close()
        raise FileNotFoundError(str(path))  # a FIFO or device where an asset should be: not servable
    return fh, st
