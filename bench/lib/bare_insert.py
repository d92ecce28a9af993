# ruff: noqa: T201 - a benchmark reports on stdout
"""P4's reference: the physical limit of a create on vidgate's database. A bare Starlette endpoint at
vidgate's path that, per `POST /v1/videos`, reads the JSON body, does ONE `INSERT` of a row shaped like
the row vidgate stores for it (same `videos` table, same columns and types) and a `COMMIT`, through
SQLAlchemy Core on an async engine built exactly as vidgate builds its own (`app.db.create_engine`: the
same driver, aiosqlite or asyncpg, the same pool and SQLite pragmas), then answers a small JSON.
No auth, no vendor, no middleware. Served by uvicorn exactly as `vidgate serve` serves vidgate.

The database URL comes from BENCH_DATABASE_URL (as vidgate's VIDGATE_DATABASE_URL is spelt)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.config import Settings
from app.db import create_engine
from app.videos.models import Video, VideoInputs

URL = Settings(database_url=os.environ.get("BENCH_DATABASE_URL", ""), _env_file=None).resolved_database_url  # type: ignore[call-arg]
ENGINE = create_engine(URL)
INSERT = insert(Video.__table__)  # type: ignore[arg-type]
INPUTS = VideoInputs()


def _row(body: dict[str, Any]) -> dict[str, Any]:
    """What vidgate stores for a JSON create of sora-2, claimed by its submitter, before the vendor answers."""
    t_ns = time.time_ns()
    t = t_ns / 1e9
    w, h = (int(x) for x in str(body.get("size", "720x1280")).split("x"))
    return {
        "id": "video_" + secrets.token_hex(24),
        "owner": "bench",
        "api_key_id": "key_bench",
        "operation": "create",
        "model": body.get("model", "sora-2"),
        "provider": "openai_compat",
        "vendor_model": body.get("model", "sora-2"),
        "channel": "bench-vendor",
        "channel_fp": "0" * 64,
        "status": "queued",
        "progress": 0,
        "prompt": body.get("prompt"),
        "width": w,
        "height": h,
        "seconds": int(body.get("seconds", 4)),
        "quality": "standard",
        "inputs": INPUTS,
        "created_ns": t_ns,
        "created_at": t_ns // 1_000_000_000,
        "updated_at": t,
        "vendor_meta": {},
        "next_poll_at": t + 30,
        "claimed_until": t + 30,
        "claimed_by": "submit:bench",
        "poll_count": 0,
        "poll_errors": 0,
        "submit_attempts": 0,
        "download_attempts": 0,
        "reserved_credits": 0.0,
        "assets": {},
    }


async def create(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    row = _row(body)
    async with ENGINE.connect() as conn:
        await conn.execute(INSERT, row)
        await conn.commit()
    return JSONResponse({"id": row["id"], "object": "video", "status": "queued", "model": row["model"]})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await ENGINE.dispose()


app = Starlette(routes=[Route("/v1/videos", create, methods=["POST"])], lifespan=lifespan)

if __name__ == "__main__":
    print("served by bench/p4_creates.py: python -m uvicorn lib.bare_insert:app --app-dir bench")
