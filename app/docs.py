"""`/docs` (Swagger UI), `/redoc` and the finishing touches of `/openapi.json`.

The pages load their scripts from vidgate itself, never from a CDN, so they work on a machine without
internet access: the files are the ones the `fastapi-offline` package ships (swagger-ui-dist and the
ReDoc standalone bundle, refreshed with each of its releases), mounted under `/docs/static`.

The document states what vidgate really answers: errors are the OpenAI envelope with 400 (never FastAPI's
422 `HTTPValidationError`), 401, 403, 404, 413 and 429.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.errors import ErrorResponse

STATIC_URL = "/docs/static"
_STATIC_DIR = files("fastapi_offline") / "static"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_ERRORS = {
    "400": "Invalid request: a parameter, the body or the model (`error.param` names the field).",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The key may not do this: model or IP address not allowed, key expired.",
    "404": "No such object (another owner's id answers exactly like an unknown one).",
    "413": "The body or an uploaded file is larger than the configured limit.",
    "429": "Too many requests (see `Retry-After`) or out of quota (`insufficient_quota`).",
}
_UNUSED = ("HTTPValidationError", "ValidationError")


def install_docs(app: FastAPI) -> None:
    """Add `/docs`, `/redoc` and their static files; build `/openapi.json` with `openapi_document`.

    The app must be created with `docs_url=None, redoc_url=None`."""
    app.mount(STATIC_URL, StaticFiles(directory=str(_STATIC_DIR)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            # validatorUrl: no badge fetched from validator.swagger.io; keep the key across reloads
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    envelope = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope.pop("$defs", {}))
    schemas["ErrorResponse"] = envelope
    for operation in (op for ops in doc.get("paths", {}).values() for op in ops.values()):
        responses = operation.setdefault("responses", {})
        responses.pop("422", None)
        for status, description in _ERRORS.items():
            if status in ("401", "403") and not operation.get("security"):
                continue
            if status == "413" and "requestBody" not in operation:
                continue
            entry = responses.setdefault(status, {"description": description})
            entry.setdefault("content", {})["application/json"] = {"schema": _ERROR_REF}
    for name in _UNUSED:
        schemas.pop(name, None)
    return doc
