"""S3Storage against a real S3-compatible server (moto in server mode, on loopback)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.storage.base import StorageError
from app.storage.s3 import S3Storage, byte_range
from tests.storage.conftest import BUCKET, SECRET_KEY, make_storage
from tests.videos.test_ranges import MALFORMED, UNSATISFIABLE

MiB = 1024 * 1024


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunked(data: bytes, step: int = 777_777) -> AsyncIterator[bytes]:
    # an odd step, so chunk and part boundaries never line up
    for i in range(0, len(data), step):
        yield data[i : i + step]


async def pending_uploads(s3_admin: Any) -> list[Any]:
    return (await s3_admin.list_multipart_uploads(Bucket=BUCKET)).get("Uploads", [])


def app_for(storage: S3Storage) -> Starlette:
    async def download(request: Request) -> Response:
        try:
            return await storage.serve(request.path_params["key"], request, media_type="video/mp4", filename="clip.mp4")
        except FileNotFoundError:
            return Response(status_code=404)

    return Starlette(routes=[Route("/files/{key:path}", download, methods=["GET", "HEAD"])])


def client_for(storage: S3Storage) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(storage)), base_url="http://testserver")


class TestWrite:
    async def test_multipart_stream_round_trips(self, storage: S3Storage, s3_admin: Any) -> None:
        data = blob(20 * MiB + 12_345)
        assert await storage.write_stream("videos/v1/video.mp4", chunked(data)) == len(data)
        stored = await storage.read_bytes("videos/v1/video.mp4")
        assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
        head = await s3_admin.head_object(Bucket=BUCKET, Key=f"{storage.prefix}videos/v1/video.mp4")
        assert head["ETag"].strip('"').endswith("-5")  # 4 full parts of 5 MiB and a short last one
        assert head["ContentType"] == "video/mp4"

    async def test_small_stream_is_one_put(self, storage: S3Storage) -> None:
        assert await storage.write_stream("a/small.bin", chunked(b"hello world", step=3)) == 11
        assert await storage.read_bytes("a/small.bin") == b"hello world"

    async def test_empty_stream_stores_empty_object(self, storage: S3Storage) -> None:
        assert await storage.write_stream("a/empty", chunked(b"")) == 0
        assert await storage.size("a/empty") == 0

    async def test_failing_stream_leaves_nothing(self, storage: S3Storage, s3_admin: Any) -> None:
        async def broken() -> AsyncIterator[bytes]:
            yield blob(6 * MiB)  # enough for one uploaded part
            raise RuntimeError("vendor hung up")

        with pytest.raises(RuntimeError, match="vendor hung up"):
            await storage.write_stream("videos/v2/video.mp4", broken())
        assert not await storage.exists("videos/v2/video.mp4")
        assert await pending_uploads(s3_admin) == []

    async def test_limit_aborts_multipart(self, storage: S3Storage, s3_admin: Any) -> None:
        with pytest.raises(StorageError, match="larger than"):
            await storage.write_stream("videos/v3/video.mp4", chunked(blob(12 * MiB)), limit=11 * MiB)
        assert not await storage.exists("videos/v3/video.mp4")
        assert await pending_uploads(s3_admin) == []

    async def test_limit_on_small_object(self, storage: S3Storage) -> None:
        with pytest.raises(StorageError):
            await storage.write_stream("a/b", chunked(b"x" * 100, step=10), limit=99)
        assert not await storage.exists("a/b")
        assert await storage.write_stream("a/b", chunked(b"x" * 99, step=10), limit=99) == 99

    async def test_put_file_uploads_and_removes_source(self, storage: S3Storage, tmp_path: Path) -> None:
        data = blob(11 * MiB, seed=1)
        src = tmp_path / "out.mp4"
        src.write_bytes(data)
        await storage.put_file("videos/v4/video.mp4", src)
        assert not src.exists()
        assert await storage.read_bytes("videos/v4/video.mp4") == data

    async def test_write_bytes_and_size(self, storage: S3Storage) -> None:
        assert not await storage.exists("inputs/i.png")
        await storage.write_bytes("inputs/i.png", b"\x89PNG....")
        assert await storage.exists("inputs/i.png")
        assert await storage.size("inputs/i.png") == 8


class TestErrors:
    async def test_missing_key_is_file_not_found(self, storage: S3Storage) -> None:
        with pytest.raises(FileNotFoundError):
            await storage.read_bytes("nope")
        with pytest.raises(FileNotFoundError):
            await storage.size("nope")
        with pytest.raises(FileNotFoundError):
            await storage.materialize("nope.mp4")
        assert list(storage.scratch_dir.iterdir()) == []  # no leftover partial download

    @pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b"])
    async def test_invalid_keys_refused(self, storage: S3Storage, key: str) -> None:
        with pytest.raises(StorageError, match="invalid storage key"):
            await storage.write_bytes(key, b"x")

    async def test_client_errors_are_storage_errors_without_secrets(self, s3_endpoint: str, tmp_path: Path) -> None:
        async with make_storage(s3_endpoint, tmp_path, bucket="no-such-bucket") as storage:
            with pytest.raises(StorageError) as info:
                await storage.write_bytes("k", b"x")
        assert "NoSuchBucket" in str(info.value)
        assert SECRET_KEY not in str(info.value)

    def test_part_size_floor(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="part_size"):
            make_storage("http://127.0.0.1:9", tmp_path, part_size=MiB)


class TestDeletePrefix:
    async def test_deletes_tree_and_single_key_but_not_siblings(self, storage: S3Storage) -> None:
        for key in ["videos/a", "videos/a/video.mp4", "videos/a/thumb.webp", "videos/ab/video.mp4"]:
            await storage.write_bytes(key, b"x")
        await storage.delete_prefix("videos/a")
        assert not await storage.exists("videos/a")
        assert not await storage.exists("videos/a/video.mp4")
        assert not await storage.exists("videos/a/thumb.webp")
        assert await storage.exists("videos/ab/video.mp4")

    async def test_many_objects_and_missing_prefix(self, storage: S3Storage) -> None:
        for i in range(30):
            await storage.write_bytes(f"batch/{i}", b"x")
        await storage.delete_prefix("batch/")
        assert not await storage.exists("batch/0")
        assert not await storage.exists("batch/29")
        await storage.delete_prefix("never/written")


class TestMaterialize:
    async def test_download_and_release(self, storage: S3Storage) -> None:
        data = blob(3 * MiB, seed=2)
        await storage.write_bytes("videos/v5/video.mp4", data)
        path = await storage.materialize("videos/v5/video.mp4")
        assert path.parent == storage.scratch_dir
        assert path.suffix == ".mp4"
        assert path.read_bytes() == data
        await storage.release(path)
        assert not path.exists()

    async def test_release_ignores_paths_outside_scratch(self, storage: S3Storage, tmp_path: Path) -> None:
        outside = tmp_path / "keep.txt"
        outside.write_text("mine")
        await storage.release(outside)
        assert outside.exists()

    def test_scratch_paths_are_fresh(self, storage: S3Storage) -> None:
        a, b = storage.scratch_path(".webp"), storage.scratch_path(".webp")
        assert a != b
        assert a.parent == storage.scratch_dir
        assert a.suffix == ".webp"


DATA = blob(2 * MiB + 3, seed=3)
KEY = "videos/v6/video.mp4"


class TestServeStreamed:
    @pytest.fixture(autouse=True)
    async def _object(self, storage: S3Storage) -> None:
        await storage.write_bytes(KEY, DATA)

    async def test_full_get(self, storage: S3Storage) -> None:
        async with client_for(storage) as c:
            r = await c.get(f"/files/{KEY}")
        assert r.status_code == 200
        assert r.content == DATA
        assert r.headers["content-type"] == "video/mp4"
        assert r.headers["content-length"] == str(len(DATA))
        assert r.headers["content-disposition"] == 'attachment; filename="clip.mp4"'
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["etag"]

    async def test_head_has_headers_only(self, storage: S3Storage) -> None:
        async with client_for(storage) as c:
            r = await c.head(f"/files/{KEY}")
        assert r.status_code == 200
        assert r.content == b""
        assert r.headers["content-length"] == str(len(DATA))
        assert r.headers["content-type"] == "video/mp4"
        assert r.headers["accept-ranges"] == "bytes"

    @pytest.mark.parametrize(
        ("header", "first", "last"),
        [
            ("bytes=1000000-1000099", 1_000_000, 1_000_099),  # the middle
            ("bytes=2000000-", 2_000_000, len(DATA) - 1),  # open-ended
            ("bytes=-500", len(DATA) - 500, len(DATA) - 1),  # suffix
            ("bytes=10-99999999", 10, len(DATA) - 1),  # past the end is clipped
        ],
    )
    async def test_range_is_206(self, storage: S3Storage, header: str, first: int, last: int) -> None:
        async with client_for(storage) as c:
            r = await c.get(f"/files/{KEY}", headers={"Range": header})
        assert r.status_code == 206
        assert r.content == DATA[first : last + 1]
        assert r.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
        assert r.headers["content-length"] == str(last - first + 1)

    @pytest.mark.parametrize("template", UNSATISFIABLE)
    async def test_unsatisfiable_range_is_416_envelope(self, storage: S3Storage, template: str) -> None:
        size = len(DATA)
        async with client_for(storage) as c:
            r = await c.get(f"/files/{KEY}", headers={"Range": template.format(size=size, over=size + 10)})
        assert r.status_code == 416
        assert r.headers["content-range"] == f"bytes */{size}"
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == "range_not_satisfiable"
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}

    async def test_malformed_range_is_ignored(self, storage: S3Storage) -> None:
        async with client_for(storage) as c:
            for header in MALFORMED:  # as on local disk (tests/videos/test_ranges.py)
                r = await c.get(f"/files/{KEY}", headers={"Range": header})
                assert (r.status_code, r.content) == (200, DATA), header

    async def test_stale_if_range_gets_whole_object(self, storage: S3Storage) -> None:
        async with client_for(storage) as c:
            r = await c.get(f"/files/{KEY}", headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
        assert r.status_code == 200
        assert r.content == DATA

    async def test_missing_key_raises_before_responding(self, storage: S3Storage) -> None:
        async with client_for(storage) as c:
            r = await c.get("/files/videos/none/video.mp4")
        assert r.status_code == 404

    @pytest.mark.parametrize("header", [None, "bytes=100-199"])
    async def test_deleted_after_the_head_raises_before_responding(
        self, storage: S3Storage, monkeypatch: pytest.MonkeyPatch, header: str | None
    ) -> None:
        # a DELETE or the retention purge lands between the HEAD and the GET of the object
        real = storage._head

        async def head_then_delete(key: str) -> Any:
            found = await real(key)
            await storage.delete_prefix(key)
            return found

        monkeypatch.setattr(storage, "_head", head_then_delete)
        headers = {"Range": header} if header else {}
        request = Request(
            {"type": "http", "method": "GET", "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        )
        with pytest.raises(FileNotFoundError):
            await storage.serve(KEY, request, media_type="video/mp4", filename="clip.mp4")

    async def test_a_started_download_completes_after_the_delete(self, storage: S3Storage) -> None:
        async with client_for(storage) as c, c.stream("GET", f"/files/{KEY}", headers={"Range": "bytes=10-"}) as r:
            await storage.delete_prefix(KEY)
            body = await r.aread()
        assert r.status_code == 206
        assert body == DATA[10:] and r.headers["content-length"] == str(len(body))


class TestServeRedirect:
    async def test_get_redirects_to_presigned_url(self, s3_endpoint: str, tmp_path: Path) -> None:
        async with make_storage(s3_endpoint, tmp_path, content_redirect=True, presign_ttl_s=60) as storage:
            await storage.write_bytes(KEY, DATA)
            async with client_for(storage) as c:
                r = await c.get(f"/files/{KEY}")
                h = await c.head(f"/files/{KEY}")
                missing = await c.get("/files/videos/none/video.mp4")
        assert r.status_code == 302
        location = r.headers["location"]
        assert location.startswith(s3_endpoint)
        assert "X-Amz-Expires=60" in location
        assert SECRET_KEY not in location
        assert missing.status_code == 404
        async with httpx.AsyncClient() as web:
            obj = await web.get(location)
            head = await web.head(h.headers["location"])
        assert obj.status_code == 200
        assert obj.content == DATA
        assert obj.headers["content-type"] == "video/mp4"
        assert obj.headers["content-disposition"] == 'attachment; filename="clip.mp4"'
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(DATA))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-", (5, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=-30", (0, 9)),
        ("bytes=0-1,4-5", None),  # multi-range: answered with the whole object
        ("bytes=5-2", None),  # malformed: ignored
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_byte_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 10) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=-5", 0)])
def test_byte_range_unsatisfiable(header: str, size: int) -> None:
    from app.storage.s3 import RangeNotSatisfiable

    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, size)
