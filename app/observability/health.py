"""Probes and the scrape endpoint: `/healthz` (alive), `/readyz` (database and schema), `/metrics`."""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.errors import GatewayError, NotFound, UpstreamUnavailable, error_response
from app.gateway import Gateway
from app.migrations import alembic_config
from app.observability.metrics import Metrics

log = logging.getLogger("vidgate.health")

DB_TIMEOUT_S = 2.0

router = APIRouter(include_in_schema=False)


class NotReady(UpstreamUnavailable):
    code = "database_unavailable"


@lru_cache(maxsize=8)
def _heads(script_location: str) -> frozenset[str]:
    # the scripts do not change while the process runs; read them once
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def script_heads(settings: Settings) -> frozenset[str]:
    return _heads(alembic_config(settings).get_main_option("script_location") or "")


async def _db_revisions(db: AsyncEngine) -> frozenset[str] | None:
    """The revisions stamped in the database; None when the database does not answer."""
    try:
        async with asyncio.timeout(DB_TIMEOUT_S):
            async with db.connect() as conn:
                await conn.execute(text("SELECT 1"))
                try:
                    rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
                except Exception:
                    return frozenset()  # no alembic_version table: never migrated
                return frozenset(str(r[0]) for r in rows)
    except Exception as exc:
        log.warning("readiness: database check failed: %r", exc)
        return None


async def check_ready(gw: Gateway | None) -> GatewayError | None:
    if gw is None:
        return NotReady("The gateway is starting.")
    revisions = await _db_revisions(gw.db)
    if revisions is None:
        return NotReady("The database is not reachable.")
    heads = await asyncio.to_thread(script_heads, gw.settings)
    if revisions != heads:
        return NotReady(
            "The database schema is not at the latest migration; run `vidgate migrate`.", code="migrations_pending"
        )
    return None


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> JSONResponse | dict[str, str]:
    err = await check_ready(getattr(request.app.state, "gateway", None))
    if err is not None:
        return error_response(err)
    return {"status": "ready", "database": "ok", "migrations": "head"}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    m: Metrics | None = getattr(request.app.state, "metrics", None)
    gw: Gateway | None = getattr(request.app.state, "gateway", None)
    if m is None or not m.enabled:
        raise NotFound("Unknown route. See the API reference for the available endpoints.", code="unknown_url")
    if gw is not None:
        await m.refresh_tasks(gw.sessionmaker)
    body, content_type = m.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
