# ruff: noqa: T201 - a benchmark reports on stdout
"""P1's baseline: a bare Starlette endpoint at vidgate's path, answering the Video object vidgate answered
(read from the JSON file named by BENCH_BARE_BODY, kept in memory) with the same headers; no auth,
no database, no middleware. Served by uvicorn exactly as `vidgate serve` serves vidgate."""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def _load() -> tuple[dict[str, Any], dict[str, str]]:
    path = os.environ.get("BENCH_BARE_BODY")
    if not path:
        return {"id": "video_x", "object": "video", "status": "in_progress"}, {}
    with open(path) as fh:
        data = json.load(fh)
    return data["body"], data.get("headers", {})


BODY, HEADERS = _load()


async def retrieve(request: Request) -> JSONResponse:
    return JSONResponse(BODY, headers=HEADERS)


app = Starlette(routes=[Route("/v1/videos/{video_id}", retrieve, methods=["GET"])])

if __name__ == "__main__":
    print("served by bench/p1_status.py: python -m uvicorn lib.bare:app --app-dir bench")
