"""The import rules of STYLE.md §1, read from the source: nothing imports the CLI, and nothing imports a
router (a module that builds an `APIRouter`) but app/main.py. Function-level and TYPE_CHECKING imports count."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


MODULES = {_name(p): p for p in sorted(APP.rglob("*.py"))}


def imports(module: str) -> set[str]:
    """Every module `module` may import: `from a.b import c` names a.b and a.b.c (c may be a module)."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _builds_router(path: Path) -> bool:
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == "APIRouter") or (
                isinstance(f, ast.Attribute) and f.attr == "APIRouter"
            ):
                return True
    return False


ROUTERS = {m for m, p in MODULES.items() if _builds_router(p)}


def test_the_router_scan_finds_the_routers() -> None:
    known = {"app.videos.router", "app.videos.files", "app.keys.router", "app.admin.router", "app.callbacks.router"}
    assert known | {"app.webhooks.router", "app.observability.health"} <= ROUTERS


def test_nothing_imports_the_cli() -> None:
    offenders = {
        m: sorted(t for t in imports(m) if t == "app.cli" or t.startswith("app.cli."))
        for m in MODULES
        if m != "app.cli" and not m.startswith("app.cli.")
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_only_main_imports_a_router() -> None:
    offenders = {m: sorted(imports(m) & ROUTERS) for m in MODULES if m != "app.main"}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_main_includes_every_router() -> None:
    assert ROUTERS <= imports("app.main")


def _runtime_imports(module: str) -> set[str]:
    """The app modules `module` imports when it runs: module level and inside functions, not under
    `if TYPE_CHECKING:`. `from a import b` is an import of a.b when that is a module, else of a."""
    path = MODULES[module]
    tree = _tree(path)
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), in the runtime import graph."""
    graph = {m: _runtime_imports(m) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return groups


def test_no_import_cycles() -> None:
    # STYLE §1: imports flow one way; a function-level import is still an import (TYPE_CHECKING is not)
    assert _cycles() == []
