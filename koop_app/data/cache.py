"""The data cache: one compact, versioned copy of each dataset in Django's cache.

Two entries per cache key: a small *pointer* (version, times, schema) read on every request,
and the *blob* (Arrow IPC, zstd) read only when this process lacks that version. A cache
outage is a miss and a log line, never an error for the client.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from koop_app.data.schema import LayerSchema

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pointer:
    key: str
    version: str
    fetched_at: float
    expires_at: float
    count: int
    size: int
    schema: LayerSchema

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "schema": self.schema.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pointer:
        return cls(**{**data, "schema": LayerSchema.from_dict(data["schema"])})


def _digest(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


def pointer_key(key: str) -> str:
    return f"koop:ptr:{_digest(key)}"


def blob_key(key: str, version: str) -> str:
    return f"koop:blob:{_digest(key)}:{version}"


def get_pointer(key: str) -> Pointer | None:
    try:
        data = cache.get(pointer_key(key))
    except Exception:  # cache backend down: treat as a miss
        logger.warning("data cache unavailable reading %s", key, exc_info=True)
        return None
    if not data:
        return None
    try:
        return Pointer.from_dict(data)
    except (KeyError, TypeError):
        logger.warning("data cache: discarding unreadable pointer for %s", key)
        return None


def get_blob(key: str, version: str) -> bytes | None:
    try:
        return cache.get(blob_key(key, version))
    except Exception:
        logger.warning("data cache unavailable reading %s", key, exc_info=True)
        return None


def store(pointer: Pointer, blob: bytes) -> bool:
    """Write the blob, then the pointer, both without expiry: stale copies stay servable."""
    try:
        old = cache.get(pointer_key(pointer.key))
        cache.set(blob_key(pointer.key, pointer.version), blob, timeout=None)
        cache.set(pointer_key(pointer.key), pointer.as_dict(), timeout=None)
        if old and old.get("version") != pointer.version:
            cache.delete(blob_key(pointer.key, old["version"]))
        return True
    except Exception:
        logger.warning("data cache unavailable storing %s", pointer.key, exc_info=True)
        return False


def clear(key: str) -> bool:
    """Drop the cached copy of ``key``; return whether there was one."""
    try:
        old = cache.get(pointer_key(key))
        if old:
            cache.delete(blob_key(key, old["version"]))
        cache.delete(pointer_key(key))
        return bool(old)
    except Exception:
        logger.warning("data cache unavailable clearing %s", key, exc_info=True)
        return False
