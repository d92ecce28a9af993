"""CLI parity with the admin API: key limits, update, rotate, channels and usage, run as an operator would."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from app.cli import cli
from app.cli.options import parse_time
from app.main import create_app
from tests.conftest import make_settings
from tests.keys.test_cli import vidgate as vidgate_sync
from tests.support.api import finish

pytestmark = pytest.mark.engine  # these tests watch videos finish


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "VIDGATE_DATABASE_URL": database_url, "VIDGATE_STORAGE_DIR": str(tmp_path / "d")}


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway running on the same database as the CLI."""
    app = create_app(make_settings(database_url, tmp_path / "d"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            yield c


async def vidgate(*args: str, env: dict[str, str]) -> Any:
    # off the event loop: the server in this loop must be free to finish a write the CLI is waiting for
    return await asyncio.to_thread(vidgate_sync, *args, env=env)


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def key_row(listing: str, key_id: str) -> list[str]:
    [row] = [line.split("\t") for line in listing.splitlines() if line.startswith(key_id + "\t")]
    return row


def key_table(listing: str) -> list[dict[str, str]]:
    header, *rows = listing.strip().splitlines()
    names = header.split("\t")
    return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]


async def test_keys_create_update_rotate(server: httpx.AsyncClient, env: dict[str, str]) -> None:
    made = ok(
        await vidgate(
            "keys", "create", "--name", "cli-admin", "--rpm-limit", "2", "--quota-credits", "50",
            "--max-concurrent", "3", "--expires-at", "30d", "--ip-allowlist", "127.0.0.1,10.0.0.0/8",
            "--ip-allowlist", "::1", env=env,
        )
    )  # fmt: skip
    first, secret = made.strip().splitlines()[0], made.strip().splitlines()[-1]
    assert secret.startswith("sk-vg-") and " " not in secret
    key_id = first.split()[2]
    assert key_id.startswith("key_") and "rpm_limit=2" in first

    listing = ok(await vidgate("keys", "list", env=env))
    assert listing.splitlines()[0].startswith("ID\tPREFIX\tNAME\tOWNER\tSTATUS")  # a header row, as `channels`
    [row] = [r for r in key_table(listing) if r["ID"] == key_id]
    assert (row["NAME"], row["STATUS"], row["MODELS"]) == ("cli-admin", "active", "all")
    assert (row["RPM_LIMIT"], row["MAX_CONCURRENT"], row["USED_CREDITS"], row["QUOTA_CREDITS"]) == ("2", "3", "0", "50")
    assert row["IP_ALLOWLIST"] == "127.0.0.1,10.0.0.0/8,::1"
    expires = datetime.strptime(row["EXPIRES_AT"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(expires.timestamp() - (time.time() + 30 * 86400)) < 120
    assert secret not in listing

    listed = json.loads(ok(await vidgate("keys", "list", "--json", env=env)))
    [as_json] = [k for k in listed if k["id"] == key_id]
    assert as_json["rpm_limit"] == 2 and as_json["quota_credits"] == 50 and "secret" not in as_json

    args = ("keys", "update", key_id, "--rpm-limit", "5", "--clear-quota-credits", "--models", "sandbox")
    [updated] = key_table(ok(await vidgate(*args, env=env)))
    assert (updated["RPM_LIMIT"], updated["MAX_CONCURRENT"], updated["QUOTA_CREDITS"]) == ("5", "3", "-")
    [row] = [r for r in key_table(ok(await vidgate("keys", "list", env=env))) if r["ID"] == key_id]
    assert row["RPM_LIMIT"] == "5"

    # the older spellings still work (hidden from --help, with a warning on stderr)
    old = await vidgate("keys", "update", key_id, "--rpm", "6", "--quota", "40", "--expires", "1d", env=env)
    assert old.returncode == 0 and "--rpm is deprecated; use --rpm-limit" in old.stderr
    [updated] = key_table(old.stdout)
    assert (updated["RPM_LIMIT"], updated["QUOTA_CREDITS"]) == ("6", "40")

    auth = {"Authorization": f"Bearer {secret}"}
    assert [m["id"] for m in (await server.get("/v1/models", headers=auth)).json()["data"]] == ["sandbox"]
    ok(await vidgate("keys", "update", "cli-admin", "--disabled", env=env))  # by name, too
    assert (await server.get("/v1/models", headers=auth)).status_code == 401
    ok(await vidgate("keys", "update", key_id, "--enable", "--clear-models", "--clear-ip-allowlist", env=env))
    assert len((await server.get("/v1/models", headers=auth)).json()["data"]) > 1

    rotated = ok(await vidgate("keys", "rotate", key_id, env=env)).strip().splitlines()
    new_secret = rotated[-1]
    assert new_secret.startswith("sk-vg-") and new_secret != secret and key_id in rotated[0]
    assert (await server.get("/v1/models", headers=auth)).status_code == 401
    assert (await server.get("/v1/models", headers={"Authorization": f"Bearer {new_secret}"})).status_code == 200


def test_invalid_options_are_refused(env: dict[str, str]) -> None:
    # in-process (typer's runner) to keep the suite quick; the subprocess tests cover the real entry point
    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args), env=env)

    bad_ip = run("keys", "create", "--name", "bad", "--ip-allowlist", "nope")
    assert bad_ip.exit_code == 2 and "--ip-allowlist" in bad_ip.output
    assert run("keys", "create", "--name", "bad", "--rpm", "-1").exit_code == 2
    assert run("keys", "create", "--name", "bad", "--expires", "someday").exit_code == 2
    assert run("keys", "update", "key_x", "--rpm-limit", "1", "--clear-rpm-limit").exit_code == 2
    assert run("keys", "update", "key_x", "--rpm", "1", "--clear-rpm").exit_code == 2  # deprecated spellings
    assert run("keys", "update", "key_x").exit_code == 2
    unknown = run("keys", "create", "--name", "bad", "--models", "no-such-model")
    assert unknown.exit_code == 1 and "no-such-model" in unknown.output
    assert run("keys", "update", "key_does_not_exist", "--rpm", "1").exit_code == 1
    assert run("keys", "rotate", "key_does_not_exist").exit_code == 1


async def test_channels_and_usage(server: httpx.AsyncClient, env: dict[str, str]) -> None:
    table = ok(await vidgate("channels", env=env)).splitlines()
    header = table[0].split("\t")
    assert header[:4] == ["NAME", "VENDOR", "STATE", "HEALTH"] and "COOLDOWN_UNTIL" in header
    [sandbox] = [dict(zip(header, line.split("\t"), strict=True)) for line in table[1:] if line.startswith("sandbox\t")]
    assert sandbox["VENDOR"] == "sandbox" and sandbox["STATE"] == "enabled" and sandbox["HEALTH"] in ("ok", "unknown")
    [as_json] = [c for c in json.loads(ok(await vidgate("channels", "--json", env=env))) if c["name"] == "sandbox"]
    assert {"failures", "last_error", "cooldown_until", "last_success_at", "fingerprint"} <= set(as_json)

    made = ok(await vidgate("keys", "create", "--name", "cli-usage", env=env)).strip().splitlines()
    key_id, secret = made[0].split()[2], made[-1]
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"prompt": "u", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}
    vid = (await server.post("/v1/videos", headers=auth, json=body)).json()["id"]
    assert (await finish(server, auth, vid))["status"] == "completed"

    report = json.loads(ok(await vidgate("usage", "--json", "--key", key_id, "--since", "1h", env=env)))
    assert report["object"] == "list" and report["totals"]["tasks"] == 1 and report["totals"]["completed"] == 1
    [row] = report["data"]
    assert row["api_key_id"] == key_id and row["key_name"] == "cli-usage" and row["seconds"] == 1

    text = ok(await vidgate("usage", "--key", "cli-usage", env=env)).splitlines()
    assert text[0].startswith("KEY_ID\t") and text[-1].startswith("TOTAL\t")
    assert text[1].split("\t")[:4] == [key_id, "cli-usage", "sora-2", "1"]
    empty = json.loads(ok(await vidgate("usage", "--json", "--key", key_id, "--since", "2999-01-01", env=env)))
    assert empty["data"] == [] and empty["totals"]["tasks"] == 0


class TestParseTime:
    def test_forms(self) -> None:
        assert parse_time("1700000000", option="--x") == 1700000000
        assert parse_time("2030-01-01", option="--x") == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
        assert parse_time("2030-01-01T02:00:00+02:00", option="--x") == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
        assert parse_time("30d", option="--x") == pytest.approx(time.time() + 30 * 86400, abs=5)
        assert parse_time("12h", option="--x", past=True) == pytest.approx(time.time() - 12 * 3600, abs=5)

    @pytest.mark.parametrize("value", ["soon", "-5", "30x", ""])
    def test_refused(self, value: str) -> None:
        with pytest.raises(typer.BadParameter):
            parse_time(value, option="--x")
