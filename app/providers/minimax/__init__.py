"""MiniMax Hailuo (海螺) adapter: the native v1 video API.

Implements /work/shared/vendors/minimax.md: §1 base URLs (host root; a base ending in `/v1` is tolerated),
§2 `Authorization: Bearer <key>` on every call, §4 the flat create body (`POST /v1/video_generation`),
§5 the per-model resolution → duration matrix, §6 the task query (`GET /v1/query/video_generation?task_id=`),
§7 the file retrieve (`GET /v1/files/retrieve?file_id=` → `download_url`), §9 `callback_url` and §10 the
`base_resp.status_code` error table. The v2 API (MiniMax-H3, §12) is out of scope. MiniMax ships no official
Python SDK; the facts below come from the vendor notes, MiniMax's own API reference pages (found with the
`search` tool: the challenge echo of §9 and the 01-series duration table) and MiniMax's MCP client as the notes
quote it. `mapping` holds the capability table and the create body (pure), `provider` the response and error
tables and the client.

Flow: create → `task_id`; query until `Success` → `file_id`; then (still inside `poll`, so the engine sees
`completed` only with a URL in hand) files/retrieve → a pre-signed `download_url`, streamed without
credentials. Business errors arrive as HTTP 200 with a non-zero `base_resp.status_code`, so every body is read.

UNCONFIRMED facts and what this adapter does about them:
- Portrait text-to-video: there is no ratio field (§5.2). Models that may run text-to-video declare landscape
  sizes only (strict: a portrait size is a 400; nearest: the landscape size of the same tier). Image-only models
  also declare portrait sizes, since their output follows the image whatever the size says.
- 512P pixels (image-to-video on MiniMax-Hailuo-02 only): declared as 910x512 (16:9 of a 512 short side).
- 10 s is not offered at 1080P, which the per-model caps cannot express (they snap size and seconds apart): the
  adapter keeps the snapped duration and lowers the resolution to the nearest one that has it (1080P + 10 s →
  768P), as Vidu's adapter does for its 8-second rule; the Video reports the size really produced.
- `metadata`: the documented switches (`prompt_optimizer`, `fast_pretreatment` on Hailuo models,
  `aigc_watermark` or `watermark`, `callback_url`; `last_frame_image` on Hailuo-02, `subject_reference` on
  S2V-01). new-api's `metadata.duration` / `metadata.resolution` overrides are not honoured: `seconds` and
  `size` decide, since those are what the policy checked and the credits were reserved for.
- The 01 series with explicit `duration` / `resolution`: MiniMax's T2V/I2V reference lists 6 s at 720P for
  "other models", and new-api sends both, so both are sent (`6`, `720P`).
- Audio: none documented for these models; snapshots say `has_audio=False`.
- Unknown task / unknown file codes: a query or retrieve answering 2013 (invalid params) for a task id we
  were given is taken to mean the vendor no longer knows it (`NotFoundAtVendor`).
- 1008 (balance) is a `Rejected`, like the other adapters' balance codes; 2038 (real-name verification) is
  an operator problem and reads as `AuthFailed`; 2056 (plan window exhausted) and 2045 as `RateLimited`.
- Callback body: MiniMax first POSTs `{"challenge": …}` and must get it echoed within 3 s (the callback
  router does this for vendors whose `Callback.challenge` names the field); later posts carry the query body
  with lower-case statuses (`processing`, `success`, `failed`), which `STATUS` maps too.
- `GroupId`: current `sk-api-…` keys need none (§1), so none is sent.
- Download URLs expire (~9 h reported): each poll that sees `Success` retrieves a fresh one, and a failed
  download is retried once from `backup_download_url` when MiniMax gave one.

Crash recovery (`Recoverable`) is not offered: MiniMax has no task listing and no client reference field that
a lost `task_id` could be found by (the query takes only `task_id`). Cancel: no endpoint exists (§8).
"""

from app.providers.minimax.mapping import MATRIX, MODELS, PIXELS, PROVIDER, build_body, mode_of, resolve
from app.providers.minimax.provider import (
    DEFAULT_BASE_URL,
    ERRORS,
    PROGRESS,
    STATUS,
    MiniMaxProvider,
    map_error,
    parse_query,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ERRORS",
    "MATRIX",
    "MODELS",
    "PIXELS",
    "PROGRESS",
    "PROVIDER",
    "STATUS",
    "MiniMaxProvider",
    "build_body",
    "map_error",
    "mode_of",
    "parse_query",
    "resolve",
]
