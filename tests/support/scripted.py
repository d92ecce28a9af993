"""A scripted provider and a rig that runs the task engine one step at a time against it.

`ScriptedProvider` implements the provider Protocol (name, submit, poll, download): each call takes the
next answer of its script (the last answer repeats), where an answer is a value, an exception to raise,
or an async callable (to pause, look at the database, or crash mid-call). It also keeps what the vendor
side would know: every request it accepted, by our task id, so `Recoverable` can find it again.

`Rig` is a gateway with no engine loop running: tests drive `TaskEngine.run_once()` themselves, make a
row due when they want the next step, and read rows back through a session. The few imports of modules
the redesign moves (the engine, drafts) are in this file only.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from app.channels import service as channels
from app.config import Settings
from app.gateway import Gateway
from app.keys.models import ApiKey
from app.keys.service import create_key
from app.main import create_app
from app.providers import base as pb
from app.providers.capabilities import ModelCaps
from app.providers.registry import Channel, fingerprint
from app.videos import drafts, submission
from app.videos.engine import MAX_DOWNLOAD_ATTEMPTS, MAX_SUBMIT_ATTEMPTS, TaskEngine
from app.videos.models import Video
from app.videos.parsing import ParsedBody
from tests.conftest import make_settings
from tests.fakes.assets import real_mp4

__all__ = ["MAX_DOWNLOAD_ATTEMPTS", "MAX_SUBMIT_ATTEMPTS", "TaskEngine"]

MODEL = "scripted-video-1"
VENDOR = "scripted"
# what the scripted vendor renders unless told otherwise: 96x64, 16 frames at 8 fps = 2 seconds
CLIP = real_mp4(frames=16, width=96, height=64, fps=8, noise=False)


class Crash(BaseException):
    """The process dies here: nothing in the gateway catches it (like SIGKILL between two statements)."""


class AcceptThenCrash:
    """A submit answer: the vendor creates the task, then the gateway dies before it hears the id."""


Answer = Any  # a value, an exception instance, or an async callable taking the call's argument


def snap(status: str, progress: int | None = None, **kw: Any) -> pb.TaskSnapshot:
    return pb.TaskSnapshot(status=pb.VideoStatus(status), progress=progress, **kw)


def unavailable(message: str = "502 Bad Gateway", **kw: Any) -> pb.Unavailable:
    return pb.Unavailable(VENDOR, message, status_code=502, **kw)


class ScriptedProvider:
    """The provider Protocol with answers scripted per call."""

    def __init__(
        self,
        name: str = VENDOR,
        *,
        submits: list[Answer] | None = None,
        polls: list[Answer] | None = None,
        downloads: list[Answer] | None = None,
    ) -> None:
        self.name = name
        self.script: dict[str, list[Answer]] = {
            "submit": list(submits or [None]),  # None: accept with a fresh vendor id
            "poll": list(polls or [snap("in_progress", 10)]),
            "download": list(downloads or [CLIP]),
        }
        self.submitted: list[pb.GenerationRequest] = []
        self.polled: list[pb.VendorTask] = []
        self.downloaded: list[pb.VendorTask] = []
        self.accepted: dict[str, pb.VendorTask] = {}  # our task id -> the vendor's task (the vendor's memory)

    async def _answer(self, kind: str, arg: Any) -> Any:
        script = self.script[kind]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if callable(answer) and not isinstance(answer, type):
            answer = await answer(arg)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _accept(self, req: pb.GenerationRequest) -> pb.VendorTask:
        task = pb.VendorTask(self.name, f"{self.name}-task-{len(self.accepted) + 1}", {"echo": req.task_id})
        self.accepted[req.task_id] = task
        return task

    async def submit(self, req: pb.GenerationRequest) -> pb.VendorTask:
        self.submitted.append(req)
        answer = await self._answer("submit", req)
        if isinstance(answer, AcceptThenCrash):
            self._accept(req)
            raise Crash
        if answer is None:
            return self._accept(req)
        return answer  # type: ignore[no-any-return]

    async def poll(self, task: pb.VendorTask) -> pb.TaskSnapshot:
        self.polled.append(task)
        return await self._answer("poll", task)  # type: ignore[no-any-return]

    async def download(self, task: pb.VendorTask, snap: pb.TaskSnapshot) -> AsyncIterator[bytes]:
        self.downloaded.append(task)
        data: bytes = await self._answer("download", task)
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]


class RecoverableProvider(ScriptedProvider):
    """Also `Recoverable`: finds a task it accepted by our own id (as Kling does by external_task_id)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.recovered: list[str] = []

    async def recover(self, req: pb.GenerationRequest) -> pb.VendorTask | None:
        self.recovered.append(req.task_id)
        return self.accepted.get(req.task_id)


