"""`vidgate usage`: tasks, seconds and credits per key and model (the admin API's `/admin/usage`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from app.cli.database import gateway_call, session
from app.cli.options import JsonOpt, parse_time
from app.cli.output import TYPER, num
from app.config import Settings

group = typer.Typer(**TYPER)

HEADER = "KEY_ID\tKEY_NAME\tMODEL\tTASKS\tCOMPLETED\tFAILED\tSECONDS\tCREDITS_CHARGED\tCREDITS_RESERVED"


@group.command()
def usage(
    since: Annotated[str | None, typer.Option(help="From (inclusive): ISO date/time, unix seconds, or 7d ago.")] = None,
    until: Annotated[str | None, typer.Option(help="To (exclusive): ISO date/time, unix seconds, or 1h ago.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only this key (id, display prefix or name).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model, as clients asked for it.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tasks, seconds and credits per key and model (the admin API's `/admin/usage`)."""
    from app.admin import service as admin

    settings = Settings()
    start = parse_time(since, option="--since", past=True) if since else None
    end = parse_time(until, option="--until", past=True) if until else None

    async def run() -> Any:
        async with session(settings) as s:
            key_id = key
            if key:
                found = await admin.find_key(s, key)
                key_id = found[0].id if len(found) == 1 else key
            return await admin.usage_report(s, since=start, until=end, key_id=key_id, model=model)

    report = gateway_call(run)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    typer.echo(HEADER)
    t = report.totals
    for r in report.data:
        typer.echo(
            f"{r.api_key_id}\t{r.key_name or '-'}\t{r.model}\t{r.tasks}\t{r.completed}\t{r.failed}"
            f"\t{num(r.seconds)}\t{num(r.credits_charged)}\t{num(r.credits_reserved)}"
        )
    typer.echo(
        f"TOTAL\t-\t-\t{t.tasks}\t{t.completed}\t{t.failed}\t{num(t.seconds)}"
        f"\t{num(t.credits_charged)}\t{num(t.credits_reserved)}"
    )
