# ruff: noqa: T201 - a benchmark reports on stdout
"""Shared plumbing for `bench/p*.py`: processes pinned to cores, the gateway under test, databases,
load generators (wrk, else `lib/loadgen.py`), machine facts and result tables.

Layout on a 2-core machine: every server under test (vidgate, the bare Starlette app, nginx) runs on
core SERVER_CORE; the load generator (and the fake vendor) on CLIENT_CORE, so the client never steals
the server's CPU. Without `taskset` or with one core, nothing is pinned and the scripts say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LIB = Path(__file__).resolve().parent
PY = sys.executable
PG_BASE_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# -- cores ---------------------------------------------------------------------------------------------


def _cores() -> tuple[int | None, int | None]:
    try:
        avail = sorted(os.sched_getaffinity(0))
    except AttributeError:
        avail = list(range(os.cpu_count() or 1))
    if len(avail) >= 2 and shutil.which("taskset"):
        return avail[0], avail[1]
    return None, None


SERVER_CORE, CLIENT_CORE = _cores()


def pinned(cmd: Sequence[str], core: int | None) -> list[str]:
    return ["taskset", "-c", str(core), *cmd] if core is not None else list(cmd)


def pinning_note() -> str:
    if SERVER_CORE is None:
        return "not pinned (needs `taskset` and 2 cores): server and client share the CPU"
    return f"server under test on core {SERVER_CORE}, load generator on core {CLIENT_CORE}"


# -- processes -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process with its output in a log file; stopped by its own pid only."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.p = subprocess.Popen(
            list(cmd), env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self._log.close()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_port(port: int, proc: Proc | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.p.returncode}) before listening:\n{proc.tail()}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s" + (f":\n{proc.tail()}" if proc else ""))


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A fresh temporary directory, removed afterwards (VIDGATE_BENCH_KEEP=1 keeps it for post-mortems)."""
    path = Path(tempfile.mkdtemp(prefix=f"vidgate-bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("VIDGATE_BENCH_KEEP"):
            print(f"(kept {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


# -- the gateway under test ----------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any VIDGATE_* of the caller's shell, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Gateway:
    proc: Proc
    port: int
    storage: Path
    db_url: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.stop()


def start_gateway(
    work: Path,
    db_url: str,
    *,
    name: str = "vidgate",
    core: int | None = SERVER_CORE,
    no_worker: bool = False,
    **settings: Any,
) -> Gateway:
    """`vidgate serve` (migrates, then uvicorn with its defaults: uvloop + httptools when installed) in a
    subprocess on a free port, with settings from the environment; cwd is `work`, so no `.env` is read."""
    storage = work / "data"
    port = free_port()
    env = clean_env(VIDGATE_STORAGE_DIR=str(storage), VIDGATE_DATABASE_URL=db_url)
    for key, value in settings.items():
        env[f"VIDGATE_{key.upper()}"] = str(value)
    cmd = [PY, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if no_worker:
        cmd.append("--no-worker")
    proc = Proc(name, pinned(cmd, core), log_dir=work, env=env, cwd=work)
    try:
        wait_port(port, proc, timeout=90)
    except BaseException:
        proc.stop()
        raise
    return Gateway(proc, port, storage, db_url)


def start_uvicorn_app(
    work: Path, target: str, *, name: str, core: int | None, factory: bool = False, env: dict[str, str] | None = None
) -> tuple[Proc, int]:
    """A bench helper app (`lib.bare:app`, `lib.fakevendor:create_app`) on uvicorn, configured as
    `vidgate serve` configures it: default loop and HTTP implementation, no access log."""
    port = free_port()
    cmd = [
        PY,
        "-m",
        "uvicorn",
        target,
        "--app-dir",
        str(ROOT / "bench"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if factory:
        cmd.insert(4, "--factory")
    proc = Proc(name, pinned(cmd, core), log_dir=work, env=clean_env(**(env or {})), cwd=work)
    try:
        wait_port(port, proc, timeout=60)
    except BaseException:
        proc.stop()
        raise
    return proc, port


def start_fake_vendor(work: Path, api_key: str, **env: str) -> tuple[Proc, int]:
    """`lib/fakevendor.py` on the client core (it answers the gateway, not the load generator), requiring
    `Authorization: Bearer <api_key>`; `env` sets its other FAKE_* knobs."""
    return start_uvicorn_app(
        work,
        "lib.fakevendor:create_app",
        name="fakevendor",
        core=CLIENT_CORE,
        factory=True,
        env={"FAKE_API_KEY": api_key, **env},
    )


# -- databases -----------------------------------------------------------------------------------------


def sqlite_url(work: Path) -> str:
    return f"sqlite+aiosqlite:///{(work / 'data' / 'vidgate.db').resolve()}"


def resolved(url: str) -> str:
    from app.config import Settings

    return Settings(database_url=url, _env_file=None).resolved_database_url  # type: ignore[call-arg]


def migrate(url: str) -> None:
    from alembic import command

    from app.config import Settings
    from app.migrations import alembic_config

    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(Settings(database_url=url, _env_file=None)), "head")  # type: ignore[call-arg]


async def with_session(url: str, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from app.db import create_engine, create_sessionmaker

    engine = create_engine(resolved(url))
    try:
        async with create_sessionmaker(engine)() as s:
            result = await fn(s)
            await s.commit()
            return result
    finally:
        await engine.dispose()


@dataclass
class Key:
    id: str
    owner: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def create_key(url: str, name: str = "bench") -> Key:
    from app.keys.service import create_key as mk

    async def run(s: Any) -> Key:
        key, secret = await mk(s, name=name)
        return Key(key.id, key.owner, secret)

    return asyncio.run(with_session(url, run))


def video_row(key: Key, **values: Any) -> dict[str, Any]:
    """A `videos` row as the service stores it (an unfinished create of sora-2), overridable per column."""
    from app.videos.models import VideoInputs

    t_ns = time.time_ns()
    row: dict[str, Any] = {
        "id": f"video_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}",
        "owner": key.owner,
        "api_key_id": key.id,
        "operation": "create",
        "model": "sora-2",
        "provider": "openai_compat",
        "vendor_model": "sora-2",
        "channel": None,
        "channel_fp": None,
        "status": "in_progress",
        "progress": 50,
        "prompt": "A calico cat playing a piano on stage",
        "width": 720,
        "height": 1280,
        "seconds": 4,
        "quality": "standard",
        "inputs": VideoInputs(),
        "created_ns": t_ns,
        "created_at": t_ns // 1_000_000_000,
        "updated_at": t_ns / 1e9,
        "vendor_task_id": None,
        "vendor_meta": {},
        "submitted_at": t_ns / 1e9,
        "next_poll_at": None,
        "claimed_until": None,
        "poll_count": 0,
        "poll_errors": 0,
        "reserved_credits": 0.0,
        "assets": {},
    }
    row.update(values)
    return row


def insert_videos(url: str, rows: list[dict[str, Any]], batch: int = 2000) -> None:
    from sqlalchemy import insert

    from app.videos.models import Video

    async def run(s: Any) -> None:
        for i in range(0, len(rows), batch):
            await s.execute(insert(Video), rows[i : i + batch])

    asyncio.run(with_session(url, run))


def query(url: str, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text

    async def run(s: Any) -> list[Any]:
        return list((await s.execute(text(sql), params)).all())

    return asyncio.run(with_session(url, run))


def pg_base_url() -> str:
    return os.environ.get("VIDGATE_BENCH_PG_URL") or os.environ.get("VIDGATE_TEST_DATABASE_URL") or PG_BASE_DEFAULT


def _plain(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", url)


def pg_problem(base: str | None = None) -> str | None:
    """None when PostgreSQL answers at `base`, else why not."""
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed"

    async def probe() -> None:
        conn = await asyncpg.connect(_plain(base or pg_base_url()), timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def pg_database(base: str | None = None) -> Iterator[str]:
    """A fresh database beside `base` (as the test suite does), migrated; dropped afterwards."""
    import asyncpg

    base = _plain(base or pg_base_url())
    name = f"vidgate_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(base, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    from sqlalchemy.engine import make_url

    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- load generation -----------------------------------------------------------------------------------


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


WRK_MISSING = "wrk not found: `apt-get install -y wrk` for the reference figures; falling back to lib/loadgen.py"

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk duration {text!r}")
    return float(m[1]) * _UNIT[m[2]]


@dataclass
class LoadResult:
    rps: float
    requests: int
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    bad: int = 0  # non-2xx responses and socket errors
    tool: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
    core: int | None = CLIENT_CORE,
    work: Path,
    script: Path | None = None,
) -> LoadResult:
    """Peak (closed-loop) throughput with wrk, one thread on the client core (`script`: a wrk Lua script
    of the caller's, e.g. one that makes each request's path)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script is not None:
        cmd += ["-s", str(script)]
    elif method != "GET" or body is not None:
        script = work / f"wrk-{uuid.uuid4().hex[:6]}.lua"
        script.write_text(f"wrk.method = {json.dumps(method)}\nwrk.body = {json.dumps(body or '')}\n")
        cmd += ["-s", str(script)]
    cmd.append(url)
    out = subprocess.run(pinned(cmd, core), capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.M))
    mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    bad = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        bad += sum(int(x) for x in m.groups())
    return LoadResult(
        rps=rps,
        requests=requests,
        p50_ms=_ms(lat["50"]) if "50" in lat else None,
        p90_ms=_ms(lat["90"]) if "90" in lat else None,
        p99_ms=_ms(lat["99"]) if "99" in lat else None,
        max_ms=_ms(mx[1]) if mx else None,
        bad=bad,
        tool="wrk",
        raw={"output": out},
    )


def loadgen(
    url: str,
    *,
    seconds: float,
    connections: int,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
    rate: float | None = None,
    warmup: float = 0.0,
    core: int | None = CLIENT_CORE,
) -> LoadResult:
    """`lib/loadgen.py` on the client core: closed loop (peak), or open loop at `rate` requests/s, where
    latency counts from each request's scheduled start (no coordinated omission)."""
    cmd = [
        PY,
        str(LIB / "loadgen.py"),
        "--url",
        url,
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
        "--method",
        method,
        "--warmup",
        str(warmup),
    ]
    for k, v in (headers or {}).items():
        cmd += ["--header", f"{k}: {v}"]
    if body is not None:
        cmd += ["--body", body]
    if rate is not None:
        cmd += ["--rate", str(rate)]
    proc = subprocess.run(pinned(cmd, core), capture_output=True, text=True, timeout=seconds + warmup + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return LoadResult(
        rps=data["rps"],
        requests=data["requests"],
        p50_ms=data["p50_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"],
        max_ms=data["max_ms"],
        bad=data["errors"] + data["non2xx"],
        tool="loadgen-open" if rate else "loadgen",
        raw=data,
    )


def peak(url: str, *, seconds: float, connections: int, work: Path, **kw: Any) -> LoadResult:
    if have_wrk():
        return wrk(url, seconds=seconds, connections=connections, work=work, **kw)
    return loadgen(url, seconds=seconds, connections=connections, **kw)


# -- sampling a process --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (from /proc: no psutil needed)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class OtherLoad:
    """How much CPU processes other than this script and its children used meanwhile (in cores): other
    engineers' test runs share this machine, and a figure measured beside them is noisier."""

    def __enter__(self) -> OtherLoad:
        self.cores: float | None = None
        try:
            import psutil  # noqa: F401
        except ImportError:
            self._t = None
            return self
        self._t, self._busy, self._ours = time.monotonic(), self._system(), self._mine()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.measure()

    def measure(self) -> float | None:
        if self._t is None:
            return None
        wall = time.monotonic() - self._t
        if wall > 0:
            self.cores = max(0.0, ((self._system() - self._busy) - (self._mine() - self._ours)) / wall)
        return self.cores

    @staticmethod
    def _system() -> float:
        import psutil

        t = psutil.cpu_times()
        return float(t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0))

    @staticmethod
    def _mine() -> float:
        import psutil

        me = psutil.Process()
        t = me.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                ct = child.cpu_times()
                total += ct.user + ct.system
        return float(total)

    def note(self) -> str:
        if self.cores is None:
            return "other load on this machine: unknown (`pip install psutil` to measure it)"
        busy = " (the figures are noisier than on an idle machine)" if self.cores > 0.2 else ""
        return f"other processes on this machine used {self.cores:.2f} cores meanwhile{busy}"


def maybe_profile(pid: int, name: str, seconds: float) -> subprocess.Popen[bytes] | None:
    """With VIDGATE_BENCH_PROFILE_DIR set (and py-spy installed), record `seconds` of the process with
    py-spy on the client core into <dir>/<name>.txt (collapsed stacks: speedscope, flamegraph.pl)."""
    out_dir = os.environ.get("VIDGATE_BENCH_PROFILE_DIR")
    spy = shutil.which("py-spy") or (str(Path(PY).parent / "py-spy") if (Path(PY).parent / "py-spy").exists() else None)
    if not out_dir or spy is None:
        return None
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    out = Path(out_dir) / f"{name}.txt"
    cmd = [
        spy,
        "record",
        "-p",
        str(pid),
        "-d",
        str(max(1, round(seconds))),
        "-r",
        "100",
        "-f",
        "raw",
        "-o",
        str(out),
        "--nonblocking",
        # only the thread holding the GIL: where the event loop's CPU goes (threads waiting in C look busy)
        *(["--gil"] if os.environ.get("VIDGATE_BENCH_PROFILE_GIL") else []),
    ]
    progress(f"py-spy -> {out}")
    return subprocess.Popen(pinned(cmd, CLIENT_CORE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- reporting -----------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def banner(title: str, what: str) -> None:
    m = machine()
    print(f"\n### {title}")
    print(what)
    print(f"machine: {m['nproc']} x {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, {m['date']}")
    print(f"pinning: {pinning_note()}")
    sys.stdout.flush()


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (readable in a terminal too)."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def progress(msg: str) -> None:
    print(f"  .. {msg}", flush=True)


if __name__ == "__main__":
    print("helper module for bench/p*.py; nothing to run here")


# -- the record of a run (bench/report.py renders README's figures table from it) ----------------------

RESULTS_DIR = Path(os.environ.get("VIDGATE_BENCH_RESULTS", str(ROOT / "bench" / "results")))


def versions() -> dict[str, str]:
    """The versions a figure depends on: the server stack and the reference servers."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for dist in ("uvicorn", "starlette", "fastapi", "sqlalchemy", "aiosqlite", "asyncpg", "uvloop", "httptools"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    for tool, args in (("wrk", ["wrk", "-v"]), ("nginx", ["nginx", "-v"]), ("postgres", ["psql", "--version"])):
        if shutil.which(args[0]):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                p = subprocess.run(args, capture_output=True, text=True, timeout=10)
                m = re.search(r"\d+\.\d+(\.\d+)?", p.stdout + p.stderr)
                if m:
                    out[tool] = m[0]
    return out


def record(name: str, rows: list[dict[str, str]], *, note: str = "", other_load: float | None = None) -> Path:
    """Write a script's headline figures to RESULTS_DIR/<name>.json: each row `figure`, `measured`,
    `target`, `verdict`. `bench/report.py` turns the files of one run into README's figures table."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    data = {
        "script": name,
        "machine": machine(),
        "versions": versions(),
        "other_load_cores": other_load,
        "note": note,
        "rows": rows,
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    progress(f"figures -> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path
