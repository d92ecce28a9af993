"""Gateway-level vendor rules: parameter policy, retries after vendor faults, signed input URLs,
crash reconciliation (Kling external_task_id) and pass-through remix/edit/extend on an OpenAI-format upstream."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from app.main import create_app
from app.videos.models import Video
from tests.conftest import make_settings, new_key
from tests.fakes import kling, wanxiang
from tests.providers.test_vendor_e2e import VENDORS, _rig
from tests.support.api import assert_error, finish
from tests.support.media import solid_image

pytestmark = pytest.mark.engine  # these tests watch videos finish


async def gateway_with(fake_app: Any, database_url: str, tmp_path: Any, **settings: Any) -> AsyncIterator[Any]:
    """An app whose vendor HTTP goes in-process to `fake_app` (every host)."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app), timeout=10)
    app = create_app(
        make_settings(
            database_url,
            tmp_path / "data",
            sandbox_enabled=False,
            poll_interval_ms=50,
            poll_max_interval_ms=100,
            **settings,
        ),
        http=http,
    )
    async with app.router.lifespan_context(app):
        yield app
    await http.aclose()


@pytest.fixture
async def wan(database_url, tmp_path):
    fake, state = wanxiang.make_app(api_key="sk-fake-wanxiang")
    gen = gateway_with(
        fake,
        database_url,
        tmp_path,
        dashscope_api_key="sk-fake-wanxiang",
        dashscope_base_url="https://dashscope.aliyuncs.com",
    )
    app = await gen.__anext__()
    key = await new_key(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        yield app, c, {"Authorization": f"Bearer {key}"}, state
    with pytest.raises(StopAsyncIteration):
        await gen.__anext__()


class TestParamPolicy:
    async def test_nearest_snaps_and_reports_what_is_sent(self, wan) -> None:
        _, c, auth, state = wan
        r = await c.post(
            "/v1/videos",
            headers=auth,
            json={"prompt": "x", "model": "wan2.5-t2v-preview", "seconds": "4", "size": "720x1280"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["seconds"], r.json()["size"]) == ("5", "720x1280")
        assert state.creates()[-1]["parameters"]["duration"] == 5
        assert state.creates()[-1]["parameters"]["size"] == "720*1280"

    async def test_strict_names_the_allowed_values(self, wan) -> None:
        app, c, auth, state = wan
        app.state.gateway.settings.param_policy = "strict"
        r = await c.post(
            "/v1/videos", headers=auth, json={"prompt": "x", "model": "wan2.5-t2v-preview", "seconds": "4"}
        )
        err = assert_error(r, 400, param="seconds")
        assert "5" in err["message"] and "10" in err["message"]
        assert state.creates() == []

    @pytest.mark.parametrize("policy", ["nearest", "strict"])
    @pytest.mark.parametrize(("field", "value"), [("seconds", "0"), ("size", "abc"), ("seconds", "-3")])
    async def test_meaningless_values_are_400_before_any_vendor_call(self, wan, policy, field, value) -> None:
        app, c, auth, state = wan
        app.state.gateway.settings.param_policy = policy
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "wan2.5-t2v-preview", field: value})
        assert_error(r, 400, param=field)
        assert state.creates() == []  # (the engine may still poll earlier tests' tasks on this fake)

    async def test_metadata_cannot_override_the_model(self, wan) -> None:
        _, c, auth, state = wan
        r = await c.post(
            "/v1/videos",
            headers=auth,
            data={
                "prompt": "x",
                "model": "wan2.5-t2v-preview",
                "metadata": '{"model": "wan-evil", "watermark": "true"}',
            },
            files={"x": (None, "")},
        )
        assert r.status_code == 200, r.text
        body = state.creates()[-1]
        assert body["model"] == "wan2.5-t2v-preview"
        assert body["parameters"]["watermark"] is True


class TestVendorFaults:
    async def test_5xx_at_submit_is_retried_and_the_task_completes(self, wan) -> None:
        _, c, auth, state = wan
        state.fail_next("http500", on="create")
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "wan2.5-t2v-preview"})
        assert r.status_code == 200  # accepted; the engine retries the submission
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"
        assert len(state.creates()) == 2

    async def test_garbage_and_5xx_while_polling_are_retried(self, wan) -> None:
        _, c, auth, state = wan
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "wan2.5-t2v-preview"})
        state.fail_next("garbage", on="query")
        state.fail_next("http503", on="query")
        assert (await finish(c, auth, r.json()["id"]))["status"] == "completed"

    async def test_moderation_at_submit_is_a_400_with_the_vendor_message(self, wan) -> None:
        _, c, auth, state = wan
        state.fail_next("moderation", on="create")
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "wan2.5-t2v-preview"})
        err = assert_error(r, 400, code="DataInspectionFailed")
        assert "inappropriate" in err["message"]
        assert (await c.get("/v1/videos", headers=auth)).json()["data"] == []

    async def test_a_task_that_never_finishes_times_out(self, wan) -> None:
        app, c, auth, state = wan
        app.state.gateway.settings.task_timeout_s = 0
        r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "wan2.5-t2v-preview"})
        body = await finish(c, auth, r.json()["id"])
        assert body["status"] == "failed" and body["error"]["code"] == "timeout"


