# ruff: noqa: T201 - a benchmark reports on stdout
"""The in-process cost of one create (`POST /v1/videos`, JSON) through vidgate's ASGI app against the
stateless fake vendor (`lib/fakevendor.py`, a uvicorn subprocess on the other core): no gateway server, no
load generator, CPU time of this process (its threads included) per create, one create at a time. What
changes in `app/` buy on the create path shows here without the noise; bench/p4_creates.py gives the
figures that count.

    python bench/lib/create_cost.py [--calls 2000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib import common as c
from lib.asgi_cost import scope

VENDOR_KEY = "sk-fake-vendor-bench"
BODY = json.dumps(
    {"model": "sora-2", "prompt": "A calico cat playing a piano on stage", "seconds": "4", "size": "720x1280"}
).encode()


async def per_call(app: Any, sc: dict[str, Any], calls: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    statuses: list[int] = []
    bodies: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body" and len(bodies) < 1:
            bodies.append(message.get("body", b""))

    for _ in range(20):
        await app(dict(sc), receive, send)
    assert set(statuses) == {200}, (statuses[:3], bodies)
    t0, m0, w0 = os.times(), time.thread_time(), time.monotonic()
    for _ in range(calls):
        await app(dict(sc), receive, send)
    t1, m1, w1 = os.times(), time.thread_time(), time.monotonic()
    print(
        f"  user {1e3 * (t1.user - t0.user) / calls:.2f} ms, system {1e3 * (t1.system - t0.system) / calls:.2f} ms,"
        f" event-loop thread {1e3 * (m1 - m0) / calls:.2f} ms, wall {1e3 * (w1 - w0) / calls:.2f} ms per create"
    )
    return (t1.user + t1.system - t0.user - t0.system) / calls * 1e3


def migrate(url: str) -> None:
    env = {**os.environ, "VIDGATE_DATABASE_URL": url, "PYTHONPATH": str(c.ROOT)}
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, capture_output=True)


async def main(args: argparse.Namespace, tmp: Path, vendor_url: str, url: str) -> None:
    config = tmp / "gateway.yaml"
    config.write_text(
        "sandbox: false\nchannels:\n  - name: bench-vendor\n    vendor: openai_compat\n"
        f"    base_url: {vendor_url}\n    credentials: {{api_key: {VENDOR_KEY}}}\n    models: [sora-2]\n"
    )
    sys.stderr = (tmp / "log.txt").open("w")  # the access log goes where the bench's gateway sends it: a file
    from app.config import Settings
    from app.main import create_app

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, storage_dir=tmp / "data", run_engine=False, config=config
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        from app.keys.service import create_key

        async with app.state.gateway.sessionmaker() as s:
            _, secret = await create_key(s, name="bench")
            await s.commit()
        sc = scope(
            "/v1/videos",
            secret,
            method="POST",
            headers=((b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())),
        )
        for rnd in range(3):
            print(f"round {rnd + 1}: {await per_call(app, sc, args.calls):.2f} ms of CPU per create")
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            await per_call(app, sc, args.calls)
            prof.disable()
            stats = pstats.Stats(prof, stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--db", default="", help="database URL (default: a new SQLite file)")
    ap.add_argument("--profile", action="store_true", help="cProfile one more round")
    cli = ap.parse_args()
    with c.workdir("create-cost") as root:
        vendor, vport = c.start_fake_vendor(root, VENDOR_KEY)
        try:
            db_url = cli.db or f"sqlite+aiosqlite:///{root}/vidgate.db"
            migrate(db_url)
            asyncio.run(main(cli, root, f"http://127.0.0.1:{vport}/v1", db_url))
        finally:
            vendor.stop()
