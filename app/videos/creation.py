"""Creating a video from a request: answer an Idempotency-Key replay, or draft the task and hand it to
`submission`.

Commits: `create` commits the request's session before the hand-off (the request's writes so far, such as
the key's last use, are kept). Submission commits in short sessions of its own, and requests that each
hold one pooled connection while waiting for a second deadlock the pool; so the request's connection goes
back first. This is the one commit on the request path outside `submission`, whose hand-off it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from app.gateway import Gateway
from app.keys.models import ApiKey
from app.videos import idempotency, reads, submission
from app.videos.drafts import Draft
from app.videos.models import Video
from app.videos.parsing import ParsedBody


async def create(
    gw: Gateway,
    session: AsyncSession,
    key: ApiKey,
    body: ParsedBody,
    *,
    idempotency_key: str | None,
    path: str,
    make_draft: Callable[[ParsedBody], Awaitable[Draft]],
) -> tuple[Video, bool]:
    """The video this request created, or the one an earlier request with the same Idempotency-Key made;
    and whether it is that replay."""
    claim = await idempotency.claim(idempotency_key, path, body)
    if claim is not None and (earlier := await idempotency.replay(session, key, claim)) is not None:
        return await reads.get_video(session, key, earlier), True
    draft = await make_draft(body)
    draft.idempotency = claim
    await session.commit()  # hand the request's connection back (see the module docstring)
    row = await submission.submit_draft(gw, key, draft)
    return row, row.id != draft.video.id
