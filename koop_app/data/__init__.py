"""Getting data: ``get_table(dataset, request)`` is the only door.

    provider.get_data -> normalize -> data cache (Django cache) -> hot table (this process)

Cached providers are fetched when no copy exists or the copy has expired; a failed refresh
serves the last good copy and records the error on the dataset. Pass-through providers are
asked on every request and nothing is stored.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

from koop_app.conf import koop_settings
from koop_app.data import cache, ids
from koop_app.data.arrowio import read_ipc, write_ipc
from koop_app.data.fetch import fetch
from koop_app.data.hot import LayerTable, hot_tables
from koop_app.data.normalize import Overrides, normalize
from koop_app.errors import KoopError
from koop_app.models import Dataset, Provider
from koop_app.provider import ProviderRequest

__all__ = ["LayerTable", "get_table", "refresh", "clear", "provider_request"]

logger = logging.getLogger(__name__)
_flights: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def provider_request(
    dataset: Dataset,
    *,
    layer: int | None = None,
    method: str | None = None,
    query: dict[str, str] | None = None,
    http_request=None,
) -> ProviderRequest:
    plugin = dataset.provider.plugin
    params = {"host": dataset.host or None, "id": dataset.dataset_id or None,
              "layer": layer, "method": method}
    return ProviderRequest(params=params, query=dict(query or {}), dataset=dataset,
                           options=plugin.clean_options(dataset.options),
                           http_request=http_request)


def get_table(dataset: Dataset, request: ProviderRequest) -> LayerTable:
    """The queryable table of ``dataset`` for ``request``; fetches when needed."""
    plugin = dataset.provider.plugin
    if dataset.provider.cache_policy == Provider.PASS_THROUGH:
        return _build(dataset, request, store=False)
    key = plugin.create_key(request)
    pointer = cache.get_pointer(key)
    if pointer is not None and pointer.expires_at > time.time():
        return _hot(pointer) or refresh(dataset, request)
    with _flights[key]:
        # Another thread may have refreshed while this one waited for the lock.
        fresh = cache.get_pointer(key)
        if fresh is not None and fresh.expires_at > time.time():
            return _hot(fresh) or refresh(dataset, request)
        try:
            return refresh(dataset, request)
        except KoopError:
            stale = _hot(pointer) if pointer is not None else None
            if stale is None:
                raise
            logger.warning("%s: serving the copy of version %s after a failed refresh",
                           dataset.route_label, stale.version)
            return stale


def _hot(pointer: cache.Pointer) -> LayerTable | None:
    table = hot_tables.get(pointer.key, pointer.version)
    if table is not None:
        return table
    blob = cache.get_blob(pointer.key, pointer.version)
    if blob is None:
        return None
    return hot_tables.put(pointer.key, pointer.version, read_ipc(blob), pointer.schema,
                          pointer.fetched_at)


def refresh(dataset: Dataset, request: ProviderRequest | None = None) -> LayerTable:
    """Fetch ``dataset`` now, store the new copy and record the outcome on the dataset."""
    request = request or provider_request(dataset)
    try:
        return _build(dataset, request, store=True)
    except KoopError as exc:
        Dataset.objects.filter(pk=dataset.pk).update(
            last_error=f"{type(exc).__name__}: {exc.log_message}"[:2000],
            last_error_at=datetime.now(UTC),
        )
        raise


def _build(dataset: Dataset, request: ProviderRequest, *, store: bool) -> LayerTable:
    plugin = dataset.provider.plugin
    key = plugin.create_key(request)
    label = dataset.route_label
    started = time.perf_counter()
    collection = fetch(plugin, request, label)
    layer = normalize(
        collection,
        label=label,
        assign_ids=lambda keys: ids.assign_ids(key, keys),
        overrides=overrides_of(dataset),
        check_geojson=koop_settings.validate_geojson,
    )
    blob = write_ipc(layer.table)
    version = hashlib.blake2b(blob, digest_size=8).hexdigest()
    now = time.time()
    ttl = collection.get("ttl") if isinstance(collection.get("ttl"), (int, float)) else None
    ttl = ttl if ttl is not None else dataset.effective_ttl
    pointer = cache.Pointer(key, version, now, now + ttl, layer.table.num_rows, len(blob),
                            layer.schema)
    if store:
        cache.store(pointer, blob)
    table = hot_tables.put(key, version, layer.table, layer.schema, now)
    if store:
        Dataset.objects.filter(pk=dataset.pk).update(
            cache_key=key,
            version=version,
            last_refresh=datetime.fromtimestamp(now, UTC),
            expires_at=datetime.fromtimestamp(now + ttl, UTC),
            feature_count=layer.table.num_rows,
            refresh_duration_ms=int((time.perf_counter() - started) * 1000),
            last_error="",
            last_error_at=None,
        )
        logger.info("%s: refreshed %d features, version %s, %d bytes, %.0f ms", label,
                    layer.table.num_rows, version, len(blob),
                    (time.perf_counter() - started) * 1000)
    return table


def clear(dataset: Dataset) -> bool:
    """Drop the cached copy of ``dataset`` (ids are kept); return whether one existed."""
    key = dataset.cache_key or dataset.provider.plugin.create_key(provider_request(dataset))
    hot_tables.discard(key)
    existed = cache.clear(key)
    Dataset.objects.filter(pk=dataset.pk).update(version="", expires_at=None)
    return existed


def overrides_of(dataset: Dataset) -> Overrides:
    return Overrides(
        name=dataset.name,
        description=dataset.description,
        id_field=dataset.id_field,
        display_field=dataset.display_field,
        geometry_type=dataset.geometry_type,
        max_record_count=dataset.max_record_count,
        fields=dataset.fields_override or {},
    )
