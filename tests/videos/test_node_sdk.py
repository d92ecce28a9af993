"""The official openai Node SDK (tests/node, installed by `npm install` there) against a live gateway."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine  # these tests watch videos finish

NODE_DIR = Path(__file__).resolve().parent.parent / "node"


def test_openai_node_sdk_end_to_end(live) -> None:
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "openai").is_dir()
    if node is None or not installed:
        if os.environ.get("CI") == "true":
            raise AssertionError("CI must run the Node SDK test: install node and run `npm install` in tests/node")
        pytest.skip("node or tests/node/node_modules missing (run `npm install` in tests/node)")
    server, key = live
    run = subprocess.run(
        [node, "e2e.mjs", f"{server.url}/v1", key], cwd=NODE_DIR, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["created"] == {"status": "queued", "seconds": "2", "size": "320x240", "model": "sora-2"}
    assert out["done"]["status"] == "completed" and out["done"]["progress"] == 100
    assert out["video"]["type"] == "video/mp4" and out["video"]["ftyp"] == "ftyp" and out["video"]["bytes"] > 1000
    assert out["thumbnail"]["type"] == "image/webp"
    assert out["image_url"] == "completed" and out["upload"] == "completed"
    assert out["extend"] == {"status": "completed", "seconds": "3"}
    assert out["remix"] is True
    assert out["listed"] >= 4  # auto-paging over pages of two
    assert out["error"]["status"] == 400 and out["error"]["param"] == "seconds"
    assert out["error"]["requestID"]
    assert out["deleted"] is True and out["after_delete"] == 404