class TestSignedInputUrls:
    async def test_uploaded_image_reaches_a_url_only_vendor_as_a_signed_link(self, wan) -> None:
        app, c, auth, state = wan
        gw = app.state.gateway
        gw.registry.channels["wanxiang"].image_transport = "url"  # as a vendor that only fetches URLs
        ref = solid_image((10, 10, 240), size=(640, 360))
        files = {"input_reference": ("ref.jpg", ref, "image/jpeg")}
        data = {"prompt": "x", "model": "wan2.5-i2v-preview"}
        r = await c.post("/v1/videos", headers=auth, data=data, files=files)
        err = assert_error(r, 400, code="public_base_url_required")
        assert "VIDGATE_PUBLIC_BASE_URL" in err["message"]
        assert state.creates() == []

        gw.settings.public_base_url = "http://gw"
        r = await c.post("/v1/videos", headers=auth, data=data, files=files)
        assert r.status_code == 200, r.text
        url = state.creates()[-1]["input"]["img_url"]
        assert url.startswith("http://gw/files/inputs/")
        fetched = await c.get(url)  # no API key: the signature is the credential
        assert fetched.status_code == 200 and fetched.content == ref
        assert fetched.headers["content-type"] == "image/jpeg"
        assert_error(await c.get(url.replace("signature=", "signature=0")), 403)


async def test_kling_crash_between_submit_and_commit_is_reconciled(database_url, tmp_path) -> None:
    fake, state = kling.make_app()
    gen = gateway_with(
        fake,
        database_url,
        tmp_path,
        kling_access_key=kling.AK,
        kling_secret_key=kling.SK,
        kling_base_url="https://api-singapore.klingai.com",
        run_engine=False,
    )
    app = await gen.__anext__()
    gw = app.state.gateway
    key = await new_key(app)
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        # the vendor accepts the task, then the process dies before the vendor id is stored
        original = gw.registry.providers["kling"].submit
        crashed: list[str] = []

        async def submit_then_crash(req: Any) -> Any:
            await original(req)
            crashed.append(req.task_id)
            raise asyncio.CancelledError

        gw.registry.providers["kling"].submit = submit_then_crash
        with pytest.raises(asyncio.CancelledError):
            await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "kling-v1"})
        gw.registry.providers["kling"].submit = original
        async with gw.sessionmaker() as s:
            row = await s.get(Video, crashed[0])
            assert row is not None and row.vendor_task_id is None
            row.next_poll_at = 0  # its submit grace is over
            await s.commit()

        from app.videos.engine import TaskEngine

        gw.engine = TaskEngine(gw)
        await gw.engine.start()
        body = await finish(c, auth, crashed[0])
        await gw.engine.stop()
    assert body["status"] == "completed"
    creates = [r for r in state.api_requests() if r.method == "POST"]
    assert len(creates) == 1  # looked up by external_task_id, not submitted twice
    assert creates[0].json["external_task_id"] == crashed[0]
    with pytest.raises(StopAsyncIteration):
        await gen.__anext__()


def test_openai_upstream_remix_edit_extend_pass_through(database_url, tmp_path) -> None:
    vendor = next(v for v in VENDORS if v.name == "openai_compat")
    for rig in _rig(vendor, database_url, tmp_path):
        client = rig.client
        src = client.videos.create_and_poll(prompt="source", model="sora-2", seconds="4", poll_interval_ms=50)
        assert src.status == "completed"
        upstream_ids = set(rig.fake_state.tasks)
        assert src.id not in upstream_ids  # the upstream's ids stay private

        remix = client.videos.poll(client.videos.remix(src.id, prompt="again").id, poll_interval_ms=50)
        assert remix.status == "completed" and remix.remixed_from_video_id == src.id
        ext = client.videos.extend(prompt="more", seconds="4", video=openai.omit, extra_body={"video": {"id": src.id}})
        ext = client.videos.poll(ext.id, poll_interval_ms=50)
        assert ext.status == "completed"
        edit = client.videos.edit(prompt="blue", video=openai.omit, extra_body={"video": {"id": src.id}})
        assert client.videos.poll(edit.id, poll_interval_ms=50).status == "completed"
        paths = [r.path for r in rig.fake_state.requests if r.method == "POST"]
        assert any(p.endswith("/remix") for p in paths)
        assert "/v1/videos/extensions" in paths and "/v1/videos/edits" in paths
        # thumbnails are derived from the video: no upstream request is spent on variants unless the channel
        # sets fetch_variants
        assert not any(r.query.get("variant") in ("thumbnail", "spritesheet") for r in rig.fake_state.requests)


def test_providers_command_lists_enabled_vendors(tmp_path) -> None:
    env = {
        **os.environ,
        "VIDGATE_STORAGE_DIR": str(tmp_path),
        "VIDGATE_DASHSCOPE_API_KEY": "sk-x",
        "VIDGATE_KLING_ACCESS_KEY": "ak",
        "VIDGATE_KLING_SECRET_KEY": "sk",
        "VIDGATE_SANDBOX_ENABLED": "false",
    }
    out = subprocess.run([sys.executable, "-m", "app.cli", "providers"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "wanxiang" in out.stdout and "wan2.5-t2v-preview" in out.stdout and "kling-v2-master" in out.stdout
    assert "sandbox" not in out.stdout
    assert "seconds: 5, 10" in out.stdout


async def test_sdk_image_file_through_wanxiang_is_a_data_url(wan) -> None:
    _, c, auth, state = wan
    ref = solid_image((1, 200, 1), size=(640, 360))
    r = await c.post(
        "/v1/videos",
        headers=auth,
        data={"prompt": "x", "model": "wan2.5-i2v-preview", "resolution": "720P"},
        files={"input_reference": ("ref.jpg", io.BytesIO(ref), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    sent = state.creates()[-1]
    assert sent["input"]["img_url"].startswith("data:image/jpeg;base64,")
    assert sent["parameters"]["resolution"] == "720P"
