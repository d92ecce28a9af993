"""`vidgate config check`: the shipped example passes, and each class of mistake is reported with its place."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.channels.check import check_config
from app.channels.config import load_config
from app.cli import cli
from app.config import Settings
from app.providers.registry import build_registry
from app.providers.vendors import VENDORS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "gateway.example.yaml"


def example_env() -> dict[str, str]:
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", EXAMPLE.read_text()))
    assert names, "the example shows ${VAR} references"
    return {name: f"value-of-{name.lower()}" for name in names}


def test_the_example_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in example_env().items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["config", "check", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(": ok")


async def test_the_example_is_what_the_gateway_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in example_env().items():
        monkeypatch.setenv(name, value)
    config = load_config(EXAMPLE)
    async with httpx.AsyncClient() as client:
        registry = build_registry(Settings(_env_file=None, storage_dir=tmp_path), client, config=config)  # type: ignore[call-arg]
    assert {"wan-main", "sora-relay", "kling", "jimeng", "vidu"} <= set(registry.channels)
    assert registry.target("house-video") == "wan2.5-t2v-preview"


def test_the_example_shows_every_option() -> None:
    from app.channels.config import ChannelConfig, GatewayConfig

    text = EXAMPLE.read_text()
    for field in (*GatewayConfig.model_fields, *ChannelConfig.model_fields):
        assert re.search(rf"^\s*(- )?{field}:", text, re.M), field


def test_unset_variable_via_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in example_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KLING_SK")
    monkeypatch.setenv("VIDGATE_CONFIG", str(EXAMPLE))  # FILE defaults to VIDGATE_CONFIG
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 1
    assert (
        "channels[3].credentials.secret_key: environment variable KLING_SK is referenced but not set" in result.output
    )


BAD = """\
channels:
  - name: a
    vendor: kling
    credentials: {access_key: "${NOT_SET_AK}", secret_key: s}
    modles: [kling-v1]
  - name: b
    vendor: klingg
  - name: c
    vendor: wanxiang
    credentials: {api_key: k, token: t}
    models: [wan2.5-t2v-preview, wan9]
    weight: -1
  - name: d
    vendor: vidu
colour: red
aliases:
  house: not-served
"""


def test_each_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD)
    problems = check_config(path, env={})
    expected = [
        "colour: unknown key 'colour'",
        "channels[0].credentials.access_key: environment variable NOT_SET_AK is referenced but not set",
        "channels[0].modles: unknown key 'modles'",
        f"channels[1].vendor: unknown vendor 'klingg' (known: {', '.join(sorted(VENDORS))})",
        "channels[2].credentials.token: unknown credential for wanxiang (known: api_key)",
        "channels[2].models[1]: unknown model 'wan9' for vendor wanxiang",
        "channels[2].weight: Input should be greater than or equal to 0",
        "channels[3].credentials: vidu needs 'api_key'",
    ]
    for start in expected:
        assert sum(p.startswith(start) for p in problems) == 1, (start, problems)
    assert len(problems) == len(expected), problems


def test_alias_to_nothing_and_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("channels: [{name: k, vendor: kling, credentials: {access_key: a, secret_key: b}}]\n"
                    "aliases: {house: nothing}\nsandbox: false\n")  # fmt: skip
    assert check_config(path, env={}) == ["aliases.house: points at 'nothing', which no channel serves"]
    path.write_text("channels: [\n")
    [problem] = check_config(path, env={})
    assert problem.startswith("not valid YAML")
    assert check_config(tmp_path / "missing.yaml", env={})[0].startswith("cannot read the file")


def test_cli_reports_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD)
    # set but empty: not an unset variable, but a blank credential, as the gateway would see it
    result = CliRunner().invoke(cli, ["config", "check", str(path)], env={"NOT_SET_AK": ""})
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 8 and all(line.startswith(f"{path}: ") for line in lines), lines
    assert f"{path}: channels[0].credentials: kling needs 'access_key'" in lines
