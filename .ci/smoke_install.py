"""Production-install smoke test: vidgate as an operator gets it, not as the test suite sees it.

A fresh virtualenv in a temporary directory, `pip install .` with no extras (from a copy of what the
Dockerfile copies: pyproject.toml, README.md, app/), then, from a temporary directory outside the
checkout: `vidgate migrate`, `vidgate serve` on a temporary SQLite database and storage directory, a
sandbox video created over HTTP, polled to `completed` and downloaded (an MP4), `vidgate keys
create` run while the server serves, its key used as a Bearer token, and the dashboard (its templates
and static files come from the installed package) signed in to and listing that video.

Standard library only, run with the system interpreter (never the development venv), so a dependency
that only the dev extras bring in, or a file that only the checkout has, makes it fail. Any failing step
exits non-zero with the step's output.

    python3 .ci/smoke_install.py [--keep]
"""

# ruff: noqa: T201 (a CI script: it reports on stdout)
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_KEY = "sk-vg-smoke-bootstrap-key"
ADMIN_TOKEN = "smoke-admin-token-0123456789abcdef"
STEP_TIMEOUT_S = 600


class SmokeFailure(Exception):
    pass


def run(cmd: list[str], *, env: dict[str, str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise SmokeFailure(f"{what}: timed out after {STEP_TIMEOUT_S}s") from None
    if done.returncode != 0:
        raise SmokeFailure(f"{what}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def http(method: str, url: str, *, key: str, body: dict | None = None, timeout: float = 30) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Smoke:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.passed: list[str] = []
        self.video_id = ""
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log = work / "server.log"

    def ok(self, step: str) -> None:
        self.passed.append(step)
        print(f"ok  {step}", flush=True)

    def install(self) -> Path:
        src = self.work / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "app", src / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        venv = self.work / "venv"
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        run([sys.executable, "-m", "venv", str(venv)], env=env, cwd=self.work, what="python -m venv")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        run([*pip, str(src)], env=env, cwd=self.work, what="pip install . (no extras)")
        shutil.rmtree(src)  # the installed package must not lean on the source tree
        self.ok("pip install . (no extras) in a fresh venv")
        return venv / "bin" / "vidgate"

    def environment(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
        for k in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
            env.pop(k, None)
        env |= {
            "VIDGATE_DATABASE_URL": f"sqlite:///{self.work / 'db' / 'vidgate.db'}",
            "VIDGATE_STORAGE_DIR": str(self.work / "storage"),
            "VIDGATE_BOOTSTRAP_API_KEY": BOOTSTRAP_KEY,
            "VIDGATE_ADMIN_TOKEN": ADMIN_TOKEN,
            "VIDGATE_SANDBOX_LATENCY_MS": "200",
            "VIDGATE_SANDBOX_FPS": "8",
        }
        (self.work / "db").mkdir()
        return env

    def serve(self, vidgate: Path, env: dict[str, str], cwd: Path, port: int) -> str:
        base = f"http://127.0.0.1:{port}"
        with self.server_log.open("wb") as log:
            self.server = subprocess.Popen(
                [str(vidgate), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise SmokeFailure(f"vidgate serve exited with {self.server.returncode}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        self.ok(f"vidgate serve answers /healthz on port {port}")
                        return base
            except OSError:
                pass
            time.sleep(0.3)
        raise SmokeFailure("vidgate serve did not answer /healthz within 60 s")

    def video(self, base: str) -> None:
        status, body = http(
            "POST", f"{base}/v1/videos", key=BOOTSTRAP_KEY, body={"model": "sandbox", "prompt": "smoke test"}
        )
        if status != 200:
            raise SmokeFailure(f"POST /v1/videos: HTTP {status}: {body[:500]!r}")
        video = json.loads(body)
        deadline = time.monotonic() + 120
        while video.get("status") not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise SmokeFailure(f"video {video.get('id')} still {video.get('status')} after 120 s")
            time.sleep(0.3)
            status, body = http("GET", f"{base}/v1/videos/{video['id']}", key=BOOTSTRAP_KEY)
            if status != 200:
                raise SmokeFailure(f"GET /v1/videos/{video['id']}: HTTP {status}: {body[:500]!r}")
            video = json.loads(body)
        if video["status"] != "completed":
            raise SmokeFailure(f"video {video['id']} failed: {video.get('error')}")
        self.ok(f"sandbox video {video['id']} created over HTTP and completed")
        status, content = http("GET", f"{base}/v1/videos/{video['id']}/content", key=BOOTSTRAP_KEY, timeout=60)
        if status != 200:
            raise SmokeFailure(f"GET /content: HTTP {status}: {content[:500]!r}")
        if len(content) < 12 or content[4:8] != b"ftyp":
            raise SmokeFailure(f"/content is not an MP4 (no ftyp box): {content[:16]!r}")
        self.ok(f"/content downloaded: an MP4 of {len(content)} bytes")
        self.video_id = video["id"]

    def dashboard(self, base: str) -> None:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

        def get(path: str, data: bytes | None = None) -> tuple[int, str, str]:
            try:
                with opener.open(f"{base}{path}", data=data, timeout=30) as resp:
                    return resp.status, resp.geturl(), resp.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as exc:
                return exc.code, exc.geturl(), exc.read().decode("utf-8", "replace")

        status, url, page = get("/dashboard")
        if status != 200 or "/dashboard/sign-in" not in url or "Admin token" not in page:
            raise SmokeFailure(f"GET /dashboard: HTTP {status} at {url}, no sign-in form: {page[:300]!r}")
        for name, marker in (("app.css", "prefers-color-scheme"), ("app.js", "use strict")):
            status, _, body = get(f"/dashboard/static/{name}")
            if status != 200 or marker not in body:
                raise SmokeFailure(f"GET /dashboard/static/{name}: HTTP {status}: {body[:200]!r}")
        form = urllib.parse.urlencode({"token": ADMIN_TOKEN, "next": "/dashboard/videos"}).encode()
        status, url, page = get("/dashboard/sign-in", form)
        if status != 200 or not url.endswith("/dashboard/videos") or self.video_id not in page:
            raise SmokeFailure(f"dashboard sign-in: HTTP {status} at {url}: {page[:300]!r}")
        self.ok("GET /dashboard from the installed package: sign-in form, static files, the video listed")

    def cli_key(self, vidgate: Path, env: dict[str, str], cwd: Path, base: str) -> None:
        out = run([str(vidgate), "keys", "create", "--name", "smoke"], env=env, cwd=cwd, what="vidgate keys create")
        lines = out.strip().splitlines()
        if not lines:
            raise SmokeFailure("vidgate keys create printed nothing")
        key = lines[-1].strip()
        status, body = http("GET", f"{base}/v1/models", key=key)
        if status != 200 or not json.loads(body).get("data"):
            raise SmokeFailure(f"GET /v1/models with the new key: HTTP {status}: {body[:500]!r}")
        status, _ = http("GET", f"{base}/v1/models", key=key + "x")
        if status != 401:
            raise SmokeFailure(f"GET /v1/models with a wrong key: HTTP {status}, not 401")
        self.ok("vidgate keys create (while serving): its key works as a Bearer token")

    def stop(self) -> None:
        if self.server is None or self.server.poll() is not None:
            return
        self.server.terminate()
        try:
            self.server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()

    def main(self) -> None:
        vidgate = self.install()
        port = free_port()
        env = self.environment(port)
        cwd = self.work / "elsewhere"  # outside the checkout: no alembic.ini, no migrations/ beside it
        cwd.mkdir()
        out = run([str(vidgate), "migrate"], env=env, cwd=cwd, what="vidgate migrate")
        self.ok(f"vidgate migrate from {cwd}: {out.strip().splitlines()[-1] if out.strip() else ''}")
        base = self.serve(vidgate, env, cwd, port)
        self.video(base)
        self.dashboard(base)
        self.cli_key(vidgate, env, cwd, base)
        self.stop()
        if self.server is not None and self.server.returncode not in (0, -15):
            raise SmokeFailure(f"vidgate serve exited with {self.server.returncode} on SIGTERM")
        self.ok("vidgate serve stopped on SIGTERM")


def main() -> int:
    keep = "--keep" in sys.argv[1:]
    work = Path(tempfile.mkdtemp(prefix="vidgate-smoke-"))
    smoke = Smoke(work)
    started = time.monotonic()
    try:
        smoke.main()
    except SmokeFailure as exc:
        print(f"FAILED  {exc}", file=sys.stderr)
        if smoke.server_log.is_file():
            print("-- server log (last lines)", file=sys.stderr)
            print("\n".join(smoke.server_log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
        print(f"took {time.monotonic() - started:.1f}s")
        print(f"smoke_install: {len(smoke.passed)} passed, 1 failed")
        return 1
    finally:
        smoke.stop()
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"took {time.monotonic() - started:.1f}s")
    print(f"smoke_install: {len(smoke.passed)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
