"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and go down
and up again cleanly."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory

from app.config import Settings
from app.migrations import alembic_config


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
