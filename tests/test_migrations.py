"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and go down
and up again cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.db import create_engine
from app.migrations import alembic_config
from app.videos.models import VideoInputs

PG_URL = os.environ.get("VIDGATE_TEST_DATABASE_URL")


def test_models_match_the_migrated_schema(database_url) -> None:
    # raises if autogenerate would produce any operation: nothing in the models lacks a migration
    command.check(alembic_config(Settings(database_url=database_url, _env_file=None)))


def test_one_head_and_a_clean_round_trip(tmp_path) -> None:
    cfg = alembic_config(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'rt.db'}", _env_file=None))
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    command.check(cfg)


# -- 0007: typed video columns, with the data migrated ---------------------------------------------

V0006 = {
    "owner": "o",
    "api_key_id": "k",
    "operation": "create",
    "model": "sora-2",
    "provider": "sandbox",
    "vendor_model": "sora-2",
    "progress": 0,
    "quality": "standard",
    "created_ns": 1,
    "created_at": 1,
    "updated_at": 1.0,
    "vendor_meta": "{}",
    "assets": "{}",
    "poll_count": 0,
    "poll_errors": 0,
    "reserved_credits": 0.0,
}

SEEDED = [
    # (id, status, size, seconds, params)
    (
        "video_a",
        "completed",
        "1280x720",
        "8",
        {
            "metadata": {"seed": 7},
            "characters": ["Mochi"],
            "image_first": {"url": None, "mime": "image/png", "key": "inputs/video_a/first.png"},
            "download_attempts": 2,
        },
    ),
    (
        "video_b",
        "queued",
        "720x1280",
        "12",
        {"metadata": {}, "characters": [], "source_key": "inputs/video_b/source.mp4", "submit_attempts": 3},
    ),
    (
        "video_c",
        "in_progress",
        "64x64",
        "6",
        {"metadata": {}, "characters": [], "segment_seconds": 4, "source_seconds": 2},
    ),
]


@contextmanager
def _fresh_database(tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend under test (SQLite, or PostgreSQL with VIDGATE_TEST_DATABASE_URL)."""
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    base = make_url(Settings(database_url=PG_URL, _env_file=None).resolved_database_url)
    name = f"vidgate_mig_{uuid.uuid4().hex[:10]}"
    _sql(base.render_as_string(hide_password=False), f'CREATE DATABASE "{name}"', autocommit=True)
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        _sql(
            base.render_as_string(hide_password=False),
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            autocommit=True,
        )


def _sql(url: str, sql: str, params: list[dict[str, Any]] | None = None, *, autocommit: bool = False) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT") if autocommit else create_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql), params or {})
                return list(result.mappings().all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _seed_0006(url: str) -> None:
    cols = ["id", "status", "size", "seconds", "params", *V0006]
    rows = [
        {"id": vid, "status": st, "size": size, "seconds": secs, "params": json.dumps(params), **V0006}
        for vid, st, size, secs, params in SEEDED
    ]
    json_cols = {"params", "vendor_meta", "assets"}
    pg = url.startswith("postgresql")
    values = ", ".join(f"CAST(:{c} AS jsonb)" if pg and c in json_cols else f":{c}" for c in cols)
    _sql(url, f"INSERT INTO videos ({', '.join(cols)}) VALUES ({values})", rows)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_0007_migrates_the_data_and_back(tmp_path) -> None:
    with _fresh_database(tmp_path) as url:
        cfg = alembic_config(Settings(database_url=url, _env_file=None))
        command.upgrade(cfg, "0006")
        _seed_0006(url)
        command.upgrade(cfg, "0007")

        rows = {r["id"]: r for r in _sql(url, "SELECT * FROM videos ORDER BY id")}
        a, b, c = rows["video_a"], rows["video_b"], rows["video_c"]
        assert "size" not in a and "params" not in a
        assert (a["width"], a["height"], a["seconds"]) == (1280, 720, 8)
        assert (b["width"], b["height"], b["seconds"]) == (720, 1280, 12)
        assert (c["width"], c["height"], c["seconds"]) == (64, 64, 6)
        assert (a["status"], b["status"], c["status"]) == ("completed", "queued", "in_progress")
        # the engine's counters are columns now; what the client asked for stays in `inputs`
        assert (a["download_attempts"], a["submit_attempts"]) == (2, 0)
        assert (b["download_attempts"], b["submit_attempts"]) == (0, 3)
        assert _json(a["inputs"]) == {
            "metadata": {"seed": 7},
            "characters": ["Mochi"],
            "image_first": {"url": None, "mime": "image/png", "key": "inputs/video_a/first.png"},
        }
        assert _json(b["inputs"]) == {"metadata": {}, "characters": [], "source_key": "inputs/video_b/source.mp4"}
        assert _json(c["inputs"]) == {"metadata": {}, "characters": [], "segment_seconds": 4, "source_seconds": 2}
        # ...and read back through the model as the typed value
        inputs = VideoInputs.model_validate(_json(a["inputs"]))
        assert inputs.image("first") is not None and inputs.image("first").key == "inputs/video_a/first.png"
        # the status is checked by the database itself
        with pytest.raises(DBAPIError):
            _sql(url, "UPDATE videos SET status = 'done' WHERE id = 'video_a'")

        command.downgrade(cfg, "0006")
        back = {r["id"]: r for r in _sql(url, "SELECT * FROM videos ORDER BY id")}
        for vid, status, size, secs, params in SEEDED:
            assert (back[vid]["status"], back[vid]["size"], back[vid]["seconds"]) == (status, size, secs)
            assert _json(back[vid]["params"]) == params
