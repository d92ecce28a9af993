# ruff: noqa: T201 - a benchmark reports on stdout
"""A small HTTP/1.1 keep-alive load generator (asyncio + uvloop, raw sockets), for when `wrk` is missing
and for fixed-rate latency, which wrk cannot do.

* closed loop (no --rate): N connections each send the next request as soon as the last answer is in;
  reports the peak rate.
* open loop (--rate R): requests are scheduled at R per second whatever the server does; each latency
  is counted from the request's *scheduled* start, so a stalled server shows up in the percentiles
  (no coordinated omission).

Prints one JSON line: requests, seconds, rps, p50/p90/p99/max in ms, errors, non2xx.
Run with no arguments it prints its usage and exits 0 (so `make bench` globbing never starts it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from urllib.parse import urlsplit

_CL = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.I)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.I)


class Conn:
    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def _once(self) -> int:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        if m := _CL.search(head):
            await self.reader.readexactly(int(m[1]))
        elif _CHUNKED.search(head):
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if _CLOSE.search(head):
            self.close()
        return status

    async def roundtrip(self) -> int:
        """One request; a keep-alive connection the server closed meanwhile is reopened once."""
        fresh = self.writer is None
        try:
            return await self._once()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            self.close()
            if fresh:
                raise
            return await self._once()


def _request(method: str, target: str, host: str, headers: list[str], body: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


async def run(args: argparse.Namespace) -> dict[str, object]:
    u = urlsplit(args.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    target = u.path + (f"?{u.query}" if u.query else "")
    request = _request(args.method, target, f"{host}:{port}", args.header, (args.body or "").encode())
    conns = [Conn(host, port, request) for _ in range(args.connections)]
    await asyncio.gather(*(c.open() for c in conns))
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    counts = {"errors": 0, "non2xx": 0, "done": 0}
    statuses: dict[int, int] = {}

    def note(status: int, latency: float, record: bool) -> None:
        if not record:
            return
        statuses[status] = statuses.get(status, 0) + 1
        counts["done"] += 1
        if not 200 <= status < 300:
            counts["non2xx"] += 1
        lat.append(latency)

    if args.warmup > 0:
        stop_warm = loop.time() + args.warmup

        async def warm(c: Conn) -> None:
            while loop.time() < stop_warm:
                try:
                    await c.roundtrip()
                except Exception:
                    c.close()

        await asyncio.gather(*(warm(c) for c in conns))

    if args.rate:
        n = int(args.rate * args.seconds)
        q: asyncio.Queue[float | None] = asyncio.Queue()
        start = loop.time() + 0.05

        async def producer() -> None:
            i = 0
            while i < n:
                t = loop.time()
                while i < n and start + i / args.rate <= t:
                    q.put_nowait(start + i / args.rate)
                    i += 1
                if i < n:
                    await asyncio.sleep(max(0.0002, start + i / args.rate - loop.time()))
            for _ in conns:
                q.put_nowait(None)

        async def worker(c: Conn) -> None:
            while (t0 := await q.get()) is not None:
                try:
                    status = await c.roundtrip()
                except Exception:
                    counts["errors"] += 1
                    c.close()
                    continue
                note(status, loop.time() - t0, True)

        began = time.perf_counter()
        await asyncio.gather(producer(), *(worker(c) for c in conns))
        elapsed = time.perf_counter() - began
    else:
        deadline = loop.time() + args.seconds

        async def closed(c: Conn) -> None:
            while (t0 := loop.time()) < deadline:
                try:
                    status = await c.roundtrip()
                except Exception:
                    counts["errors"] += 1
                    c.close()
                    await asyncio.sleep(0.01)
                    continue
                note(status, loop.time() - t0, True)

        began = time.perf_counter()
        await asyncio.gather(*(closed(c) for c in conns))
        elapsed = time.perf_counter() - began
    for c in conns:
        c.close()
    ms = [x * 1000 for x in lat]
    return {
        "requests": counts["done"],
        "seconds": round(elapsed, 3),
        "rps": counts["done"] / elapsed if elapsed else 0.0,
        "target_rps": args.rate,
        "p50_ms": _pct(ms, 50),
        "p90_ms": _pct(ms, 90),
        "p99_ms": _pct(ms, 99),
        "max_ms": max(ms) if ms else None,
        "errors": counts["errors"],
        "non2xx": counts["non2xx"],
        "statuses": statuses,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rate", type=float, default=None, help="open loop at this many requests/s")
    p.add_argument("--warmup", type=float, default=0.0, help="closed-loop seconds before measuring")
    p.add_argument("--method", default="GET")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--body", default=None)
    if not argv:
        p.print_usage()
        return 0
    args = p.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
