"""The whole gateway on S3 storage: assets land in the bucket, /content streams them or redirects."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app
from tests.conftest import make_settings, new_key
from tests.storage.conftest import ACCESS_KEY, BUCKET, SECRET_KEY
from tests.support.api import finish
from tests.support.media import mp4_info

pytestmark = pytest.mark.engine  # these tests watch videos finish


def s3_settings(database_url, tmp_path, endpoint, **kw):
    return make_settings(
        database_url,
        tmp_path / "data",
        storage_backend="s3",
        s3_bucket=BUCKET,
        s3_endpoint_url=endpoint,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
        s3_prefix=f"gw-{tmp_path.name}",
        s3_part_size_mb=5,
        **kw,
    )


async def test_videos_on_s3_stream_with_range(database_url, tmp_path, s3_endpoint, s3_admin) -> None:
    app = create_app(s3_settings(database_url, tmp_path, s3_endpoint))
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r = await c.post(
                "/v1/videos",
                headers=auth,
                json={"prompt": "s3", "seconds": "1", "size": "96x64", "metadata": {"sandbox_latency_ms": 0}},
            )
            vid = (await finish(c, auth, r.json()["id"]))["id"]
            listed = await s3_admin.list_objects_v2(Bucket=BUCKET, Prefix=f"gw-{tmp_path.name}/videos/{vid}/")
            names = sorted(o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", []))
            assert names == ["video.mp4"]  # the variants are made when first asked for (app.videos.variants)
            thumb = await c.get(f"/v1/videos/{vid}/content?variant=thumbnail", headers=auth)
            assert thumb.status_code == 200 and thumb.content[:4] == b"RIFF" and thumb.content[8:12] == b"WEBP"
            listed = await s3_admin.list_objects_v2(Bucket=BUCKET, Prefix=f"gw-{tmp_path.name}/videos/{vid}/")
            names = sorted(o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", []))
            assert names == ["spritesheet.jpg", "thumbnail.webp", "video.mp4"]

            full = await c.get(f"/v1/videos/{vid}/content", headers=auth)
            assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
            assert mp4_info(full.content)[1:3] == (96, 64)
            part = await c.get(f"/v1/videos/{vid}/content", headers={**auth, "Range": "bytes=10-109"})
            assert part.status_code == 206 and part.content == full.content[10:110]
            head = await c.head(f"/v1/videos/{vid}/content", headers=auth)
            assert int(head.headers["content-length"]) == len(full.content)

            await c.delete(f"/v1/videos/{vid}", headers=auth)
            listed = await s3_admin.list_objects_v2(Bucket=BUCKET, Prefix=f"gw-{tmp_path.name}/videos/{vid}/")
            assert listed.get("KeyCount", 0) == 0


async def test_content_redirects_to_a_presigned_url(database_url, tmp_path, s3_endpoint) -> None:
    app = create_app(s3_settings(database_url, tmp_path, s3_endpoint, content_redirect=True))
    async with app.router.lifespan_context(app):
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r = await c.post(
                "/v1/videos",
                headers=auth,
                json={"prompt": "s3", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
            )
            vid = (await finish(c, auth, r.json()["id"]))["id"]
            moved = await c.get(f"/v1/videos/{vid}/content?variant=thumbnail", headers=auth)
            assert moved.status_code in (302, 307)
            async with httpx.AsyncClient() as plain:  # the SDK follows redirects like this
                got = await plain.get(moved.headers["location"])
            assert got.status_code == 200
            assert got.content[:4] == b"RIFF" and got.headers["content-type"] == "image/webp"
