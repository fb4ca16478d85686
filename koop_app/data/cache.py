"""The data cache: one compact, versioned copy of each dataset in Django's cache.

Two entries per cache key: a small *pointer* (version, times, schema) read on every request,
and the *blob* (Arrow IPC, zstd) read only when this process lacks that version. A cache
outage is a miss and a log line, never an error for the client.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache

from koop_app.data.schema import LayerSchema
from koop_app.logs import log_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerEntry:
    """One layer (or table) of a cached dataset."""

    id: int
    kind: str  # "layer" or "table"
    schema: LayerSchema
    count: int
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "schema": self.schema.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerEntry:
        return cls(**{**data, "schema": LayerSchema.from_dict(data["schema"])})


@dataclass(frozen=True)
class Pointer:
    key: str
    version: str
    fetched_at: float
    expires_at: float
    layers: tuple[LayerEntry, ...]
    relationships: tuple[dict[str, Any], ...] = ()
    # What the provider said identifies its source's state (ETag...): see provider.NotModified.
    validators: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def count(self) -> int:
        return sum(layer.count for layer in self.layers)

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "layers": [layer.as_dict() for layer in self.layers],
                "relationships": list(self.relationships)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pointer:
        return cls(**{**data, "layers": tuple(LayerEntry.from_dict(d) for d in data["layers"]),
                      "relationships": tuple(data.get("relationships") or ())})


def _digest(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


def _unavailable(operation: str, key: str) -> None:
    """The cache failed: a miss for the caller, one structured line for the operator."""
    log_event(logger, logging.WARNING, "cache.unavailable",
              f"data cache unavailable ({operation} {key})", exc_info=True,
              operation=operation, key=key)


def pointer_key(key: str) -> str:
    return f"koop:ptr:{_digest(key)}"


def blob_key(key: str, version: str, layer_id: int) -> str:
    return f"koop:blob:{_digest(key)}:{version}:{layer_id}"


def get_pointer(key: str) -> Pointer | None:
    try:
        data = cache.get(pointer_key(key))
    except Exception:  # cache backend down: treat as a miss
        _unavailable("read", key)
        return None
    if not data:
        return None
    try:
        return Pointer.from_dict(data)
    except (KeyError, TypeError):
        log_event(logger, logging.WARNING, "cache.unreadable", f"data cache: discarding an "
                  f"unreadable pointer for {key}", key=key)
        return None


def get_blob(key: str, version: str, layer_id: int) -> bytes | None:
    try:
        return cache.get(blob_key(key, version, layer_id))
    except Exception:
        _unavailable("read", key)
        return None


def has_blobs(pointer: Pointer) -> bool:
    """Whether every layer's blob of ``pointer`` is still in the cache (without reading it)."""
    try:
        return all(cache.has_key(blob_key(pointer.key, pointer.version, layer.id))
                   for layer in pointer.layers)
    except Exception:
        _unavailable("read", pointer.key)
        return False


def store(pointer: Pointer, blobs: dict[int, bytes]) -> bool:
    """Write the blobs, then the pointer, without expiry: stale copies stay servable."""
    try:
        old = get_pointer(pointer.key)
        cache.set_many({blob_key(pointer.key, pointer.version, layer_id): blob
                        for layer_id, blob in blobs.items()}, timeout=None)
        cache.set(pointer_key(pointer.key), pointer.as_dict(), timeout=None)
        if old and old.version != pointer.version:
            _delete_blobs(old)
        return True
    except Exception:
        _unavailable("store", pointer.key)
        return False


def clear(key: str) -> bool:
    """Drop the cached copy of ``key``; return whether there was one."""
    try:
        old = get_pointer(key)
        if old:
            _delete_blobs(old)
        cache.delete(pointer_key(key))
        return bool(old)
    except Exception:
        _unavailable("clear", key)
        return False


def _delete_blobs(pointer: Pointer) -> None:
    cache.delete_many([blob_key(pointer.key, pointer.version, layer.id)
                       for layer in pointer.layers])


# Coordination between processes, through the same cache.

def lock_key(key: str) -> str:
    return f"koop:lock:{_digest(key)}"


def revalidate_key(key: str) -> str:
    return f"koop:revalidate:{_digest(key)}"


def acquire(name: str, token: str, timeout: float) -> bool:
    """Take ``name`` unless another holder has it (expires after ``timeout`` seconds).

    With the cache down every caller gets it: work is then done per process, not refused.
    """
    try:
        added = cache.add(name, token, timeout=max(1, int(timeout)))
        # django-redis answers None, not False, when it ignored a connection error.
        return True if added is None else bool(added)
    except Exception:
        _unavailable("lock", name)
        return True


def release(name: str, token: str) -> None:
    try:
        if cache.get(name) == token:
            cache.delete(name)
    except Exception:
        _unavailable("unlock", name)


def set_failure(key: str, status: int, message: str, seconds: int = 5) -> None:
    """Remember a failed first fetch briefly, so waiting requests do not all retry it."""
    try:
        cache.set(f"koop:failed:{_digest(key)}",
                  {"status": status, "message": message, "at": time.time()}, timeout=seconds)
    except Exception:
        _unavailable("record failure", key)


def get_failure(key: str) -> dict[str, Any] | None:
    try:
        return cache.get(f"koop:failed:{_digest(key)}")
    except Exception:
        return None


def count(key: str, name: str, amount: int = 1) -> None:
    """Add to a counter of ``key`` (hits, misses) shared by all processes."""
    counter = f"koop:count:{_digest(key)}:{name}"
    try:
        try:
            cache.incr(counter, amount)
        except ValueError:  # no counter yet
            if not cache.add(counter, amount, timeout=None):
                cache.incr(counter, amount)
    except Exception:
        logger.debug("data cache unavailable counting %s", name, exc_info=True)


def counts(key: str) -> dict[str, int]:
    try:
        found = cache.get_many([f"koop:count:{_digest(key)}:{n}" for n in ("hits", "misses")])
    except Exception:
        return {}
    return {name: int(found.get(f"koop:count:{_digest(key)}:{name}") or 0)
            for name in ("hits", "misses")}
