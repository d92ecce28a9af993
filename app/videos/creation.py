"""Creating a video from a request: answer an Idempotency-Key replay, or draft the task and hand it to
`submission`.

Commits: the request's session is handed to `submission`, which stores the task in its transaction (with
the request's writes so far, such as the key's last use) and commits it there, before any vendor is
asked: one commit where there were two. Submission's later steps commit in short sessions of their own,
and requests that each hold one pooled connection while waiting for a second deadlock the pool; so the
request's connection has gone back by then. This is the one commit of the request's session outside
`get_session`, and it is submission's.
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
    row = await submission.submit_draft(gw, key, draft, session=session)  # commits it (module docstring)
    return row, row.id != draft.video.id
