"""Raw HTTP, as curl users, older SDKs and relay clients send it."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.support.api import VIDEO_KEYS, assert_error, finish, form
from tests.support.media import image_format, mp4_info, solid_image

pytestmark = pytest.mark.engine  # these tests watch videos finish


class TestCreateEncodings:
    async def test_multipart_text_only_returns_200_queued_with_all_keys(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos", headers=auth, files=form(prompt="A calico cat", model="sora-2", seconds="4", size="1280x720")
        )
        assert r.status_code == 200
        body = r.json()
        assert VIDEO_KEYS <= set(body)
        assert body["object"] == "video" and body["status"] == "queued" and body["quality"] == "standard"
        assert (body["seconds"], body["size"], body["prompt"]) == ("4", "1280x720", "A calico cat")
        assert body["completed_at"] is None and body["error"] is None and body["remixed_from_video_id"] is None
        assert int(r.headers["openai-poll-after-ms"]) > 0

    async def test_json_as_older_sdks_send_it(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "hello json", "model": "sora-2-pro", "seconds": "12", "size": "1792x1024"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["model"], r.json()["seconds"], r.json()["size"]) == ("sora-2-pro", "12", "1792x1024")
        # seconds as a JSON integer (batch-style clients) is accepted too
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "hello json", "model": "sora-2-pro", "seconds": 8, "size": "1792x1024"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["model"], r.json()["seconds"], r.json()["size"]) == ("sora-2-pro", "8", "1792x1024")

    async def test_seed_curl_forms(self, client, auth) -> None:
        cat = solid_image((10, 200, 10), size=(400, 300))
        r = await client.post(
            "/v1/videos",
            headers=auth,
            data={
                "prompt": "猫咪慢慢睁开眼睛,伸懒腰",
                "model": "sora-2",
                "seconds": "3",
                "size": "1920x1080",
                "metadata": json.dumps({"watermark": False, "sandbox_latency_ms": 0}),
            },
            files={"input_reference": ("cat.jpg", cat, "image/jpeg")},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["size"], r.json()["seconds"]) == ("1920x1080", "3")
        r = await client.post(
            "/v1/videos", headers=auth, files=form(prompt="x", model="sora-2", seconds="5", size="1920*1080")
        )
        assert r.status_code == 200 and r.json()["size"] == "1920x1080"
        r = await client.post("/v1/videos", headers=auth, files=form(prompt="x", seconds="3", resolution="720P"))
        assert r.status_code == 200 and r.json()["size"] == "720x1280"  # the default orientation, at 720p
        r = await client.post("/v1/videos", headers=auth, files=form(prompt="x", size="1080p"))
        assert r.status_code == 200 and r.json()["size"] == "1080x1920"

    async def test_bracket_fields_and_data_url(self, client, auth) -> None:
        png = solid_image((0, 0, 255), size=(64, 64), fmt="PNG")
        data_url = "data:image/png;base64," + base64.b64encode(png).decode()
        r = await client.post(
            "/v1/videos",
            headers=auth,
            files=form(
                **{
                    "prompt": "blue",
                    "seconds": "1",
                    "size": "64x64",
                    "input_reference[image_url]": data_url,
                    "metadata[sandbox_latency_ms]": "0",
                    "metadata[nested][y]": "1",
                    "metadata[arr][]": "a",
                }
            ),
        )
        assert r.status_code == 200, r.text
        body = await finish(client, auth, r.json()["id"])
        assert body["status"] == "completed"

    async def test_file_id_is_a_clear_400(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos", headers=auth, json={"prompt": "x", "input_reference": {"file_id": "file_1"}}
        )
        err = assert_error(r, 400, param="input_reference.file_id", code="unsupported_parameter")
        assert "image_url" in err["message"]

    async def test_unknown_headers_are_ignored(self, client, auth) -> None:
        headers = {**auth, "X-Stainless-Lang": "python", "OpenAI-Organization": "org_1", "OpenAI-Project": "p"}
        r = await client.post("/v1/videos", headers=headers, json={"prompt": "x", "seconds": "1", "size": "64x64"})
        assert r.status_code == 200


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "param", "code"),
        [
            ({}, "prompt", "missing_required_parameter"),
            ({"prompt": ""}, "prompt", "invalid_value"),
            ({"prompt": "   "}, "prompt", "invalid_value"),
            ({"prompt": "x" * 32001}, "prompt", "string_above_max_length"),
            ({"prompt": "x", "model": "nope"}, "model", "model_not_found"),
            ({"prompt": "x", "size": "abc"}, "size", "invalid_value"),
            ({"prompt": "x", "size": "1281x720"}, "size", "invalid_value"),
            ({"prompt": "x", "size": "3840x2160"}, "size", "invalid_value"),
            ({"prompt": "x", "size": "32x32"}, "size", "invalid_value"),
            ({"prompt": "x", "seconds": "0"}, "seconds", "invalid_value"),
            ({"prompt": "x", "seconds": "21"}, "seconds", "invalid_value"),
            ({"prompt": "x", "seconds": "2.5"}, "seconds", "invalid_value"),
            ({"prompt": "x", "seconds": "four"}, "seconds", "invalid_value"),
            ({"prompt": "x", "metadata": "[1,2]"}, "metadata", "invalid_type"),
            ({"prompt": "x", "metadata": "{not json"}, "metadata", "invalid_type"),
            ({"prompt": "x", "input_reference": "just text"}, "input_reference", "invalid_type"),
        ],
    )
    async def test_bad_fields_are_400_and_store_nothing(self, client, auth, body, param, code) -> None:
        r = await client.post("/v1/videos", headers=auth, files=form(**body) if body else {"x": (None, "")})
        assert_error(r, 400, param=param, code=code)
        listed = await client.get("/v1/videos", headers=auth)
        assert listed.json()["data"] == []

    async def test_unknown_model_message_lists_models(self, client, auth) -> None:
        r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "veo"})
        assert "sora-2" in assert_error(r, 400, param="model")["message"]

    async def test_seconds_message_lists_what_the_model_can_do(self, client, auth) -> None:
        r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "seconds": 30})
        assert "1 to 20" in assert_error(r, 400, param="seconds")["message"]

    async def test_image_that_is_not_an_image(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            data={"prompt": "x"},
            files={"input_reference": ("cat.jpg", b"GIF89a not really", "image/jpeg")},
        )
        assert_error(r, 400, param="input_reference", code="invalid_image_format")

    async def test_image_over_the_limit_is_413(self, app, client, auth) -> None:
        app.state.gateway.settings.max_image_bytes = 1000
        big = solid_image((1, 2, 3), size=(800, 800), fmt="PNG") + b"\0" * 2000
        r = await client.post(
            "/v1/videos", headers=auth, data={"prompt": "x"}, files={"input_reference": ("big.png", big, "image/png")}
        )
        assert_error(r, 413, param="input_reference", code="file_too_large")

    async def test_body_over_the_limit_is_413(self, database_url, tmp_path) -> None:
        from app.main import create_app
        from tests.conftest import make_settings, new_key

        app = create_app(make_settings(database_url, tmp_path / "d", max_body_bytes=2048))
        async with app.router.lifespan_context(app):
            key = await new_key(app)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                r = await c.post("/v1/videos", headers={"Authorization": f"Bearer {key}"}, json={"prompt": "x" * 5000})
                assert_error(r, 413, code="request_too_large")

    async def test_malformed_json(self, client, auth) -> None:
        r = await client.post("/v1/videos", headers={**auth, "Content-Type": "application/json"}, content=b"{oops")
        assert_error(r, 400, code="invalid_json")

    async def test_broken_bracket_name(self, client, auth) -> None:
        r = await client.post("/v1/videos", headers=auth, files=form(**{"prompt": "x", "metadata[a": "1"}))
        assert_error(r, 400, code="invalid_field_name")

    async def test_unknown_route_and_method_use_the_envelope(self, client, auth) -> None:
        assert_error(await client.get("/v1/nothing", headers=auth), 404)
        assert_error(await client.put("/v1/videos", headers=auth), 405)

    async def test_list_parameters(self, client, auth) -> None:
        assert_error(await client.get("/v1/videos?limit=101", headers=auth), 400, param="limit")
        assert_error(await client.get("/v1/videos?limit=-1", headers=auth), 400, param="limit")
        assert_error(await client.get("/v1/videos?order=up", headers=auth), 400, param="order")
        r = await client.get("/v1/videos?limit=0", headers=auth)
        assert r.json() == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


class TestAuth:
    async def test_missing_and_wrong_key(self, client) -> None:
        assert_error(await client.get("/v1/videos"), 401, code="invalid_api_key")
        assert_error(
            await client.get("/v1/videos", headers={"Authorization": "Bearer sk-nope"}), 401, code="invalid_api_key"
        )
        assert_error(await client.get("/v1/videos", headers={"Authorization": "Basic abc"}), 401)

    async def test_auth_is_checked_before_the_body(self, client) -> None:
        r = await client.post("/v1/videos", headers={"Authorization": "Bearer bad"}, content=b"{garbage")
        assert_error(r, 401, code="invalid_api_key")

    async def test_error_bodies_never_echo_the_key(self, client) -> None:
        secret = "sk-vg-THISISASECRETKEYVALUE1234567890"
        r = await client.get("/v1/videos", headers={"Authorization": f"Bearer {secret}"})
        assert secret not in r.text

    async def test_request_id_is_echoed_or_made(self, client, auth) -> None:
        r = await client.get("/v1/videos", headers={**auth, "x-request-id": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        r = await client.get("/v1/videos", headers=auth)
        assert r.headers["x-request-id"].startswith("req_")


class TestContent:
    async def test_range_head_and_headers(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "range", "seconds": "1", "size": "128x96", "metadata": {"sandbox_latency_ms": 0}},
        )
        vid = (await finish(client, auth, r.json()["id"]))["id"]
        full = await client.get(f"/v1/videos/{vid}/content", headers={**auth, "Accept": "application/binary"})
        assert full.status_code == 200
        assert full.headers["content-type"] == "video/mp4"
        assert int(full.headers["content-length"]) == len(full.content)
        assert "attachment" in full.headers["content-disposition"] and vid in full.headers["content-disposition"]
        assert mp4_info(full.content)[1:3] == (128, 96)

        head = await client.head(f"/v1/videos/{vid}/content", headers=auth)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(full.content)

        part = await client.get(f"/v1/videos/{vid}/content", headers={**auth, "Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == full.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(full.content)}"

        thumb = await client.get(f"/v1/videos/{vid}/content?variant=thumbnail", headers=auth)
        assert thumb.headers["content-type"] == "image/webp" and image_format(thumb.content)[0] == "WEBP"
        sprite = await client.get(f"/v1/videos/{vid}/content?variant=spritesheet", headers=auth)
        assert sprite.headers["content-type"] == "image/jpeg" and image_format(sprite.content)[0] == "JPEG"
        assert_error(await client.get(f"/v1/videos/{vid}/content?variant=gif", headers=auth), 400, param="variant")

    async def test_signed_url_works_without_a_key_and_refuses_tampering(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "url", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
        )
        body = await finish(client, auth, r.json()["id"])
        url = body["url"]
        ok = await client.get(url)
        assert ok.status_code == 200 and ok.headers["content-type"] == "video/mp4"
        part = await client.get(url, headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and len(part.content) == 10
        tampered = url.replace(body["id"], body["id"][:-1] + ("0" if body["id"][-1] != "0" else "1"))
        assert_error(await client.get(tampered), 403)
        sig = url.rsplit("signature=", 1)[1]
        assert_error(await client.get(url.replace(sig, "0" * len(sig))), 403)
        expired = url.split("expires=")[0] + "expires=1&signature=" + sig
        assert_error(await client.get(expired), 403)

    async def test_unfinished_and_failed_content_is_400(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "slow", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 60000}},
        )
        assert_error(
            await client.get(f"/v1/videos/{r.json()['id']}/content", headers=auth), 400, code="video_not_ready"
        )
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={
                "prompt": "f",
                "seconds": "1",
                "size": "64x64",
                "metadata": {"sandbox_fail": "boom", "sandbox_latency_ms": 0},
            },
        )
        body = await finish(client, auth, r.json()["id"])
        assert body["status"] == "failed" and body["error"]["code"] == "boom"
        assert_error(await client.get(f"/v1/videos/{body['id']}/content", headers=auth), 400)

    async def test_expired_assets_are_purged_and_answer_404(self, app, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "old", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
        )
        body = await finish(client, auth, r.json()["id"])
        gw = app.state.gateway
        async with gw.sessionmaker() as s:
            from app.videos.models import Video

            row = await s.get(Video, body["id"])
            row.expires_at = 1
            await s.commit()
        assert await gw.engine.purge_expired() == 1
        assert not await gw.storage.exists(f"videos/{body['id']}/video.mp4")
        assert_error(await client.get(f"/v1/videos/{body['id']}/content", headers=auth), 404, code="video_expired")
        assert "url" not in (await client.get(f"/v1/videos/{body['id']}", headers=auth)).json()

    async def test_poll_after_header_only_while_unfinished(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "p", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 400}},
        )
        vid = r.json()["id"]
        got = await client.get(f"/v1/videos/{vid}", headers=auth)
        assert got.headers["openai-poll-after-ms"].isdigit()
        await finish(client, auth, vid)
        assert "openai-poll-after-ms" not in (await client.get(f"/v1/videos/{vid}", headers=auth)).headers


class TestDelete:
    async def test_delete_with_json_content_type_and_empty_body(self, app, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "d", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
        )
        vid = (await finish(client, auth, r.json()["id"]))["id"]
        d = await client.request("DELETE", f"/v1/videos/{vid}", headers={**auth, "Content-Type": "application/json"})
        assert d.status_code == 200
        assert d.json() == {"id": vid, "object": "video.deleted", "deleted": True}
        assert not await app.state.gateway.storage.exists(f"videos/{vid}/video.mp4")
        assert_error(await client.get(f"/v1/videos/{vid}", headers=auth), 404)
        assert_error(await client.get(f"/v1/videos/{vid}/content", headers=auth), 404)
        assert_error(await client.delete(f"/v1/videos/{vid}", headers=auth), 404)

    async def test_unfinished_video_cannot_be_deleted(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "d", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 60000}},
        )
        assert_error(await client.delete(f"/v1/videos/{r.json()['id']}", headers=auth), 400, code="video_not_finished")


class TestRemixAndFriends:
    async def test_remix_json_and_multipart(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "s", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
        )
        src = (await finish(client, auth, r.json()["id"]))["id"]
        a = await client.post(f"/v1/videos/{src}/remix", headers=auth, json={"prompt": "again"})
        b = await client.post(f"/v1/videos/{src}/remix", headers=auth, files=form(prompt="again, multipart"))
        for resp in (a, b):
            assert resp.status_code == 200, resp.text
            assert resp.json()["remixed_from_video_id"] == src
        assert_error(await client.post(f"/v1/videos/{src}/remix", headers=auth, json={}), 400, param="prompt")

    async def test_remix_of_unfinished_is_400(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "s", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 60000}},
        )
        assert_error(
            await client.post(f"/v1/videos/{r.json()['id']}/remix", headers=auth, json={"prompt": "x"}),
            400,
            code="video_not_ready",
        )

    async def test_edit_and_extend_need_a_video(self, client, auth) -> None:
        assert_error(await client.post("/v1/videos/edits", headers=auth, files=form(prompt="x")), 400, param="video")
        assert_error(
            await client.post("/v1/videos/extensions", headers=auth, files=form(prompt="x", seconds="4")),
            400,
            param="video",
        )
        bad = await client.post(
            "/v1/videos/edits",
            headers=auth,
            data={"prompt": "x"},
            files={"video": ("in.mp4", b"not a video", "video/mp4")},
        )
        assert_error(bad, 400, param="video", code="invalid_video")

    async def test_extension_total_is_capped(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "s", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
        )
        src = (await finish(client, auth, r.json()["id"]))["id"]
        assert_error(
            await client.post("/v1/videos/extensions", headers=auth, json={"prompt": "x", "video": {"id": src}}),
            400,
            param="seconds",
        )
        ok = await client.post(
            "/v1/videos/extensions", headers=auth, files=form(**{"prompt": "x", "video[id]": src, "seconds": "2"})
        )
        assert ok.status_code == 200 and ok.json()["seconds"] == "3"

    async def test_characters_errors(self, client, auth) -> None:
        assert_error(await client.post("/v1/videos/characters", headers=auth, files=form(name="x")), 400, param="video")
        assert_error(await client.get("/v1/videos/characters/char_nope", headers=auth), 404)
        r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "characters": [{"id": "char_nope"}]})
        assert_error(r, 400, param="characters")


class TestImageUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:9/a.png",
            "http://localhost/a.png",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/x.png",
            "http://[::1]/a.png",
            "http://192.168.0.1/a.png",
        ],
    )
    async def test_private_addresses_are_refused(self, client, auth, url) -> None:
        r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "input_reference": {"image_url": url}})
        assert_error(r, 400, param="input_reference.image_url", code="image_url_not_allowed")

    async def test_fetching_works_when_allowed_and_follows_checked_redirects(self, app, client, auth) -> None:
        from starlette.applications import Starlette
        from starlette.responses import RedirectResponse, Response
        from starlette.routing import Route

        from tests.conftest import LiveServer

        png = solid_image((0, 250, 0), size=(64, 64), fmt="PNG")
        images = Starlette(
            routes=[
                Route("/a.png", lambda r: Response(png, media_type="image/png")),
                Route("/moved", lambda r: RedirectResponse("/a.png")),
            ]
        )
        app.state.gateway.settings.allow_private_image_urls = True
        with LiveServer(images) as srv:
            for path in ("/a.png", "/moved"):
                r = await client.post(
                    "/v1/videos",
                    headers=auth,
                    json={
                        "prompt": "x",
                        "seconds": "1",
                        "size": "64x64",
                        "metadata": {"sandbox_latency_ms": 0},
                        "input_reference": {"image_url": srv.url + path},
                    },
                )
                assert r.status_code == 200, r.text
                assert (await finish(client, auth, r.json()["id"]))["status"] == "completed"
            r = await client.post(
                "/v1/videos",
                headers=auth,
                json={"prompt": "x", "input_reference": {"image_url": srv.url + "/missing.png"}},
            )
            assert_error(r, 400, code="image_fetch_failed")


async def test_an_unexpected_error_is_a_500_envelope_with_a_request_id(app, client, auth, monkeypatch) -> None:
    from app.videos import reads

    async def boom(*a, **k):
        raise RuntimeError("kaboom: sk-vg-THISMUSTNOTLEAK0000000000")

    monkeypatch.setattr(reads, "list_videos", boom)
    r = await client.get("/v1/videos", headers=auth)
    err = assert_error(r, 500)
    assert err["type"] == "server_error" and "kaboom" not in r.text
