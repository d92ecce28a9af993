"""Local-disk asset storage (the embedded default)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from app.storage.base import StorageError


class _BigChunkFileResponse(FileResponse):
    # 1 MiB reads instead of 64 KiB: each read is a thread hop, and at 64 KiB they cap throughput
    # (bench/p2_content.py: ~3x faster, memory still bounded)
    chunk_size = 1024 * 1024


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
        # FileResponse streams from disk in chunks and answers HEAD and Range (206) itself
        return _BigChunkFileResponse(
            self.path(key), media_type=media_type, filename=filename, content_disposition_type=disposition
        )
