"""Kling AI (Kuaishou) classic task API adapter.

Implements /work/shared/vendors/kling.md:
- §2.1 AK/SK → HS256 JWT (`KlingAuth`, cached until shortly before expiry, re-minted once on 1003/1004);
- §3 / §3.1 response envelope and error codes (`map_error`; a non-zero `code` is an error even on HTTP 200);
- §4, §5, §6 create on `/v1/videos/text2video` or `/v1/videos/image2video` (`build_body`);
- §7.1 query by `task_id` or `external_task_id` (`poll`, `find_by_external_id`, `snapshot`, `STATUS`);
- §10 models (`MODELS`).
Video extension (`POST /v1/videos/video-extend`, body `video_id` + prompt / negative_prompt / cfg_scale) is
not in the vendor doc; it follows the copy of the official page in WHQ25/rawgenai
`docs/research/kling/video-extend.md` and the capability map (续写: kling-v1 and kling-v1-6).

The package: `models` (the capability table), `mapping` (pure request/response mapping), `provider` (auth,
errors, HTTP). The registry finds `KlingProvider` and `MODELS` here by module name.
"""

from app.providers.kling.mapping import (
    STATUS,
    build_body,
    build_extend_body,
    coerce_extras,
    duration_for,
    family_for,
    image_value,
    snapshot,
)
from app.providers.kling.models import EXTEND, FAMILIES, I2V, MODELS, PROVIDER, T2V
from app.providers.kling.provider import DEFAULT_BASE_URL, KlingAuth, KlingProvider, map_error

__all__ = [
    "DEFAULT_BASE_URL",
    "EXTEND",
    "FAMILIES",
    "I2V",
    "MODELS",
    "PROVIDER",
    "STATUS",
    "T2V",
    "KlingAuth",
    "KlingProvider",
    "build_body",
    "build_extend_body",
    "coerce_extras",
    "duration_for",
    "family_for",
    "image_value",
    "map_error",
    "snapshot",
]
