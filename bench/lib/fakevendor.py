# ruff: noqa: T201 - a benchmark reports on stdout
"""A fast, stateless fake OpenAI-format vendor for P3 and P4 (vidgate's `openai_compat` channel).

* `POST /v1/videos` answers at once with a new id `vt_<n>_<created_ms>_<complete_ms>`: the task completes
  at `now + a random delay` in [FAKE_DELAY_MIN_MS, FAKE_DELAY_MAX_MS] (0/0 by default).
* `GET /v1/videos/{id}` reads the creation and completion times out of the id: `in_progress` before the
  completion, `completed` after. No `openai-poll-after-ms` header (OpenAI sends none either). What the
  Video object says about the time left is FAKE_PROGRESS: `linear` (default) reports `created_at` and a
  `progress` that grows linearly from 0 at creation to 100 at completion (OpenAI's fields; real progress
  need not be linear); `none` reports no progress at all, so nothing hints at the completion time.
  P3 inserts its tasks straight into vidgate's table with ids of that form, so nothing is stored here
  (an id `vt_<n>_<complete_ms>` without the creation time is read as created at the first poll).
* `GET /v1/videos/{id}/content[?variant=thumbnail|spritesheet]` serves a tiny real MP4 / WebP / JPEG.
* Auth: exactly `Authorization: Bearer $FAKE_API_KEY`.
* `GET /_stats` (no auth): requests per whole second per kind, for the request-rate figures.
"""

from __future__ import annotations

import io
import os
import random
import time
from collections import defaultdict
from itertools import count

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def sample_mp4() -> bytes:
    """A real 1-second 64x64 H.264 MP4 (the gateway decodes what it downloads)."""
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 30, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def sample_image(fmt: str, size: tuple[int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buf, format=fmt)
    return buf.getvalue()


def create_app() -> Starlette:
    api_key = os.environ.get("FAKE_API_KEY", "sk-fake-vendor")
    delay_min = int(os.environ.get("FAKE_DELAY_MIN_MS", "0"))
    delay_max = int(os.environ.get("FAKE_DELAY_MAX_MS", "0"))
    linear = os.environ.get("FAKE_PROGRESS", "linear") == "linear"
    auth_header = f"Bearer {api_key}"
    mp4 = sample_mp4()
    assets = {
        "video": (mp4, "video/mp4"),
        "thumbnail": (sample_image("WEBP", (64, 64)), "image/webp"),
        "spritesheet": (sample_image("JPEG", (320, 128)), "image/jpeg"),
    }
    ids = count(1)
    # kind -> whole unix second -> requests
    stats: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    def denied(request: Request) -> Response | None:
        if request.headers.get("authorization") != auth_header:
            return JSONResponse(
                {
                    "error": {
                        "message": "bad key",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                status_code=401,
            )
        return None

    def video(
        vid: str, status: str, created: int, completed: int | None, progress: int | None = 0
    ) -> dict[str, object]:
        return {
            "id": vid,
            "object": "video",
            "model": "sora-2",
            "status": status,
            "progress": 100 if status == "completed" else progress,
            "created_at": created,
            "completed_at": completed,
            "expires_at": None,
            "prompt": "bench",
            "size": "720x1280",
            "seconds": "4",
            "remixed_from_video_id": None,
            "error": None,
        }

    async def create(request: Request) -> Response:
        now = time.time()
        stats["create"][int(now)] += 1
        await request.body()
        if bad := denied(request):
            return bad
        now_ms = int(now * 1000)
        done_ms = now_ms + random.randint(delay_min, delay_max)
        return JSONResponse(video(f"vt_{next(ids)}_{now_ms}_{done_ms}", "queued", int(now), None))

    async def retrieve(request: Request) -> Response:
        now = time.time()
        stats["poll"][int(now)] += 1
        if bad := denied(request):
            return bad
        vid = request.path_params["vid"]
        parts = vid.split("_")
        try:
            done = int(parts[-1]) / 1000
            created = int(parts[-2]) / 1000 if len(parts) >= 4 else now
        except (IndexError, ValueError):
            return JSONResponse(
                {"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}},
                status_code=404,
            )
        if now >= done:
            return JSONResponse(video(vid, "completed", int(created), int(done)))
        share = (now - created) / (done - created) if done > created else 0.0
        progress = min(99, max(0, int(100 * share))) if linear else None
        return JSONResponse(video(vid, "in_progress", int(created), None, progress))

    async def content(request: Request) -> Response:
        now = time.time()
        stats["content"][int(now)] += 1
        if bad := denied(request):
            return bad
        data, mime = assets.get(request.query_params.get("variant", "video"), assets["video"])
        return Response(data, media_type=mime)

    async def get_stats(request: Request) -> Response:
        return JSONResponse({kind: {str(k): v for k, v in per.items()} for kind, per in stats.items()})

    return Starlette(
        routes=[
            Route("/v1/videos", create, methods=["POST"]),
            Route("/v1/videos/{vid}", retrieve, methods=["GET"]),
            Route("/v1/videos/{vid}/content", content, methods=["GET"]),
            Route("/_stats", get_stats, methods=["GET"]),
        ]
    )


if __name__ == "__main__":
    print("served by bench/p3_tasks.py and p4_creates.py: python -m uvicorn --factory lib.fakevendor:create_app")
