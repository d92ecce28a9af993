"""What only the dashboard decides: the playground's own key, the channel credential test, the usage
chart's shape. Everything else it shows comes from the admin service, as the admin API's does.

No commits here: the request's session commits (video creation hands it back itself, see
app/videos/creation.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.schemas import UsageReport
from app.db import now
from app.errors import NotFound, PermissionDenied
from app.gateway import Gateway
from app.keys import repository as keys_repo
from app.keys import service as keys
from app.keys.models import ApiKey
from app.providers import base as pb

PLAYGROUND_OWNER = "dashboard"
PLAYGROUND_KEY_NAME = "dashboard playground"


async def playground_key(session: AsyncSession) -> ApiKey:
    """The key playground videos are made with (owner `dashboard`), created on first use; its videos count
    in usage like any other key's. An operator who disabled it has switched the playground off."""
    key = await keys_repo.first_active_of(session, PLAYGROUND_OWNER)
    if key is None:
        key, _ = await keys.create_key(session, name=PLAYGROUND_KEY_NAME, owner=PLAYGROUND_OWNER)
    if not key.enabled:
        raise PermissionDenied(
            f"The playground's API key ({key.prefix}…, owner '{PLAYGROUND_OWNER}') is disabled; enable it on Keys.",
            code="playground_disabled",
        )
    if key.last_used_at is None or now() - key.last_used_at > 60:
        key.last_used_at = now()
    return key


@dataclass(frozen=True)
class ChannelTest:
    ok: bool | None  # None: this vendor cannot be checked without creating a paid task
    message: str


async def check_channel(gw: Gateway, name: str) -> ChannelTest:
    ch = gw.registry.channels.get(name)
    if ch is None:
        raise NotFound(f"No channel named '{name}'.", param="channel", code="channel_not_found")
    if not isinstance(ch.provider, pb.ChecksCredentials):
        return ChannelTest(
            None,
            f"{ch.vendor} offers no free way to check a credential: vidgate cannot test this channel "
            "without creating a paid task. Its health column shows how its real tasks went.",
        )
    try:
        detail = await ch.provider.check_credentials()
    except pb.AuthFailed as exc:
        return ChannelTest(False, f"The vendor refused the credential: {exc.vendor_code or ''} {exc}".strip())
    except pb.ProviderError as exc:
        return ChannelTest(False, f"The check failed: {exc.vendor_code or type(exc).__name__}: {exc}")
    return ChannelTest(True, detail or "The vendor accepted the credential.")


# -- usage ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    width: float  # 0..100, share of the largest bar


def bars(values: dict[str, float]) -> list[Bar]:
    top = max(values.values(), default=0.0) or 1.0
    ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Bar(label, round(v, 6), round(100.0 * v / top, 2)) for label, v in ordered]


def per_key(report: UsageReport, field: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in report.data:
        label = r.key_name or r.api_key_id
        out[label] = out.get(label, 0.0) + float(getattr(r, field))
    return out


def per_model(report: UsageReport, field: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in report.data:
        out[r.model] = out.get(r.model, 0.0) + float(getattr(r, field))
    return out


CSV_COLUMNS = (
    "api_key_id",
    "key_name",
    "owner",
    "model",
    "tasks",
    "completed",
    "failed",
    "seconds",
    "credits_charged",
    "credits_reserved",
)


def usage_csv(report: UsageReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for r in report.data:
        row = r.model_dump()
        # a spreadsheet runs cells starting with = + - @ as formulas: names are the operator's, keep them text
        w.writerow(["'" + v if isinstance(v, str) and v[:1] in "=+-@" else v for v in (row[c] for c in CSV_COLUMNS)])
    return buf.getvalue()
