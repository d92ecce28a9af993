"""Idempotency-Key with the real `openai` SDK against uvicorn, including a create whose answer is lost:
a proxy lets the request reach the gateway, then closes the connection instead of relaying the answer,
so the SDK retries the create exactly as it does after a timeout."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from app.main import create_app
from tests.conftest import LiveServer, free_port, make_settings

pytestmark = pytest.mark.engine  # these tests watch videos finish

ADMIN = "admin-idempotency-token"
ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}
FAST = {"sandbox_latency_ms": 0}


class DroppingProxy:
    """TCP proxy on a loopback port; the first `drop` answers are swallowed and their connection closed."""

    def __init__(self, upstream_port: int, *, drop: int) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.dropped = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def upstream() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        pump = asyncio.create_task(upstream())
        try:
            first = await up_reader.read(65536)  # the gateway has answered: the video is stored
            if first and self.dropped < self.drop:
                self.dropped += 1
                return  # the client never hears the answer
            while first:
                writer.write(first)
                await writer.drain()
                first = await up_reader.read(65536)
        except ConnectionError:
            pass
        finally:
            pump.cancel()
            writer.close()
            up_writer.close()

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(stop()))
        self._thread.join(10)


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, str, str]]:
    """A live gateway with prices and an admin token; a fresh API key (its id and secret)."""
    application = create_app(make_settings(database_url, tmp_path / "data", admin_token=ADMIN))
    with LiveServer(application) as server:
        application.state.gateway.registry.prices = {"sora-2": 1.0}
        r = httpx.post(f"{server.url}/admin/keys", headers=ADMIN_H, json={"name": "idem-sdk", "quota_credits": 100})
        assert r.status_code == 200, r.text
        yield server, r.json()["id"], r.json()["secret"]


def used_and_tasks(server: LiveServer, key_id: str) -> tuple[float, int]:
    key = httpx.get(f"{server.url}/admin/keys/{key_id}", headers=ADMIN_H).json()
    rows = httpx.get(f"{server.url}/admin/usage", headers=ADMIN_H, params={"key_id": key_id}).json()
    rows = rows.get("data", rows) if isinstance(rows, dict) else rows
    return float(key["used_credits"]), sum(int(r["tasks"]) for r in rows)


def create(client: OpenAI, **kw: Any) -> Any:
    return client.videos.create(prompt="charged once", seconds="4", size="64x64", extra_body={"metadata": FAST}, **kw)


def test_the_same_key_twice_is_the_same_video_charged_once(gateway) -> None:
    server, key_id, secret = gateway
    client = OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
    first = create(client, extra_headers={"Idempotency-Key": "k1"})
    again = create(client, extra_headers={"Idempotency-Key": "k1"})
    assert again.id == first.id
    assert used_and_tasks(server, key_id) == (4.0, 1)


def test_a_create_whose_answer_was_lost_is_retried_once(gateway) -> None:
    server, key_id, secret = gateway
    with DroppingProxy(server.port, drop=1) as proxy:
        client = OpenAI(base_url=f"{proxy.url}/v1", api_key=secret, max_retries=2)
        video = create(client, extra_headers={"Idempotency-Key": "lost-answer"})
        assert proxy.dropped == 1  # the first attempt reached the gateway; its answer never arrived
    assert video.status in ("queued", "in_progress", "completed")
    assert used_and_tasks(server, key_id) == (4.0, 1)


def test_the_sdks_own_retry_key_is_honoured_when_it_sends_one(gateway) -> None:
    """openai-python makes one `stainless-python-retry-<uuid>` key per call and reuses it on every retry,
    but sends it only when the client names a header (`_idempotency_header`, None in OpenAI): then it
    is this header, and a lost answer still makes one video."""
    server, key_id, secret = gateway
    with DroppingProxy(server.port, drop=1) as proxy:
        client = OpenAI(base_url=f"{proxy.url}/v1", api_key=secret, max_retries=2)
        assert client._idempotency_header is None  # what the SDK ships with: no automatic header
        client._idempotency_header = "Idempotency-Key"
        create(client)
        assert proxy.dropped == 1
    assert used_and_tasks(server, key_id) == (4.0, 1)


def test_without_a_key_a_lost_answer_makes_two_videos(gateway) -> None:
    """Why the header matters: the SDK's retry is a new request to the gateway."""
    server, key_id, secret = gateway
    with DroppingProxy(server.port, drop=1) as proxy:
        client = OpenAI(base_url=f"{proxy.url}/v1", api_key=secret, max_retries=2)
        create(client)
        assert proxy.dropped == 1
    assert used_and_tasks(server, key_id) == (8.0, 2)
