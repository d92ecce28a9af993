"""SSRF beyond the plain cases in test_isolation: DNS rebinding between the check and the connection,
IPv6 forms that carry an internal IPv4 address, and URLs the URL parser refuses."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.reliability.test_isolation import ImageHost
from tests.support.network import PUBLIC_IP, Network
from tests.videos.test_http import assert_error

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
