"""The house rules that a reader can check by grep, checked on every run (issue #11, STYLE §1–§2).

- Routers never commit: the request's session is committed by the `get_session` dependency.
- Only the modules that say so at their top commit (submission and the job loops, a few documented units).
- SQL lives in repositories: no SQLAlchemy statement is built (or executed) anywhere else.
- Files stay small: nothing under app/ is over 500 lines.

Each allow-list below names why a file is on it. An entry that no longer applies fails the test, so the
lists only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

# SQLAlchemy's statement constructors, and the session/connection methods that run SQL
CONSTRUCTORS = frozenset({"select", "update", "delete", "insert", "text"})
EXECUTORS = frozenset({"execute", "scalar", "scalars"})

# Outside the repositories, only these may build or run SQL.
SQL_ALLOWED = {
    # plumbing, not domain SQL
    "db.py": "SQLite PRAGMAs on each new connection",
    "observability/health.py": "readiness probes: SELECT 1 and the migration head",
}
SQL_ALLOWED_DIRS = {
    "migrations/": "Alembic's env.py and revisions speak SQL by nature",
}

# Only these commit; each says so at its top.
COMMIT_ALLOWED = {
    "db.py": "get_session: the request's session, committed when the handler returns",
    "main.py": "lifespan: the bootstrap key, before any request",
    "cli/keys.py": "each CLI command is its own transaction",
    "videos/submission.py": "stores the task (in the request's transaction), then the vendor's id, around vendor calls",
    "videos/engine.py": "the job loop: each poll step commits",
    "videos/hotread.py": "the status-read fast path: its key's last_used_at stamp, once a minute",
    "videos/variants.py": "a variant made on first request: the request's writes go first, not held through decoding",
    "webhooks/dispatcher.py": "the delivery loop: each attempt commits",
    "videos/janitor.py": "retention: short transactions outside any request, run by the job loop",
    "channels/service.py": "channel health: one short transaction per write, outside any request",
    "callbacks/service.py": "the callback's poll-now hint, then the engine is woken",
    "migrations/env.py": "Alembic's migration transaction",
}
ROUTER_COMMIT_ALLOWED: set[str] = set()  # routers never commit

# Files other branches are editing while these rules land: their entries are not checked for staleness or
# for the docstring until the lead has merged those branches (then this set empties).
ELSEWHERE: set[str] = set()

MAX_LINES = 500
LONG_ALLOWED: dict[str, str] = {}


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP).as_posix()
        out.append((rel, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))))
    return out


MODULES = _modules()


def _is_repository(rel: str) -> bool:
    return rel.endswith("/repository.py")


def _sql_allowed(rel: str) -> bool:
    return _is_repository(rel) or rel in SQL_ALLOWED or any(rel.startswith(d) for d in SQL_ALLOWED_DIRS)


def _sqlalchemy_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names bound to statement constructors, names bound to sqlalchemy modules) by this module's imports."""
    constructors: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in CONSTRUCTORS:
                    constructors.add(alias.asname or alias.name)
                elif alias.name in ("sql", "postgresql", "sqlite"):
                    modules.add(alias.asname or alias.name)  # `from sqlalchemy.dialects import postgresql`
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    modules.add(alias.asname or alias.name.split(".")[0])
    return constructors, modules


def _model_names(tree: ast.Module) -> set[str]:
    """Names this module imports from an `app.<domain>.models` module (the ORM classes)."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("app.")
        and (node.module or "").endswith(".models")
        for alias in node.names
    }


def _sql_sites(tree: ast.Module) -> list[tuple[int, str]]:
    constructors, modules = _sqlalchemy_names(tree)
    models = _model_names(tree)
    sites = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        if isinstance(fn, ast.Name) and fn.id in constructors:
            sites.append((node.lineno, f"{fn.id}(...)"))
        elif isinstance(fn, ast.Attribute):
            if fn.attr in CONSTRUCTORS and isinstance(fn.value, ast.Name) and fn.value.id in modules:
                sites.append((node.lineno, f"{fn.value.id}.{fn.attr}(...)"))
            elif fn.attr in EXECUTORS:
                sites.append((node.lineno, f".{fn.attr}(...)"))
            elif fn.attr == "get" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in models:
                sites.append((node.lineno, f".get({node.args[0].id}, ...)"))  # session.get(Model, id)
    return sorted(sites)


def _commits(tree: ast.Module) -> list[int]:
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    )


def test_sql_lives_in_repositories() -> None:
    found = [
        f"app/{rel}:{line}: {what}" for rel, tree in MODULES if not _sql_allowed(rel) for line, what in _sql_sites(tree)
    ]
    assert not found, "SQL outside a repository (move it into the domain's repository.py):\n" + "\n".join(found)


def test_routers_never_commit() -> None:
    found = [
        f"app/{rel}:{line}"
        for rel, tree in MODULES
        if Path(rel).name in ("router.py", "files.py") and rel not in ROUTER_COMMIT_ALLOWED
        for line in _commits(tree)
    ]
    assert not found, "a router commits (the get_session dependency does that):\n" + "\n".join(found)


def test_only_the_documented_units_commit() -> None:
    found = [f"app/{rel}:{line}" for rel, tree in MODULES if rel not in COMMIT_ALLOWED for line in _commits(tree)]
    assert not found, "a commit outside the modules that own a transaction:\n" + "\n".join(found)


@pytest.mark.parametrize("rel", sorted(set(COMMIT_ALLOWED) - ELSEWHERE - {"db.py", "migrations/env.py"}))
def test_each_committing_module_says_so_at_its_top(rel: str) -> None:
    doc = ast.get_docstring(dict(MODULES)[rel]) or ""
    assert "commit" in doc.lower(), f"app/{rel} commits: its docstring should say so (and why)"


def test_files_stay_small() -> None:
    long = {
        rel: n
        for rel, _ in MODULES
        if (n := len((APP / rel).read_text(encoding="utf-8").splitlines())) > MAX_LINES and rel not in LONG_ALLOWED
    }
    assert not long, f"over {MAX_LINES} lines (split by responsibility): {long}"


def test_the_allow_lists_only_shrink() -> None:
    """An entry that no longer applies goes, so the exceptions cannot outlive their reason."""
    modules = dict(MODULES)
    stale = [f"SQL_ALLOWED: {rel}" for rel in SQL_ALLOWED if rel not in modules or not _sql_sites(modules[rel])]
    stale += [f"COMMIT_ALLOWED: {rel}" for rel in COMMIT_ALLOWED if rel not in modules or not _commits(modules[rel])]
    stale += [
        f"LONG_ALLOWED: {rel}"
        for rel in LONG_ALLOWED
        if rel not in modules or len((APP / rel).read_text(encoding="utf-8").splitlines()) <= MAX_LINES
    ]
    stale = [entry for entry in stale if entry.split(": ", 1)[1] not in ELSEWHERE]
    assert not stale, "allow-list entries that no longer apply (remove them):\n" + "\n".join(stale)
