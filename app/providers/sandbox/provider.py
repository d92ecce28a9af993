"""The built-in offline `sandbox` provider: renders real H.264 MP4s locally with PyAV.

It behaves like a remote vendor: `submit` returns a task id at once, `poll` walks the task through
queued → in_progress → completed after a configurable latency, and `download` hands over the asset.
Everything needed to finish a task after a restart lives in the task's `meta` and in `work_dir`
(the sandbox's own "vendor-side" files), so restarts lose nothing.

Client knobs in `metadata`: `sandbox_latency_ms` (generation time), `sandbox_fail` (the task ends
`failed` with that error code).

Every clip carries a caption, a label and a timecode burned into its frames. A remix, edit or extension
of a sandbox clip must show its own overlay only, so each task's `meta` records `clean_rows`, the rows
of its frames no overlay touches; a derived task copies its source's as `source_clean_rows` and renders
from that part of the source's frames only (see `drawing.clean_rows`).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from app.providers.base import (
    GenerationRequest,
    Rejected,
    TaskSnapshot,
    VendorTask,
    VideoStatus,
)
from app.providers.capabilities import ModelCaps
from app.providers.http import parse_bool
from app.providers.sandbox import drawing, render

NAME = "sandbox"
CHUNK = 1024 * 1024

MODELS: tuple[ModelCaps, ...] = (
    ModelCaps(
        name="sandbox",
        provider=NAME,
        side_range=(64, 1920),
        seconds_range=(1, 20),
        default_size=(720, 1280),
        default_seconds=4,
        image="optional",
        remix=True,
        edit=True,
        extend=True,
        max_total_seconds=120,
        audio=True,  # `metadata.audio: "true"` (or `generate_audio`) adds a sound track to a new video
        extras=frozenset({"seed", "audio", "generate_audio", "sandbox_latency_ms", "sandbox_fail"}),
        description="Offline renderer: a real H.264 MP4 showing the prompt, for development and tests.",
    ),
)


def _int(value: Any, default: int) -> int:
    try:
        return max(0, int(str(value).strip()))
    except (TypeError, ValueError):
        return default


def _truthy(value: Any) -> bool:
    """Metadata values are strings: "true", "1", "yes", "on" (any case) mean yes."""
    return parse_bool(value) is True


def _drawn_prompt(meta: dict[str, Any]) -> str:
    prompt = str(meta.get("prompt") or "")
    if meta.get("characters"):
        prompt = f"{prompt}  [with {', '.join(meta['characters'])}]"
    return prompt


def _label(op: str) -> str:
    return f"vidgate sandbox · {op}"


def _rows(value: Any) -> tuple[int, int] | None:
    try:
        top, bottom = (int(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (top, bottom)


def _own_clean_rows(meta: dict[str, Any]) -> list[int]:
    """The overlay-free rows of the clip `meta` describes, as this renderer lays its overlay out."""
    top, bottom = drawing.clean_rows(
        int(meta["width"]), int(meta["height"]), _drawn_prompt(meta), _label(str(meta.get("operation")))
    )
    return [top, bottom]


def _clean_rows_of(source_meta: dict[str, Any]) -> list[int] | None:
    """A source task's overlay-free rows: recorded at its submission, else laid out again from its meta."""
    rows = _rows(source_meta.get("clean_rows"))
    if rows is not None:
        return list(rows)
    try:
        return _own_clean_rows(source_meta)
    except (KeyError, TypeError, ValueError):
        return None


