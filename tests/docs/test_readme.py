"""Every ```bash and ```python block of the README runs as pasted against a live gateway, except the few
marked `<!-- not-run: why -->` on the line before (the setup commands themselves, a CLI synopsis).

The README's base URL and development key are swapped for the live server's; each block runs in one temp
directory, in order (bash with `bash -euo pipefail`, Python with this interpreter and its openai SDK)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.support.media import image_format, mp4_info

README = Path(__file__).resolve().parents[2] / "README.md"
BASE_URL = "http://127.0.0.1:8000"
DEV_KEY = "sk-vg-dev-local-key"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(\S.*?)\s*-->\s*$")
MAX_NOT_RUN = 2  # `make run`/`make test`, the `vidgate keys` synopsis: adding one needs a reason here


def blocks() -> list[tuple[str, str, str | None]]:
    """(language, code, not-run reason or None) for each bash or python block."""
    text = README.read_text()
    found = []
    for m in FENCE.finditer(text):
        lang, code = m.group(1), m.group(2)
        if lang not in ("bash", "python"):
            continue
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NOT_RUN.search(before)
        found.append((lang, code, reason.group(1) if reason else None))
    return found


def test_only_a_few_blocks_are_exempt() -> None:
    found = blocks()
    exempt = [code for _, code, reason in found if reason is not None]
    assert len(exempt) <= MAX_NOT_RUN, exempt
    assert any("make run" in code for code in exempt)
    runnable = [(lang, code) for lang, code, reason in found if reason is None]
    assert {lang for lang, _ in runnable} == {"bash", "python"}
    for _, code in runnable:  # each talks to the gateway the way `make run` serves it
        assert BASE_URL in code and DEV_KEY in code, code
        assert "video_..." not in code  # placeholders do not run


def run_block(lang: str, code: str, cwd: Path, server: LiveServer, key: str, env: dict[str, str]) -> str:
    code = code.replace(BASE_URL, server.url).replace(DEV_KEY, key)
    script = cwd / ("block.sh" if lang == "bash" else "block.py")
    script.write_text(code)
    cmd = ["bash", "-euo", "pipefail", str(script)] if lang == "bash" else [sys.executable, str(script)]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, (
        f"{lang} block failed ({done.returncode}):\n{code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done.stdout


@pytest.mark.parametrize("only", ["python", "bash"])
@pytest.mark.engine  # the blocks wait for their videos
def test_readme_blocks_run_as_pasted(live: tuple[LiveServer, str], tmp_path: Path, only: str) -> None:
    server, key = live
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    ran = 0
    for lang, code, reason in blocks():
        if reason is None and lang == only:
            run_block(lang, code, tmp_path, server, key, env)
            ran += 1
    assert ran >= 1
    # what the examples say they save (each language's block on its own, in a fresh directory)
    assert mp4_info((tmp_path / "cat.mp4").read_bytes())[1:3] == (1280, 720)
    assert image_format((tmp_path / "cat.webp").read_bytes())[0] == "WEBP"
