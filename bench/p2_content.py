# ruff: noqa: T201 - a benchmark reports on stdout
"""P2 — content streaming: a 1 GiB completed video downloaded through `GET /v1/videos/{id}/content`
(API key auth) over loopback, against Debian's nginx serving the same file (`sendfile on`) from a temporary
config; both servers on one core, one process each, the client on the other core.

Reports throughput of both and the ratio (target >= 0.8), the gateway's RSS growth during a download
(target <= 32 MiB, sampled every 5 ms from /proc), and checks that a Range request from the middle
of the file answers 206 with exactly the right bytes.

    python bench/p2_content.py [--size-mib 1024] [--rounds 3]

Needs nginx for the ratio (`apt-get install -y nginx`); without it the gateway side still runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib import common as c

RATIO_TARGET = 0.8
RSS_TARGET_MIB = 32.0
MIB = 1 << 20
CHUNK_WORDS = 8 * MIB  # 64 MiB per write


def expected(start: int, end: int) -> bytes:
    """Bytes [start, end) of the asset: every 8-byte little-endian word holds its own offset."""
    import numpy as np

    first, last = start // 8, (end + 7) // 8
    words = (np.arange(first, last, dtype="<u8") * 8).tobytes()
    return words[start - first * 8 : end - first * 8]


def write_asset(path: Path, size: int) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for w in range(0, size // 8, CHUNK_WORDS):
            n = min(CHUNK_WORDS, size // 8 - w)
            fh.write((np.arange(w, w + n, dtype="<u8") * 8).tobytes())


def fetch(port: int, path: str, headers: dict[str, str], *, keep_body: bool = False) -> dict[str, object]:
    """One GET over a fresh connection, body drained with recv_into; timed from the request to the last byte."""
    buf = bytearray(4 * MIB)
    view = memoryview(buf)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * MIB)
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    t0 = time.perf_counter()
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the headers")
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    status = int(head[9:12])
    hdrs = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    length = int(hdrs.get("content-length", "-1"))
    got = len(rest)
    body = bytearray(rest) if keep_body else None
    while length < 0 or got < length:
        n = sock.recv_into(view)
        if n == 0:
            break
        got += n
        if body is not None:
            body += view[:n]
    seconds = time.perf_counter() - t0
    sock.close()
    return {"status": status, "headers": hdrs, "bytes": got, "seconds": seconds, "body": body}


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every = every
        self.base = c.rss_bytes(pid)
        self.peak = self.base
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, c.rss_bytes(self.pid))
            time.sleep(self.every)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        self.peak = max(self.peak, c.rss_bytes(self.pid))
        return (self.peak - self.base) / MIB


NGINX_CONF = """
worker_processes 1;
master_process off;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {work}/nginx-tmp/body;
    proxy_temp_path {work}/nginx-tmp/proxy;
    fastcgi_temp_path {work}/nginx-tmp/fastcgi;
    uwsgi_temp_path {work}/nginx-tmp/uwsgi;
    scgi_temp_path {work}/nginx-tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(work: Path, root: Path) -> tuple[c.Proc, int]:
    port = c.free_port()
    (work / "nginx-tmp").mkdir()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, root=root))
    cmd = [shutil.which("nginx") or "nginx", "-p", str(work), "-c", str(conf)]
    proc = c.Proc("nginx", c.pinned(cmd, c.SERVER_CORE), log_dir=work, env=c.clean_env(), cwd=work)
    c.wait_port(port, proc, timeout=20)
    return proc, port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3, help="alternating downloads per server")
    args = ap.parse_args()
    size = args.size_mib * MIB

    c.banner("P2 content streaming", f"a {args.size_mib} MiB asset: vidgate /content vs nginx (sendfile on)")
    nginx = shutil.which("nginx")
    if nginx is None:
        print("nginx not found: `apt-get install -y nginx` for the ratio; measuring the gateway side only")
    if c.CLIENT_CORE is not None:
        os.sched_setaffinity(0, {c.CLIENT_CORE})  # this script is the client
    with c.workdir("p2") as work, contextlib.ExitStack() as stack, c.OtherLoad() as other:
        db_url = c.sqlite_url(work)
        c.migrate(db_url)
        key = c.create_key(db_url)
        row = c.video_row(
            key,
            status="completed",
            progress=100,
            completed_at=int(time.time()),
            expires_at=int(time.time()) + 86400,
            next_poll_at=None,
        )
        asset_key = f"videos/{row['id']}/video.mp4"
        row["assets"] = {"video": {"key": asset_key, "bytes": size}}
        assets = work / "data" / "assets"
        c.progress(f"writing the {args.size_mib} MiB asset")
        write_asset(assets / asset_key, size)
        c.insert_videos(db_url, [row])
        gw = c.start_gateway(work, db_url)
        stack.callback(gw.stop)
        gw_path = f"/v1/videos/{row['id']}/content"
        servers: dict[str, tuple[int, str, dict[str, str]]] = {"vidgate": (gw.port, gw_path, key.headers)}
        if nginx:
            nproc, nport = start_nginx(work, assets)
            stack.callback(nproc.stop)
            servers["nginx"] = (nport, f"/{asset_key}", {})

        # correctness first: a Range from the middle
        start = size // 2 + 12_345
        end = start + MIB + 6  # inclusive
        want = expected(start, end + 1)
        ranges: dict[str, str] = {}
        for name, (port, path, hdrs) in servers.items():
            r = fetch(port, path, {**hdrs, "Range": f"bytes={start}-{end}"}, keep_body=True)
            ok = (
                r["status"] == 206
                and r["headers"].get("content-range") == f"bytes {start}-{end}/{size}"  # type: ignore[union-attr]
                and bytes(r["body"]) == want  # type: ignore[arg-type]
            )
            ranges[name] = "correct" if ok else f"WRONG (status {r['status']}, {r['headers'].get('content-range')})"  # type: ignore[union-attr]

        c.progress("warming up (page cache)")
        for port, path, hdrs in servers.values():
            fetch(port, path, hdrs)
        speeds: dict[str, list[float]] = {name: [] for name in servers}
        rss_growth: list[float] = []
        for rnd in range(args.rounds):
            for name, (port, path, hdrs) in servers.items():
                sampler = RssSampler(gw.proc.pid) if name == "vidgate" else None
                if sampler:
                    sampler.start()
                r = fetch(port, path, hdrs)
                if sampler:
                    rss_growth.append(sampler.stop())
                if r["status"] != 200 or r["bytes"] != size:
                    print(f"{name}: status {r['status']}, {r['bytes']} bytes instead of {size}")
                    return 1
                speeds[name].append(size / MIB / float(r["seconds"]))  # type: ignore[arg-type]
                c.progress(f"round {rnd + 1}: {name} {speeds[name][-1]:,.0f} MiB/s")
        other.measure()

    gw_speed = statistics.median(speeds["vidgate"])
    ng_speed = statistics.median(speeds["nginx"]) if "nginx" in speeds else None
    ratio = gw_speed / ng_speed if ng_speed else None
    growth = max(rss_growth)
    print()
    print(
        c.table(
            ["figure", "vidgate", "nginx", "target", "verdict"],
            [
                [f"throughput, median of {args.rounds} (MiB/s)", c.fmt(gw_speed, 0), c.fmt(ng_speed, 0), "", ""],
                [
                    "ratio vidgate / nginx",
                    c.fmt(ratio, 2),
                    "",
                    f">= {RATIO_TARGET}",
                    c.verdict(None if ratio is None else ratio >= RATIO_TARGET),
                ],
                [
                    "gateway RSS growth during a download (max)",
                    c.fmt(growth, 1, " MiB"),
                    "",
                    f"<= {RSS_TARGET_MIB:g} MiB",
                    c.verdict(growth <= RSS_TARGET_MIB),
                ],
                [
                    f"Range bytes={start}-{end}",
                    ranges["vidgate"],
                    ranges.get("nginx", "-"),
                    "206 + exact bytes",
                    "PASS" if ranges["vidgate"] == "correct" else "FAIL",
                ],
            ],
        )
    )
    print(other.note())
    c.record(
        "p2_content",
        [
            {
                "figure": f"{args.size_mib / 1024:g} GiB download vs nginx (`sendfile on`), MiB/s",
                "measured": f"{gw_speed:,.0f} vs {c.fmt(ng_speed, 0)} → **{c.fmt(ratio, 2)}**",
                "target": f"≥ {RATIO_TARGET}",
                "verdict": c.verdict(None if ratio is None else ratio >= RATIO_TARGET),
            },
            {
                "figure": "gateway RSS growth during a download; a Range from the middle",
                "measured": f"{growth:,.1f} MiB; "
                + ("206, exact bytes" if ranges["vidgate"] == "correct" else ranges["vidgate"]),
                "target": f"≤ {RSS_TARGET_MIB:g} MiB; exact",
                "verdict": c.verdict(growth <= RSS_TARGET_MIB and ranges["vidgate"] == "correct"),
            },
        ],
        other_load=other.cores,
    )
    return 0 if ranges["vidgate"] == "correct" else 1


if __name__ == "__main__":
    sys.exit(main())
