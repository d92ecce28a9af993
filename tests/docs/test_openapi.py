"""`/openapi.json` says what vidgate really answers: a bearer security scheme on every authenticated
operation (so "Authorize" in /docs works), the Video / list / deleted / error-envelope schemas of OpenAI's
spec, and 400s in the envelope instead of FastAPI's 422 `HTTPValidationError`. Real responses are
checked against those schemas."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.support.api import VIDEO_KEYS, finish

pytestmark = pytest.mark.engine  # these tests watch videos finish

ENVELOPE = {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def conforms(doc: dict[str, Any], schema: dict[str, Any], body: Any) -> None:
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


def response_schema(doc: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    return doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]


def test_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_bearer_security_on_every_authenticated_operation(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"]["type"] == "http" and schemes["ApiKeyAuth"]["scheme"] == "bearer"
    assert schemes["AdminToken"]["type"] == "http" and schemes["AdminToken"]["scheme"] == "bearer"
    for method, path, op in operations(doc):
        expected = "AdminToken" if path.startswith("/admin") else "ApiKeyAuth"
        assert op.get("security") == [{expected: []}], (method, path)
    assert any(p.startswith("/v1/videos") for p in doc["paths"])


def test_no_422_and_errors_in_the_envelope(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    assert "HTTPValidationError" not in text and '"ValidationError"' not in text
    for method, path, op in operations(doc):
        responses = op["responses"]
        assert "422" not in responses, (method, path)
        wanted = {"400", "401", "403", "404", "429"} | ({"413"} if "requestBody" in op else set())
        assert wanted <= set(responses), (method, path, sorted(responses))
        for status in wanted:
            assert responses[status]["content"]["application/json"]["schema"] == ENVELOPE, (method, path, status)
    error = doc["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"message", "type", "param", "code"}
    assert doc["components"]["schemas"]["ErrorResponse"]["required"] == ["error"]


def test_video_schemas_follow_the_spec(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    video = schemas["VideoResource"]
    assert set(video["required"]) == VIDEO_KEYS | {"quality"}  # OpenAI's 13 keys; `url` only when completed
    assert video["properties"]["object"]["const"] == "video"
    assert set(video["properties"]["status"]["enum"]) == {"queued", "in_progress", "completed", "failed"}
    assert set(schemas["VideoListResource"]["required"]) == {"object", "data", "first_id", "last_id", "has_more"}
    assert set(schemas["DeletedVideoResource"]["required"]) == {"id", "object", "deleted"}

    def ref(method: str, path: str) -> str:
        return response_schema(doc, method, path, 200)["$ref"].rsplit("/", 1)[1]

    for method, path in [
        ("post", "/v1/videos"),
        ("get", "/v1/videos/{video_id}"),
        ("post", "/v1/videos/{video_id}/remix"),
        ("post", "/v1/videos/edits"),
        ("post", "/v1/videos/extensions"),
    ]:
        assert ref(method, path) == "VideoResource", (method, path)
    assert ref("get", "/v1/videos") == "VideoListResource"
    assert ref("delete", "/v1/videos/{video_id}") == "DeletedVideoResource"
    content = doc["paths"]["/v1/videos/{video_id}/content"]["get"]["responses"]
    assert {"video/mp4", "image/webp", "image/jpeg"} <= set(content["200"]["content"])
    assert content["416"]["content"]["application/json"]["schema"] == ENVELOPE


async def test_real_responses_conform(doc: dict[str, Any], client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.post(
        "/v1/videos",
        headers=auth,
        json={"prompt": "schema", "seconds": "1", "size": "64x64", "metadata": {"sandbox_latency_ms": 0}},
    )
    conforms(doc, response_schema(doc, "post", "/v1/videos", 200), r.json())
    done = await finish(client, auth, r.json()["id"])
    assert "url" in done
    conforms(doc, response_schema(doc, "get", "/v1/videos/{video_id}", 200), done)
    failed = await client.post(
        "/v1/videos",
        headers=auth,
        json={
            "prompt": "x",
            "seconds": "1",
            "size": "64x64",
            "metadata": {"sandbox_latency_ms": 0, "sandbox_fail": "boom"},
        },
    )
    conforms(
        doc, response_schema(doc, "get", "/v1/videos/{video_id}", 200), await finish(client, auth, failed.json()["id"])
    )
    listed = await client.get("/v1/videos", headers=auth)
    conforms(doc, response_schema(doc, "get", "/v1/videos", 200), listed.json())
    deleted = await client.delete(f"/v1/videos/{done['id']}", headers=auth)
    conforms(doc, response_schema(doc, "delete", "/v1/videos/{video_id}", 200), deleted.json())

    for status, request in [
        (400, client.get("/v1/videos", params={"limit": "x"}, headers=auth)),
        (401, client.get("/v1/videos")),
        (404, client.get("/v1/videos/video_nope", headers=auth)),
    ]:
        r = await request
        assert r.status_code == status
        conforms(doc, response_schema(doc, "get", "/v1/videos", status), r.json())
