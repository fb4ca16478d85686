"""What the last read of a dataset's GitHub source returned: its ETag, for conditional refreshes.

Kept in Django's cache (Redis in production), so a refresh on any worker can ask GitHub
"changed since this ETag?". A 304 keeps the stored copy only when the remembered read is the
one that copy was built from:

- the ``fingerprint`` (route, options without secrets, the dataset row's last edit) is the
  same: an edited dataset is always read again in full;
- the read happened no later than the stored copy was made (``request.stored_at``): a read
  whose copy was never stored (a failed refresh) does not vouch for an older copy.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from django.core.cache import cache

from koop_app.provider import ProviderRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validator:
    etag: str
    fingerprint: str
    read_at: float


def _cache_key(key: str) -> str:
    return f"koop:github:etag:{hashlib.sha1(key.encode()).hexdigest()}"


def fingerprint(request: ProviderRequest, secret_options: frozenset[str]) -> str:
    dataset = request.dataset
    edited = getattr(dataset, "updated", None)
    parts: dict[str, Any] = {
        "host": request.host, "id": request.id,
        "options": {k: v for k, v in sorted(request.options.items())
                    if k not in secret_options},
        "dataset": getattr(dataset, "pk", None),
        "edited": edited.isoformat() if edited is not None else None,
    }
    return hashlib.sha256(orjson.dumps(parts, default=str)).hexdigest()


def usable(key: str, request: ProviderRequest, print_: str) -> str | None:
    """The ETag to send with ``If-None-Match``, or None to read in full."""
    if request.stored_at is None:
        return None
    try:
        found = cache.get(_cache_key(key))
    except Exception:  # the cache is down: read in full
        logger.debug("github: validator cache unavailable", exc_info=True)
        return None
    if not isinstance(found, dict):
        return None
    try:
        validator = Validator(**found)
    except TypeError:
        return None
    if validator.fingerprint != print_ or validator.read_at > request.stored_at:
        return None
    return validator.etag


def remember(key: str, etag: str | None, print_: str) -> None:
    """Remember the ETag of a full read (forget any older one when GitHub sent none)."""
    try:
        if etag:
            cache.set(_cache_key(key), Validator(etag, print_, time.time()).__dict__,
                      timeout=None)
        else:
            cache.delete(_cache_key(key))
    except Exception:
        logger.debug("github: validator cache unavailable", exc_info=True)
