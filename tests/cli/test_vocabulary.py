"""One vocabulary for the admin API and the CLI, and help an operator can read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from app.admin.schemas import KeyCreate, KeyUpdate
from app.cli import cli
from app.cli.options import DEPRECATED_OPTIONS

ROOT = Path(__file__).resolve().parents[2]


def command(*path: str) -> Any:
    cmd: Any = typer.main.get_command(cli)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def options(cmd: Any, *, hidden: bool = False) -> set[str]:
    found = {o for p in cmd.params if hidden or not getattr(p, "hidden", False) for o in (*p.opts, *p.secondary_opts)}
    return {o for o in found if o.startswith("-")}


def dashed(field: str) -> str:
    return "--" + field.replace("_", "-")


@pytest.mark.parametrize(("schema", "path"), [(KeyCreate, ("keys", "create")), (KeyUpdate, ("keys", "update"))])
def test_every_admin_key_field_is_a_cli_option(schema: type[BaseModel], path: tuple[str, ...]) -> None:
    opts = options(command(*path))
    missing = sorted(dashed(f) for f in schema.model_fields if dashed(f) not in opts)
    assert not missing, f"`vidgate {' '.join(path)}` lacks {missing} (the admin API's {schema.__name__} has them)"


def test_every_clearable_field_has_a_clear_option() -> None:
    opts = options(command("keys", "update"))
    clearable = [f for f, info in KeyUpdate.model_fields.items() if f not in ("name", "enabled")]
    assert clearable and all(f"--clear-{dashed(f)[2:]}" in opts for f in clearable), sorted(opts)


def test_no_option_outside_the_vocabulary() -> None:
    # every key option is an API field, its --clear- form, or a CLI-only switch; the old names are hidden aliases
    for path, schema in ((("keys", "create"), KeyCreate), (("keys", "update"), KeyUpdate)):
        fields = {dashed(f) for f in schema.model_fields} | {"--disabled", "--help", "-h"}
        allowed = fields | {"--clear-" + f[2:] for f in fields}
        assert options(command(*path)) <= allowed, sorted(options(command(*path)) - allowed)
    assert set(DEPRECATED_OPTIONS.values()) <= options(command("keys", "update"))
    assert not set(DEPRECATED_OPTIONS) & options(command("keys", "update"))  # hidden from --help


def test_readme_documents_the_vocabulary() -> None:
    readme = (ROOT / "README.md").read_text()
    for field in KeyUpdate.model_fields | KeyCreate.model_fields:
        assert f"| `{field}` | `{dashed(field)}" in readme, field


def help_text(*args: str, columns: int = 80) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_flags_have_no_metavar_and_names_are_whole(columns: int) -> None:
    serve = help_text("serve", columns=columns)
    assert "--no-worker" in serve
    for metavar in ("<bool>", "BOOLEAN", "╭"):
        assert metavar not in serve, serve
    update = help_text("keys", "update", columns=columns)
    for opt in options(command("keys", "update")):
        assert opt in update, (opt, update)
    assert "--clear-max-concurrent " in update and "<bool>" not in update


def test_keys_list_starts_with_a_header(database_url: str, tmp_path: Path) -> None:
    env = {"VIDGATE_DATABASE_URL": database_url, "VIDGATE_STORAGE_DIR": str(tmp_path)}
    made = CliRunner().invoke(cli, ["keys", "create", "--name", "header-test"], env=env)
    assert made.exit_code == 0, made.output
    listed = CliRunner().invoke(cli, ["keys", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split("\t")[:3] == ["ID", "PREFIX", "NAME"] and header.isupper()
    assert rows and all(len(r.split("\t")) == len(header.split("\t")) for r in rows)