class VariantProvider(ScriptedProvider):
    """Also `ServesVariants`: answers its own thumbnail / spritesheet with `variants[name]`."""

    def __init__(self, *args: Any, variants: dict[str, bytes], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.variants = variants
        self.variant_requests: list[str] = []

    async def download_variant(self, task: pb.VendorTask, variant: str) -> AsyncIterator[bytes]:
        self.variant_requests.append(variant)
        yield self.variants[variant]


def scripted_channel(
    provider: ScriptedProvider, *, name: str | None = None, priority: int = 0, fetch_variants: bool = False
) -> Channel:
    name = name or provider.name
    tag = uuid.uuid4().hex[:8]  # fingerprints unique per test (channel health lives in the database)
    return Channel(
        name=name,
        vendor=VENDOR,
        provider=provider,  # type: ignore[arg-type]
        models={MODEL: ModelCaps(name=MODEL, provider=VENDOR)},
        image_transport="either",
        fingerprint=fingerprint(VENDOR, f"scripted://{name}-{tag}", {}),
        base_url=f"scripted://{name}-{tag}",
        priority=priority,
        fetch_variants=fetch_variants,
    )


@dataclass
class Rig:
    gw: Gateway
    app: Any
    engine: TaskEngine
    key: ApiKey
    secret: str
    channels: list[Channel] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    async def draft(self, *, prompt: str = "a red fox", size: str = "128x128", seconds: int = 4) -> Any:
        body = ParsedBody(
            fields={"prompt": prompt, "model": MODEL, "size": size, "seconds": str(seconds)}, files={}, encoding="json"
        )
        async with self.gw.sessionmaker() as s:
            return await drafts.draft_create(self.gw, s, self.key, body)

    async def create(self, **kw: Any) -> Video:
        """What POST /v1/videos does after parsing: draft, then submit (store, hand to a channel)."""
        return await submission.submit_draft(self.gw, self.key, await self.draft(**kw))

    async def row(self, video_id: str) -> Video | None:
        async with self.gw.sessionmaker() as s:
            return await s.get(Video, video_id)

    async def video(self, video_id: str) -> Video:
        row = await self.row(video_id)
        assert row is not None, f"{video_id} is not stored"
        return row

    async def count(self) -> int:
        from sqlalchemy import func, select

        async with self.gw.sessionmaker() as s:
            return int((await s.execute(select(func.count()).select_from(Video))).scalar_one())

    async def used(self) -> float:
        async with self.gw.sessionmaker() as s:
            key = await s.get(ApiKey, self.key.id)
            assert key is not None
            return float(key.used_credits)

    async def write(self, video_id: str, **values: Any) -> None:
        """A test-side write (another worker's claim, an expired lease, the passing of time)."""
        async with self.gw.sessionmaker() as s:
            await s.execute(update(Video).where(Video.id == video_id).values(**values))
            await s.commit()

    async def make_due(self, video_id: str) -> None:
        """Bring the next poll forward to now: time passes at the test's pace, never by sleeping."""
        await self.write(video_id, next_poll_at=time.time() - 0.001)

    async def step(self, video_id: str | None = None) -> int:
        """One engine tick and the work it started; with `video_id`, that row is made due first."""
        if video_id is not None:
            await self.make_due(video_id)
        claimed = await self.engine.run_once()
        await self.engine.drain()
        assert video_id is None or claimed == 1, f"{claimed} rows claimed, expected {video_id} alone"
        return claimed

    async def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")


@contextlib.asynccontextmanager
async def rig(
    database_url: str,
    storage: Path,
    *providers: ScriptedProvider | tuple[ScriptedProvider, int],
    prices: dict[str, Any] | None = None,
    key_limits: dict[str, Any] | None = None,
    fetch_variants: bool | None = None,
    **settings: Any,
) -> AsyncIterator[Rig]:
    """A gateway serving MODEL through one channel per provider (with a priority when given as a pair).
    `fetch_variants`: the channels' setting (default: on for a VariantProvider)."""
    # rows become due when a test says so (make_due), not because a poll interval passed while it ran
    values: dict[str, Any] = {"run_engine": False, "sandbox_enabled": False, "poll_interval_ms": 60_000, **settings}
    conf: Settings = make_settings(database_url, storage, **values)
    app = create_app(conf)
    async with app.router.lifespan_context(app):
        gw: Gateway = app.state.gateway
        chans = []
        for p in providers:
            provider, priority = p if isinstance(p, tuple) else (p, 0)
            chans.append(
                scripted_channel(
                    provider,
                    priority=priority,
                    fetch_variants=isinstance(provider, VariantProvider) if fetch_variants is None else fetch_variants,
                )
            )
            gw.registry.add(chans[-1])
        gw.registry.prices = dict(prices or {})
        await channels.sync(gw)  # as at start-up: the channels' records (health, credentials)
        async with gw.sessionmaker() as s:
            key, secret = await create_key(s, name="scripted", **(key_limits or {}))
            await s.commit()
        engine = TaskEngine(gw)  # not started: the tests tick it
        yield Rig(gw=gw, app=app, engine=engine, key=key, secret=secret, channels=chans)
        await engine.drain()
