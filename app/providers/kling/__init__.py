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

Current models (issue #12). No official Kling SDK exists on PyPI (only unofficial wrappers), so these rest on
the vendor doc and on what the `search` corpora hold:
- kling-v2-6 (CONFIRMED by the vendor doc §5/§6/§10, the capability map it cites, and ComfyUI's Kling nodes):
  `model_name` in both create families, `duration` "5" | "10", std 720p / pro 1080p, `sound` "on" | "off"
  (default off) and `voice_list` (at most 2, needs sound on); sound only in pro, so `sound: "on"` forces
  `mode: "pro"`; its first+last frame is pro and silent, so a last frame with sound on is refused before the
  vendor call (`invalid_metadata`).
- kling-v3 (UNCONFIRMED for the classic API by an official page; the vendor doc marks it so): several relays
  that forward `/v1/videos/text2video` and `image2video` bodies to Kling unchanged (powertokens, mulerouter,
  midsync) and a third-party probe agree on `model_name: "kling-v3"`, `duration` any whole second "3"-"15"
  (a string), std 720p / pro 1080p, `sound` on/off in both modes, `voice_list`, and `multi_shot` (bool) /
  `shot_type` customize|intelligence / `multi_prompt` (list). Declared with those; a first+last frame is not
  forced to pro (std start-end frames are offered by the relays); the "4k" mode some pages mention is not
  declared as a size (a client may still send `metadata.mode`). cfg_scale is left out (unknown for v3).
- kling-v2-1-master and kling-v2-5-turbo were already in the table (§10); unchanged.
The house-wide `metadata.generate_audio` / `metadata.audio` booleans map to `sound` on the two sound models;
asking a silent model for sound is refused (`invalid_metadata`), `sound: off` there is dropped. Kling does not
say whether a result has sound, so snapshots leave `has_audio` unset; `final_unit_deduction` goes to
`TaskSnapshot.usage`.

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
