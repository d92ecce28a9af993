"""Rigs for the reliability tests: the gateway as a real child process, ASGI wrappers around the fake
vendors (counting, delaying, injecting faults), and poll-until helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from app.db import create_engine, create_sessionmaker
from app.videos.models import Video
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


async def until(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], *, timeout: float, every: float = 0.05, what: str = ""
) -> None:
    """Poll `check` until it holds; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        await asyncio.sleep(every)


async def all_rows(database_url: str) -> list[Video]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            return list((await s.scalars(select(Video))).all())
    finally:
        await engine.dispose()


async def make_key(database_url: str, *, name: str = "reliability") -> str:
    from app.keys.service import create_key

    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            _, secret = await create_key(s, name=name)
            await s.commit()
    finally:
        await engine.dispose()
    return secret


# ---------------------------------------------------------------------------------------------
# The gateway as a process


def gateway_env(database_url: str, storage: Path, **settings: Any) -> dict[str, str]:
    """The environment of a `vidgate serve` child: ours only (no VIDGATE_* of the caller, no proxies)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VIDGATE_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    values: dict[str, Any] = {
        "database_url": database_url,
        "storage_dir": storage,
        "environment": "test",
        "log_level": "INFO",
        **settings,
    }
    env.update({f"VIDGATE_{k.upper()}": str(v) for k, v in values.items()})
    return env


@dataclass
class GatewayProcess:
    """`python -m app.cli serve` as a child process; its output goes to a log file beside the test."""

    env: dict[str, str]
    workdir: Path
    name: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def spawn(self) -> None:
        with self.log_path.open("wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,  # no stray .env file is read
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def start(self, timeout: float = 60) -> None:
        self.spawn()

        async def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                async with httpx.AsyncClient(timeout=2) as c:
                    return (await c.get(f"{self.url}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await until(up, timeout=timeout, every=0.1, what=f"{self.name} to serve")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or the OOM killer."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def logs_on_failure(*procs: GatewayProcess) -> Iterator[None]:
    """Print the tail of each child's log when the block fails (pytest shows it with the failure)."""
    try:
        yield
    except BaseException:
        for proc in procs:
            print(f"==== {proc.name}.log\n{proc.log_text()[-8000:]}")
        raise


# ---------------------------------------------------------------------------------------------
# ASGI wrappers around fake vendors


async def _read_body(receive: Any) -> tuple[bytes, bool]:
    """The whole request body, and whether the client went away before sending it all."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks), False


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more; a real server would report a disconnect here
        raise AssertionError("unreachable")

    return receive


class SlowCreates:
    """Around the fake Kling: counts each create by its `external_task_id` (vidgate's own id, the
    idempotency handle) and holds it (and each poll) for a random moment, so a kill catches some creates mid-flight.

    A held create carries on after the gateway died, as a real vendor that already read the request
    would: the task then exists at the vendor although the gateway never heard its id."""

    def __init__(self, app: Any, *, delay: tuple[float, float], seed: int = 7) -> None:
        self.app = app
        self.delay = delay
        self.rng = random.Random(seed)
        self.creates: Counter[str] = Counter()
        self.holding = 0  # creates held right now
        self.polls = 0
        self.polling = 0  # polls under way right now
        self.downloads = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path.startswith("/v1/videos/"):
            body, gone = await _read_body(receive)
            if gone:
                return  # the request never fully arrived: nothing was created
            self.creates[json.loads(body).get("external_task_id")] += 1
            self.holding += 1
            try:
                await asyncio.sleep(self.rng.uniform(*self.delay))
            finally:
                self.holding -= 1
            await self.app(scope, _replay(body), send)
            return
        if method == "GET" and path.startswith("/v1/videos/"):
            self.polls += 1
            self.polling += 1
            try:
                await asyncio.sleep(self.rng.uniform(0, self.delay[1] / 4))
                await self.app(scope, receive, send)
            finally:
                self.polling -= 1
            return
        if path.startswith("/bs2/"):
            self.downloads += 1
        await self.app(scope, receive, send)


FAULTS = ("500", "502", "timeout", "garbage", "bad_json", "429", "error_200")
_PROMPT = re.compile(rb'name="prompt"\r\n(?:[^\r\n]+\r\n)*\r\n(.*?)\r\n--', re.S)


@dataclass
class Seen:
    channel: str
    kind: str  # create | poll | content
    key: str  # the prompt (create) or the upstream video id
    fault: str | None


class FaultInjector:
    """Around a fake OpenAI-format upstream: answers `rate` of the requests with a fault instead of passing
    them on (so a faulted create never reaches the vendor), never more than `max_streak` in a row for one
    thing — a create (by prompt), a task's polls, a task's downloads — since the gateway may legitimately
    give up after a longer run.

    Prompts starting with `fail` make the upstream fail that task (moderation), as the expected outcome."""

    def __init__(
        self,
        app: Any,
        state: Any,
        *,
        channel: str,
        log: list[Seen],
        rate: float,
        hang_s: float,
        seed: int,
        max_streak: int = 2,
    ) -> None:
        self.app, self.state, self.channel, self.log = app, state, channel, log
        self.rate, self.hang_s, self.max_streak = rate, hang_s, max_streak
        self.rng = random.Random(seed)
        self.streak: Counter[str] = Counter()

    def _pick(self, key: str) -> str | None:
        if self.streak[key] >= self.max_streak or self.rng.random() >= self.rate:
            self.streak[key] = 0
            return None
        self.streak[key] += 1
        return self.rng.choice(FAULTS)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/v1/videos":
            body, gone = await _read_body(receive)
            if gone:
                return
            m = _PROMPT.search(body)
            key, kind, receive = (m.group(1).decode() if m else "?"), "create", _replay(body)
        else:
            parts = path.split("/")  # /v1/videos/{id}[/content]
            key = parts[3] if len(parts) > 3 else path
            kind = "content" if path.endswith("/content") else "poll"
            task = self.state.tasks.get(key)
            if task is not None and task["prompt"].startswith("fail"):
                task["outcome"] = "failed"
        fault = self._pick(key if kind == "poll" else f"{kind}:{key}")
        self.log.append(Seen(self.channel, kind, key, fault))
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)  # the gateway gives up first (vendor_timeout_s)
        status, ctype, payload = _FAULT_RESPONSES[fault if fault != "timeout" else "500"]
        headers = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode())]
        if fault == "429":
            headers += [(b"retry-after-ms", b"100"), (b"retry-after", b"1")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _err(message: str, type_: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


_FAULT_RESPONSES: dict[str, tuple[int, bytes, bytes]] = {
    "500": (500, b"application/json", _err("The server had an error.", "server_error", None)),
    "502": (502, b"text/html", b"<html><h1>502 Bad Gateway</h1></html>"),
    "garbage": (200, b"text/html", b"<html>upstream maintenance</html>"),
    "bad_json": (200, b"application/json", b'{"id": "video_1", "status": "compl'),
    "429": (429, b"application/json", _err("Rate limit reached.", "requests", "rate_limit_exceeded")),
    "error_200": (200, b"application/json", _err("Internal error, retry.", "server_error", "internal_error")),
}
