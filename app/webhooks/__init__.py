"""Client webhooks: OpenAI's `video.completed` / `video.failed` events, signed the Standard Webhooks way.

`service.enqueue_video_event` writes one delivery row per matching endpoint in the task engine's own
transaction; `dispatcher.WebhookDispatcher` sends them from its own loop; `router` is the admin API.
"""
