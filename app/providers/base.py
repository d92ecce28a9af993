"""The provider seam: one small Protocol (plus optional ones), provider-neutral values, the ProviderError tree.

Vendor modules import this module, `app.providers.http`, httpx, pydantic and their auth library only.
They never see OpenAI schemas, the database or FastAPI: the videos service turns OpenAI parameters
into a `GenerationRequest` after checking the model's capabilities, and turns `ProviderError` into an
HTTP error in one place.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable


class VideoStatus(StrEnum):
    queued = "queued"
    in_progress = "in_progress"
    completed = "completed"
    failed = "failed"


TERMINAL = frozenset({VideoStatus.completed, VideoStatus.failed})

Operation = Literal["create", "remix", "edit", "extend"]


@dataclass(frozen=True)
class ImageInput:
    """A reference image: raw bytes (uploaded or a decoded data URL) and/or a public URL.

    `url` is an http(s) URL a vendor can fetch itself; when the client uploaded bytes and the vendor
    needs a URL, the service fills `url` with a signed, expiring vidgate link.
    """

    data: bytes | None = None
    mime: str | None = None
    url: str | None = None

    def b64(self) -> str:
        if self.data is None:
            raise ValueError("image has no bytes")
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.mime or 'image/png'};base64,{self.b64()}"


@dataclass(frozen=True)
class VendorTask:
    """What a provider needs to find its task again: the vendor's id plus a small JSON echo.

    `meta` is stored verbatim in the task row (JSON); adapters keep there whatever poll/download
    need later (the endpoint kind a task was created on, the model, a sandbox's render recipe...).
    """

    provider: str
    vendor_task_id: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationRequest:
    """A provider-neutral generation request, already validated against the model's capabilities."""

    task_id: str  # vidgate's own id (video_...), usable as an idempotency/external id
    model: str  # the vendor's model name (aliases already resolved)
    prompt: str
    width: int
    height: int
    seconds: int
    operation: Operation = "create"
    image: ImageInput | None = None  # first frame / reference
    last_frame: ImageInput | None = None  # tail frame, for keyframe models
    extras: dict[str, Any] = field(default_factory=dict)  # client metadata passed through
    characters: tuple[str, ...] = ()  # character names to include (OpenAI characters API)
    # remix / edit / extend: the source task (same provider) and/or a local copy of its video
    source: VendorTask | None = None
    source_video: Path | None = None
    source_seconds: int | None = None

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class TaskSnapshot:
    """One observation of a vendor task."""

    status: VideoStatus
    progress: int | None = None
    video_url: str | None = None  # where download() fetches the asset from
    error_code: str | None = None
    error_message: str | None = None
    # what was actually produced, when the vendor says so
    seconds: int | None = None
    width: int | None = None
    height: int | None = None
    # a hint for when to look again (seconds from now); None → the engine's own backoff
    poll_after: float | None = None
    # the vendor's estimate of the seconds the task still needs (its own ETA, or one its progress and
    # creation time imply); the engine looks again about then instead of at its flat interval
    eta: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # provider-private, e.g. recipe for download
    # what the vendor bills, in its own units, when it says so (e.g. Seedance {"completion_tokens": 108900});
    # a price per unit in the price table charges these instead of seconds
    usage: dict[str, float] = field(default_factory=dict)
    has_audio: bool | None = None  # the vendor says the result has (or lacks) a sound track


@runtime_checkable
class VideoProvider(Protocol):
    """Three methods every vendor has. `download` streams the finished asset (auth included)."""

    name: str

    async def submit(self, req: GenerationRequest) -> VendorTask: ...

    async def poll(self, task: VendorTask) -> TaskSnapshot: ...

    def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]: ...


# Optional abilities: the engine checks them with `isinstance`, so a provider has them or does not.


@runtime_checkable
class Recoverable(Protocol):
    """Finds the task a crash between submit and commit may have created already (by our own id)."""

    async def recover(self, req: GenerationRequest) -> VendorTask | None: ...


@runtime_checkable
class ServesVariants(Protocol):
    """Serves its own thumbnail / spritesheet; the engine derives them from the video otherwise."""

    def download_variant(self, task: VendorTask, variant: str) -> AsyncIterator[bytes]: ...


@runtime_checkable
class Cancellable(Protocol):
    """Can drop a task and whatever it holds for it (the engine calls it after giving up a download)."""

    async def cancel(self, task: VendorTask) -> None: ...


@runtime_checkable
class ChecksCredentials(Protocol):
    """Can check its credential against the vendor without creating a paid task (the dashboard's Test).
    Returns a short human note; raises AuthFailed (or another ProviderError) when the check fails."""

    async def check_credentials(self) -> str | None: ...


# ---------------------------------------------------------------------------------------------
# Errors raised by adapters. The videos service maps them to HTTP errors in one function.


class ProviderError(Exception):
    def __init__(
        self,
        provider: str,
        message: str,
        *,
        vendor_code: str | None = None,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.message = message
        self.vendor_code = vendor_code
        self.retry_after = retry_after
        self.status_code = status_code  # the vendor's HTTP status, for logs only

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.provider!r}, {self.vendor_code!r}, {self.message!r})"


class Rejected(ProviderError):
    """A logical rejection: bad parameters, moderation, balance. Never retried elsewhere."""


class RateLimited(ProviderError):
    """The vendor asked us to slow down (HTTP 429 or a body code meaning the same)."""


class Unavailable(ProviderError):
    """5xx, transport error, timeout, unparsable body: retry later or fail over."""


class AuthFailed(ProviderError):
    """Our own credentials were refused. Reported to clients as 502, logged loudly."""


class Unsupported(ProviderError):
    """The provider cannot do this operation at all (e.g. remix)."""


class NotFoundAtVendor(ProviderError):
    """The vendor no longer knows the task (expired or never existed)."""
