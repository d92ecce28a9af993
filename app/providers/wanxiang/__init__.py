"""Alibaba Cloud Model Studio / DashScope: Tongyi Wanxiang ("Wan") and HappyHorse video generation, native async API.

Implements /work/shared/vendors/wanxiang.md: §2 auth and headers (Bearer key, `X-DashScope-Async`, optional
workspace), §3 endpoints (the `video-generation` create path for t2v/i2v/r2v, the `image2video` path for kf2v,
task query, cancel), §4 request body (`input` / `parameters`), §5 per-model capability matrix, §6 create
responses, §7 task query (`task_status`, `video_url`, `usage`), §8 cancel and §9 error codes. The speech-to-video
model (`wan2.2-s2v`) stays out of scope.

Newer models (the vendor doc's §4.1 left them out; added here). Confirmed from the official DashScope Python SDK
(`dashscope` 2.0.2 on PyPI: `dashscope/aigc/video_synthesis.py`, `dashscope/v2/resources/videos.py`,
`dashscope/examples/legacy_1x/video_synthesis.py`) and Alibaba's own pages (alibabacloud.com/help
"Text-to-video 2.7" / "Image-to-video 2.7" guides and API references, platform.qianwenai.com wan2.7 create-task,
help.aliyun.com wan-video-to-video-api-reference, the Bailian console's wan2.6-r2v curl sample):
- every model creates on the same `video-generation/video-synthesis` path (SDK `SERVICE`); only `kf2v` names
  route to `image2video` (SDK `if "kf2v" in model`);
- two request protocols, picked by model name (SDK `videos.py`): "legacy" (wan2.6 and older: `input.img_url`,
  `parameters.size` "W*H" or `resolution`) and "media" (wan2.7: `input.media[]` of `{type, url}` with types
  first_frame / last_frame / driving_audio / first_clip for wan2.7-i2v and reference_image / reference_video
  for wan2.7-r2v, `parameters.resolution` 720P|1080P + `ratio` 16:9|9:16|1:1|4:3|3:4, no pixel size);
- wan2.7: integer durations 2-15 s (official guides), audio made automatically unless an audio file drives it
  (t2v `input.audio_url`, i2v a `driving_audio` item), `negative_prompt` in `input`, no `shot_type`;
  wan2.7-r2v allows at most 10 s when a reference video is given (the adapter caps `duration` at 10 then, as
  the Vidu adapter does for its per-endpoint limits);
- wan2.6: legacy protocol with `parameters.audio` (bool), `input.audio_url`, `parameters.shot_type`
  single|multi; wan2.6-r2v takes `input.reference_video_urls` (console sample; the SDK example sends
  `reference_urls`, both accepted from metadata) with `size` "W*H"; 720P and 1080P tiers only.
UNCONFIRMED, with the choice made:
- wan2.6-t2v / wan2.6-i2v durations: third-party mirrors say 5/10/15, others (and one official guide for the
  whole family) "integers 2-15"; declared (5, 10, 15), which both readings accept. wan2.6-i2v-flash: 2-15
  (console form schema and several mirrors). wan2.6-r2v: 5/10 (mirrors only); its default size 1280x720 is
  the console sample's.
- whether `data:` URIs are accepted inside `media[]` (the 2.7 docs say "public HTTP/HTTPS or OSS URL"): an image
  we hold only as bytes is still sent as a data URI, as for the legacy fields; the vendor rejects it if not.
- HappyHorse (`happyhorse-1.0-t2v`, `-i2v`, `-r2v`): no official Alibaba page was found, only relays that
  mirror the DashScope protocol (same path; media first_frame / reference_image; resolution 720P|1080P; ratio
  for t2v and r2v; duration 3-15; `watermark` default true). Declared from those, with `audio=False` because
  no source says it makes sound.
- `parameters.audio` on wan2.7 (the SDK example sends `audio=True`, the API reference does not list it):
  not declared; a client's metadata still passes through.
Usage: the `usage` numbers DashScope reports (`video_duration`/`duration`, `video_count`, `SR`, ...) go to
`TaskSnapshot.usage`. Crash recovery: the create body has no field for a client reference and the task
list filters only by time, model and status, so a task cannot be found again by vidgate's id (no
`recover`). No vendor callbacks.

The package: `models` (capability table, kinds, protocols), `mapping` (pure request/response mapping),
`provider` (auth, errors, HTTP). The registry finds `WanxiangProvider` and `MODELS` here by module name.
"""

from app.providers.wanxiang.mapping import POLL_INTERVAL, STATUS, build_body, snapshot
from app.providers.wanxiang.models import MODELS, PROVIDER, RATIO_OF, SIZE_CLASS, TIERS, kind_of, protocol_of
from app.providers.wanxiang.provider import CREATE_PATHS, DEFAULT_BASE_URL, DashScopeAuth, WanxiangProvider, map_error

__all__ = [
    "CREATE_PATHS",
    "DEFAULT_BASE_URL",
    "MODELS",
    "POLL_INTERVAL",
    "PROVIDER",
    "RATIO_OF",
    "SIZE_CLASS",
    "STATUS",
    "TIERS",
    "DashScopeAuth",
    "WanxiangProvider",
    "build_body",
    "kind_of",
    "map_error",
    "protocol_of",
    "snapshot",
]
