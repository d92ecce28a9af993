"""app.readcache: LRU bounds, the no-stale-refill guard, and which rows a bulk statement touches."""

from __future__ import annotations

import time

from sqlalchemy import update

from app.readcache import KeyEntry, ReadCache, VideoEntry, _id_values
from app.videos.models import Video


def video(vid: str, body: bytes = b'{"id":"x"}') -> VideoEntry:
    return VideoEntry(
        id=vid,
        status="queued",
        unfinished=True,
        body=body,
        expires_at=None,
        assets_purged_at=None,
        claimed_until=None,
        next_poll_at=None,
        fetched=time.monotonic(),
    )


def key(kid: str) -> KeyEntry:
    return KeyEntry(
        id=kid,
        owner="o",
        prefix="sk-vg-x",
        enabled=True,
        expires_at=None,
        ip_allowlist=None,
        last_used_at=None,
        fetched=time.monotonic(),
    )


def test_lru_bounds_by_count_and_bytes() -> None:
    c = ReadCache(ttl_ms=60_000, max_videos=3, max_keys=2, max_bytes=10_000)
    for i in range(5):
        assert c.put_video("o", video(f"v{i}"), gen=c.video_gen)
    assert c.counts()["video"] == 3 and c.get_video("v0", "o") is None and c.get_video("v4", "o") is not None
    assert c.get_video("v2", "o") is not None  # v2 used: v3 is the oldest now
    c.put_video("o", video("v5"), gen=c.video_gen)
    assert c.get_video("v3", "o") is None and c.get_video("v2", "o") is not None
    big = ReadCache(ttl_ms=60_000, max_videos=1000, max_keys=2, max_bytes=5_000)
    for i in range(100):
        big.put_video("o", video(f"v{i}", b"x" * 1000), gen=big.video_gen)
    assert big.video_bytes <= 5_000 and big.counts()["video"] == 3
    for i in range(4):
        c.put_key(f"h{i}", key(f"k{i}"), gen=c.key_gen)
    assert c.counts()["key"] == 2


def test_entries_expire_after_the_ttl() -> None:
    c = ReadCache(ttl_ms=50, max_videos=3, max_keys=2, max_bytes=10_000)
    c.put_video("o", video("v"), gen=c.video_gen)
    assert c.get_video("v", "o") is not None and c.get_video("v", "other") is None
    time.sleep(0.06)
    assert c.get_video("v", "o") is None


def test_a_read_that_raced_an_invalidation_is_not_stored() -> None:
    c = ReadCache(ttl_ms=60_000, max_videos=3, max_keys=2, max_bytes=10_000)
    gen = c.video_gen
    c.invalidate_videos({"v"})  # a commit while the read was under way
    assert not c.put_video("o", video("v"), gen=gen) and c.get_video("v", "o") is None
    kgen = c.key_gen
    c.invalidate_keys()
    assert not c.put_key("h", key("k"), gen=kgen)
    c.put_video("o", video("v"), gen=c.video_gen)
    c.put_video("p", video("v"), gen=c.video_gen)
    c.invalidate_videos({"v"})  # every owner's entry of the id
    assert c.counts()["video"] == 0 and c.video_bytes == 0


def test_the_ids_of_bulk_statements() -> None:
    t = Video.__table__
    assert _id_values(update(Video).where(Video.id == "a").whereclause, t) == {"a"}
    assert _id_values(update(Video).where(Video.id == "a", Video.status == "queued").whereclause, t) == {"a"}
    assert _id_values(update(Video).where(Video.id.in_(["a", "b"]), Video.claimed_by == "w").whereclause, t) == {
        "a",
        "b",
    }
    assert _id_values(update(Video).where(Video.claimed_until.is_not(None)).whereclause, t) is None
    assert _id_values(update(Video).where((Video.id == "a") | (Video.owner == "o")).whereclause, t) is None
    assert _id_values(None, t) is None


def test_disabled_by_a_zero_ttl() -> None:
    c = ReadCache(ttl_ms=0, max_videos=3, max_keys=2, max_bytes=10_000)
    assert not c.enabled and not c.put_video("o", video("v"), gen=c.video_gen)


def test_the_reported_memory_is_what_the_entries_take() -> None:
    """`vidgate_read_cache_bytes` is what an operator sizes VIDGATE_READ_CACHE_MAX_BYTES by: it must be
    near what the entries really allocate (tracemalloc), not a fraction of it."""
    import secrets
    import tracemalloc

    c = ReadCache(ttl_ms=60_000, max_videos=100_000, max_keys=2, max_bytes=1 << 30)
    n, owner = 5_000, "user_" + secrets.token_hex(12)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n):
            body = b'{"id":"video_x","object":"video","status":"completed"' + secrets.token_bytes(600) + b"}"
            entry = video(f"video_{secrets.token_hex(24)}", body)
            entry.claimed_until, entry.next_poll_at = time.time(), time.time()
            c.put_video(owner, entry, gen=c.video_gen)
        taken = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert c.counts()["video"] == n
    assert 0.8 * taken <= c.video_bytes <= 1.25 * taken, (c.video_bytes / n, taken / n)
