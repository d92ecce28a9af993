"""The `vidgate` console script: one module per command group, put together here.

Every failure is one line on stderr (what is wrong and which setting to change) and a non-zero exit;
`vidgate --debug ...` shows the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.cli import channels, config, keys, providers, serve, usage
from app.cli.errors import ClickException, CliError, explain
from app.cli.output import TYPER, one_line

__all__ = ["CliError", "cli", "main"]

cli = typer.Typer(help="vidgate: an OpenAI-compatible video generation gateway.", **TYPER)
# the order of `vidgate --help`: the top-level commands, then the groups
for commands in (serve.group, providers.group, channels.group, usage.group):
    cli.add_typer(commands)
cli.add_typer(keys.group, name="keys")
cli.add_typer(config.group, name="config")

_state = {"debug": False}


@cli.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when a command fails.")] = False,
) -> None:
    _state["debug"] = debug


def main(args: list[str] | None = None) -> None:
    """The console script: usage errors and failures are one line on stderr (`--debug` for a traceback)."""
    try:
        code = cli(args=args, standalone_mode=False)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group without a command: its help, exit 2
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2)
        if not isinstance(exc, CliError) and isinstance(exc, ClickException):
            # click's (or typer's vendored click's) usage errors: one line, and where to read more
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            typer.echo(f"error: {one_line(exc.format_message())}{hint}", err=True)  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if _state["debug"]:
            raise
        typer.echo(f"error: {explain(exc)}", err=True)
        sys.exit(exc.exit_code if isinstance(exc, CliError) else 1)
    sys.exit(code if isinstance(code, int) else 0)
