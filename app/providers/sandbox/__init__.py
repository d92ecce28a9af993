"""The built-in offline `sandbox` provider (`provider`), which renders real H.264 MP4s locally (`render`,
drawing its captions with `drawing` and `fonts`). The registry finds it here by module name."""

from app.providers.sandbox.provider import CHUNK, MODELS, NAME, SandboxProvider

__all__ = ["CHUNK", "MODELS", "NAME", "SandboxProvider"]
