"""`/v1/models`: the models (and aliases) the calling key may use, in OpenAI's models-list shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import ApiKeyDep, GatewayDep
from app.providers.registry import enable_hint
from app.videos.drafts import available_models, unknown_model_message

router = APIRouter(prefix="/v1", tags=["models"])


def _model(gw: GatewayDep, name: str) -> dict[str, Any]:
    route = gw.registry.resolve(name)
    owner = route.caps.provider if route else "vidgate"
    card: dict[str, Any] = {"id": name, "object": "model", "created": gw.registry.created, "owned_by": owner}
    if route is not None:
        card["capabilities"] = route.caps.summary()  # an extra field: the SDKs keep it, others ignore it
    return card


@router.get("/models", summary="List models")
async def list_models(gw: GatewayDep, key: ApiKeyDep) -> dict[str, Any]:
    return {"object": "list", "data": [_model(gw, n) for n in available_models(gw, key)]}


@router.get("/models/{model_id}", summary="Retrieve a model")
async def get_model(model_id: str, gw: GatewayDep, key: ApiKeyDep) -> dict[str, Any]:
    from app.errors import NotFound

    if model_id not in available_models(gw, key):
        message = f"The model '{model_id}' does not exist."
        if gw.registry.resolve(model_id) is None and enable_hint(model_id) is not None:
            message = unknown_model_message(gw, key, model_id)  # say how to enable its vendor, as create does
        raise NotFound(message, param="model", code="model_not_found")
    return _model(gw, model_id)
