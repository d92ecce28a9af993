# ruff: noqa: T201 - a benchmark reports on stdout
"""The in-process cost of one hot status read through vidgate's ASGI app, and of the bare endpoint's
(`lib/bare.py`): no server, no sockets, CPU time per call. What changes in `app/` buy on the read path shows
here without the noise of a load generator; bench/p1_status.py gives the figures that count.

    python bench/lib/asgi_cost.py [--calls 20000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scope(
    path: str, auth: str, *, method: str = "GET", headers: tuple[tuple[bytes, bytes], ...] = ()
) -> dict[str, Any]:
    """An HTTP request's ASGI scope as uvicorn hands it over, from wrk (`headers`: the request's others)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"authorization", f"Bearer {auth}".encode()),
            *headers,
            (b"user-agent", b"wrk"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }


async def per_call(app: Any, sc: dict[str, Any], calls: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(200):
        await app(dict(sc), receive, send)
    assert set(statuses) == {200}, statuses[:3]
    t0 = time.process_time()
    for _ in range(calls):
        await app(dict(sc), receive, send)
    return (time.process_time() - t0) / calls * 1e6


def prepare() -> tuple[Path, str, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--profile", action="store_true", help="cProfile one more round of vidgate's calls")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vidgate-bench-asgi-"))
    url = f"sqlite+aiosqlite:///{tmp}/vidgate.db"
    env = {**os.environ, "VIDGATE_DATABASE_URL": url, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, capture_output=True)
    # the access log goes where the bench's gateway sends it: a file
    sys.stderr = (tmp / "log.txt").open("w")
    return tmp, url, args


async def main(tmp: Path, url: str, args: argparse.Namespace) -> None:
    from app.config import Settings
    from app.main import create_app

    settings = Settings(_env_file=None, database_url=url, storage_dir=tmp / "data", run_engine=False)  # type: ignore[call-arg]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        import httpx

        from app.keys.service import create_key

        async with app.state.gateway.sessionmaker() as s:
            _, secret = await create_key(s, name="bench")
            await s.commit()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c:
            body = {"prompt": "a lighthouse", "seconds": "4", "metadata": {"sandbox_latency_ms": 10_000_000}}
            vid = (await c.post("/v1/videos", headers={"Authorization": f"Bearer {secret}"}, json=body)).json()["id"]
        sc = scope(f"/v1/videos/{vid}", secret)
        from lib.bare import app as bare

        for rnd in range(3):
            ours = await per_call(app, sc, args.calls)
            theirs = await per_call(bare, sc, args.calls)
            print(f"round {rnd + 1}: vidgate {ours:.1f} µs, bare {theirs:.1f} µs per status read (ASGI only)")
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            await per_call(app, sc, args.calls)
            prof.disable()
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    asyncio.run(main(*prepare()))
