# ruff: noqa: T201 - a benchmark reports on stdout
"""P4 — creates: `POST /v1/videos` (JSON body) through vidgate to an instant fake OpenAI-format vendor,
on SQLite and on PostgreSQL, against a reference endpoint (`lib/bare_insert.py`: a bare Starlette app on
the same uvicorn stack and core that does one `INSERT` of a `videos` row + `COMMIT` through SQLAlchemy Core
on the same database), runs alternating, median of the rounds; target: vidgate >= 0.5x the reference.
P1's status read (`GET /v1/videos/{id}`) on the same gateway is measured beside them.

Each create stores the task (reserving credits), records the channel attempt, submits to the vendor
(multipart, as openai-python does), records the channel's success and the vendor id: several short
transactions and one vendor round trip. The gateway runs as an API replica (`vidgate serve --no-worker`)
so the engine's polling of the new tasks does not mix into the figure.

    python bench/p4_creates.py [--db sqlite,postgres] [--seconds 4] [--rounds 3] [--connections 32]
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

RATIO_TARGET = 0.5
VENDOR_KEY = "sk-fake-vendor-bench"
BODY = json.dumps(
    {"model": "sora-2", "prompt": "A calico cat playing a piano on stage", "seconds": "4", "size": "720x1280"}
)


def run_db(db: str, work: Path, base_url: str, args: argparse.Namespace) -> dict[str, object] | str:
    with contextlib.ExitStack() as stack:
        if db == "postgres":
            if problem := c.pg_problem():
                return f"skipped: PostgreSQL unavailable ({problem}); set VIDGATE_BENCH_PG_URL"
            db_url = stack.enter_context(c.pg_database())
        else:
            db_url = c.sqlite_url(work)
            c.migrate(db_url)
        config = work / "gateway.yaml"
        config.write_text(
            "sandbox: false\nchannels:\n  - name: bench-vendor\n    vendor: openai_compat\n"
            f"    base_url: {base_url}\n    credentials: {{api_key: {VENDOR_KEY}}}\n    models: [sora-2]\n"
        )
        key = c.create_key(db_url)
        status_row = c.video_row(key, next_poll_at=time.time() + 864000, vendor_task_id="vt_0_0")
        c.insert_videos(db_url, [status_row])
        gw = c.start_gateway(work, db_url, name=f"vidgate-{db}", no_worker=True, config=config)
        stack.callback(gw.stop)
        import httpx

        first = httpx.post(
            gw.url + "/v1/videos", content=BODY, headers={**key.headers, "Content-Type": "application/json"}, timeout=30
        )
        if first.status_code != 200 or first.json().get("status") != "queued":
            return f"FAILED: create answered {first.status_code}: {first.text[:300]}"
        ref, ref_port = c.start_uvicorn_app(
            work,
            "lib.bare_insert:app",
            name=f"bare-insert-{db}",
            core=c.SERVER_CORE,
            env={"BENCH_DATABASE_URL": db_url},
        )
        stack.callback(ref.stop)
        ref_url = f"http://127.0.0.1:{ref_port}/v1/videos"
        probe = httpx.post(ref_url, content=BODY, headers={"Content-Type": "application/json"}, timeout=30)
        if probe.status_code != 200:
            return f"FAILED: the reference answered {probe.status_code}: {probe.text[:300]}"
        read_url = gw.url + f"/v1/videos/{status_row['id']}"
        create_kw = {"method": "POST", "body": BODY, "headers": {**key.headers, "Content-Type": "application/json"}}
        runs = {
            "create": lambda s: c.peak(
                gw.url + "/v1/videos", seconds=s, connections=args.connections, work=work, **create_kw
            ),
            "reference": lambda s: c.peak(ref_url, seconds=s, connections=args.connections, work=work, **create_kw),
            "read": lambda s: c.peak(read_url, seconds=s, connections=args.connections, headers=key.headers, work=work),
        }
        c.progress(f"{db}: warming up")
        for fn in runs.values():
            fn(2)
        results: dict[str, list[c.LoadResult]] = {name: [] for name in runs}
        busy: list[float] = []  # the gateway's CPU (cores) during each create run
        for rnd in range(args.rounds):
            for name, fn in runs.items():
                # VIDGATE_BENCH_PROFILE_DIR: py-spy records the gateway during the first measured create run
                spy = (
                    c.maybe_profile(gw.proc.pid, f"p4-{db}-create", args.seconds)
                    if (rnd, name) == (0, "create")
                    else None
                )
                cpu0, wall0 = c.cpu_seconds(gw.proc.pid), time.monotonic()
                res = fn(args.seconds)
                if name == "create":
                    busy.append((c.cpu_seconds(gw.proc.pid) - cpu0) / (time.monotonic() - wall0))
                if spy is not None:
                    spy.wait(timeout=60)
                if res.bad:
                    return f"FAILED: {res.bad} bad responses in a {name} run (see {gw.proc.log_path})"
                results[name].append(res)
                c.progress(f"{db} round {rnd + 1}: {name} {res.rps:,.0f} req/s")
        stored = c.query(
            db_url, "SELECT count(*) FROM videos WHERE vendor_task_id LIKE 'vt_%' AND id != :i", i=status_row["id"]
        )[0][0]
        sent = sum(r.requests for r in results["create"])
        return {
            "reads": statistics.median(r.rps for r in results["read"]),
            "creates": statistics.median(r.rps for r in results["create"]),
            "reference": statistics.median(r.rps for r in results["reference"]),
            "create_p50": statistics.median(r.p50_ms or 0 for r in results["create"]),
            "create_p99": statistics.median(r.p99_ms or 0 for r in results["create"]),
            "stored": stored,
            "sent": sent,
            "cpu": statistics.median(busy),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]

    c.banner(
        "P4 creates",
        "POST /v1/videos to an instant fake vendor vs one INSERT + COMMIT (SQLAlchemy Core), same database; "
        + " and ".join(dbs),
    )
    if not c.have_wrk():
        print(c.WRK_MISSING)
    out: dict[str, dict[str, object] | str] = {}
    with c.workdir("p4") as root, contextlib.ExitStack() as stack, c.OtherLoad() as other:
        vendor, vport = c.start_fake_vendor(root, VENDOR_KEY)
        stack.callback(vendor.stop)
        for db in dbs:
            work = root / db
            work.mkdir()
            out[db] = run_db(db, work, f"http://127.0.0.1:{vport}/v1", args)
        other.measure()

    rows = []
    failed = False
    for db, res in out.items():
        if isinstance(res, str):
            rows.append([db, res, *[""] * 8])
            failed |= res.startswith("FAILED")
            continue
        rows.append(
            [
                db,
                c.fmt(res["creates"], 0),  # type: ignore[arg-type]
                c.fmt(res["reference"], 0),  # type: ignore[arg-type]
                f"{res['creates'] / res['reference']:.2f} (>= {RATIO_TARGET})",  # type: ignore[operator]
                c.verdict(res["creates"] / res["reference"] >= RATIO_TARGET),  # type: ignore[operator]
                c.fmt(res["reads"], 0),  # type: ignore[arg-type]
                f"{res['creates'] / res['reads']:.2f}",  # type: ignore[operator]
                f"{c.fmt(res['create_p50'], 1)} / {c.fmt(res['create_p99'], 1)}",  # type: ignore[arg-type]
                f"{res['stored']:,} of {res['sent']:,}",
                f"{res['cpu']:.0%} / {1000 * res['cpu'] / res['creates']:.1f} ms",  # type: ignore[operator]
            ]
        )
    print()
    print(
        c.table(
            [
                "database",
                "creates/s",
                "INSERT+COMMIT/s (reference)",
                "ratio / target",
                "verdict",
                "status reads/s (P1)",
                "creates / reads",
                "create p50 / p99 ms (at peak)",
                "tasks stored (incl. warm-up) / measured creates",
                "gateway CPU (of a core) / per create",
            ],
            rows,
        )
    )
    print(
        f"closed loop, {args.connections} connections, median of {args.rounds} alternating runs of {args.seconds:g} s"
    )
    if "postgres" in out and not isinstance(out["postgres"], str):
        print("PostgreSQL is the machine's shared service: not pinned, it competes with both cores")
    print(other.note())
    c.record(
        "p4_creates",
        [
            {
                "figure": f"`POST /v1/videos` (instant fake vendor) vs one INSERT + COMMIT (SQLAlchemy Core), {db}",
                "measured": f"{res['creates']:,.0f} vs {res['reference']:,.0f}/s → "  # type: ignore[str-format]
                f"**{res['creates'] / res['reference']:.2f}**",  # type: ignore[operator]
                "target": f"≥ {RATIO_TARGET}",
                "verdict": c.verdict(res["creates"] / res["reference"] >= RATIO_TARGET),  # type: ignore[operator]
            }
            for db, res in out.items()
            if not isinstance(res, str)
        ],
        other_load=other.cores,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
