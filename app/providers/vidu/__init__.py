"""Vidu (ShengShu) adapter: the native `/ent/v2` video API.

Implements these sections of the Vidu platform docs (platform.vidu.com / platform.vidu.cn), as summarised in
/work/shared/vendors/vidu.md:
- "Text to Video", "Image to Video", "Start-End to Video", "Reference to Video" (`POST /ent/v2/<kind>`),
  with the per-endpoint model/duration/resolution/aspect-ratio matrix;
- "Get Generation" (`GET /ent/v2/tasks/{id}/creations`): `state`, `err_code`, `creations[]`;
- "Cancel Generation" (`POST /ent/v2/tasks/{id}/cancel`);
- "Error Code" (`{code, reason, message, metadata.trace_id}`) and the `Authorization: Token <key>` header.
The callback (`callback_url`) is only passed through; vidgate polls.

The package: `mapping` (capability table, pure request/response mapping), `provider` (auth, errors, HTTP).
The registry finds `ViduProvider` and `MODELS` here by module name.
"""

from app.providers.vidu.mapping import (
    ERROR_MESSAGES,
    MODELS,
    PROVIDER,
    STATUS,
    Endpoint,
    build_body,
    endpoint_for,
    snapshot,
)
from app.providers.vidu.provider import DEFAULT_BASE_URL, TokenAuth, ViduProvider, map_error

__all__ = [
    "DEFAULT_BASE_URL",
    "ERROR_MESSAGES",
    "MODELS",
    "PROVIDER",
    "STATUS",
    "Endpoint",
    "TokenAuth",
    "ViduProvider",
    "build_body",
    "endpoint_for",
    "map_error",
    "snapshot",
]
