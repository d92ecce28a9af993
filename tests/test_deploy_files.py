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


def test_readme_vendor_table_follows_the_vendor_table() -> None:
    """Adding a vendor is one VendorSpec row: the README's table must then name it with its credential
    settings and base URL (options such as a webhook secret are documented apart)."""
    from app.providers.vendors import BUILTIN, VENDORS

    text = (ROOT / "README.md").read_text()
    section = text.split("## Vendors", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Vendor")]
    claimed: set[int] = set()
    for spec in VENDORS.values():
        if spec.name == BUILTIN:
            continue
        needed = [f"VIDGATE_{spec.setting(c.field).upper()}" for c in spec.credentials]
        needed += [f"VIDGATE_{spec.setting('base_url').upper()}"] if spec.base_url is not None else []
        first = needed[0]
        mine = [i for i, row in enumerate(rows) if f"`{first}`" in row]
        assert len(mine) == 1, f"README's vendor table needs one row for {spec.name} naming `{first}`"
        row = rows[mine[0]]
        for env in needed[1:]:
            short = "_" + env.removeprefix(f"VIDGATE_{spec.settings_prefix.upper()}_")
            assert f"`{env}`" in row or f"`{short}`" in row, f"{spec.name}'s README row lacks {env}"
        claimed.add(mine[0])
    assert claimed == set(range(len(rows))), "a README vendor row names no vendor of app/providers/vendors.py"


def test_readme_names_every_vendor_that_calls_back() -> None:
    from app.providers.vendors import VENDORS

    text = (ROOT / "README.md").read_text()
    paragraph = text.split("tasks of the vendors that call back", 1)[1].split("\n\n", 1)[0]
    for spec in VENDORS.values():
        if spec.callback is not None:
            assert spec.title.split()[0] in paragraph, f"README's callback paragraph does not name {spec.title}"
