"""The status-read cache: authenticated API keys (by the SHA-256 of the secret) and rendered Video objects
(by id and owner), bounded and LRU, so `GET /v1/videos/{id}` (app.videos.hotread) need not touch the
database.

Coherence:

* **At once for writers in this process.** SQLAlchemy session events (`do_orm_execute` for bulk
  UPDATE/DELETE, `after_flush` for ORM changes, `after_commit`) drop the entries a write touches, both
  when the statement runs and again after its commit, on every session bound to the gateway's engine:
  request handlers, the admin API, the engine, the janitor. A bulk statement whose rows cannot be told
  from its WHERE clause drops every entry of its kind.
* **Within a notification for writers elsewhere** (the CLI, `vidgate worker`, another `vidgate serve`).
  The same events hand what a transaction invalidated to the engine's publisher (app.invalidation:
  PostgreSQL NOTIFY inside the transaction, or Redis PUBLISH after the commit), in every process, the CLI
  included; each process with a cache subscribes. While the subscription is confirmed, an entry is trusted
  for `VIDGATE_READ_CACHE_NOTIFIED_TTL_MS` (30 s): only writes made without a publisher (manual SQL) wait
  that long.
* **Bounded staleness otherwise.** Without a channel (SQLite without Redis), and from the moment a
  subscription is lost until it is confirmed again, an entry is trusted for at most
  `VIDGATE_READ_CACHE_TTL_MS` (500 ms) after the database read that filled it *started*; both changes of
  the channel's state empty the cache, so no entry read while notifications could be missed outlives the
  short TTL.
* **No stale refill.** A reader notes the cache's generation before its database read and stores its
  result only if no invalidation happened meanwhile (a read that raced a commit may have seen the old row).

Key changes that do not affect a status read (`last_used_at`, `used_credits`) do not invalidate.
Misses are never cached (a key or video created a moment ago is found at once).
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList, ColumnElement

from app.keys.models import ApiKey
from app.videos.models import Video

# ApiKey columns a status read does not depend on: writing only these keeps the cached keys
KEY_IRRELEVANT = frozenset({"last_used_at", "used_credits"})
_TABLES: dict[Any, type] = {Video.__table__: Video, ApiKey.__table__: ApiKey}
# bytes per entry besides its body and its id's characters, as tracemalloc counts them on CPython 3.11 (the
# entry object and its floats, the id string's header, the key tuple, the LRU's dict slot and link, the
# owners set): tests/test_readcache.py checks the estimate against tracemalloc
ENTRY_OVERHEAD = 600


@dataclass(slots=True)
class KeyEntry:
    """What a status read needs of an authenticated, unrevoked key (duck-types ApiKey for check_key)."""

    id: str
    owner: str
    prefix: str
    enabled: bool
    expires_at: float | None
    ip_allowlist: list[str] | None
    last_used_at: float | None
    fetched: float  # monotonic time the database read started


@dataclass(slots=True)
class VideoEntry:
    """A rendered Video object and the row fields its dynamic parts (url, openai-poll-after-ms) need."""

    id: str
    status: str
    unfinished: bool  # queued or in_progress: the poll header is sent
    body: bytes  # the JSON body exactly as JSONResponse renders it, without `url`
    expires_at: int | None
    assets_purged_at: float | None
    claimed_until: float | None
    next_poll_at: float | None
    fetched: float

    @property
    def size(self) -> int:
        return len(self.body) + len(self.id) + ENTRY_OVERHEAD


class ReadCache:
    def __init__(
        self, *, ttl_ms: int, max_videos: int, max_keys: int, max_bytes: int, notified_ttl_ms: int = 0
    ) -> None:
        self.short_ttl = max(0, ttl_ms) / 1000  # no channel, or a lost one
        self.notified_ttl = max(self.short_ttl, max(0, notified_ttl_ms) / 1000)  # a confirmed subscription
        self.ttl = self.short_ttl  # what get_key / get_video trust now
        self.max_videos = max(0, max_videos)
        self.max_keys = max(0, max_keys)
        self.max_bytes = max(0, max_bytes)
        self.enabled = self.ttl > 0 and self.max_videos > 0 and self.max_keys > 0
        self._keys: OrderedDict[str, KeyEntry] = OrderedDict()
        self._videos: OrderedDict[tuple[str, str], VideoEntry] = OrderedDict()  # (video id, owner)
        self._video_owners: dict[str, set[str]] = {}  # video id -> owners with an entry (normally one)
        self.video_bytes = 0
        self.key_gen = 0  # bumped by every key invalidation
        self.video_gen = 0  # bumped by every video invalidation
        self.hits = {"key": 0, "video": 0}
        self.misses = {"key": 0, "video": 0}
        self.invalidations = {"key": 0, "video": 0}
        self.channel: str | None = None  # "postgres" or "redis" when a listener subscribes (app.invalidation)
        self.notified = False  # the subscription is confirmed: entries get the long TTL
        self.notifications = 0  # invalidations received from other processes
        self.channel_losses = 0

    def set_notified(self, on: bool) -> None:
        """The channel's state changed. Either way the cache is emptied: entries read while notifications
        could be missed must not be trusted for the long TTL, and a lost channel may have dropped some."""
        self.clear()
        if self.notified and not on:
            self.channel_losses += 1
        self.notified = on
        self.ttl = self.notified_ttl if on else self.short_ttl

    # -- keys
    def get_key(self, key_hash: str) -> KeyEntry | None:
        entry = self._keys.get(key_hash)
        if entry is None or time.monotonic() - entry.fetched >= self.ttl:
            self.misses["key"] += 1
            return None
        self._keys.move_to_end(key_hash)
        self.hits["key"] += 1
        return entry

    def put_key(self, key_hash: str, entry: KeyEntry, *, gen: int) -> bool:
        if not self.enabled or gen != self.key_gen:
            return False  # invalidated while it was read: it may be the old row
        self._keys[key_hash] = entry
        self._keys.move_to_end(key_hash)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return True

    def invalidate_keys(self) -> None:
        self.key_gen += 1
        self.invalidations["key"] += 1
        self._keys.clear()

    # -- videos
    def get_video(self, video_id: str, owner: str) -> VideoEntry | None:
        k = (video_id, owner)
        entry = self._videos.get(k)
        if entry is None or time.monotonic() - entry.fetched >= self.ttl:
            self.misses["video"] += 1
            return None
        self._videos.move_to_end(k)
        self.hits["video"] += 1
        return entry

    def put_video(self, owner: str, entry: VideoEntry, *, gen: int) -> bool:
        if not self.enabled or gen != self.video_gen or entry.size > self.max_bytes:
            return False
        k = (entry.id, owner)
        old = self._videos.pop(k, None)
        if old is not None:
            self.video_bytes -= old.size
        self._videos[k] = entry
        self._video_owners.setdefault(entry.id, set()).add(owner)
        self.video_bytes += entry.size
        while len(self._videos) > self.max_videos or self.video_bytes > self.max_bytes:
            (vid, own), gone = self._videos.popitem(last=False)
            self._forget_owner(vid, own)
            self.video_bytes -= gone.size
        return True

    def _forget_owner(self, video_id: str, owner: str) -> None:
        owners = self._video_owners.get(video_id)
        if owners is not None:
            owners.discard(owner)
            if not owners:
                del self._video_owners[video_id]

    def invalidate_videos(self, ids: Iterable[str] | None) -> None:
        """Drop the entries of `ids`; None: every entry."""
        self.video_gen += 1
        self.invalidations["video"] += 1
        if ids is None:
            self._videos.clear()
            self._video_owners.clear()
            self.video_bytes = 0
            return
        for vid in ids:
            for owner in self._video_owners.pop(vid, ()):
                gone = self._videos.pop((vid, owner), None)
                if gone is not None:
                    self.video_bytes -= gone.size

    def clear(self) -> None:
        self.invalidate_keys()
        self.invalidate_videos(None)

    # -- figures
    @property
    def key_bytes(self) -> int:
        return len(self._keys) * (ENTRY_OVERHEAD + 64)

    def counts(self) -> dict[str, int]:
        return {"key": len(self._keys), "video": len(self._videos)}

    def register_metrics(self, registry: CollectorRegistry) -> None:
        registry.register(_CacheCollector(self))


class _CacheCollector(Collector):
    def __init__(self, cache: ReadCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Any]:
        c = self.cache
        entries = GaugeMetricFamily("vidgate_read_cache_entries", "Entries in the status-read cache.", labels=["kind"])
        size = GaugeMetricFamily(
            "vidgate_read_cache_bytes", "Estimated memory held by the status-read cache.", labels=["kind"]
        )
        limit = GaugeMetricFamily(
            "vidgate_read_cache_limit_bytes", "VIDGATE_READ_CACHE_MAX_BYTES (rendered videos).", value=c.max_bytes
        )
        hits = CounterMetricFamily("vidgate_read_cache_hits", "Status-read cache hits.", labels=["kind"])
        misses = CounterMetricFamily("vidgate_read_cache_misses", "Status-read cache misses.", labels=["kind"])
        inval = CounterMetricFamily(
            "vidgate_read_cache_invalidations", "Invalidations by writers in this process.", labels=["kind"]
        )
        for kind, n in c.counts().items():
            entries.add_metric([kind], n)
            hits.add_metric([kind], c.hits[kind])
            misses.add_metric([kind], c.misses[kind])
            inval.add_metric([kind], c.invalidations[kind])
        size.add_metric(["key"], c.key_bytes)
        size.add_metric(["video"], c.video_bytes)
        connected = GaugeMetricFamily(
            "vidgate_read_cache_notify_connected",
            "1 while the cross-process invalidation channel is subscribed (entries get the long TTL).",
            labels=["channel"],
        )
        connected.add_metric([c.channel or "none"], 1 if c.notified else 0)
        ttl = GaugeMetricFamily("vidgate_read_cache_ttl_seconds", "How long an entry is trusted now.", value=c.ttl)
        received = CounterMetricFamily(
            "vidgate_read_cache_notifications", "Invalidations received from other processes.", value=c.notifications
        )
        lost = CounterMetricFamily(
            "vidgate_read_cache_notify_losses", "Times the invalidation channel was lost.", value=c.channel_losses
        )
        yield from (entries, size, limit, hits, misses, inval, connected, ttl, received, lost)


# -- invalidation by the writers of this process, and publication to the others

_installed = False
_PENDING = "vidgate_read_cache"  # session.info: what to drop again after the commit, and to publish


@dataclass(slots=True)
class Invalidation:
    """What one transaction invalidated (or one notification announces)."""

    keys: bool = False
    all_videos: bool = False
    video_ids: set[str] = field(default_factory=set)

    MAX_IDS = 1000  # beyond this many ids, "every video" is cheaper to say and to apply

    def merge(self, other: Invalidation) -> None:
        self.keys |= other.keys
        self.all_videos |= other.all_videos
        self.video_ids |= other.video_ids
        if self.all_videos or len(self.video_ids) > self.MAX_IDS:
            self.all_videos = True
            self.video_ids = set()

    @property
    def empty(self) -> bool:
        return not (self.keys or self.all_videos or self.video_ids)


class Publisher(Protocol):
    """Tells the other processes what a transaction invalidated (app.invalidation implements it)."""

    def in_transaction(self, session: Session, inv: Invalidation) -> None:
        """Just before the commit, on the transaction's connection (PostgreSQL NOTIFY)."""

    def after_commit(self, inv: Invalidation) -> None:
        """Once the commit is done (Redis PUBLISH); never for a rolled back transaction."""


