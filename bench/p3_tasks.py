# ruff: noqa: T201 - a benchmark reports on stdout
"""P3 — many tasks: 10,000 unfinished tasks of a fake OpenAI-format vendor that completes each one after a
random delay; vidgate's engine polls them, downloads each finished video (plus its thumbnail and
spritesheet) and marks the task completed.

The tasks are inserted straight into the `videos` table as already-submitted tasks of the channel
`bench-vendor` (whose config sets `max_rps`), with first polls spread over one poll interval, as if
they had been created during the interval before. Each vendor task id carries its completion time, so
the fake vendor stores nothing and the lag is exact:

    lag = the moment the row turned `completed` in the database (its `updated_at`) - the vendor's completion time

Reports the lag p50/p99 in seconds and in poll intervals (target <= 2 intervals), the vendor request rate
(peak 1-second rate and mean, against the channel's `max_rps`), and the gateway's CPU use.

    python bench/p3_tasks.py [--tasks 10000] [--poll-interval-ms 30000] [--max-rps 200] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib import common as c

LAG_TARGET_INTERVALS = 2.0
VENDOR_KEY = "sk-fake-vendor-bench"
CHANNEL = "bench-vendor"


def write_config(work: Path, base_url: str, max_rps: float) -> Path:
    path = work / "gateway.yaml"
    path.write_text(
        "sandbox: false\n"
        "channels:\n"
        f"  - name: {CHANNEL}\n"
        "    vendor: openai_compat\n"
        f"    base_url: {base_url}\n"
        f"    credentials: {{api_key: {VENDOR_KEY}}}\n"
        "    models: [sora-2]\n"
        f"    max_rps: {max_rps:g}\n"
    )
    return path


def vendor_rates(stats: dict[str, dict[str, int]], t0: float, t1: float) -> dict[str, float]:
    """Per-second request counts (all kinds together) within [t0, t1): peak, mean, seconds over `cap`."""
    per: dict[int, int] = {}
    for kind in stats.values():
        for sec, n in kind.items():
            if t0 <= int(sec) < t1:
                per[int(sec)] = per.get(int(sec), 0) + n
    seconds = range(int(t0), int(t1))
    counts = [per.get(s, 0) for s in seconds]
    return {"peak": max(counts, default=0), "mean": sum(counts) / max(1, len(counts)), "counts": counts}  # type: ignore[dict-item]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument(
        "--poll-interval-ms",
        type=int,
        default=30_000,
        help="VIDGATE_POLL_INTERVAL_MS = _POLL_MAX_INTERVAL_MS (a flat interval, no backoff)",
    )
    ap.add_argument("--delay-min-s", type=float, default=None, help="default: one poll interval")
    ap.add_argument("--delay-max-s", type=float, default=None, help="default: 150 s")
    ap.add_argument("--max-rps", type=float, default=200.0, help="the channel's max_rps in gateway.yaml")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument(
        "--poll-concurrency", type=int, default=None, help="VIDGATE_POLL_CONCURRENCY (default: the gateway's, 16)"
    )
    ap.add_argument(
        "--vendor-progress",
        choices=("linear", "none"),
        default="linear",
        help="what the fake's Video objects say about the time left: OpenAI's `progress` growing linearly "
        "with `created_at` (default), or no progress at all (nothing hints at the completion time)",
    )
    ap.add_argument(
        "--grace-s", type=float, default=None, help="wait after the vendor's last completion (default 120 s)"
    )
    args = ap.parse_args()
    interval = args.poll_interval_ms / 1000
    dmin = args.delay_min_s if args.delay_min_s is not None else interval
    dmax = args.delay_max_s if args.delay_max_s is not None else 150.0
    grace = args.grace_s if args.grace_s is not None else 120.0

    c.banner(
        "P3 many tasks",
        f"{args.tasks:,} unfinished tasks on {args.db}; vendor completes each {dmin:g}-{dmax:g} s after the start; "
        f"poll interval {interval:g} s (flat); channel max_rps {args.max_rps:g}; "
        f"poll concurrency {args.poll_concurrency or 'default (16)'}; vendor hint: "
        + (
            "OpenAI-format `progress` (linear in time) + `created_at`"
            if args.vendor_progress == "linear"
            else "none (no `progress`)"
        ),
    )
    from app.providers.registry import fingerprint

    with c.workdir("p3") as work, contextlib.ExitStack() as stack, c.OtherLoad() as other:
        vendor, vport = c.start_fake_vendor(work, VENDOR_KEY, FAKE_PROGRESS=args.vendor_progress)
        stack.callback(vendor.stop)
        base_url = f"http://127.0.0.1:{vport}/v1"
        config = write_config(work, base_url, args.max_rps)
        if args.db == "postgres":
            if problem := c.pg_problem():
                print(f"PostgreSQL unavailable ({problem}); set VIDGATE_BENCH_PG_URL or use --db sqlite")
                return 2
            db_url = stack.enter_context(c.pg_database())
        else:
            db_url = c.sqlite_url(work)
            c.migrate(db_url)
        key = c.create_key(db_url)
        gw = c.start_gateway(
            work,
            db_url,
            config=config,
            poll_interval_ms=args.poll_interval_ms,
            poll_max_interval_ms=args.poll_interval_ms,
            janitor_interval_s=3600,
            **({"poll_concurrency": args.poll_concurrency} if args.poll_concurrency else {}),
        )
        stack.callback(gw.stop)

        fp = fingerprint("openai_compat", base_url, {"api_key": VENDOR_KEY})
        rng = random.Random(7)
        t0 = time.time() + 3.0  # the moment the run starts; inserting takes less than this
        rows = []
        created_ms = int((t0 - interval) * 1000)  # submitted one interval before the start
        for i in range(args.tasks):
            done_ms = int((t0 + rng.uniform(dmin, dmax)) * 1000)
            rows.append(
                c.video_row(
                    key,
                    status="in_progress",
                    provider="openai_compat",
                    channel=CHANNEL,
                    channel_fp=fp,
                    vendor_task_id=f"vt_{i}_{created_ms}_{done_ms}",
                    vendor_meta={"operation": "create", "model": "sora-2"},
                    next_poll_at=t0 + rng.uniform(0, interval),
                    submitted_at=t0 - interval,
                )
            )
        c.progress(f"inserting {args.tasks:,} tasks")
        c.insert_videos(db_url, rows)
        last_done = max(int(r["vendor_task_id"].rsplit("_", 1)[1]) for r in rows) / 1000
        while time.time() < t0:
            time.sleep(0.01)
        cpu0 = c.cpu_seconds(gw.proc.pid)
        spy = c.maybe_profile(gw.proc.pid, "p3-gateway", 30)
        deadline = last_done + grace
        completed = 0
        next_report = t0 + 10
        while time.time() < deadline:
            time.sleep(1.0)
            completed = c.query(db_url, "SELECT count(*) FROM videos WHERE status = 'completed'")[0][0]
            if time.time() >= next_report:
                c.progress(f"t+{time.time() - t0:4.0f} s: {completed:,} of {args.tasks:,} completed")
                next_report += 10
            if completed >= args.tasks:
                break
        t1 = time.time()
        if spy is not None:
            spy.wait()
        cpu = (c.cpu_seconds(gw.proc.pid) - cpu0) / (t1 - t0)
        rss = c.rss_bytes(gw.proc.pid) / (1 << 20)
        other.measure()
        import httpx

        stats = httpx.get(f"http://127.0.0.1:{vport}/_stats").json()
        done = c.query(db_url, "SELECT vendor_task_id, updated_at, poll_count FROM videos WHERE status = 'completed'")
        failed = c.query(db_url, "SELECT count(*) FROM videos WHERE status = 'failed'")[0][0]

    lags = [float(u) - int(v.rsplit("_", 1)[1]) / 1000 for v, u, _ in done]
    polls = [int(p) + 1 for _, _, p in done]
    rates = vendor_rates(stats, t0, t1)
    over = sum(1 for n in rates["counts"] if n > args.max_rps)  # type: ignore[union-attr]
    p50, p99 = c.percentile(lags, 50), c.percentile(lags, 99)
    unfinished = args.tasks - len(done) - failed
    kinds = {k: sum(v.values()) for k, v in stats.items()}
    # the least vendor traffic that meets the target without a hint: every task polled once per 2 intervals,
    # and each completion fetches the video (thumbnail and spritesheet are derived: no `fetch_variants`)
    needed = args.tasks / (LAG_TARGET_INTERVALS * interval) + args.tasks / max(1e-9, dmax - dmin)
    capacity = len(done) / max(1e-9, t1 - t0)
    print()
    print(
        c.table(
            ["figure", "value", "target", "verdict"],
            [
                [
                    "tasks completed / failed / still unfinished at the deadline",
                    f"{len(done):,} / {failed:,} / {unfinished:,}",
                    f"{args.tasks:,} / 0 / 0",
                    "PASS" if len(done) == args.tasks else ("MISS" if failed == 0 else "FAIL"),
                ],
                [
                    "lag p50 (completion at vendor -> `completed` in DB)",
                    f"{c.fmt(p50, 2, ' s')} = {c.fmt((p50 or 0) / interval, 2)} intervals",
                    "",
                    "",
                ],
                [
                    "lag p99",
                    f"{c.fmt(p99, 2, ' s')} = {c.fmt((p99 or 0) / interval, 2)} intervals",
                    f"<= {LAG_TARGET_INTERVALS:g} intervals ({LAG_TARGET_INTERVALS * interval:g} s)",
                    c.verdict(p99 is not None and unfinished == 0 and p99 <= LAG_TARGET_INTERVALS * interval),
                ],
                ["lag max", c.fmt(max(lags, default=None), 2, " s"), "", ""],
                [
                    "vendor requests/s, peak 1-s window",
                    c.fmt(rates["peak"], 0),
                    f"<= max_rps {args.max_rps:g}",
                    c.verdict(rates["peak"] <= args.max_rps),
                ],
                ["vendor requests/s, mean over the run", c.fmt(rates["mean"], 1), "", ""],
                ["seconds above max_rps", f"{over} of {len(rates['counts'])}", "0", c.verdict(over == 0)],  # type: ignore[arg-type]
                ["vendor requests by kind", ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())), "", ""],
                ["polls per completed task (mean)", c.fmt(sum(polls) / max(1, len(polls)), 2), "", ""],
                [
                    "vendor req/s the lag target needs without a hint (N/2I + N/delay spread)",
                    c.fmt(needed, 0),
                    f"<= max_rps {args.max_rps:g}",
                    "feasible" if needed <= args.max_rps else "infeasible under the cap",
                ],
                ["completions/s achieved over the run", c.fmt(capacity, 1), "", ""],
                ["gateway CPU (one process, share of one core)", f"{cpu:.0%}", "", ""],
                ["gateway RSS at the end", c.fmt(rss, 0, " MiB"), "", ""],
                ["run length", c.fmt(t1 - t0, 0, " s"), "", ""],
            ],
        )
    )
    readers = [
        str(p.relative_to(c.ROOT))
        for p in sorted((c.ROOT / "app").rglob("*.py"))
        if "max_rps" in p.read_text() and p != c.ROOT / "app" / "channels" / "config.py"
    ]
    if readers:
        print(f"note: `max_rps` is read by {', '.join(readers)}")
    else:
        print("note: nothing in app/ reads `max_rps` (only app/channels/config.py declares it): the engine does not")
        print("      enforce it; the rate above is whatever the due queue and VIDGATE_POLL_CONCURRENCY produce.")
    print(other.note())
    lag_ok = p99 is not None and unfinished == 0 and p99 <= LAG_TARGET_INTERVALS * interval
    c.record(
        "p3_tasks",
        [
            {
                "figure": f"{args.tasks:,} tasks, {interval:g} s interval, `max_rps: {args.max_rps:g}`: "
                "completion lag p50 / p99",
                "measured": f"{c.fmt(p50, 0)} s / {c.fmt(p99, 0)} s = {c.fmt((p50 or 0) / interval, 2)} / "
                f"**{c.fmt((p99 or 0) / interval, 2)} intervals**; {len(done):,} of {args.tasks:,} done",
                "target": f"p99 ≤ {LAG_TARGET_INTERVALS:g} intervals",
                "verdict": c.verdict(lag_ok),
            },
            {
                "figure": "same run: vendor requests/s (peak 1-s window / mean); gateway CPU",
                "measured": f"{c.fmt(rates['peak'], 0)} / {c.fmt(rates['mean'], 0)}; {over} s above the cap; "
                f"{cpu:.0%} of a core",
                "target": f"≤ {args.max_rps:g}; ≤ 1 core",
                "verdict": c.verdict(over == 0 and cpu <= 1.0),
            },
        ],
        note=f"the fake vendor reports OpenAI `progress`: {args.vendor_progress}",
        other_load=other.cores,
    )
    if json_path := __import__("os").environ.get("VIDGATE_BENCH_P3_JSON"):
        Path(json_path).write_text(json.dumps({"lags": lags, "rates": rates["counts"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
