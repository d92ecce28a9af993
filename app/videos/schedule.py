"""When the engine looks at a task again, and how many tasks of a rate-capped channel one claim may take.

Vendor requests are the scarce thing on a capped channel (`max_rps`), so both decisions spend them where
they find news:

* `next_poll_delay`: a poll is worth making when the task may have finished. In order of trust: the
  vendor's explicit "look again in" (`poll_after`); its estimate of the time left (`eta`); the channel's
  typical task duration (`typical_s`) while the task is younger than that; else the configured interval
  with its backoff. Never beyond `poll_max_interval_ms` — unless the vendor is calling this task back, in
  which case the callback replaces the polls and a poll every `poll_callback_interval_ms` is the safety net.
* `RequestBudget`: a claimed task that then waits in `channels.pace` holds a concurrency slot and its
  lease while doing nothing. The engine claims only as many tasks of a capped channel as the channel's
  remaining request budget covers (a token bucket refilled at `max_rps`, one token per poll claimed and
  one per further request such as a download), so the rest stay in the queue in due order — lag then
  grows evenly over the channel's tasks, and other channels' tasks are not crowded out of the slots.
  The bucket is this process's; replicas each have one, and `pace` (shared through Redis) still holds
  the exact cap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from app.config import Settings
from app.providers.base import TaskSnapshot
from app.providers.registry import Channel

BACKOFF = 1.25  # each poll without news waits this much longer, up to the longest interval


def next_poll_delay(
    settings: Settings,
    snap: TaskSnapshot,
    *,
    polls: int,
    elapsed: float,
    typical: float | None = None,
    called_back: bool = False,
) -> float:
    """Seconds until the next poll of an unfinished task, after `polls` polls and `elapsed` seconds at the
    vendor (see the module doc for the order of the rules)."""
    interval = settings.poll_interval_ms / 1000
    longest = settings.poll_max_interval_ms / 1000
    if called_back:
        return max(longest, settings.poll_callback_interval_ms / 1000)
    if snap.poll_after is not None:
        return min(snap.poll_after, longest)
    if snap.eta is not None:
        # about when the vendor expects it done; not more often than a quarter interval while it overruns
        return min(longest, max(snap.eta, interval / 4))
    backoff = min(longest, interval * BACKOFF**polls)
    if typical is not None and elapsed < typical:
        return min(longest, max(backoff, typical - elapsed))
    return backoff


class RequestBudget:
    """Per capped channel, the vendor requests this engine may still start: a token bucket refilled at the
    channel's `max_rps`, holding at most `horizon_s` worth of them (see the module doc)."""

    def __init__(self, *, horizon_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.horizon_s = horizon_s
        self._clock = clock
        self._tokens: dict[str, tuple[float, float]] = {}  # fingerprint -> (tokens, when counted)

    def _capacity(self, channel: Channel) -> float:
        assert channel.max_rps
        return max(1.0, channel.max_rps * self.horizon_s)

    def _level(self, channel: Channel) -> float:
        assert channel.max_rps
        t = self._clock()
        tokens, at = self._tokens.get(channel.fingerprint, (self._capacity(channel), t))
        return min(self._capacity(channel), tokens + (t - at) * channel.max_rps)

    def quotas(self, channels: Iterable[Channel]) -> dict[str, int]:
        """Capped channel fingerprint -> how many of its tasks a claim may take now (0: none)."""
        return {c.fingerprint: max(0, math.floor(self._level(c))) for c in channels if c.max_rps}

    def spend(self, channel: Channel | None, n: int = 1) -> None:
        """`n` requests to `channel` were claimed or started (may go below zero: a download after a poll)."""
        if channel is None or not channel.max_rps or n <= 0:
            return
        self._tokens[channel.fingerprint] = (self._level(channel) - n, self._clock())