@dataclass(slots=True)
class _Target:
    cache: ReadCache | None = None
    publisher: Publisher | None = None


_targets: weakref.WeakKeyDictionary[Engine, _Target] = weakref.WeakKeyDictionary()


def _install() -> None:
    global _installed
    if not _installed:
        event.listen(Session, "do_orm_execute", _on_execute)
        event.listen(Session, "after_flush", _on_flush)
        event.listen(Session, "before_commit", _on_before_commit)
        event.listen(Session, "after_commit", _on_commit)
        event.listen(Session, "after_soft_rollback", _on_rollback)
        _installed = True


def attach(engine: Engine, cache: ReadCache) -> None:
    """Keep `cache` coherent with the writes made through any ORM session bound to `engine`."""
    _targets.setdefault(engine, _Target()).cache = cache
    _install()


def detach(engine: Engine) -> None:
    target = _targets.get(engine)
    if target is not None:
        target.cache = None


def attach_publisher(engine: Engine, publisher: Publisher) -> None:
    """Hand what each transaction on `engine` invalidates to `publisher` (with or without a cache here)."""
    _targets.setdefault(engine, _Target()).publisher = publisher
    _install()


def detach_publisher(engine: Engine) -> None:
    target = _targets.get(engine)
    if target is not None:
        target.publisher = None


