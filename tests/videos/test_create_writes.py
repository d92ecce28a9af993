"""What a create costs the database: the statements and commits of one `POST /v1/videos` that a vendor
accepts at once (bench/p4_creates.py measures the rate; this counts the work, which does not vary)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event

from tests.support.scripted import MODEL, ScriptedProvider, rig


@contextlib.contextmanager
def recorded(engine: Any) -> Iterator[list[str]]:
    """Every statement sent on `engine` (its first words) and every COMMIT, in order."""
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split()
        verb = words[0].upper()
        table = {"INSERT": 2, "UPDATE": 1, "DELETE": 2}.get(verb)
        if table is not None:
            seen.append(f"{verb} {words[table]}")
        elif "pg_notify(" in statement:
            seen.append("SELECT pg_notify")
        else:
            seen.append(f"{verb} {_from(words)}")

    def on_commit(conn: Any) -> None:
        seen.append("COMMIT")

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", on_execute)
    event.listen(sync, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", on_execute)
        event.remove(sync, "commit", on_commit)


def _from(words: list[str]) -> str:
    upper = [w.upper() for w in words]
    return words[upper.index("FROM") + 1] if "FROM" in upper else ""


async def _create(c: Any, auth: dict[str, str]) -> None:
    r = await c.post("/v1/videos", headers=auth, json={"model": MODEL, "prompt": "a red fox", "size": "128x128"})
    assert r.status_code == 200, r.text


async def test_a_create_commits_twice_and_writes_the_row_twice(database_url, tmp_path) -> None:
    # a free model, a key without quota or concurrency limit, a healthy channel: the common create
    async with rig(database_url, tmp_path, ScriptedProvider()) as r, await r.http() as c:
        await _create(c, r.auth)  # the first use of the key stamps its last use (once a minute)
        with recorded(r.gw.db) as seen:
            await _create(c, r.auth)
    # on PostgreSQL the read caches of other processes hear of the update in its own transaction
    notify = ["SELECT pg_notify"] if r.gw.db.dialect.name == "postgresql" else []
    assert seen == [
        "SELECT api_keys",  # authentication
        "SELECT channels",  # health, for the order of the candidates
        "INSERT videos",  # stored claimed, naming the channel about to be tried
        "COMMIT",
        "UPDATE videos",  # the vendor's id, the claim released
        *notify,
        "COMMIT",
    ], seen
