"""The layer sets this process serves, made of hot tables (``hot.HotTables``).

Each key keeps being served from the version it was last served from while a new version
loads in the background, so a new copy never makes a client wait for its load. A small
version (LOAD_INLINE_BYTES) loads in the request that finds it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict

from koop_app.data import cache
from koop_app.data.arrowio import stream_ipc
from koop_app.data.cache import Pointer
from koop_app.data.hot import HotTables
from koop_app.data.layerset import LayerSet
from koop_app.logs import log_event

logger = logging.getLogger(__name__)
# A version this small (compressed bytes in the cache) loads in a few milliseconds: the request
# that finds it loads it and answers from it. Larger ones load in the background.
LOAD_INLINE_BYTES = 1024 * 1024
# Background loads run at a lower CPU priority than the threads answering queries.
LOAD_NICENESS = 10


def hot_key(key: str, layer_id: int) -> str:
    return f"{key}|{layer_id}"


class ServedLayers:
    def __init__(self, tables: HotTables) -> None:
        self.tables = tables
        self._served: dict[str, LayerSet] = {}
        self._loading: dict[str, threading.Thread] = {}
        self._load_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._lock = threading.Lock()

    def serve(self, pointer: Pointer) -> LayerSet | None:
        """``pointer``'s version ready to query, or the previous version while it loads.

        None when the cache no longer holds the version's data (the caller fetches anew).
        """
        ready = self.ready(pointer)
        if ready is not None:
            return ready
        previous = self._served.get(pointer.key)
        if (previous is None or previous.version == pointer.version
                or pointer.size <= LOAD_INLINE_BYTES or not self._still_hot(previous)):
            return self.load(pointer)
        with self._lock:  # one background load per key
            thread = self._loading.get(pointer.key)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._load_in_background, args=(pointer,),
                                          daemon=True, name=f"koop-load-{pointer.version}")
                self._loading[pointer.key] = thread
                thread.start()
        return previous

    def ready(self, pointer: Pointer) -> LayerSet | None:
        """``pointer``'s version if every layer of it is hot here."""
        tables = []
        for entry in pointer.layers:
            table = self.tables.get(hot_key(pointer.key, entry.id), pointer.version)
            if table is None:
                return None
            tables.append(table)
        return LayerSet.of(pointer, tuple(tables))

    def load(self, pointer: Pointer) -> LayerSet | None:
        """Decode ``pointer``'s blobs into hot tables, once per process however many ask."""
        with self._load_locks[pointer.key]:
            ready = self.ready(pointer)
            if ready is not None:
                return ready
            clock = time.perf_counter()
            tables = []
            for entry in pointer.layers:
                table = self.tables.get(hot_key(pointer.key, entry.id), pointer.version)
                if table is None:
                    blob = cache.get_blob(pointer.key, pointer.version, entry.id)
                    if blob is None:
                        return None
                    table = self.tables.put(hot_key(pointer.key, entry.id), pointer.version,
                                            stream_ipc(blob), entry.schema, pointer.fetched_at,
                                            layer_id=entry.id, kind=entry.kind)
                tables.append(table)
            layers = LayerSet.of(pointer, tuple(tables))
            self._served[pointer.key] = layers
            log_event(logger, logging.INFO, "hot.load", f"{pointer.key}: version "
                      f"{pointer.version} loaded", key=pointer.key, version=pointer.version,
                      features=pointer.count, bytes=sum(t.nbytes for t in tables),
                      duration_ms=round((time.perf_counter() - clock) * 1000))
            return layers

    def keep(self, layers: LayerSet) -> None:
        """Serve ``layers`` (a version this process just built) from now on."""
        self._served[layers.key] = layers

    def tables_of(self, key: str) -> set[int]:
        served = self._served.get(key)
        return {table.layer_id for table in served.layers} if served else set()

    def discard(self, key: str, layer_ids: set[int]) -> None:
        self._served.pop(key, None)
        for layer_id in layer_ids:
            self.tables.discard(hot_key(key, layer_id))

    def clear(self) -> None:
        self._served.clear()
        self.tables.clear()

    def wait(self, timeout: float) -> None:
        """Wait for the background loads (tests, a clean shutdown)."""
        for thread in list(self._loading.values()):
            thread.join(timeout)
        self._loading.clear()

    def _still_hot(self, layers: LayerSet) -> bool:
        return all(self.tables.get(hot_key(layers.key, t.layer_id), layers.version) is not None
                   for t in layers.layers)

    def _load_in_background(self, pointer: Pointer) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOAD_NICENESS)
        except (AttributeError, OSError):  # not Linux: the thread keeps the process's priority
            pass
        try:
            if self.load(pointer) is None:  # the blobs are gone: the next request fetches anew
                self._served.pop(pointer.key, None)
        except Exception:
            self._served.pop(pointer.key, None)
            log_event(logger, logging.ERROR, "hot.load_failed", f"{pointer.key}: loading "
                      f"version {pointer.version} failed", exc_info=True, key=pointer.key,
                      version=pointer.version)
