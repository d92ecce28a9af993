"""The `vidgate` console script, run as an operator would, against the test database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx

from tests.conftest import make_settings


def vidgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # on a thread: a blocked event loop could hold the server's SQLite write lock the CLI waits for
    return await asyncio.to_thread(vidgate, *args, env=env)


async def test_keys_create_list_revoke(database_url, tmp_path) -> None:
    from app.main import create_app

    env = {**os.environ, "VIDGATE_DATABASE_URL": database_url, "VIDGATE_STORAGE_DIR": str(tmp_path / "d")}
    app = create_app(make_settings(database_url, tmp_path / "d"))
    async with app.router.lifespan_context(app):  # a server is running on the same database
        made = await run_cli("keys", "create", "--name", "cli-key", "--models", "sandbox,sora-2", env=env)
        assert made.returncode == 0, made.stderr
        secret = made.stdout.strip().splitlines()[-1]
        assert secret.startswith("sk-vg-") and " " not in secret

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            h = {"Authorization": f"Bearer {secret}"}
            models = (await c.get("/v1/models", headers=h)).json()["data"]
            assert sorted(m["id"] for m in models) == ["sandbox", "sora-2"]

            listed = await run_cli("keys", "list", env=env)
            assert listed.returncode == 0
            assert "cli-key" in listed.stdout and secret not in listed.stdout and secret[:12] in listed.stdout

            revoked = await run_cli("keys", "revoke", "cli-key", env=env)
            assert revoked.returncode == 0, revoked.stderr
            assert (await c.get("/v1/models", headers=h)).status_code == 401
        assert (await run_cli("keys", "revoke", "no-such-key", env=env)).returncode == 1


async def test_only_a_hash_is_stored(app) -> None:
    import hashlib

    from sqlalchemy import select

    from app.keys.models import ApiKey
    from tests.conftest import new_key

    secret = await new_key(app, name="hashed")
    async with app.state.gateway.sessionmaker() as s:
        row = (await s.scalars(select(ApiKey).where(ApiKey.name == "hashed"))).one()
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(vars(row)) and row.prefix == secret[:12]


async def test_bootstrap_key_is_created_once(database_url, tmp_path) -> None:
    from app.main import create_app

    settings = make_settings(database_url, tmp_path / "d", bootstrap_api_key="sk-bootstrap-test-123")
    for _ in range(2):  # a second start finds it and does not duplicate it
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                r = await c.get("/v1/videos", headers={"Authorization": "Bearer sk-bootstrap-test-123"})
                assert r.status_code == 200


def test_providers_command_lists_the_sandbox(database_url, tmp_path) -> None:
    env = {**os.environ, "VIDGATE_DATABASE_URL": database_url, "VIDGATE_STORAGE_DIR": str(tmp_path / "d")}
    out = vidgate("providers", env=env)
    assert out.returncode == 0, out.stderr
    assert "sandbox" in out.stdout and "sora-2 -> sandbox" in out.stdout
