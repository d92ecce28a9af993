"""Local-disk asset storage (the embedded default). Keys are relative POSIX paths."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterable
from pathlib import Path


class StorageError(ValueError):
    pass


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise StorageError(f"invalid storage key {key!r}")
        return p

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def temp_path(self, suffix: str = "") -> Path:
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
                        raise StorageError(f"asset larger than {limit} bytes")
                    await asyncio.to_thread(fh.write, chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return total

    def write_bytes(self, key: str, data: bytes) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    def put_file(self, key: str, src: Path) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), dest)

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def delete_prefix(self, prefix: str) -> None:
        target = self.path(prefix)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
