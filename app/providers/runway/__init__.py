"""The Runway adapter (`provider`: client, responses, errors; `body`: the per-model table and request mapping).
The registry finds it here by module name."""

from app.providers.runway.body import (
    API_VERSION,
    DEFAULT_BASE_URL,
    MODELS,
    SCHEMAS,
    Schema,
    build_body,
    duration_for,
    endpoint_for,
    extra_fields,
    image_uri,
    ratio_for,
    schema_for,
)
from app.providers.runway.provider import STATUS, RunwayAuth, RunwayProvider, error_text, map_error, snapshot

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "MODELS",
    "SCHEMAS",
    "STATUS",
    "RunwayAuth",
    "RunwayProvider",
    "Schema",
    "build_body",
    "duration_for",
    "endpoint_for",
    "error_text",
    "extra_fields",
    "image_uri",
    "map_error",
    "ratio_for",
    "schema_for",
    "snapshot",
]
