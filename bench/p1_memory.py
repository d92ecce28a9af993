# ruff: noqa: T201 - a benchmark reports on stdout
"""P1 memory — the status-read cache with 1,000,000 video rows: `vidgate serve` on a SQLite file holding
1,000,000 videos of one key answers `GET /v1/videos/{id}` for distinct videos, one after another (every
read a miss that fills the cache), until far more videos were read than the cache may hold. The gateway's
RSS is sampled throughout: it must level off at what `VIDGATE_READ_CACHE_MAX_VIDEOS` / `_MAX_BYTES` allow,
not grow with the rows read. Entries are trusted for 10 minutes here, so none expires and makes room: the
LRU bound alone holds the memory. Run twice, with two cache sizes, to show that the bound is the setting.

    python bench/p1_memory.py [--rows 1000000] [--reads 150000] [--sizes 10000,50000]
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib import common as c

MIB = 1024 * 1024
WRK_SCRIPT = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
local i = %d
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/videos/" .. ids[(i - 1) %% #ids + 1])
end
"""


def fill(db_url: str, key: c.Key, rows: int, ids_file: Path) -> None:
    """`rows` completed videos of `key`: a thousand stored as the service stores them, then copied inside
    SQLite (INSERT … SELECT with new ids) until there are `rows`; every id goes to `ids_file`."""
    import sqlite3

    from app.videos.models import Video

    seed = min(rows, 1_000)
    c.insert_videos(db_url, [c.video_row(key, status="completed", progress=100) for _ in range(seed)])
    cols = [col.name for col in Video.__table__.columns]
    copied = ", ".join(
        "'video_' || lower(hex(randomblob(28)))"
        if col == "id"
        else "created_ns + (SELECT count(*) FROM videos) * 1000 + rowid"
        if col == "created_ns"
        else col
        for col in cols
    )
    db = sqlite3.connect(db_url.split("///", 1)[1])
    try:
        have = seed
        while have < rows:
            n = min(have, rows - have)
            db.execute(f"INSERT INTO videos ({', '.join(cols)}) SELECT {copied} FROM videos LIMIT {n}")
            db.commit()
            have += n
            c.progress(f"{have:,} rows")
        with ids_file.open("w") as out:
            out.writelines(f"{vid}\n" for (vid,) in db.execute("SELECT id FROM videos ORDER BY created_ns"))
    finally:
        db.close()


def metric(url: str, name: str, kind: str) -> float | None:
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    m = re.search(rf'^{name}\{{kind="{kind}"\}} (\S+)$', text, re.M)
    return float(m[1]) if m else None


def run_size(work: Path, db_url: str, key: c.Key, ids_file: Path, size: int, args: argparse.Namespace) -> list[str]:
    max_bytes = args.max_bytes_mib * MIB
    gw = c.start_gateway(
        work,
        db_url,
        name=f"vidgate-{size}",
        no_worker=True,
        read_cache_ttl_ms=600_000,
        read_cache_max_videos=size,
        read_cache_max_bytes=max_bytes,
        log_level="WARNING",
    )
    try:
        import httpx

        first = ids_file.read_text().split("\n", 1)[0]
        assert httpx.get(f"{gw.url}/v1/videos/{first}", headers=key.headers).status_code == 200
        time.sleep(1)
        base = c.rss_bytes(gw.proc.pid)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.monotonic(), c.rss_bytes(gw.proc.pid)))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        script = work / f"distinct-{size}.lua"
        t0 = time.monotonic()
        reads = 0
        while reads < args.reads:
            script.write_text(WRK_SCRIPT % (ids_file, reads + 1))  # each run goes on where the last one stopped
            res = c.wrk(gw.url + "/", seconds=10, connections=16, headers=key.headers, script=script, work=work)
            if res.bad:
                raise SystemExit(f"FAILED: {res.bad} bad responses (see {gw.proc.log_path})")
            reads += res.requests
            held_now = metric(gw.url, "vidgate_read_cache_entries", "video") or 0
            c.progress(
                f"cache {size:,}: {reads:,} distinct reads, {int(held_now):,} held, "
                f"RSS {c.rss_bytes(gw.proc.pid) / MIB:,.0f} MiB"
            )
        stop.set()
        sampler.join()
        entries = metric(gw.url, "vidgate_read_cache_entries", "video") or 0
        dropped = metric(gw.url, "vidgate_read_cache_invalidations_total", "video")
        c.progress(f"cache {size:,}: {int(entries):,} entries held, {dropped} video invalidations")
        held = metric(gw.url, "vidgate_read_cache_bytes", "video") or 0
        peak = max(r for _, r in samples)
        # growth over the second half of the run: a bounded cache levels off once full
        half = t0 + (samples[-1][0] - t0) / 2
        late = [r for t, r in samples if t >= half]
        late_growth = (max(late) - min(late)) / MIB if late else 0.0
        return [
            f"{size:,} videos / {args.max_bytes_mib} MiB",
            f"{reads:,}",
            f"{int(entries):,}",
            f"{held / MIB:,.1f} MiB",
            f"{base / MIB:,.0f} → {peak / MIB:,.0f} MiB (+{(peak - base) / MIB:,.0f})",
            f"{late_growth:,.1f} MiB",
            c.verdict(entries <= size and held <= max_bytes and late_growth <= 16),
        ]
    finally:
        gw.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=150_000, help="distinct videos read per cache size (at least)")
    ap.add_argument("--sizes", default="10000,50000", help="VIDGATE_READ_CACHE_MAX_VIDEOS values to run")
    ap.add_argument("--max-bytes-mib", type=int, default=64, help="VIDGATE_READ_CACHE_MAX_BYTES in MiB")
    args = ap.parse_args()
    c.banner("P1 memory", f"the status-read cache over {args.rows:,} video rows (SQLite), distinct reads")
    if not c.have_wrk():
        print("this script needs wrk (sudo apt-get install -y wrk)")
        return 2
    with c.workdir("p1mem") as work:
        db_url = c.sqlite_url(work)
        c.migrate(db_url)
        key = c.create_key(db_url)
        ids_file = work / "ids.txt"
        c.progress(f"inserting {args.rows:,} rows")
        fill(db_url, key, args.rows, ids_file)
        rows = [run_size(work, db_url, key, ids_file, int(s), args) for s in args.sizes.split(",")]
    print()
    print(
        c.table(
            [
                "cache bound",
                "distinct reads",
                "entries held",
                "bytes held (/metrics)",
                "gateway RSS start → peak",
                "RSS growth, 2nd half",
                "bounded",
            ],
            rows,
        )
    )
    print("bounded: entries and bytes within the settings, and RSS growth over the run's second half <= 16 MiB")
    c.record(
        "p1_memory",
        [
            {
                "figure": f"status-read cache over {args.rows:,} rows, {r[1]} distinct reads, bound {r[0]}",
                "measured": f"{r[2]} entries, {r[3]}; RSS {r[4]}, 2nd half +{r[5]}",
                "target": "bounded by the settings",
                "verdict": r[6],
            }
            for r in rows
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
