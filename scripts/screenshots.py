"""Screenshots of every dashboard page at 1280x800 for the README: docs/screenshots/*.png.

Runs a throwaway gateway (SQLite and storage in a temporary directory, the sandbox vendor), fills it with
a few keys and videos through the admin API and /v1/videos, signs in with Chromium (Debian's, driven by
Playwright: `apt-get install chromium`, `pip install -e ".[dev]"`) and saves one PNG per page.

    python scripts/screenshots.py [--out docs/screenshots]

`videos-dark.png` is the videos page in the dark colour scheme (prefers-color-scheme: dark).
"""

# ruff: noqa: T201 (a script: it reports on stdout)
from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from alembic import command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrations import alembic_config  # noqa: E402

READY = "() => { const v = document.querySelector('video'); return v && v.readyState >= 2; }"
# prices, so that usage shows charges; a vendor channel beside the sandbox (never called: no task uses it)
CONFIG = """
prices:
  sandbox: 0.05
channels:
  - name: wan-main
    vendor: wanxiang
    credentials: {api_key: "sk-demo-not-a-real-key"}
    models: [wan2.5-t2v-preview]
    priority: 10
    weight: 3
sandbox: true
"""
TOKEN = "screenshots-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PROMPTS = (
    ("A calico cat plays a tiny piano on a sunny windowsill", "4", {}),
    ("Drone shot over a foggy pine forest at sunrise", "2", {}),
    ("A paper boat drifts down a rainy city gutter", "2", {"sandbox_fail": "content_policy_violation"}),
    ("Timelapse of a blooming orchid, studio light", "4", {}),
    ("Neon-lit street food stall in the rain, cinematic", "2", {}),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(base: str) -> str:
    """Keys and videos; returns the id of a completed video."""
    with httpx.Client(base_url=base, timeout=30) as c:
        keys = {}
        for name, owner, extra in (
            ("web app", "acme", {"rpm_limit": 60, "max_concurrent": 4}),
            ("ci pipeline", "acme", {"models": ["sandbox"], "quota_credits": 500}),
            ("batch jobs", "studio-b", {}),
        ):
            r = c.post("/admin/keys", headers=ADMIN, json={"name": name, "owner": owner, **extra})
            r.raise_for_status()
            keys[name] = r.json()
        old = c.post("/admin/keys", headers=ADMIN, json={"name": "old laptop", "owner": "studio-b"}).json()
        c.post(f"/admin/keys/{old['id']}/revoke", headers=ADMIN).raise_for_status()
        ids = []
        for i, (prompt, seconds, meta) in enumerate(PROMPTS):
            key = list(keys.values())[i % len(keys)]["secret"]
            body = {"model": "sandbox", "prompt": prompt, "seconds": seconds, "size": "1280x720", "metadata": meta}
            r = c.post("/v1/videos", headers={"Authorization": f"Bearer {key}"}, json=body)
            r.raise_for_status()
            ids.append((r.json()["id"], key))
        deadline = time.time() + 120
        for vid, key in ids:
            while time.time() < deadline:
                v = c.get(f"/v1/videos/{vid}", headers={"Authorization": f"Bearer {key}"}).json()
                if v["status"] in ("completed", "failed"):
                    break
                time.sleep(0.3)
        return ids[0][0]


def shoot(base: str, out: Path, video_id: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme="light")
        page.goto(f"{base}/dashboard/sign-in")
        page.screenshot(path=str(out / "sign-in.png"))
        saved.append(out / "sign-in.png")
        page.get_by_label("Admin token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/dashboard/videos")
        shots = [
            ("videos", "/dashboard/videos"),
            ("video", f"/dashboard/videos/{video_id}"),
            ("keys", "/dashboard/keys"),
            ("channels", "/dashboard/channels"),
            ("usage", "/dashboard/usage"),
            ("playground", "/dashboard/playground"),
        ]
        for name, path in shots:
            page.goto(base + str(path))
            page.wait_for_load_state("networkidle")
            if name == "video":
                page.wait_for_function(READY)
            if name == "channels":
                page.get_by_role("button", name="Test").first.click()
                page.locator("output").first.wait_for()
                page.wait_for_function("() => !document.querySelector('output').textContent.startsWith('Testing')")
            if name == "playground":
                page.get_by_label("Prompt").fill("A lighthouse in a storm, waves crashing, dramatic clouds")
            target = out / f"{name}.png"
            page.screenshot(path=str(target))
            saved.append(target)
        page.emulate_media(color_scheme="dark")
        page.goto(base + "/dashboard/videos")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out / "videos-dark.png"))
        saved.append(out / "videos-dark.png")
        browser.close()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vidgate-shots-"))
    try:
        config = work / "gateway.yaml"
        config.write_text(CONFIG)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            config=config,
            database_url=f"sqlite+aiosqlite:///{work / 'vidgate.db'}",
            storage_dir=work / "data",
            admin_token=TOKEN,
            sandbox_latency_ms=300,
            log_level="WARNING",
        )
        command.upgrade(alembic_config(settings), "head")
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            video_id = seed(base)
            for path in shoot(base, args.out, video_id):
                print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        finally:
            server.should_exit = True
            thread.join(timeout=20)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
