"""Errors that name a model: they name what the client asked for (never an alias's target), and a model
of a known vendor that is not enabled says which settings enable it (issue #10, item 12)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.main import create_app
from tests.conftest import make_settings, new_key
from tests.support.api import assert_error, finish


@asynccontextmanager
async def gateway(
    database_url: str, storage: Path, *, models: list[str] | None = None, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    app = create_app(make_settings(database_url, storage, **settings))
    async with app.router.lifespan_context(app):
        key = await new_key(app, models=models)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
            yield c, {"Authorization": f"Bearer {key}"}


class TestVendorNotEnabled:
    @pytest.mark.parametrize("model", ["wan2.5-t2v-preview", "wanx2.1-t2v-turbo", "wan2.2-i2v-flash"])
    async def test_a_seed_wanxiang_model_says_how_to_enable_the_vendor(self, client, auth, model) -> None:
        r = await client.post("/v1/videos", headers=auth, json={"prompt": "一只猫", "model": model})
        err = assert_error(r, 400, param="model", code="model_not_found")
        msg = err["message"]
        assert f"'{model}'" in msg
        assert "Aliyun Wanxiang" in msg
        assert "VIDGATE_DASHSCOPE_API_KEY" in msg
        assert "vendor: wanxiang" in msg and "VIDGATE_CONFIG" in msg
        assert "sora-2" in msg  # the models this key can use, as /v1/models shows them

    async def test_a_two_credential_vendor_names_both_settings(self, client, auth) -> None:
        r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "kling-v1-6"})
        msg = assert_error(r, 400, param="model", code="model_not_found")["message"]
        assert "VIDGATE_KLING_ACCESS_KEY" in msg and "VIDGATE_KLING_SECRET_KEY" in msg
        assert "vendor: kling" in msg

    async def test_retrieving_the_model_says_the_same(self, client, auth) -> None:
        r = await client.get("/v1/models/wan2.5-t2v-preview", headers=auth)
        msg = assert_error(r, 404, code="model_not_found")["message"]
        assert "VIDGATE_DASHSCOPE_API_KEY" in msg

    async def test_the_sandbox_when_disabled(self, database_url, tmp_path) -> None:
        async with gateway(database_url, tmp_path / "d", sandbox_enabled=False) as (c, auth):
            r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "sandbox"})
            msg = assert_error(r, 400, param="model", code="model_not_found")["message"]
            assert "VIDGATE_SANDBOX_ENABLED" in msg

    async def test_an_unknown_model_gets_no_hint(self, client, auth) -> None:
        r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "no-such-model"})
        msg = assert_error(r, 400, param="model", code="model_not_found")["message"]
        assert "VIDGATE_" not in msg and "vendor" not in msg

    async def test_the_message_does_not_tell_whether_the_vendor_is_configured(self, database_url, tmp_path) -> None:
        """A gateway whose Wanxiang channel serves other models answers exactly like one without Wanxiang."""
        cfg = tmp_path / "gw.yaml"
        channel = {
            "name": "wan",
            "vendor": "wanxiang",
            "credentials": {"api_key": "sk-x"},
            "models": ["wan2.2-t2v-plus"],
        }
        cfg.write_text(yaml.safe_dump({"channels": [channel]}))
        body = {"prompt": "x", "model": "wan2.5-t2v-preview"}
        messages = []
        for i, extra in enumerate([{}, {"config": cfg}]):
            async with gateway(database_url, tmp_path / f"d{i}", models=["sandbox"], **extra) as (c, auth):
                r = await c.post("/v1/videos", headers=auth, json=body)
                messages.append(assert_error(r, 400, param="model", code="model_not_found")["message"])
        assert messages[0] == messages[1]
        assert "wan2.2-t2v-plus" not in messages[1]


async def test_an_operator_giving_a_key_a_model_of_a_vendor_that_is_off_is_told_how_to_enable_it(
    database_url, tmp_path
) -> None:
    async with gateway(database_url, tmp_path / "d", admin_token="admin-token") as (c, _):
        r = await c.post(
            "/admin/keys",
            headers={"Authorization": "Bearer admin-token"},
            json={"name": "k", "models": ["sora-2", "wan2.5-t2v-preview"]},
        )
        msg = assert_error(r, 400, param="models", code="model_not_found")["message"]
        assert "wan2.5-t2v-preview" in msg and "VIDGATE_DASHSCOPE_API_KEY" in msg


class TestAliasErrorsNameTheRequestedModel:
    """`sora-2` is an alias of `sandbox` in the default setup: errors say `sora-2`."""

    @pytest.mark.parametrize(
        ("field", "value"), [("size", "1281x720"), ("size", "4000x4000"), ("seconds", "60"), ("size", "4k")]
    )
    async def test_capability_errors(self, client, auth, field, value) -> None:
        r = await client.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "sora-2", field: value})
        msg = assert_error(r, 400, param=field)["message"]
        assert "'sora-2'" in msg and "sandbox" not in msg

    @pytest.mark.engine
    async def test_extend_segment_and_total(self, client, auth) -> None:
        r = await client.post(
            "/v1/videos",
            headers=auth,
            json={
                "prompt": "x",
                "model": "sora-2",
                "seconds": "1",
                "size": "64x64",
                "metadata": {"sandbox_latency_ms": 0},
            },
        )
        assert r.status_code == 200, r.text
        vid = (await finish(client, auth, r.json()["id"]))["id"]
        r = await client.post(
            "/v1/videos/extensions", headers=auth, json={"video": {"id": vid}, "prompt": "y", "seconds": "60"}
        )
        msg = assert_error(r, 400, param="seconds")["message"]
        assert "'sora-2'" in msg and "sandbox" not in msg

    async def test_key_permission_error(self, database_url, tmp_path) -> None:
        async with gateway(database_url, tmp_path / "d", models=["sandbox"]) as (c, auth):
            r = await c.post("/v1/videos", headers=auth, json={"prompt": "x", "model": "sora-2"})
            msg = assert_error(r, 403, param="model", code="model_not_allowed")["message"]
            assert "'sora-2'" in msg
