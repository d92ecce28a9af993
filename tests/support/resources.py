"""Resource probes for tests that bound memory (generous bounds, not performance tests)."""

from __future__ import annotations

import os
import threading
from typing import Any


class RssSampler:
    """The largest resident-set growth seen while the block runs, sampled from a thread every millisecond
    (a thread keeps sampling while the event loop is blocked; ru_maxrss would hide a peak below an older one)."""

    def __init__(self) -> None:
        self.growth_mb = 0.0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self._page

    def _run(self, start: int) -> None:
        peak = start
        while not self._stop.wait(0.001):
            peak = max(peak, self._rss())
        self.growth_mb = (max(peak, self._rss()) - start) / 2**20

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, args=(self._rss(),), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
