"""One vocabulary for the admin API and the CLI: options named as the API's fields, times, lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

# Each key field of app/admin/schemas.py is the option `--<field with dashes>` (clearing it:
# `--clear-<field>`). The older short spellings still work, hidden.
RpmOpt = Annotated[
    int | None,
    typer.Option("--rpm-limit", min=0, metavar="N", help="Generations the key may start per minute (rpm_limit)."),
]
ConcurrentOpt = Annotated[
    int | None,
    typer.Option(
        "--max-concurrent", min=0, metavar="N", help="Unfinished videos the key may have at once (max_concurrent)."
    ),
]
QuotaOpt = Annotated[
    float | None,
    typer.Option(
        "--quota-credits", min=0, metavar="CREDITS", help="Credits the key may spend in total (quota_credits)."
    ),
]
ExpiresOpt = Annotated[
    str | None,
    typer.Option(
        "--expires-at",
        metavar="WHEN",
        help="When the key stops working (expires_at): ISO date/time (UTC unless given), unix seconds, or 30d/12h/90m.",
    ),
]
IpOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ip-allowlist",
        metavar="IP",
        help="Allowed client IP or CIDR network (ip_allowlist); repeat or comma-separate.",
    ),
]
ModelsOpt = Annotated[
    str | None,
    typer.Option(
        "--models", metavar="MODEL,...", help="Comma-separated models the key may use (models; default: all)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tab-separated text.")]

DEPRECATED_OPTIONS = {
    "--rpm": "--rpm-limit",
    "--quota": "--quota-credits",
    "--expires": "--expires-at",
    "--ip": "--ip-allowlist",
    "--enable": "--enabled",
    "--disable": "--disabled",
    "--clear-rpm": "--clear-rpm-limit",
    "--clear-quota": "--clear-quota-credits",
    "--clear-expires": "--clear-expires-at",
    "--clear-ip": "--clear-ip-allowlist",
}


class KeyCommand(TyperCommand):
    """Accepts the deprecated option spellings (hidden from --help) as the API-named ones."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                out.extend(args[i:])
                break
            name, eq, value = arg.partition("=")
            new = DEPRECATED_OPTIONS.get(name)
            if new is not None:
                typer.echo(f"warning: {name} is deprecated; use {new}", err=True)
                arg = new + eq + value
            out.append(arg)
        return super().parse_args(ctx, out)


def option_of(field: str) -> str:
    """The CLI option for an admin API field."""
    return "--" + field.replace("_", "-")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, *, option: str, past: bool = False) -> float:
    """Unix seconds from an ISO date/time (naive means UTC), unix seconds, or a duration from now
    (forward, or backward when `past`: `--since 7d` is a week ago)."""
    from app.db import now

    text = value.strip()
    m = _DURATION.match(text.lower())
    if m:
        delta = float(m[1]) * _UNIT_SECONDS[m[2]]
        return now() - delta if past else now() + delta
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise typer.BadParameter("must not be negative", param_hint=option)
        return seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date/time, unix seconds or a duration such as 30d", param_hint=option
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def csv(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def limit_options(
    *, rpm: int | None, max_concurrent: int | None, quota: float | None, expires: str | None, ip: list[str] | None
) -> dict[str, Any]:
    return {
        "rpm_limit": rpm,
        "max_concurrent": max_concurrent,
        "quota_credits": quota,
        "expires_at": parse_time(expires, option="--expires-at") if expires else None,
        "ip_allowlist": csv(ip),
    }


def validated(model: type[M], fields: dict[str, Any]) -> M:
    """The admin API's own validation, reported against the CLI option."""
    from pydantic import ValidationError

    try:
        return model(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise typer.BadParameter(msg, param_hint=option_of(field) if field else None) from None
