"""ByteDance Seedance via Volcengine Ark (China) or BytePlus ModelArk (international): the async
content-generation task API.

Implements /work/shared/vendors/seedance.md: §1 base URLs and the two model-id families, §2 the
`Authorization: Bearer <ARK API key>` header, §3 endpoints (create, get, delete), §4 the create body
(top-level fields and `content[]` items with roles), §5 the per-model matrix and the pixel table, §7 task
states and fields (`content.video_url`, `usage`), §8 delete (our `cancel`), §9 `callback_url`, §10 errors.
Field names and enums are checked against the official SDK (`volcengine-ark-runtime` 5.0.54,
`resources/content_generation/tasks.py`, `types/content_generation/*`).

Layout: `catalog` (models, sizes, pixels, platform ids), `mapping` (pure request/response/error
translation), `provider` (auth and transport).

Choices on UNCONFIRMED or open points (and why):
- Parameters go as top-level body fields (`resolution`, `ratio`, `duration`, ...), never as `--rs/--rt/--dur`
  text commands: the SDK's `create()` has exactly these fields and the docs call the body form strictly
  validated. The prompt is sent untouched (a client's own `--dur 5` stays in the text; which wins is
  UNCONFIRMED, the body field is assumed to).
- Sizes: the capability table lists one nominal size per (resolution, ratio): OpenAI-like 16:9 / 9:16 sizes
  (854x480, 1280x720, 1920x1080, ...) and Seedance's 1.5 / 2.0 pixels for 1:1, 4:3, 3:4 and 21:9 (§5.2, §5.3).
  The reported width/height of a finished task come from §5.3 for the model's family.
- With a first frame the ratio is `adaptive` (the image-to-video default: the output follows the image); with
  reference images it is the ratio of the requested size (1.0 lite refuses `adaptive` there). 1.0 lite in
  reference mode is capped at 720p (§4.1).
- Images: bytes go inline as `data:image/<fmt>;base64,` (Ark takes data URIs, so Ark never has to reach
  vidgate); a client's URL is passed as-is. A single first frame still carries `role:"first_frame"`.
- `metadata` keys (the new-api convention, §4.1) become top-level fields, only those the model's
  `ModelCaps.extras` declares (unknown top-level fields being ignored by Ark is UNCONFIRMED, so nothing
  undeclared is sent); multipart strings are coerced; `model`, `content` and the prompt cannot be set there.
  `audio` is an alias of `generate_audio`. `reference_images` / `reference_videos` / `reference_audios`
  (lists of URLs) become `content[]` items with roles `reference_image` / `reference_video` /
  `reference_audio`; `draft_task_id` (1.5 pro) sends only a `draft_task` item. `frames` (1.0) replaces
  `duration` (they are mutually exclusive). `draft: true` (1.5 pro) sends `480p`, the only draft resolution.
- `generate_audio` is sent only when the client asks (its default is `true` per the doc, `false` per some third
  parties: UNCONFIRMED); `has_audio` of a snapshot comes from the task's `generate_audio` echo.
- Model ids: a `doubao-seedance-*` id sent to a BytePlus host (`*.bytepluses.com`) is renamed to its BytePlus id
  (`seedance-*`, 2.0 as `dreamina-seedance-*`) and the reverse on a Volcengine host (`*.volces.com`); on any
  other host (a proxy, a fake) the id is sent as the client wrote it. Both families are in the catalog.
  Inference endpoint ids (`ep-...`) are not in the catalog (the catalog is fixed).
- States: `queued` → queued; `running` → in_progress with a time-based synthetic progress (Ark reports none);
  `succeeded` → completed; `failed` → failed with the task's `error.code`; `cancelled` / `expired` → failed
  with codes `cancelled` / `expired`. Unknown states (new-api also saw `pending`, `processing`) are logged and
  polled again.
- Errors: input-moderation codes (`SensitiveContentDetected*`, `Input*SensitiveContentDetected*`,
  `Input*RiskDetection`) at create are `Rejected` with code `moderation_blocked` (the Ark code stays in the
  message); the same code in a failed task stays the task's code. 401 and 403 `AccessDenied` are AuthFailed;
  403 `AccountOverdueError` and 429 `QuotaExceeded` / `SetLimitExceeded` are balance/quota problems waiting
  does not fix, so `Rejected` (as the other adapters treat balance); other 429s are RateLimited with
  `Retry-After`; `ServerOverloaded`, `ModelLoadingError`, `InvalidEndpoint.ClosedEndpoint`,
  `ContentSecurityDetectionError` and 5xx are Unavailable; a 404 on a task is NotFoundAtVendor.
- `usage.completion_tokens` / `total_tokens` are reported as the snapshot's usage (Ark bills output tokens).
- Callbacks: `extras["callback_url"]` (vidgate's per-task URL, or the client's own) is sent as `callback_url`;
  Ark signs nothing, so the vendor row uses the "token" scheme and a callback only makes the engine poll.
- No crash recovery (`Recoverable`): Ark's task list filters only by status, task ids, model and service tier
  (SDK `tasks.list`), and a task carries no client reference that vidgate sets (the `safety_identifier`
  field is an end-user id for abuse monitoring, not a correlation key). Matching recent tasks by model and
  time could adopt another request's task, which is worse than a duplicate.
- `cancel` is `DELETE .../tasks/{id}`: it cancels a queued task or deletes a finished record; a 404 is fine.
"""

from app.providers.seedance.catalog import (
    BYTEPLUS_BASE_URL,
    DEFAULT_BASE_URL,
    MODELS,
    NOMINAL,
    PROVIDER,
    family,
    output_pixels,
    platform_model,
    size_params,
)
from app.providers.seedance.mapping import (
    STATUS,
    build_body,
    coerce,
    content_items,
    map_error,
    running_progress,
    snapshot,
)
from app.providers.seedance.provider import ArkAuth, SeedanceProvider

__all__ = [
    "BYTEPLUS_BASE_URL",
    "DEFAULT_BASE_URL",
    "MODELS",
    "NOMINAL",
    "PROVIDER",
    "STATUS",
    "ArkAuth",
    "SeedanceProvider",
    "build_body",
    "coerce",
    "content_items",
    "family",
    "map_error",
    "output_pixels",
    "platform_model",
    "running_progress",
    "size_params",
    "snapshot",
]
