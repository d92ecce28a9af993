"""Signed asset links (`url` on a completed Video): built only from configured hosts, valid for
VIDGATE_URL_TTL_SECONDS from each retrieve (never past the asset's expiry), dead once the key that made
the video is revoked or disabled, and a malformed signature is just a wrong one."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from app.keys.models import ApiKey
from app.keys.service import create_key
from app.videos.models import Video
from tests.conftest import make_settings
from tests.support.api import assert_error, finish

pytestmark = pytest.mark.engine  # these tests watch videos finish

TTL = 120
ADMIN = "admin-test-token-0123456789"
BODY = {"prompt": "x", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path / "data", url_ttl_seconds=TTL, admin_token=ADMIN)


async def _key(app: Any) -> tuple[ApiKey, dict[str, str]]:
    async with app.state.gateway.sessionmaker() as s:
        key, secret = await create_key(s, name="links")
        await s.commit()
    return key, {"Authorization": f"Bearer {secret}"}


async def _completed(client: httpx.AsyncClient, auth: dict[str, str], **headers: str) -> dict[str, Any]:
    r = await client.post("/v1/videos", headers={**auth, **headers}, json=BODY)
    assert r.status_code == 200, r.text
    video = await finish(client, auth, r.json()["id"])
    assert video["status"] == "completed", video
    return video


def _expires(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["expires"][0])


async def _set_key(app: Any, key_id: str, **values: Any) -> None:
    async with app.state.gateway.sessionmaker() as s:
        await s.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
        await s.commit()


# -- item: the Host header does not choose where links point


async def test_a_forged_host_header_does_not_reach_the_links(app, client) -> None:
    _, auth = await _key(app)
    evil = {"Host": "evil.example"}
    video = await _completed(client, auth, **evil)
    for url in (
        (await client.get(f"/v1/videos/{video['id']}", headers={**auth, **evil})).json()["url"],
        (await client.get("/v1/videos", headers={**auth, **evil})).json()["data"][0]["url"],
        (await client.get(f"/admin/tasks/{video['id']}", headers={"Authorization": f"Bearer {ADMIN}", **evil})).json()[
            "url"
        ],
    ):
        assert url and "evil.example" not in url, url
        assert (await client.get(url)).status_code == 200  # still a working link to this server


def test_a_live_server_links_to_its_own_address_for_a_forged_host(live) -> None:
    server, secret = live
    headers = {"Authorization": f"Bearer {secret}", "Host": "evil.example"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as c:
        video = c.post("/v1/videos", json=BODY).json()
        deadline = time.time() + 30
        while video["status"] not in ("completed", "failed") and time.time() < deadline:
            time.sleep(0.05)
            video = c.get(f"/v1/videos/{video['id']}").json()
    assert video["status"] == "completed", video
    assert video["url"].startswith(f"{server.url}/files/videos/"), video["url"]
    assert httpx.get(video["url"], timeout=10).status_code == 200


async def test_configured_hosts_appear_in_links_whatever_their_port(app, client) -> None:
    _, auth = await _key(app)
    video = await _completed(client, auth)
    for host in ("localhost:9999", "LOCALHOST", "127.0.0.1:8000", "[::1]:8000"):
        url = (await client.get(f"/v1/videos/{video['id']}", headers={**auth, "Host": host})).json()["url"]
        assert url.startswith(f"http://{host}/files/videos/"), (host, url)


async def test_the_public_base_url_wins_over_any_host(app, client) -> None:
    app.state.gateway.settings.public_base_url = "https://media.example.com/"
    _, auth = await _key(app)
    video = await _completed(client, auth)
    for host in ("localhost:9999", "evil.example"):
        url = (await client.get(f"/v1/videos/{video['id']}", headers={**auth, "Host": host})).json()["url"]
        assert url.startswith("https://media.example.com/files/videos/"), url


def test_allowed_hosts_default_to_loopback_names() -> None:
    from app.config import Settings

    assert Settings(_env_file=None).allowed_host_list == ["localhost", "127.0.0.1", "[::1]"]  # type: ignore[call-arg]
    s = Settings(_env_file=None, allowed_hosts=" Vidgate.Example.com , 10.0.0.5:8000")  # type: ignore[call-arg]
    assert s.allowed_host_list == ["vidgate.example.com", "10.0.0.5"]


# -- item: link lifetime and revoked keys


async def test_a_link_lives_for_the_url_ttl_from_each_retrieve(app, client) -> None:
    _, auth = await _key(app)
    video = await _completed(client, auth)
    assert video["expires_at"] > time.time() + 3600  # the asset itself stays for the retention (24 h)
    got = (await client.get(f"/v1/videos/{video['id']}", headers=auth)).json()["url"]
    listed = (await client.get("/v1/videos", headers=auth)).json()["data"][0]["url"]
    for url in (got, listed):
        assert abs(_expires(url) - (time.time() + TTL)) <= 5, url


async def test_a_link_never_outlives_the_asset(app, client) -> None:
    _, auth = await _key(app)
    video = await _completed(client, auth)
    soon = int(time.time()) + 30
    async with app.state.gateway.sessionmaker() as s:
        await s.execute(update(Video).where(Video.id == video["id"]).values(expires_at=soon))
        await s.commit()
    url = (await client.get(f"/v1/videos/{video['id']}", headers=auth)).json()["url"]
    assert _expires(url) == soon


async def test_an_expired_link_is_refused(app, client) -> None:
    _, auth = await _key(app)
    video = await _completed(client, auth)
    gw = app.state.gateway
    past = int(time.time()) - 1
    sig = gw.signer.signature("video", video["id"], "video", past)
    r = await client.get(f"/files/videos/{video['id']}/video", params={"expires": past, "signature": sig})
    assert_error(r, 403, code="link_expired")


@pytest.mark.parametrize("change", [{"revoked_at": time.time()}, {"enabled": False}, {"expires_at": 1.0}])
async def test_links_stop_working_when_the_key_is_revoked_or_disabled(app, client, change) -> None:
    key, auth = await _key(app)
    video = await _completed(client, auth)
    url = (await client.get(f"/v1/videos/{video['id']}", headers=auth)).json()["url"]
    assert (await client.get(url)).status_code == 200
    await _set_key(app, key.id, **change)
    assert_error(await client.get(url), 403, code="link_revoked")
    assert (await client.head(url)).status_code == 403


# -- item: signatures that are not ASCII


@pytest.mark.parametrize("signature", ["é" * 40, "\u2603", "%ff%fe", "0" * 40, "", "a" * 4000])
async def test_any_malformed_signature_answers_like_a_wrong_one(app, client, signature) -> None:
    _, auth = await _key(app)
    video = await _completed(client, auth)
    expires = int(time.time()) + 60
    wrong = await client.get(f"/files/videos/{video['id']}/video", params={"expires": expires, "signature": "x"})
    err = assert_error(wrong, 403, code="invalid_signature")
    r = await client.get(f"/files/videos/{video['id']}/video?expires={expires}&signature={signature}")
    assert r.status_code == 403 and r.json() == {"error": err}, r.text
