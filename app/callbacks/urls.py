"""The URL a vendor calls back for a task: `{public base}/callbacks/{vendor}/{video_id}/{token}`.

Apart from the router so that task submission can name it without importing a router."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.callbacks.verify import callback_token
from app.providers.vendors import VENDORS

if TYPE_CHECKING:
    from app.gateway import Gateway

SUPPORTED = tuple(name for name, spec in VENDORS.items() if spec.callback is not None)


def callback_url(gw: Gateway, vendor: str, video_id: str) -> str | None:
    base = gw.base_url()
    if base is None or vendor not in SUPPORTED:
        return None
    return f"{base}/callbacks/{vendor}/{video_id}/{callback_token(gw.signer.secret, video_id)}"
