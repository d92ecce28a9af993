"""`Idempotency-Key` on the creating routes: a retried create answers the first attempt's video and is
charged once; the same key with another request is a 409; keys are per API key and kept 24 hours."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.keys.models import ApiKey
from app.providers.base import Rejected
from app.videos.models import Character, IdempotencyKey, Video
from tests.operators.test_limits import key_with, used
from tests.support.api import assert_error, finish
from tests.support.media import solid_image

pytestmark = pytest.mark.engine  # these tests watch videos finish

QUICK = {"prompt": "once", "seconds": "4", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}}


def idem(secret: str, value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Idempotency-Key": value}


async def videos_of(app: Any, key_id: str) -> list[Video]:
    async with app.state.gateway.sessionmaker() as s:
        return list((await s.scalars(select(Video).where(Video.api_key_id == key_id))).all())


@pytest.fixture
async def priced(app: Any) -> tuple[str, str]:
    app.state.gateway.registry.prices = {"sora-2": 1.0}
    return await key_with(app, quota_credits=100.0)


class TestReplay:
    async def test_same_key_and_body_is_the_same_video_charged_once(self, app, client, priced) -> None:
        key_id, secret = priced
        first = await client.post("/v1/videos", headers=idem(secret, "k1"), json=QUICK)
        assert first.status_code == 200, first.text
        assert "idempotent-replayed" not in first.headers
        again = await client.post("/v1/videos", headers=idem(secret, "k1"), json=QUICK)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert len(await videos_of(app, key_id)) == 1
        assert await used(app, key_id) == 4.0
        # after completion the replay shows the current state, and the charge is still one
        done = await finish(client, {"Authorization": f"Bearer {secret}"}, first.json()["id"])
        third = await client.post("/v1/videos", headers=idem(secret, "k1"), json=QUICK)
        assert third.json()["status"] == done["status"] == "completed"
        assert await used(app, key_id) == 4.0

    async def test_multipart_with_an_image_replays_despite_a_new_boundary(self, app, client, priced) -> None:
        key_id, secret = priced
        fields = {k: (None, str(v)) for k, v in QUICK.items() if k != "metadata"}
        cat = solid_image((200, 10, 10), size=(64, 64))
        files = {**fields, "input_reference": ("cat.jpg", cat, "image/jpeg")}
        a = await client.post("/v1/videos", headers=idem(secret, "img"), files=files)
        b = await client.post("/v1/videos", headers=idem(secret, "img"), files=files)
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert a.json()["id"] == b.json()["id"]
        other = solid_image((10, 10, 200), size=(64, 64))
        c = await client.post(
            "/v1/videos",
            headers=idem(secret, "img"),
            files={**fields, "input_reference": ("cat.jpg", other, "image/jpeg")},
        )
        assert_error(c, 409, code="idempotency_key_reused")
        assert len(await videos_of(app, key_id)) == 1

    async def test_without_the_header_every_create_is_new(self, app, client, priced) -> None:
        key_id, secret = priced
        h = {"Authorization": f"Bearer {secret}"}
        ids = {(await client.post("/v1/videos", headers=h, json=QUICK)).json()["id"] for _ in range(2)}
        assert len(ids) == 2 and await used(app, key_id) == 8.0


class TestConflicts:
    async def test_same_key_with_another_body_is_409(self, app, client, priced) -> None:
        key_id, secret = priced
        assert (await client.post("/v1/videos", headers=idem(secret, "k2"), json=QUICK)).status_code == 200
        r = await client.post("/v1/videos", headers=idem(secret, "k2"), json={**QUICK, "prompt": "twice"})
        err = assert_error(r, 409, code="idempotency_key_reused")
        assert err["type"] == "invalid_request_error" and err["param"] is None
        assert r.headers["x-should-retry"] == "false"
        assert len(await videos_of(app, key_id)) == 1 and await used(app, key_id) == 4.0

    async def test_same_key_on_another_route_is_409(self, app, client, priced) -> None:
        _, secret = priced
        vid = (await client.post("/v1/videos", headers=idem(secret, "k3"), json=QUICK)).json()["id"]
        await finish(client, {"Authorization": f"Bearer {secret}"}, vid)
        r = await client.post(f"/v1/videos/{vid}/remix", headers=idem(secret, "k3"), json={"prompt": "once"})
        assert_error(r, 409, code="idempotency_key_reused")

    async def test_keys_are_per_api_key(self, app, client, priced) -> None:
        key_a, secret_a = priced
        key_b, secret_b = await key_with(app)
        a = await client.post("/v1/videos", headers=idem(secret_a, "shared"), json=QUICK)
        b = await client.post("/v1/videos", headers=idem(secret_b, "shared"), json=QUICK)
        assert a.status_code == b.status_code == 200
        assert a.json()["id"] != b.json()["id"]
        assert "idempotent-replayed" not in b.headers
        assert len(await videos_of(app, key_a)) == len(await videos_of(app, key_b)) == 1

    @pytest.mark.parametrize("value", [b"", b"k" * 256, b"tab\there", b"nul\x00", "é-accent".encode()])
    async def test_unusable_keys_are_400(self, app, client, priced, value) -> None:
        key_id, secret = priced
        headers = [(b"authorization", f"Bearer {secret}".encode()), (b"idempotency-key", value)]
        r = await client.post("/v1/videos", headers=headers, json=QUICK)
        assert_error(r, 400, code="invalid_idempotency_key")
        assert await videos_of(app, key_id) == []

    async def test_a_255_character_key_is_fine(self, client, priced) -> None:
        _, secret = priced
        r = await client.post("/v1/videos", headers=idem(secret, "k" * 255), json=QUICK)
        assert r.status_code == 200, r.text


class TestConcurrency:
    async def test_concurrent_requests_with_one_key_make_one_video(self, app, client, priced) -> None:
        key_id, secret = priced
        results = await asyncio.gather(
            *(client.post("/v1/videos", headers=idem(secret, "race"), json=QUICK) for _ in range(6))
        )
        assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
        assert len({r.json()["id"] for r in results}) == 1
        assert len(await videos_of(app, key_id)) == 1
        assert await used(app, key_id) == 4.0

    async def test_a_concurrent_loser_answers_the_winners_video(self, app, client, priced, monkeypatch) -> None:
        """Both pass the replay check before either stores: the unique key decides, nothing is reserved twice."""
        from app.videos import drafts

        key_id, secret = priced
        real = drafts.draft_create
        arrived: list[int] = []
        both = asyncio.Event()

        async def draft_together(*args: Any) -> Any:
            arrived.append(1)
            if len(arrived) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 10)
            return await real(*args)

        monkeypatch.setattr(drafts, "draft_create", draft_together)
        # a first use records the key's last use now: two requests writing that at once would serialise
        # on SQLite's write lock while the first waits for the second at the barrier
        await client.get("/v1/videos", headers={"Authorization": f"Bearer {secret}"})
        a, b = await asyncio.gather(
            client.post("/v1/videos", headers=idem(secret, "late"), json=QUICK),
            client.post("/v1/videos", headers=idem(secret, "late"), json=QUICK),
        )
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert a.json()["id"] == b.json()["id"]
        assert [r.headers.get("idempotent-replayed") for r in (a, b)].count("true") == 1
        assert len(await videos_of(app, key_id)) == 1 and await used(app, key_id) == 4.0

    async def test_a_concurrent_other_body_is_409(self, app, client, priced, monkeypatch) -> None:
        from app.videos import drafts

        key_id, secret = priced
        real = drafts.draft_create
        arrived: list[int] = []
        both = asyncio.Event()

        async def draft_together(*args: Any) -> Any:
            arrived.append(1)
            if len(arrived) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 10)
            return await real(*args)

        monkeypatch.setattr(drafts, "draft_create", draft_together)
        # a first use records the key's last use now: two requests writing that at once would serialise
        # on SQLite's write lock while the first waits for the second at the barrier
        await client.get("/v1/videos", headers={"Authorization": f"Bearer {secret}"})
        results = await asyncio.gather(
            client.post("/v1/videos", headers=idem(secret, "late2"), json=QUICK),
            client.post("/v1/videos", headers=idem(secret, "late2"), json={**QUICK, "prompt": "other"}),
        )
        assert sorted(r.status_code for r in results) == [200, 409]
        assert_error(next(r for r in results if r.status_code == 409), 409, code="idempotency_key_reused")
        assert len(await videos_of(app, key_id)) == 1 and await used(app, key_id) == 4.0


class TestLifetime:
    async def test_a_rejected_create_gives_the_key_back(self, app, client, priced, monkeypatch) -> None:
        key_id, secret = priced
        provider = app.state.gateway.registry.channels["sandbox"].provider

        async def reject(req: Any) -> Any:
            raise Rejected("sandbox", "Prompt refused by moderation.", vendor_code="moderation_blocked")

        monkeypatch.setattr(provider, "submit", reject)
        assert_error(await client.post("/v1/videos", headers=idem(secret, "k4"), json=QUICK), 400)
        assert await used(app, key_id) == 0.0
        monkeypatch.undo()
        r = await client.post("/v1/videos", headers=idem(secret, "k4"), json=QUICK)
        assert r.status_code == 200 and "idempotent-replayed" not in r.headers
        assert await used(app, key_id) == 4.0

    async def test_keys_expire_after_24_hours_and_the_janitor_forgets_them(self, app, client, priced) -> None:
        key_id, secret = priced
        first = (await client.post("/v1/videos", headers=idem(secret, "k5"), json=QUICK)).json()["id"]
        gw = app.state.gateway
        async with gw.sessionmaker() as s:
            await s.execute(update(IdempotencyKey).values(created_at=IdempotencyKey.created_at - 24 * 3600 - 1))
            await s.commit()
        second = await client.post("/v1/videos", headers=idem(secret, "k5"), json={**QUICK, "prompt": "new"})
        assert second.status_code == 200 and second.json()["id"] != first
        async with gw.sessionmaker() as s:
            await s.execute(update(IdempotencyKey).values(created_at=1.0))
            await s.commit()
        await gw.engine.purge_expired()
        async with gw.sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(IdempotencyKey)) == 0

    async def test_a_deleted_video_is_a_404_on_replay(self, app, client, priced) -> None:
        _, secret = priced
        vid = (await client.post("/v1/videos", headers=idem(secret, "k6"), json=QUICK)).json()["id"]
        await finish(client, {"Authorization": f"Bearer {secret}"}, vid)
        assert (await client.delete(f"/v1/videos/{vid}", headers={"Authorization": f"Bearer {secret}"})).is_success
        assert_error(
            await client.post("/v1/videos", headers=idem(secret, "k6"), json=QUICK), 404, code="video_not_found"
        )


class TestDerivedRoutes:
    async def test_remix_edit_extend_replay(self, app, client, priced) -> None:
        key_id, secret = priced
        h = {"Authorization": f"Bearer {secret}"}
        src = (await client.post("/v1/videos", headers=h, json={**QUICK, "seconds": "2"})).json()["id"]
        await finish(client, h, src)
        for path, body in (
            (f"/v1/videos/{src}/remix", {"prompt": "again"}),
            ("/v1/videos/edits", {"prompt": "edit", "video": {"id": src}}),
            ("/v1/videos/extensions", {"prompt": "more", "video": {"id": src}, "seconds": "2"}),
        ):
            a = await client.post(path, headers=idem(secret, f"d-{path}"), json=body)
            b = await client.post(path, headers=idem(secret, f"d-{path}"), json=body)
            assert a.status_code == b.status_code == 200, (path, a.text, b.text)
            assert a.json()["id"] == b.json()["id"], path
        assert len(await videos_of(app, key_id)) == 4

    async def test_characters_replay_and_race(self, app, client, priced) -> None:
        key_id, secret = priced
        h = {"Authorization": f"Bearer {secret}"}
        src = (await client.post("/v1/videos", headers=h, json={**QUICK, "seconds": "1"})).json()["id"]
        await finish(client, h, src)
        clip = (await client.get(f"/v1/videos/{src}/content", headers=h)).content
        form = {"name": (None, "Mochi"), "video": ("c.mp4", clip, "video/mp4")}
        a = await client.post("/v1/videos/characters", headers=idem(secret, "c1"), files=form)
        b = await client.post("/v1/videos/characters", headers=idem(secret, "c1"), files=form)
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert a.json()["id"] == b.json()["id"] and b.headers["idempotent-replayed"] == "true"
        other = {**form, "name": (None, "Other")}
        assert_error(
            await client.post("/v1/videos/characters", headers=idem(secret, "c1"), files=other),
            409,
            code="idempotency_key_reused",
        )
        race = await asyncio.gather(
            *(client.post("/v1/videos/characters", headers=idem(secret, "c2"), files=form) for _ in range(4))
        )
        assert [r.status_code for r in race] == [200] * 4, [r.text for r in race]
        assert len({r.json()["id"] for r in race}) == 1
        async with app.state.gateway.sessionmaker() as s:
            owner = (await s.get(ApiKey, key_id)).owner
            count = await s.scalar(select(func.count()).select_from(Character).where(Character.owner == owner))
        assert count == 2

    async def test_openapi_documents_the_header(self, client) -> None:
        doc = (await client.get("/openapi.json")).json()
        for path in (
            "/v1/videos",
            "/v1/videos/{video_id}/remix",
            "/v1/videos/edits",
            "/v1/videos/extensions",
            "/v1/videos/characters",
        ):
            params = doc["paths"][path]["post"].get("parameters", [])
            assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in params), path
