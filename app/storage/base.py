"""Where finished assets and uploaded inputs live. Keys are relative POSIX paths (`videos/<id>/video.mp4`)."""

from __future__ import annotations

from collections.abc import AsyncIterable
from pathlib import Path
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response


class StorageError(ValueError):
    pass


class Storage(Protocol):
    async def write_stream(self, key: str, chunks: AsyncIterable[bytes], *, limit: int | None = None) -> int:
        """Store a stream; readers never see a half-written object."""
        ...

    async def write_bytes(self, key: str, data: bytes) -> None: ...

    async def put_file(self, key: str, src: Path) -> None:
        """Store a local file (it may be moved: the caller must not use `src` afterwards)."""
        ...

    async def read_bytes(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int: ...

    async def delete_prefix(self, prefix: str) -> None: ...

    async def materialize(self, key: str) -> Path:
        """A local, readable path for `key` (the file itself on disk; a temporary copy elsewhere)."""
        ...

    async def release(self, path: Path) -> None:
        """Forget a path from `materialize` (deletes temporary copies, never the stored object)."""
        ...

    def scratch_path(self, suffix: str = "") -> Path:
        """A fresh local path for work files, on the same filesystem as local assets when possible."""
        ...

    async def serve(
        self, key: str, request: Request, *, media_type: str, filename: str, disposition: str = "attachment"
    ) -> Response:
        """The object as an HTTP response: streamed (HEAD and Range honoured) or a redirect."""
        ...
