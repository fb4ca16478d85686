"""The stored copy of each dataset, as this process sees it: the cache's pointer, read again
at most every POINTER_CHECK_SECONDS, and the hits counted between two reads.

Reading and decoding the pointer is most of a small request's cost; a new version still
reaches every process within that interval.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

from koop_app.conf import koop_settings
from koop_app.data import cache
from koop_app.data.cache import Pointer


class StoredCopies:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, Pointer | None]] = {}
        self._hits: defaultdict[str, int] = defaultdict(int)

    def recent(self, key: str) -> Pointer | None:
        """The pointer of ``key`` as read at most POINTER_CHECK_SECONDS ago."""
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < float(koop_settings.POINTER_CHECK_SECONDS):
            return seen[1]
        return self.current(key)

    def current(self, key: str) -> Pointer | None:
        """The pointer of ``key`` read now (and the hits counted so far handed over)."""
        self._flush_hits(key)
        pointer = cache.get_pointer(key)
        self._seen[key] = (time.monotonic(), pointer)
        return pointer

    def remember(self, pointer: Pointer) -> None:
        """A pointer this process just stored: no need to read it back."""
        self._seen[pointer.key] = (time.monotonic(), pointer)

    def hit(self, key: str) -> None:
        self._hits[key] += 1  # counted here, added to the shared counter at the next read

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)

    def clear(self) -> None:
        for key in list(self._hits):
            self._flush_hits(key)
        self._seen.clear()

    def _flush_hits(self, key: str) -> None:
        with self._lock:
            hits = self._hits.pop(key, 0)
        if hits:
            cache.count(key, "hits", hits)
