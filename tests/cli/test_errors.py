"""Every CLI failure is one line on stderr naming what to set, with a non-zero exit; `--debug` shows the
traceback. Run as an operator would: the real entry point, from a directory outside the checkout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def vidgate(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestOutsideTheProject:
    def test_default_storage_in_another_directory_names_the_setting(self, tmp_path: Path) -> None:
        line = one_line_error(vidgate("keys", "list", cwd=tmp_path), "VIDGATE_STORAGE_DIR", "VIDGATE_DATABASE_URL")
        assert str(tmp_path / "data") in line  # the resolved path, not ./data
        assert not (tmp_path / "data").exists()  # a read-only command creates nothing

    def test_migrate_creates_the_storage_directory(self, tmp_path: Path) -> None:
        done = vidgate("migrate", cwd=tmp_path, VIDGATE_STORAGE_DIR=str(tmp_path / "new" / "store"))
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "new" / "store" / "vidgate.db").is_file()
        listed = vidgate("keys", "list", cwd=tmp_path, VIDGATE_STORAGE_DIR=str(tmp_path / "new" / "store"))
        assert listed.returncode == 0, listed.stderr


class TestOneLine:
    @pytest.mark.parametrize("command", [["migrate"], ["keys", "create", "--name", "k"], ["serve", "--port", "1"]])
    def test_storage_that_cannot_be_created(self, tmp_path: Path, command: list[str]) -> None:
        (tmp_path / "a-file").write_text("")
        storage = tmp_path / "a-file" / "data"  # under a regular file: not even root can create it
        line = one_line_error(vidgate(*command, cwd=tmp_path, VIDGATE_STORAGE_DIR=str(storage)), "VIDGATE_STORAGE_DIR")
        assert str(storage) in line

    @pytest.mark.parametrize("url", ["foo://bar", "postgresql+nosuchdriver://h/db", "sqlite+pysqlite:///x.db"])
    def test_bad_database_url(self, tmp_path: Path, url: str) -> None:
        one_line_error(vidgate("migrate", cwd=tmp_path, VIDGATE_DATABASE_URL=url), "VIDGATE_DATABASE_URL")

    @pytest.mark.parametrize("command", [["migrate"], ["keys", "list"], ["usage"]])
    def test_postgresql_port_with_nothing_listening(self, tmp_path: Path, command: list[str]) -> None:
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
        line = one_line_error(vidgate(*command, cwd=tmp_path, VIDGATE_DATABASE_URL=url), "VIDGATE_DATABASE_URL")
        assert "cannot connect" in line

    def test_sqlite_file_in_a_folder_that_cannot_exist(self, tmp_path: Path) -> None:
        (tmp_path / "a-file").write_text("")
        url = f"sqlite:///{tmp_path / 'a-file' / 'x.db'}"
        one_line_error(vidgate("migrate", cwd=tmp_path, VIDGATE_DATABASE_URL=url), "VIDGATE_DATABASE_URL")

    def test_invalid_setting(self, tmp_path: Path) -> None:
        one_line_error(vidgate("migrate", cwd=tmp_path, VIDGATE_SANDBOX_FPS="lots"), "VIDGATE_SANDBOX_FPS")

    def test_broken_config_file(self, tmp_path: Path) -> None:
        (tmp_path / "gateway.yaml").write_text("channels: [{name: x, vendor: klingg}]\n")
        env = {"VIDGATE_CONFIG": str(tmp_path / "gateway.yaml"), "VIDGATE_STORAGE_DIR": str(tmp_path / "d")}
        one_line_error(vidgate("providers", cwd=tmp_path, **env), "VIDGATE_CONFIG")

    def test_usage_errors(self, tmp_path: Path) -> None:
        result = vidgate("keys", "create", cwd=tmp_path)
        assert result.returncode == 2
        one_line_error(result, "--name")

    def test_debug_shows_the_traceback(self, tmp_path: Path) -> None:
        result = vidgate("--debug", "keys", "list", cwd=tmp_path)
        assert result.returncode != 0 and "Traceback" in result.stderr and "VIDGATE_STORAGE_DIR" in result.stderr