def _target_of(session: Session) -> _Target | None:
    bind = session.bind
    if bind is None or not _targets:
        return None
    engine = bind if isinstance(bind, Engine) else getattr(bind, "engine", None)
    target = _targets.get(engine) if engine is not None else None
    if target is None or (target.cache is None and target.publisher is None):
        return None
    return target


def _pending(session: Session) -> Invalidation:
    p = session.info.get(_PENDING)
    if p is None:
        p = session.info[_PENDING] = Invalidation()
    return p


def apply(cache: ReadCache, inv: Invalidation) -> None:
    if inv.keys:
        cache.invalidate_keys()
    if inv.all_videos:
        cache.invalidate_videos(None)
    elif inv.video_ids:
        cache.invalidate_videos(inv.video_ids)


def _note(
    session: Session, target: _Target, *, keys: bool = False, all_videos: bool = False, ids: Iterable[str] = ()
) -> None:
    inv = Invalidation(keys=keys, all_videos=all_videos, video_ids=set(ids))
    if target.cache is not None:
        apply(target.cache, inv)
    _pending(session).merge(inv)


def _id_values(where: ColumnElement[Any] | None, table: Any, params: Any = None) -> set[str] | None:
    """The ids an `id == x` or `id IN (...)` conjunct restricts the statement to (`x` a value, or a bound
    parameter given in `params`, the statement's execution parameters); None if none does."""
    if where is None:
        return None
    if isinstance(where, BooleanClauseList) and where.operator is operators.and_:
        conjuncts = list(where.clauses)
    else:
        conjuncts = [where]
    for c in conjuncts:
        if not isinstance(c, BinaryExpression) or not isinstance(c.right, BindParameter):
            continue
        left = c.left
        if getattr(left, "table", None) is not table or getattr(left, "key", None) != "id":
            continue
        value = c.right.effective_value
        if value is None and isinstance(params, dict):
            value = params.get(c.right.key)
        if c.operator is operators.eq and isinstance(value, str):
            return {value}
        if c.operator is operators.in_op and isinstance(value, (list, tuple)):
            return {str(v) for v in value}
    return None


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    target = _target_of(state.session)
    if target is None:
        return
    mapper = state.bind_mapper
    stmt: Any = state.statement
    # an ORM statement names its entity; a Core one (a prebuilt compare-and-set) its table
    entity = mapper.class_ if mapper is not None else _TABLES.get(getattr(stmt, "table", None))
    if entity is ApiKey:
        values = getattr(stmt, "_values", None) or {}
        names = {getattr(k, "key", k) for k in values}
        if state.is_delete or not names or not names <= KEY_IRRELEVANT:
            _note(state.session, target, keys=True)
    elif entity is Video:
        ids = _id_values(stmt.whereclause, Video.__table__, state.parameters)
        if ids is None:
            _note(state.session, target, all_videos=True)
        else:
            _note(state.session, target, ids=ids)


