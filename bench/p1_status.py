# ruff: noqa: T201 - a benchmark reports on stdout
"""P1 — status reads: `GET /v1/videos/{id}` (API key auth + database read) on `vidgate serve`, against a
bare Starlette endpoint on the same server stack (uvicorn, same loop and HTTP implementation, same core)
returning the same JSON from memory.

Reports the peak requests/s of both and their ratio (target >= 0.6), then p50/p99 latency of both at half
of vidgate's peak rate, open loop (target for vidgate: p99 <= 10 ms).

    python bench/p1_status.py [--db sqlite|postgres] [--seconds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib import common as c

RATIO_TARGET = 0.6
P99_TARGET_MS = 10.0
FILLER_ROWS = 10_000  # other tasks in the table, so the lookups are not on a toy table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each peak run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating peak runs per server")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()

    c.banner(
        "P1 status reads",
        f"GET /v1/videos/{{id}} with auth + {args.db} vs a bare Starlette endpoint, both `uvicorn` on one core",
    )
    if not c.have_wrk():
        print(c.WRK_MISSING)
    with c.workdir("p1") as work, contextlib.ExitStack() as stack, c.OtherLoad() as other:
        if args.db == "postgres":
            if problem := c.pg_problem():
                print(f"PostgreSQL unavailable ({problem}); set VIDGATE_BENCH_PG_URL or use --db sqlite")
                return 2
            db_url = stack.enter_context(c.pg_database())
        else:
            db_url = c.sqlite_url(work)
            c.migrate(db_url)
        key = c.create_key(db_url)
        far = time.time() + 10 * 86400  # unfinished, but not due: the engine leaves it alone
        target = c.video_row(key, next_poll_at=far, vendor_task_id="vt_bench", channel="openai_compat")
        stranger = c.create_key(db_url, name="other")
        filler = [c.video_row(stranger if i % 2 else key, status="completed", progress=100) for i in range(FILLER_ROWS)]
        c.insert_videos(db_url, [*filler, target])

        gw = c.start_gateway(work, db_url)
        stack.callback(gw.stop)
        import httpx

        path = f"/v1/videos/{target['id']}"
        resp = httpx.get(gw.url + path, headers=key.headers)
        if resp.status_code != 200:
            print(f"vidgate answered {resp.status_code}: {resp.text}")
            return 1
        body_file = work / "bare_body.json"
        headers = {"openai-poll-after-ms": resp.headers["openai-poll-after-ms"]}
        body_file.write_text(json.dumps({"body": resp.json(), "headers": headers}))
        bare_proc, bare_port = c.start_uvicorn_app(
            work, "lib.bare:app", name="bare", core=c.SERVER_CORE, env={"BENCH_BARE_BODY": str(body_file)}
        )
        stack.callback(bare_proc.stop)
        bare_url = f"http://127.0.0.1:{bare_port}{path}"
        if httpx.get(bare_url).json() != resp.json():
            print("the bare endpoint does not answer the same JSON")
            return 1
        servers = {"vidgate": (gw.url + path, key.headers), "bare": (bare_url, key.headers)}
        pids = {"vidgate": gw.proc.pid, "bare": bare_proc.pid}
        cpu_us: dict[str, list[float]] = {name: [] for name in servers}

        c.progress("warming up")
        for url, hdrs in servers.values():
            c.peak(url, seconds=2, connections=args.connections, headers=hdrs, work=work)
        peaks: dict[str, list[c.LoadResult]] = {name: [] for name in servers}
        for r in range(args.rounds):
            for name, (url, hdrs) in servers.items():
                cpu0 = c.cpu_seconds(pids[name])
                res = c.peak(url, seconds=args.seconds, connections=args.connections, headers=hdrs, work=work)
                cpu_us[name].append((c.cpu_seconds(pids[name]) - cpu0) / max(1, res.requests) * 1e6)
                if res.bad:
                    print(f"{name}: {res.bad} failed requests in the peak run")
                    return 1
                peaks[name].append(res)
                c.progress(f"round {r + 1}: {name} {res.rps:,.0f} req/s ({res.tool})")
        rps = {name: statistics.median(x.rps for x in runs) for name, runs in peaks.items()}
        # VIDGATE_BENCH_PROFILE_DIR: one more peak run of vidgate under py-spy (not counted in the figures)
        spy = c.maybe_profile(gw.proc.pid, f"p1-{args.db}", args.seconds)
        if spy is not None:
            c.peak(
                gw.url + path, seconds=args.seconds + 1, connections=args.connections, headers=key.headers, work=work
            )
            spy.wait()
        ratio = rps["vidgate"] / rps["bare"]
        rate = rps["vidgate"] / 2
        lat: dict[str, c.LoadResult] = {}
        for name, (url, hdrs) in servers.items():
            c.progress(f"{name}: open loop at {rate:,.0f} req/s for {args.latency_seconds:.0f} s")
            lat[name] = c.loadgen(url, seconds=args.latency_seconds, connections=64, headers=hdrs, rate=rate)
            if lat[name].bad:
                print(f"{name}: {lat[name].bad} failed requests in the latency run")
                return 1
        other.measure()

    tool = peaks["vidgate"][0].tool
    print()
    print(
        c.table(
            ["figure", "vidgate", "bare Starlette", "ratio / target", "verdict"],
            [
                [
                    f"peak req/s ({tool}, {args.connections} conns, median of {args.rounds})",
                    c.fmt(rps["vidgate"], 0),
                    c.fmt(rps["bare"], 0),
                    f"{ratio:.2f} (>= {RATIO_TARGET})",
                    c.verdict(ratio >= RATIO_TARGET),
                ],
                [
                    f"p50 at {rate:,.0f} req/s (open loop)",
                    c.fmt(lat["vidgate"].p50_ms, 2, " ms"),
                    c.fmt(lat["bare"].p50_ms, 2, " ms"),
                    "",
                    "",
                ],
                [
                    f"p99 at {rate:,.0f} req/s (open loop)",
                    c.fmt(lat["vidgate"].p99_ms, 2, " ms"),
                    c.fmt(lat["bare"].p99_ms, 2, " ms"),
                    f"<= {P99_TARGET_MS:g} ms",
                    c.verdict((lat["vidgate"].p99_ms or 1e9) <= P99_TARGET_MS),
                ],
                [
                    "server CPU per request (median; the figure least moved by other load)",
                    c.fmt(statistics.median(cpu_us["vidgate"]), 1, " µs"),
                    c.fmt(statistics.median(cpu_us["bare"]), 1, " µs"),
                    f"{statistics.median(cpu_us['bare']) / statistics.median(cpu_us['vidgate']):.2f}",
                    "",
                ],
                ["achieved rate in the latency run", c.fmt(lat["vidgate"].rps, 0), c.fmt(lat["bare"].rps, 0), "", ""],
            ],
        )
    )
    print(other.note())
    bare_cpu, our_cpu = statistics.median(cpu_us["bare"]), statistics.median(cpu_us["vidgate"])
    c.record(
        f"p1_status-{args.db}",
        [
            {
                "figure": f"`GET /v1/videos/{{id}}` peak req/s vs bare Starlette ({args.db})",
                "measured": f"{rps['vidgate']:,.0f} vs {rps['bare']:,.0f} → **{ratio:.2f}**",
                "target": f"≥ {RATIO_TARGET}",
                "verdict": c.verdict(ratio >= RATIO_TARGET),
            },
            {
                "figure": f"p50 / p99 at half of vidgate's peak ({rate:,.0f} req/s, open loop; {args.db})",
                "measured": f"{c.fmt(lat['vidgate'].p50_ms, 2)} / **{c.fmt(lat['vidgate'].p99_ms, 2)} ms** "
                f"(bare {c.fmt(lat['bare'].p50_ms, 2)} / {c.fmt(lat['bare'].p99_ms, 2)} ms)",
                "target": f"p99 ≤ {P99_TARGET_MS:g} ms",
                "verdict": c.verdict((lat["vidgate"].p99_ms or 1e9) <= P99_TARGET_MS),
            },
            {
                "figure": f"server CPU per status read ({args.db})",
                "measured": f"{our_cpu:,.1f} µs vs bare {bare_cpu:,.1f} µs → {bare_cpu / our_cpu:.2f}",
                "target": "",
                "verdict": "",
            },
        ],
        other_load=other.cores,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
