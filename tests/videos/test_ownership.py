"""Key A's videos are invisible to key B on every endpoint: answers byte-identical to an unknown id."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import new_key
from tests.support.api import finish

pytestmark = pytest.mark.engine  # these tests watch videos finish


def strip(r: httpx.Response) -> tuple[int, bytes]:
    return r.status_code, r.content


async def test_ownership_matrix(app, client) -> None:
    a = {"Authorization": f"Bearer {await new_key(app, name='a')}"}
    b = {"Authorization": f"Bearer {await new_key(app, name='b')}"}
    r = await client.post(
        "/v1/videos",
        headers=a,
        json={"prompt": "mine", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
    )
    vid = (await finish(client, a, r.json()["id"]))["id"]
    unknown = "video_" + "0" * 48

    calls = [
        ("GET", "/v1/videos/{id}", None),
        ("GET", "/v1/videos/{id}/content", None),
        ("GET", "/v1/videos/{id}/content?variant=thumbnail", None),
        ("GET", "/v1/videos/{id}/content?variant=spritesheet", None),
        ("HEAD", "/v1/videos/{id}/content", None),
        ("DELETE", "/v1/videos/{id}", None),
        ("POST", "/v1/videos/{id}/remix", {"prompt": "steal"}),
    ]
    for method, path, body in calls:
        theirs = await client.request(method, path.format(id=vid), headers=b, json=body)
        missing = await client.request(method, path.format(id=unknown), headers=b, json=body)
        assert theirs.status_code == 404, (method, path, theirs.text)
        assert strip(theirs) == strip(missing) if method != "HEAD" else theirs.status_code == missing.status_code

    for path in ("/v1/videos/edits", "/v1/videos/extensions"):
        theirs = await client.post(path, headers=b, json={"prompt": "x", "seconds": "1", "video": {"id": vid}})
        missing = await client.post(path, headers=b, json={"prompt": "x", "seconds": "1", "video": {"id": unknown}})
        assert theirs.status_code == 404
        assert theirs.content == missing.content

    assert (await client.get("/v1/videos", headers=b)).json()["data"] == []
    # B's list cursor cannot point into A's videos either
    assert (await client.get(f"/v1/videos?after={vid}", headers=b)).status_code == 400

    # the owner still sees everything, intact
    mine = await client.get(f"/v1/videos/{vid}", headers=a)
    assert mine.status_code == 200 and mine.json()["status"] == "completed"
    assert (await client.get(f"/v1/videos/{vid}/content", headers=a)).status_code == 200
    assert [v["id"] for v in (await client.get("/v1/videos", headers=a)).json()["data"]] == [vid]


async def test_keys_of_one_owner_share_videos(app, client) -> None:
    a1 = {"Authorization": f"Bearer {await new_key(app, owner='team-1')}"}
    a2 = {"Authorization": f"Bearer {await new_key(app, owner='team-1')}"}
    r = await client.post("/v1/videos", headers=a1, json={"prompt": "shared", "seconds": "1", "size": "64x64"})
    assert (await client.get(f"/v1/videos/{r.json()['id']}", headers=a2)).status_code == 200


async def test_revoked_key_is_refused(app, client) -> None:
    from app.keys.service import revoke_key

    secret = await new_key(app, name="to-revoke")
    h = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/videos", headers=h)).status_code == 200
    async with app.state.gateway.sessionmaker() as s:
        assert await revoke_key(s, "to-revoke") == 1
        await s.commit()
    assert (await client.get("/v1/videos", headers=h)).status_code == 401


async def test_model_restricted_key(app, client) -> None:
    h = {"Authorization": f"Bearer {await new_key(app, models=['sandbox'])}"}
    r = await client.post("/v1/videos", headers=h, json={"prompt": "x", "model": "sora-2"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
    r = await client.post(
        "/v1/videos", headers=h, json={"prompt": "x", "model": "sandbox", "seconds": "1", "size": "64x64"}
    )
    assert r.status_code == 200
    models = [m["id"] for m in (await client.get("/v1/models", headers=h)).json()["data"]]
    assert models == ["sandbox"]