def _on_flush(session: Session, _: UOWTransaction) -> None:
    target = _target_of(session)
    if target is None:
        return
    keys = False
    ids: set[str] = set()
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, Video):
            ids.add(obj.id)
        elif isinstance(obj, ApiKey) and not keys:
            keys = _key_changed(obj)
    # after_flush still sees the flushed objects in dirty/deleted; new rows need nothing (misses are not cached)
    if keys or ids:
        _note(session, target, keys=keys, ids=ids)


def _key_changed(obj: ApiKey) -> bool:
    from sqlalchemy import inspect

    insp = inspect(obj)
    if insp.deleted or insp.was_deleted:
        return True
    for attr in insp.mapper.column_attrs:
        if attr.key in KEY_IRRELEVANT:
            continue
        if insp.attrs[attr.key].history.has_changes():
            return True
    return False


def _on_before_commit(session: Session) -> None:
    target = _target_of(session)
    if target is None or target.publisher is None:
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit would flush after this hook: its changes must be in the notification
    p = session.info.get(_PENDING)
    if p is not None and not p.empty:
        target.publisher.in_transaction(session, p)


def _on_commit(session: Session) -> None:
    p = session.info.pop(_PENDING, None)
    if p is None or p.empty:
        return
    target = _target_of(session)
    if target is None:
        return
    if target.cache is not None:
        apply(target.cache, p)
    if target.publisher is not None:
        target.publisher.after_commit(p)


def _on_rollback(session: Session, previous_transaction: Any) -> None:
    if getattr(previous_transaction, "nested", False):
        return  # a savepoint: the transaction's earlier writes may still commit (and must be published)
    session.info.pop(_PENDING, None)
