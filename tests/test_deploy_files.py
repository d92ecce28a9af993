"""What can be checked of the deployment files without a container engine: every VIDGATE_ name they use
is a real setting, the commands they run exist, and .env.example lists every setting."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {f"VIDGATE_{name.upper()}" for name in Settings.model_fields}


def test_compose_environment_names_are_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    names: set[str] = set()
    for service in compose["services"].values():
        env = service.get("environment") or {}
        names |= {
            n for n in (env if isinstance(env, dict) else [e.split("=")[0] for e in env]) if n.startswith("VIDGATE_")
        }
    assert names, "the compose file configures vidgate through VIDGATE_ variables"
    assert names <= FIELDS, sorted(names - FIELDS)
    assert {"gateway", "worker", "postgres", "redis"} <= set(compose["services"])
    for name in ("gateway", "postgres", "redis"):
        assert "healthcheck" in compose["services"][name]
    assert compose["services"]["worker"]["command"] == ["vidgate", "worker"]


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*(VIDGATE_[A-Z0-9_]+)=", text, re.M))
    assert listed <= FIELDS, sorted(listed - FIELDS)
    assert FIELDS <= listed, sorted(FIELDS - listed)


def test_dockerfile_runs_as_non_root_and_uses_real_commands() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert text.count("FROM ") >= 2  # multi-stage
    assert '"vidgate", "serve"' in text


def test_dockerfile_relies_on_the_packaged_migrations() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^COPY .*(migrations|alembic\.ini)", text, re.M), "the migrations ship inside the package"
    assert "RUN pip install .\n" in text  # no extras in the image


def _make(target: str, venv: Path) -> str:
    import subprocess

    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_run_installs_the_runtime_only_and_make_test_adds_dev(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run = _make("run", venv)
    assert "pip install --quiet -e .\n" in run and ".[dev]" not in run
    test = _make("test", venv)  # a fresh clone: both steps
    assert "pip install --quiet -e .\n" in test and 'pip install --quiet -e ".[dev]"' in test

    venv.mkdir()
    (venv / ".runtime-installed").touch()  # after `make run`
    test = _make("test", venv)
    assert 'pip install --quiet -e ".[dev]"' in test and "pip install --quiet -e .\n" not in test
    (venv / ".dev-installed").touch()
    assert "pip install" not in _make("test", venv) and "pip install" not in _make("run", venv)


def test_readme_without_make_installs_the_runtime_then_dev() -> None:
    readme = (ROOT / "README.md").read_text()
    line = readme[readme.index("Without make:") :].split("\n\n")[0]
    serve, tests = line.split("vidgate serve")
    assert "pip install -e ." in serve and "[dev]" not in serve
    assert 'pip install -e ".[dev]"' in tests and "pytest" in tests
