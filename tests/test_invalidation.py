"""app.invalidation: the notification format (PostgreSQL's 8000-byte payload limit), what a listener
applies, and the cache's switch between the long and the short TTL."""

from __future__ import annotations

import time

from app.invalidation import MAX_PAYLOAD, decode, encode
from app.invalidation.listener import Listener
from app.readcache import Invalidation, ReadCache
from tests.test_readcache import key, video

IDS = {f"video_{i:048x}" for i in range(900)}  # as app.db.new_id("video") makes them


def test_many_ids_are_split_under_the_payload_limit_and_nothing_is_lost() -> None:
    payloads = encode(Invalidation(keys=True, video_ids=set(IDS)), "me")
    assert len(payloads) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD < 8000 for p in payloads)
    decoded = [decode(p) for p in payloads]
    assert {s for s, _ in decoded} == {"me"}
    assert set().union(*(inv.video_ids for _, inv in decoded)) == IDS
    assert any(inv.keys for _, inv in decoded) and not any(inv.all_videos for _, inv in decoded)


def test_too_many_ids_become_every_video() -> None:
    (payload,) = encode(Invalidation(video_ids={f"video_{i:048x}" for i in range(5000)}), "me")
    _, inv = decode(payload)
    assert inv.all_videos and not inv.video_ids and not inv.keys
    merged = Invalidation(video_ids=set(IDS))  # what piles up while Redis is away is capped the same way
    merged.merge(Invalidation(video_ids={f"video_{i:048x}" for i in range(900, 1200)}))
    assert merged.all_videos and not merged.video_ids


def test_an_unreadable_notification_drops_everything() -> None:
    for junk in ("", "not json", "[1,2]", '{"v": 3}'):
        _, inv = decode(junk)
        assert inv.keys and inv.all_videos


def cache() -> ReadCache:
    c = ReadCache(ttl_ms=500, notified_ttl_ms=60_000, max_videos=10, max_keys=10, max_bytes=100_000)
    c.put_video("o", video("v1"), gen=c.video_gen)
    c.put_video("o", video("v2"), gen=c.video_gen)
    c.put_key("h", key("k1"), gen=c.key_gen)
    return c


def test_a_listener_applies_other_processes_notifications_not_its_own() -> None:
    c = cache()

    async def never(_: object) -> object:
        raise AssertionError

    listener = Listener(c, kind="postgres", sender="me", connect=never)  # type: ignore[arg-type]
    (own,) = encode(Invalidation(keys=True, video_ids={"v1"}), "me")
    listener.on_message(own)
    assert c.counts() == {"key": 1, "video": 2} and c.notifications == 0
    (other,) = encode(Invalidation(video_ids={"v1"}), "them")
    listener.on_message(other)
    assert c.get_video("v1", "o") is None and c.get_video("v2", "o") is not None
    assert c.get_key("h") is not None and c.notifications == 1


def test_the_channel_state_picks_the_ttl_and_each_change_empties_the_cache() -> None:
    c = cache()
    assert c.ttl == 0.5 and not c.notified
    c.set_notified(True)
    assert c.ttl == 60 and c.counts() == {"key": 0, "video": 0}
    old = video("v1")
    old.fetched = time.monotonic() - 5  # older than the short TTL, well within the long one
    c.put_video("o", old, gen=c.video_gen)
    assert c.get_video("v1", "o") is not None
    c.set_notified(False)
    assert c.ttl == 0.5 and c.counts() == {"key": 0, "video": 0} and c.channel_losses == 1
    c.put_video("o", old, gen=c.video_gen)
    assert c.get_video("v1", "o") is None  # the short TTL judges it
