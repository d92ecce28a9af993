"""SSRF beyond the plain cases in test_isolation: DNS rebinding between the check and the connection,
IPv6 forms that carry an internal IPv4 address, and URLs the URL parser refuses."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.test_isolation import ImageHost
from tests.support.api import assert_error
from tests.support.network import PUBLIC_IP, Network

BODY = {"prompt": "x", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}


async def test_dns_rebinding_cannot_reach_a_local_server(client, auth, monkeypatch) -> None:
    host = ImageHost()
    with host.server:
        # public at check time, loopback for any later lookup (a rebinding DNS server with TTL 0)
        net = Network(monkeypatch, {"public.example": [PUBLIC_IP, "127.0.0.1"]}, routes={})
        url = f"http://public.example:{host.port}/img.png"
        r = await client.post("/v1/videos", headers=auth, json={**BODY, "input_reference": {"image_url": url}})
        assert_error(r, 400, param="input_reference.image_url", code="image_fetch_failed")
    assert host.hits == []
    assert net.lookups == ["public.example"]  # resolved once ...
    assert net.dialed == [PUBLIC_IP]  # ... and the checked address is the one dialled


async def test_a_pinned_fetch_keeps_the_host_name_in_the_request(client, auth, monkeypatch) -> None:
    host = ImageHost()
    with host.server:
        net = Network(monkeypatch, {"public.example": [PUBLIC_IP]}, routes={PUBLIC_IP: host.port})
        url = f"http://public.example:{host.port}/img.png"
        r = await client.post("/v1/videos", headers=auth, json={**BODY, "input_reference": {"image_url": url}})
        assert r.status_code == 200, r.text
    assert host.hits == ["/img.png"]
    assert host.host_headers == [f"public.example:{host.port}"]
    assert net.dialed == [PUBLIC_IP]


# IPv6 forms of internal IPv4 addresses: each is_global in Python's eyes, each reaches the IPv4 address
# through a translator or a tunnel
EMBEDDED_INTERNAL = [
    "64:ff9b::7f00:1",  # NAT64 well-known prefix, 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64, 169.254.169.254 (cloud metadata)
    "64:ff9b::a00:1",  # NAT64, 10.0.0.1
    "64:ff9b:1::7f00:1",  # NAT64 local-use prefix
    "64:ff9b:1::808:808",  # local-use prefix: refused whatever it carries
    "2002:7f00:1::",  # 6to4, 127.0.0.1
    "2002:c0a8:101::1",  # 6to4, 192.168.1.1
    "::7f00:1",  # IPv4-compatible, 127.0.0.1
    "::a9fe:a9fe",  # IPv4-compatible, 169.254.169.254
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
    "2001:0:7f00:1::8000:ffff",  # Teredo, server 127.0.0.1
    "2001:0:808:808::f5ff:fffe",  # Teredo, client 10.0.0.1
]
EMBEDDED_PUBLIC = ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize("ip", EMBEDDED_INTERNAL)
def test_ipv6_forms_of_internal_ipv4_addresses_are_not_public(ip: str) -> None:
    from app.netguard import is_public

    assert not is_public(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", EMBEDDED_PUBLIC)
def test_ipv6_forms_of_public_ipv4_addresses_stay_public(ip: str) -> None:
    from app.netguard import is_public

    assert is_public(ipaddress.ip_address(ip))


async def test_ipv6_forms_of_internal_addresses_are_refused_over_http(client, auth) -> None:
    for ip in EMBEDDED_INTERNAL:
        url = f"http://[{ip}]/img.png"
        r = await client.post("/v1/videos", headers=auth, json={**BODY, "input_reference": {"image_url": url}})
        assert_error(r, 400, param="input_reference.image_url", code="image_url_not_allowed")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://0177.0.0.1/x.png", {"input_reference": {"image_url": "{url}"}}),  # octal: the OS reads 127.0.0.1
        ("http://0177.0.0.1/x.png", {"input_reference": "{url}"}),
        ("http://256.1.1.1/x.png", {"input_reference": {"image_url": "{url}"}}),
        ("http://[::1/x.png", {"input_reference": {"image_url": "{url}"}}),
        ("http://[::1/x.png", {"metadata": {"img_url": "{url}"}}),
    ],
)
async def test_unparseable_image_urls_are_a_400_naming_the_parameter(client, auth, url, field) -> None:
    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return url if value == "{url}" else value

    body = {**BODY, **fill(field)}
    if "metadata" in field:
        body["metadata"] = {**BODY["metadata"], **body["metadata"]}
    param = {"input_reference": "input_reference", "metadata": "metadata.img_url"}[next(iter(field))]
    if isinstance(field.get("input_reference"), dict):
        param = "input_reference.image_url"
    r = await client.post("/v1/videos", headers=auth, json=body)
    assert_error(r, 400, param=param, code="invalid_url")


@pytest.mark.parametrize("host", ["127.1", "0x7f000001", "0177.1", "2130706433"])
async def test_legacy_numeric_hosts_are_judged_by_what_they_resolve_to(client, auth, host) -> None:
    url = f"http://{host}/img.png"
    r = await client.post("/v1/videos", headers=auth, json={**BODY, "input_reference": {"image_url": url}})
    assert_error(r, 400, param="input_reference.image_url", code="image_url_not_allowed")


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.mark.parametrize("cert_name", ["public.example", "other.example"])
async def test_tls_to_the_pinned_address_verifies_the_url_name(tmp_path, monkeypatch, cert_name) -> None:
    """The connection goes to the checked IP; SNI and certificate verification still use the URL's name."""
    import ssl
    import threading
    import time

    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from app.netguard import PublicOnlyTransport
    from tests.conftest import free_port

    cert, key = _self_signed(tmp_path, cert_name)
    sni: list[Any] = []

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.headers["host"])

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/", hello)]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        Network(monkeypatch, {"public.example": [PUBLIC_IP]}, routes={PUBLIC_IP: port})
        ctx = ssl.create_default_context(cafile=str(cert))
        real_wrap = ctx.wrap_bio

        def wrap_bio(*args: Any, server_hostname: str | None = None, **kw: Any) -> Any:
            sni.append(server_hostname.decode() if isinstance(server_hostname, bytes) else server_hostname)
            return real_wrap(*args, server_hostname=server_hostname, **kw)

        ctx.wrap_bio = wrap_bio  # type: ignore[method-assign]
        async with httpx.AsyncClient(transport=PublicOnlyTransport(verify=ctx)) as c:
            if cert_name == "public.example":
                r = await c.get(f"https://public.example:{port}/")
                assert r.status_code == 200 and r.text == f"public.example:{port}"
            else:  # the certificate is for another name: refused although the address is the right one
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|hostname"):
                    await c.get(f"https://public.example:{port}/")
        assert sni == ["public.example"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
