"""The IP allow-list against a real uvicorn configured as `vidgate serve` configures it: X-Forwarded-For
changes the client address only with VIDGATE_TRUST_FORWARDED_FOR, and only when the direct peer is a
trusted proxy (VIDGATE_TRUSTED_PROXIES); then the right-most untrusted hop is the client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db import create_engine, create_sessionmaker
from app.keys.service import create_key
from app.main import create_app
from tests.conftest import LiveServer, make_settings

ALLOWED = "10.1.2.3"


def _serve(database_url: str, storage: Path, **overrides: Any) -> tuple[LiveServer, str]:
    settings = make_settings(database_url, storage, run_engine=False, **overrides)

    async def mk() -> str:
        engine = create_engine(settings.resolved_database_url)
        async with create_sessionmaker(engine)() as s:
            _, secret = await create_key(s, name="limited", ip_allowlist=[f"{ALLOWED}/32"])
            await s.commit()
        await engine.dispose()
        return secret

    return LiveServer(create_app(settings), settings=settings), asyncio.run(mk())


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> tuple[LiveServer, str]:
        server, secret = _serve(database_url, tmp_path / f"data{len(servers)}", **overrides)
        servers.append(server.__enter__())
        return server, secret

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def _list(server: LiveServer, secret: str, forwarded: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return httpx.get(f"{server.url}/v1/videos", headers=headers, timeout=10)


def test_a_spoofed_forwarded_for_does_not_pass_the_allow_list(serve) -> None:
    server, secret = serve()  # VIDGATE_TRUST_FORWARDED_FOR is off by default
    for forwarded in (ALLOWED, f"203.0.113.9, {ALLOWED}", f"{ALLOWED}, 127.0.0.1"):
        r = _list(server, secret, forwarded)
        assert r.status_code == 403, (forwarded, r.text)
        assert r.json()["error"]["code"] == "ip_not_allowed"
        assert "127.0.0.1" in r.json()["error"]["message"]  # the real peer


def test_a_trusted_proxy_sets_the_client_address(serve) -> None:
    server, secret = serve(trust_forwarded_for=True)  # the default trusted proxies: loopback
    assert _list(server, secret, ALLOWED).status_code == 200
    # the proxy appends the address it saw: everything left of it is the client's to forge
    assert _list(server, secret, f"203.0.113.9, {ALLOWED}").status_code == 200
    assert _list(server, secret, f"{ALLOWED}, 203.0.113.9").status_code == 403
    # hops that are trusted proxies themselves are skipped
    assert _list(server, secret, f"{ALLOWED}, 127.0.0.1").status_code == 200
    assert _list(server, secret, None).status_code == 403
    assert _list(server, secret, "not-an-ip").status_code == 403


def test_forwarded_for_from_an_untrusted_peer_is_ignored(serve) -> None:
    server, secret = serve(trust_forwarded_for=True, trusted_proxies="192.0.2.0/24")
    r = _list(server, secret, ALLOWED)
    assert r.status_code == 403, r.text
    assert "127.0.0.1" in r.json()["error"]["message"]


def test_trusted_proxies_parses_cidrs() -> None:
    from app.config import Settings

    s = Settings(_env_file=None, trusted_proxies="10.0.0.0/8, ::1,192.0.2.7")  # type: ignore[call-arg]
    assert [str(n) for n in s.trusted_proxy_networks] == ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]
    assert [str(n) for n in Settings(_env_file=None).trusted_proxy_networks] == ["127.0.0.0/8", "::1/128"]  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="not-a-cidr"):
        Settings(_env_file=None, trusted_proxies="10.0.0.0/8,not-a-cidr")  # type: ignore[call-arg]


def test_vidgate_serve_runs_uvicorn_with_these_options(monkeypatch, database_url, tmp_path) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from app.cli import cli, database
    from app.config import Settings
    from app.server import uvicorn_options

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.setattr(database, "upgrade", lambda settings: None)
    monkeypatch.setenv("VIDGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("VIDGATE_STORAGE_DIR", str(tmp_path / "cli"))
    result = CliRunner().invoke(cli, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert calls == [uvicorn_options(Settings(), host="127.0.0.1", port=8123)]
    assert calls[0]["proxy_headers"] is False
