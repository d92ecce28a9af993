"""A webhook receiver for tests: a Starlette app served on a loopback port (tests.conftest.LiveServer).

Every POST to `/{name}` is recorded; per name it can answer a script of status codes (then 200), or hang.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import LiveServer


@dataclass
class Received:
    name: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    hang: dict[str, float] = field(default_factory=dict)
    closed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.server = LiveServer(Starlette(routes=[Route("/{name}", self._handle, methods=["POST"])]))

    def url(self, name: str) -> str:
        return f"{self.server.url}/{name}"

    def got(self, name: str) -> list[Received]:
        return [r for r in list(self.requests) if r.name == name]

    async def _handle(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        self.requests.append(Received(name, dict(request.headers), body, time.monotonic()))
        if name in self.hang:
            # hang until the delay is over or the receiver closes, so shutdown does not wait it out
            await asyncio.to_thread(self.closed.wait, self.hang[name])
        codes = self.script.get(name)
        return Response(status_code=codes.pop(0) if codes else 200)

    def __enter__(self) -> Receiver:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closed.set()
        self.server.__exit__(*exc)
