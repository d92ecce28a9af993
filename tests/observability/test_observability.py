"""Metrics, probes and logs, through the app as a client (and Prometheus) sees them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.observability import Metrics, install_observability
from app.observability.logs import configure_logging, log_context, redact
from tests.conftest import free_port, make_settings, new_key

pytestmark = pytest.mark.engine  # these tests watch videos finish

log = logging.getLogger("vidgate.test")


def sample(exposition: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def build(settings: Settings) -> FastAPI:
    app = create_app(settings)
    install_observability(app, settings)

    # routes only these tests use: a failure, a streamed body, and a handler that tries to log a secret
    @app.get("/_test/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/_test/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"x" * 10
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.get("/_test/log")
    async def leak(request: Request) -> dict[str, str]:
        log.info("incoming authorization %s", request.headers.get("authorization"))
        log.warning("raw key %r and webhook whsec_%s", request.headers["x-key"], "abcdefABCDEF0123456789")
        return {"ok": "yes"}

    return app


async def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def obs(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build(settings)
    async with app.router.lifespan_context(app), await _client(app) as c:
        yield app, c


@pytest.fixture
async def idle(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build(make_settings(database_url, tmp_path / "data", run_engine=False))
    async with app.router.lifespan_context(app), await _client(app) as c:
        yield app, c


@contextlib.asynccontextmanager
async def swapped_db(app: FastAPI, url: str) -> AsyncIterator[AsyncEngine]:
    """Point a running gateway at another database (start-up itself needs a working one)."""
    gw = app.state.gateway
    saved = gw.db, gw.sessionmaker
    gw.db = create_engine(url)
    gw.sessionmaker = create_sessionmaker(gw.db)
    try:
        yield gw.db
    finally:
        await gw.db.dispose()
        gw.db, gw.sessionmaker = saved


@pytest.fixture
def json_logs(settings: Settings) -> Iterator[io.StringIO]:
    buf = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(settings.model_copy(update={"log_json": True}), stream=buf)
    yield buf
    root.removeHandler(handler)
    root.setLevel(level)


async def wait_done(c: httpx.AsyncClient, auth: dict[str, str], video_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = (await c.get(f"/v1/videos/{video_id}", headers=auth)).json()
        if body["status"] in ("completed", "failed"):
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)


def assert_envelope(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code and err["message"]


class TestMetrics:
    async def test_requests_and_tasks_move(self, obs) -> None:
        app, c = obs
        auth = {"Authorization": f"Bearer {await new_key(app)}"}
        before = (await c.get("/metrics")).text
        r = await c.post(
            "/v1/videos",
            headers=auth,
            files={"prompt": (None, "a lighthouse"), "seconds": (None, "1"), "size": (None, "64x64")},
        )
        assert r.status_code == 200, r.text
        video_id = r.json()["id"]
        assert (await wait_done(c, auth, video_id))["status"] == "completed"

        r = await c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        after = r.text
        done = {"provider": "sandbox", "status": "completed"}
        assert sample(after, "vidgate_tasks", **done) == sample(before, "vidgate_tasks", **done) + 1
        post = {"method": "POST", "route": "/v1/videos", "status": "200"}
        assert sample(after, "vidgate_http_requests_total", **post) == 1
        get = {"method": "GET", "route": "/v1/videos/{video_id}", "status": "200"}
        assert sample(after, "vidgate_http_requests_total", **get) >= 1
        assert sample(after, "vidgate_http_request_duration_seconds_count", method="POST", route="/v1/videos") == 1
        assert video_id not in after  # ids never become labels

    async def test_unknown_routes_failures_and_streams(self, obs) -> None:
        _, c = obs
        assert (await c.get("/v1/no/such/thing/123")).status_code == 404
        assert (await c.get("/_test/boom")).status_code == 500
        r = await c.get("/_test/stream")
        assert r.status_code == 200 and r.content == b"x" * 30
        assert (await c.request("BREW", "/v1/models")).status_code == 405
        text_ = (await c.get("/metrics")).text
        assert sample(text_, "vidgate_http_requests_total", method="GET", route="unmatched", status="404") == 1
        assert sample(text_, "vidgate_http_requests_total", route="/_test/boom", status="500") == 1
        assert sample(text_, "vidgate_http_requests_total", route="/_test/stream", status="200") == 1
        assert sample(text_, "vidgate_http_requests_total", method="OTHER", route="/v1/models", status="405") == 1
        assert "/v1/no/such" not in text_

    async def test_engine_and_webhook_hooks(self, obs) -> None:
        app, c = obs
        m: Metrics = app.state.metrics
        m.task_transition("sandbox", "completed")
        m.poll_lag(0.3)
        m.poll_lag(-1)  # clock skew is clamped, not a negative bucket
        m.vendor_error("kling", "1303")
        m.webhook_delivery("delivered")
        text_ = (await c.get("/metrics")).text
        assert sample(text_, "vidgate_task_transitions_total", provider="sandbox", status="completed") == 1
        assert sample(text_, "vidgate_poll_lag_seconds_count") == 2
        assert sample(text_, "vidgate_poll_lag_seconds_bucket", le="0.5") == 2
        assert sample(text_, "vidgate_vendor_errors_total", provider="kling", code="1303") == 1
        assert sample(text_, "vidgate_webhook_deliveries_total", outcome="delivered") == 1

    def test_each_app_has_its_own_registry(self) -> None:
        a, b = Metrics(), Metrics()
        a.webhook_delivery("failed")
        assert a.registry.get_sample_value("vidgate_webhook_deliveries_total", {"outcome": "failed"}) == 1
        assert b.registry.get_sample_value("vidgate_webhook_deliveries_total", {"outcome": "failed"}) is None

    async def test_disabled_is_404(self, database_url: str, tmp_path: Path) -> None:
        settings = make_settings(database_url, tmp_path / "data", metrics_enabled=False, run_engine=False)
        app = build(settings)
        async with app.router.lifespan_context(app), await _client(app) as c:
            assert_envelope(await c.get("/metrics"), 404, "unknown_url")
            assert (await c.get("/healthz")).status_code == 200


class TestHealth:
    async def test_healthz_and_readyz_when_fine(self, obs) -> None:
        _, c = obs
        r = await c.get("/healthz")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        r = await c.get("/readyz")
        assert (r.status_code, r.json()) == (200, {"status": "ready", "database": "ok", "migrations": "head"})

    async def test_database_down_is_503(self, idle) -> None:
        app, c = idle
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"  # nobody listens there
        async with swapped_db(app, url):
            assert (await c.get("/healthz")).status_code == 200  # alive, just not ready
            assert_envelope(await c.get("/readyz"), 503, "database_unavailable")
            # the tasks gauge cannot be counted, but the scrape still answers
            r = await c.get("/metrics")
            assert r.status_code == 200 and "vidgate_http_requests_total" in r.text
        assert (await c.get("/readyz")).status_code == 200

    async def test_unmigrated_database_is_503(self, idle, tmp_path: Path) -> None:
        app, c = idle
        async with swapped_db(app, f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}") as db:
            assert_envelope(await c.get("/readyz"), 503, "migrations_pending")
            async with db.begin() as conn:
                await conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
                await conn.execute(text("INSERT INTO alembic_version VALUES ('0000_older')"))
            assert_envelope(await c.get("/readyz"), 503, "migrations_pending")


class TestLogs:
    async def test_json_lines_carry_request_id_and_no_secrets(self, obs, json_logs) -> None:
        app, c = obs
        key = await new_key(app)
        r = await c.get(
            "/_test/log", headers={"Authorization": f"Bearer {key}", "x-key": key, "x-request-id": "req_obs_1"}
        )
        assert r.status_code == 200
        r = await c.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        out = json_logs.getvalue()
        assert key not in out and "whsec_abc" not in out
        lines = [json.loads(line) for line in out.splitlines()]
        mine = [rec for rec in lines if rec.get("request_id") == "req_obs_1"]
        assert {rec["logger"] for rec in mine} == {"vidgate.test", "vidgate.access"}
        assert all({"ts", "level", "logger", "message"} <= set(rec) for rec in lines)
        leaked = next(rec for rec in mine if rec["message"].startswith("incoming"))
        assert leaked["message"] == "incoming authorization Bearer [redacted]"
        assert "[redacted]" in next(rec["message"] for rec in mine if rec["level"] == "WARNING")
        access = [rec for rec in lines if rec["logger"] == "vidgate.access"]
        models = next(rec for rec in access if rec["route"] == "/v1/models")
        assert (models["method"], models["status"]) == ("GET", 200)
        assert models["key_prefix"] == key[:12] and models["request_id"].startswith("req_")
        assert isinstance(models["duration_ms"], float)

    async def test_context_fields_and_exceptions(self, json_logs) -> None:
        with log_context(task_id="video_1", provider="kling"):
            try:
                raise ValueError("vendor said: Authorization: Token abcdefghijklmnop0123")
            except ValueError:
                log.exception("poll failed with key %s", "sk-proj-abcdefghijklmnop")
        log.info("outside")
        first, second = (json.loads(line) for line in json_logs.getvalue().splitlines())
        assert (first["task_id"], first["provider"], first["level"]) == ("video_1", "kling", "ERROR")
        assert first["message"] == "poll failed with key [redacted]"
        assert "ValueError" in first["exception"] and "abcdefghijklmnop0123" not in first["exception"]
        assert "task_id" not in second

    def test_every_handler_sees_redacted_records(self, json_logs, caplog) -> None:
        with caplog.at_level(logging.INFO, logger="vidgate.test"):
            log.info("client sent %s", "sk-vg-abcdefghijklmnop")
        assert "abcdefghijklmnop" not in caplog.text and "client sent [redacted]" in caplog.text

    def test_text_format(self, settings: Settings) -> None:
        buf = io.StringIO()
        root = logging.getLogger()
        handler = configure_logging(settings, stream=buf)
        try:
            with log_context(task_id="video_2"):
                log.warning("retrying with Bearer abcdefgh12345")
        finally:
            root.removeHandler(handler)
        line = buf.getvalue().strip()
        assert line.endswith("vidgate.test: retrying with Bearer [redacted] [task_id=video_2]"), line

    @pytest.mark.parametrize(
        ("raw", "clean"),
        [
            ("Authorization: Bearer eyJhbGciOi.J9.abc-_", "Authorization: Bearer [redacted]"),
            ("key sk-vg-AbC_dEf-0123456789xyz used", "key [redacted] used"),
            ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", "secret [redacted]"),
            ("Token vda_2aXbY9kLmNoPqRsT", "Token [redacted]"),
            ("GET /x?api_key=abc123&signature=deadbeef&n=1", "GET /x?api_key=[redacted]&signature=[redacted]&n=1"),
            ("{'x-api-key': 'abc'}", "{'x-api-key': '[redacted]'}"),
            ("task-123 finished; 5 tokens; invalid_api_key", "task-123 finished; 5 tokens; invalid_api_key"),
        ],
    )
    def test_redact(self, raw: str, clean: str) -> None:
        assert redact(raw) == clean

    def test_text_timestamps_read_as_loggings_own(self) -> None:
        """The text formatter formats the second once and reuses it: every line still carries its own time."""
        import time as _time

        from app.observability.logs import TextFormatter

        fmt, plain = TextFormatter(), logging.Formatter()
        base = float(int(_time.time()))
        for created in (base + 0.001, base + 0.999, base + 1.5, base + 1.5004, base + 61.25):
            record = logging.makeLogRecord({"name": "vidgate.t", "msg": "tick", "levelname": "INFO"})
            record.created, record.msecs = created, (created - int(created)) * 1000
            assert fmt.format(record).startswith(plain.formatTime(record) + " INFO vidgate.t: tick")
