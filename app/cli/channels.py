"""`vidgate channels`: the configured channels with their shared health from the database."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import typer

from app.cli.database import session
from app.cli.options import JsonOpt
from app.cli.output import TYPER, iso, num
from app.config import Settings

if TYPE_CHECKING:
    from app.admin.schemas import ChannelOut

group = typer.Typer(**TYPER)

HEADER = (
    "NAME\tVENDOR\tSTATE\tHEALTH\tPRIORITY\tWEIGHT\tFAILURES\tUNFINISHED\tCOOLDOWN_UNTIL\tLAST_SUCCESS"
    "\tLAST_ERROR_AT\tMODELS\tLAST_ERROR"
)


def _line(r: ChannelOut) -> str:
    state = "retired" if r.retired else "enabled" if r.enabled else "disabled"
    error = " ".join((r.last_error or "-").split())[:300]  # one line, whatever the vendor said
    cells = [
        r.name,
        r.vendor,
        state,
        r.health,
        num(r.priority),
        num(r.weight),
        str(r.failures),
        str(r.unfinished_tasks),
        iso(r.cooldown_until),
        iso(r.last_success_at),
        iso(r.last_error_at),
        ",".join(r.models) or "-",
        error,
    ]
    return "\t".join(cells)


@group.command()
def channels(as_json: JsonOpt = False) -> None:
    """Channels from the config (read as the server reads it) with their shared health from the database."""
    import httpx

    from app.admin import service as admin
    from app.providers.registry import build_registry

    settings = Settings()

    async def run() -> list[ChannelOut]:
        async with httpx.AsyncClient() as client:
            registry = build_registry(settings, client)
            async with session(settings) as s:
                return await admin.channel_report(s, registry)

    rows = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    typer.echo(HEADER)
    for r in rows:
        typer.echo(_line(r))
