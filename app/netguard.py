"""Outbound connections to client-supplied URLs (SSRF guard).

A host name is resolved once, every address it resolves to is checked, and the connection is made to
a checked address — never to a second resolution that DNS rebinding could point elsewhere. The guard
sits in the connection pool's network backend, so it runs for every new connection (every redirect
hop that needs one), while the Host header and TLS (SNI, certificate verification) keep the name from
the URL. Only connections are guarded: the client must not use a proxy (`trust_env=False`), or the
proxy's address would be the one checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use: site-internal by definition
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 IPv4-translated (SIIT)
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible ::a.b.c.d


class Refused(Exception):
    """The URL's host is, or resolves to, an address the gateway will not connect to."""


def embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and that a translator or tunnel would reach)."""
    low32 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.ipv4_mapped is not None:
        return [addr.ipv4_mapped]
    if addr in _NAT64 or addr in _NAT64_LOCAL or addr in _TRANSLATED:
        return [low32]
    if addr.sixtofour is not None:
        return [addr.sixtofour]
    if addr.teredo is not None:
        return list(addr.teredo)  # (server, client)
    if addr in _COMPATIBLE and int(addr) > 1:  # not :: and ::1, which are judged as IPv6
        return [low32]
    return []


def is_public(addr: IPAddress) -> bool:
    """A global unicast address, also when it is an IPv6 form of an IPv4 address (NAT64, 6to4, ...)."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = embedded_ipv4(addr)
        if addr in _NAT64_LOCAL or not all(is_public(v4) for v4 in inner):
            return False
        if addr.ipv4_mapped is not None:
            return True  # the OS connects to the IPv4 address itself, checked above
    return addr.is_global and not addr.is_multicast


async def resolve_public(host: str, port: int) -> list[str]:
    """Resolve `host` once; every address must be public (one internal answer refuses them all)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Refused("its host name does not resolve") from None
    addresses: list[str] = []
    for info in infos:
        ip = str(info[4][0]).split("%", 1)[0]  # an IPv6 scope id is not part of the address
        if not is_public(ipaddress.ip_address(ip)):
            raise Refused("it points at a private or internal address")
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise Refused("its host name does not resolve")
    return addresses


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Connects to the checked addresses of a host, one after the other until one answers."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for ip in await resolve_public(host, port):
            try:
                return await self._inner.connect_tcp(
                    ip, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise Refused("unix sockets are not reachable")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PublicOnlyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the guarded backend in its pool (and never a proxy from the environment)."""

    def __init__(
        self, *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits = httpx.Limits(max_connections=100)
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        # httpx has no public hook for a network backend: the pool it built is replaced by the same pool
        # with the guarded backend (the rebinding test in tests/reliability/test_ssrf.py fails if unused)
        assert isinstance(self._pool, httpcore.AsyncConnectionPool)
        ssl_context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PublicOnlyBackend(),
        )


def public_only_client(*, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """The client for URLs a client of the gateway chose (reference images)."""
    return httpx.AsyncClient(transport=PublicOnlyTransport(), timeout=timeout, trust_env=False)
