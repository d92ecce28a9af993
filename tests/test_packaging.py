"""What `pip install .` gives an operator: every package app/ imports is declared, and the migrations
ship inside the package (so `vidgate migrate` works from any directory and from a wheel).
`.ci/smoke_install.py` checks the same end to end in a fresh venv."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

import app
from app.config import Settings
from app.migrations import alembic_config

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(app.__file__).resolve().parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(tree: ast.AST) -> set[str]:
    """Top-level modules imported at run time (not under `if TYPE_CHECKING:`)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_every_imported_package_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_norm(re.match(r"[A-Za-z0-9._-]+", req)[0]) for req in project["dependencies"]}  # type: ignore[index]
    modules: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        modules |= _imports(ast.parse(path.read_text(), str(path)))
    third_party = sorted(m for m in modules if m not in sys.stdlib_module_names and m != "app")
    providers = md.packages_distributions()
    undeclared = {m: providers.get(m) for m in third_party if not {_norm(d) for d in providers.get(m, [])} & declared}
    assert not undeclared, f"imported by app/ but not in [project].dependencies: {undeclared}"


def test_license_is_an_spdx_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"


def test_migrations_live_in_the_package() -> None:
    cfg = alembic_config(Settings(database_url="sqlite+aiosqlite:///x.db", _env_file=None))  # type: ignore[call-arg]
    location = Path(cfg.get_main_option("script_location") or "")
    assert location.is_relative_to(PACKAGE), location
    assert (location / "env.py").is_file() and not (ROOT / "migrations").exists()
    heads = ScriptDirectory.from_config(cfg).get_heads()
    # the developers' alembic.ini points at the same scripts
    ini = Config(str(ROOT / "alembic.ini"))
    assert Path(ini.get_main_option("script_location") or "").resolve() == location
    assert ScriptDirectory.from_config(ini).get_heads() == heads


def test_the_wheel_ships_the_migrations(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "app", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("vidgate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        f"app/migrations/{p.relative_to(PACKAGE / 'migrations').as_posix()}"
        for p in (PACKAGE / "migrations").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert {"app/migrations/env.py", "app/migrations/script.py.mako"} <= wanted
    assert any(n.startswith("app/migrations/versions/") for n in wanted)
    assert wanted <= names, sorted(wanted - names)
