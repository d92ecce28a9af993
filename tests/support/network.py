"""A fake DNS and a fake internet for tests of outbound fetches (socket.getaddrinfo and anyio's dialer)."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

PUBLIC_IP = "93.184.216.34"  # what the test's DNS answers for public.example at check time


class Network:
    """Fake DNS and a fake internet: `dns` answers per call, `routes` sends a public IP to a local port."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, dns: dict[str, list[str]], routes: dict[str, int]) -> None:
        self.dns, self.routes = dns, routes
        self.lookups: list[str] = []
        self.dialed: list[str] = []
        real_resolve, real_connect = socket.getaddrinfo, anyio.connect_tcp

        def resolve(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
            host = host.decode() if isinstance(host, bytes) else host  # anyio asks with IDNA bytes
            if host in self.dns:
                self.lookups.append(host)
                answers = self.dns[host]
                ip = answers.pop(0) if len(answers) > 1 else answers[0]
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 80))]
            return real_resolve(host, port, *args, **kw)

        async def connect(remote_host: Any, remote_port: int, **kw: Any) -> Any:
            self.dialed.append(str(remote_host))
            if str(remote_host) in self.routes:
                return await real_connect("127.0.0.1", self.routes[str(remote_host)], **kw)
            if str(remote_host) == PUBLIC_IP:
                raise OSError(101, "Network is unreachable")  # the real internet is not part of the test
            return await real_connect(remote_host, remote_port, **kw)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        monkeypatch.setattr(anyio, "connect_tcp", connect)
