# ruff: noqa: T201 - a benchmark reports on stdout
"""Render the figures of the latest run (bench/results/*.json, written by each bench script) as the
figures table of README.md and bench/README.md, between `<!-- bench:begin -->` and `<!-- bench:end -->`.

    python bench/report.py            # rewrite both tables
    python bench/report.py --print    # print it only
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ORDER = ["p1_status-sqlite", "p1_status-postgres", "p1_memory", "p2_content", "p3_tasks", "p4_creates"]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def load() -> list[dict[str, object]]:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(runs, key=lambda r: (rank.get(str(r["script"]), len(ORDER)), str(r["script"])))


def render(runs: list[dict[str, object]]) -> str:
    if not runs:
        return "No figures recorded yet: run `make bench`."
    lines = ["| run | figure | measured | target | verdict |", "|---|---|---|---|---|"]
    for run in runs:
        for row in run["rows"]:  # type: ignore[attr-defined]
            lines.append(
                f"| {run['script']} | {row['figure']} | {row['measured']} | {row['target']} | {row['verdict']} |"
            )
    machines = {
        (r["machine"]["nproc"], r["machine"]["cpu"], r["machine"]["kernel"], r["machine"]["python"]) for r in runs
    }  # type: ignore[index]
    dates = sorted(r["machine"]["date"] for r in runs)  # type: ignore[index]
    versions: dict[str, str] = {}
    for r in runs:
        versions.update(r.get("versions") or {})  # type: ignore[arg-type]
    out = ["\n".join(lines), ""]
    for nproc, cpu, kernel, python in sorted(machines):
        out.append(f"Machine: {nproc} × {cpu}, Linux {kernel}, Python {python}.")
    out.append(
        f"Recorded {dates[0]} to {dates[-1]} by the bench scripts (`bench/results/`). Versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + "."
    )
    loads = [(r["script"], r.get("other_load_cores")) for r in runs if r.get("other_load_cores") is not None]
    if loads:
        out.append("Other load on the machine meanwhile (cores): " + ", ".join(f"{s} {v:.2f}" for s, v in loads) + ".")  # type: ignore[str-format]
    notes = [f"{r['script']}: {r['note']}" for r in runs if r.get("note")]
    if notes:
        out.append("")
        out.extend(f"* {n}" for n in notes)
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--print", action="store_true", help="print the table instead of rewriting README.md")
    args = ap.parse_args()
    table = render(load())
    if args.print:
        print(table)
        return 0
    for readme in (ROOT / "README.md", ROOT / "bench" / "README.md"):
        text = readme.read_text()
        if BEGIN not in text or END not in text:
            print(f"{readme.relative_to(ROOT)} has no {BEGIN} … {END} block", file=sys.stderr)
            return 1
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
        print(f"{readme.relative_to(ROOT)}: figures table rewritten from {len(load())} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