class SandboxProvider:
    name = NAME

    def __init__(
        self,
        *,
        work_dir: Path,
        latency_ms: int = 2000,
        progress_steps: int = 4,
        fps: int = 24,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.work_dir = work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.latency_ms = latency_ms
        self.progress_steps = max(1, progress_steps)
        self.fps = fps
        self.clock = clock

    async def submit(self, req: GenerationRequest) -> VendorTask:
        task_id = f"sbx_{secrets.token_hex(12)}"
        meta: dict[str, Any] = {
            "prompt": req.prompt,
            "width": req.width,
            "height": req.height,
            "seconds": req.seconds,
            "fps": self.fps,
            "operation": req.operation,
            "submitted_at": self.clock(),
            "latency_ms": _int(req.extras.get("sandbox_latency_ms"), self.latency_ms),
            "fail": str(req.extras["sandbox_fail"]) if req.extras.get("sandbox_fail") else None,
            "characters": list(req.characters),
            "seed": _int(req.extras.get("seed"), 0),
            "audio": _truthy(req.extras.get("audio", req.extras.get("generate_audio"))),
        }
        if req.image is not None:
            if req.image.data is None:
                raise Rejected(NAME, "The sandbox needs the reference image's bytes.", vendor_code="image_missing")
            (self.work_dir / f"{task_id}.img").write_bytes(req.image.data)
            meta["image"] = True
        source_rows: list[int] | None = None
        if req.operation in ("remix", "edit", "extend"):
            if req.source_video is None or not req.source_video.is_file():
                raise Rejected(NAME, "The source video is not available.", vendor_code="source_missing")
            await asyncio.to_thread(shutil.copyfile, req.source_video, self.work_dir / f"{task_id}.src.mp4")
            meta["source_seconds"] = req.source_seconds
            if req.source is not None and req.source.provider == NAME:
                source_rows = await asyncio.to_thread(_clean_rows_of, req.source.meta)
                meta["source_clean_rows"] = source_rows
        rows = await asyncio.to_thread(_own_clean_rows, meta)
        if req.operation == "extend" and source_rows is not None:
            # the extended clip starts with the source's frames: their overlay is there too
            rows = [max(rows[0], source_rows[0]), min(rows[1], source_rows[1])]
        meta["clean_rows"] = rows
        return VendorTask(provider=NAME, vendor_task_id=task_id, meta=meta)

    async def poll(self, task: VendorTask) -> TaskSnapshot:
        meta = task.meta
        latency = meta.get("latency_ms", self.latency_ms) / 1000
        elapsed = self.clock() - float(meta["submitted_at"])
        total_seconds = int(meta["seconds"]) + int(meta.get("source_seconds") or 0) * (meta["operation"] == "extend")
        if elapsed >= latency:
            if meta.get("fail"):
                return TaskSnapshot(
                    status=VideoStatus.failed,
                    progress=100,
                    error_code=meta["fail"],
                    error_message=f"Sandbox failure requested by metadata.sandbox_fail={meta['fail']!r}.",
                )
            return TaskSnapshot(
                status=VideoStatus.completed,
                progress=100,
                seconds=total_seconds,
                width=int(meta["width"]),
                height=int(meta["height"]),
            )
        step = latency / self.progress_steps
        done_steps = int(elapsed // step) if step > 0 else 0
        progress = min(99, int(100 * done_steps / self.progress_steps))
        status = VideoStatus.queued if done_steps == 0 else VideoStatus.in_progress
        next_step = (done_steps + 1) * step - elapsed
        return TaskSnapshot(status=status, progress=progress, poll_after=max(0.01, min(next_step, latency - elapsed)))

    async def download(self, task: VendorTask, snap: TaskSnapshot) -> AsyncIterator[bytes]:
        out = self.work_dir / f"{task.vendor_task_id}.out.mp4"
        await asyncio.to_thread(self._render, task, out)
        try:
            with out.open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, CHUNK):
                    yield chunk
        finally:
            out.unlink(missing_ok=True)
        self._cleanup(task.vendor_task_id)

    async def check_credentials(self) -> str | None:
        return "The sandbox needs no credential: it renders videos offline."

    async def cancel(self, task: VendorTask) -> None:
        self._cleanup(task.vendor_task_id)

    # -- internals
    def _render(self, task: VendorTask, out: Path) -> None:
        meta = task.meta
        prompt = _drawn_prompt(meta)
        src = self.work_dir / f"{task.vendor_task_id}.src.mp4"
        op = meta["operation"]
        # the part of the source's frames without its overlay (None: not a sandbox clip, use it all)
        rows = _rows(meta.get("source_clean_rows"))
        if op == "edit":
            render.edit_video(src, out, prompt=prompt, clean_rows=rows, label=_label(op))
            return
        if op == "extend":
            render.extend_video(src, out, seconds=int(meta["seconds"]), prompt=prompt, clean_rows=rows)
            return
        first: bytes | None = None
        img = self.work_dir / f"{task.vendor_task_id}.img"
        if meta.get("image") and img.is_file():
            first = img.read_bytes()
        elif op == "remix" and src.is_file():
            first = render.frame_png(src, which="first", rows=rows)
        render.render_video(
            out,
            width=int(meta["width"]),
            height=int(meta["height"]),
            seconds=int(meta["seconds"]),
            prompt=prompt,
            fps=int(meta.get("fps") or self.fps),
            first_frame=first,
            seed=int(meta.get("seed") or 0),
            label=_label(op),
            audio=bool(meta.get("audio")),
        )

    def _cleanup(self, task_id: str) -> None:
        for suffix in (".img", ".src.mp4"):
            (self.work_dir / f"{task_id}{suffix}").unlink(missing_ok=True)
