"""Getting data: ``get_table(dataset, request)`` is the only door.

    provider.get_data -> normalize -> data cache (Django cache) -> hot table (this process)

Cached providers are fetched when no copy exists or the copy has expired; a failed refresh
serves the last good copy and records the error on the dataset. Pass-through providers are
asked on every request and nothing is stored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.dispatch import Signal

from koop_app import lookup
from koop_app.conf import koop_settings
from koop_app.data import cache, ids
from koop_app.data.arrowio import stream_ipc, write_ipc
from koop_app.data.fetch import fetch
from koop_app.data.hot import LayerTable, hot_tables
from koop_app.data.normalize import Overrides, normalize
from koop_app.errors import (
    KoopError,
    NotFoundError,
    ProviderError,
    SourceFormatError,
    SourceTimeoutError,
)
from koop_app.logs import log_event
from koop_app.models import Dataset, Provider, RefreshLog
from koop_app.provider import ProviderRequest

__all__ = ["LayerSet", "LayerTable", "clear", "get_layers", "get_table", "needs_refresh",
           "provider_request", "refresh"]

logger = logging.getLogger(__name__)
_flights: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
# Sent after a new copy is stored: (dataset, ttl, version). The refresh schedule listens.
refreshed = Signal()


def provider_request(
    dataset: Dataset,
    *,
    layer: int | None = None,
    method: str | None = None,
    query: dict[str, str] | None = None,
    http_request=None,
) -> ProviderRequest:
    params = {"host": dataset.host or None, "id": dataset.dataset_id or None,
              "layer": layer, "method": method}
    return ProviderRequest(params=params, query=dict(query or {}), dataset=dataset,
                           options=lookup.clean_options(dataset),
                           http_request=http_request)


@dataclass(frozen=True)
class LayerSet:
    """Every layer and table of a dataset, one version, ready to query."""

    key: str
    version: str
    layers: tuple[LayerTable, ...]
    relationships: tuple[dict[str, Any], ...] = ()
    fetched_at: float = 0.0
    expires_at: float = 0.0
    pass_through: bool = False
    count: int = 0

    def layer(self, layer_id: int) -> LayerTable:
        for table in self.layers:
            if table.layer_id == layer_id:
                return table
        raise NotFoundError("Layer not found.", details=[f"No layer {layer_id}"])


def get_layers(dataset: Dataset, request: ProviderRequest) -> LayerSet:
    """The queryable layers of ``dataset`` for ``request``; fetches only when there is no copy.

    An expired copy is served at once while one refresh runs elsewhere (stale-while-
    revalidate); with no copy at all, one fetch runs for every thread and process and the
    others wait for its result (single flight).
    """
    plugin = dataset.provider.plugin
    if dataset.provider.cache_policy == Provider.PASS_THROUGH:
        return _build(dataset, request, store=False)
    key = plugin.create_key(request)
    pointer = _recent_pointer(key)
    if pointer is not None:
        layers = _hot(pointer)
        if layers is not None:
            if pointer.expires_at <= time.time():
                _revalidate(dataset, key)
            _hits[key] += 1
            return layers
    cache.count(key, "misses")
    return _fill(dataset, request, key)


def _fill(dataset: Dataset, request: ProviderRequest, key: str) -> LayerSet:
    """Fetch the first copy once for all; concurrent requests wait for it, bounded in time."""
    lock = cache.lock_key(key)
    began = time.monotonic()
    deadline = began + float(koop_settings.FETCH_WAIT_SECONDS)
    waited = False
    with _flights[key]:
        while True:
            fresh = cache.get_pointer(key)
            _pointers[key] = (time.monotonic(), fresh)
            layers = _hot(fresh) if fresh is not None else None
            if layers is not None:
                if waited:
                    log_event(logger, logging.INFO, "fetch.waited", f"{dataset.route_label}: "
                              "served the fetch of another request", dataset=dataset.route_label,
                              key=key, waited_ms=round((time.monotonic() - began) * 1000))
                return layers
            failure = cache.get_failure(key) if waited else None
            if failure is not None:  # the fetch this request waited for failed: say so
                raise ProviderError(failure["status"], failure["message"])
            token = uuid.uuid4().hex
            if cache.acquire(lock, token, float(koop_settings.FETCH_LOCK_SECONDS)):
                try:
                    return refresh(dataset, request, trigger="miss")
                except KoopError as exc:
                    cache.set_failure(key, exc.status, exc.message)
                    raise
                finally:
                    cache.release(lock, token)
            if time.monotonic() > deadline:
                raise SourceTimeoutError("The data is still being fetched; try again shortly.")
            waited = True
            time.sleep(0.1)


_revalidating: dict[str, threading.Thread] = {}


def _revalidate(dataset: Dataset, key: str) -> None:
    """Start one refresh of an expired copy, on a Celery worker or in a thread here.

    The marker outlives a failure for REVALIDATE_BACKOFF_SECONDS, so a failing source is asked
    again only that often while its last good copy is served.
    """
    if not cache.acquire(cache.revalidate_key(key), "1",
                         float(koop_settings.REVALIDATE_BACKOFF_SECONDS)):
        return
    if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", True):
        from koop_app.tasks import refresh_dataset

        try:
            refresh_dataset.delay(dataset.pk, trigger="stale")
            log_event(logger, logging.INFO, "refresh.queued", f"{dataset.route_label}: "
                      "expired copy served; refresh queued", dataset=dataset.route_label,
                      key=key, runs_on="worker")
            return
        except Exception:  # no broker: refresh here instead
            log_event(logger, logging.WARNING, "queue.unavailable", f"{dataset.route_label}: "
                      "task queue unavailable; refreshing in this process", exc_info=True,
                      dataset=dataset.route_label, key=key)
    log_event(logger, logging.INFO, "refresh.queued", f"{dataset.route_label}: expired copy "
              "served; refreshing in the background", dataset=dataset.route_label, key=key,
              runs_on="thread")
    thread = threading.Thread(target=_background_refresh, args=(dataset, key),
                              name=f"koop-refresh-{dataset.pk}", daemon=True)
    _revalidating[key] = thread
    thread.start()


def _background_refresh(dataset: Dataset, key: str) -> None:
    try:
        refresh(dataset, trigger="stale")
        cache.release(cache.revalidate_key(key), "1")
    except KoopError:
        pass  # logged by refresh(); the last good copy is served and retried after a backoff
    finally:
        db_connection.close()  # this thread's own connection


def wait_for_refreshes(timeout: float = 30.0) -> None:
    """Wait for this process's background refreshes and loads (tests, a clean shutdown)."""
    for thread in [*_revalidating.values(), *_loading.values()]:
        thread.join(timeout)
    _revalidating.clear()
    _loading.clear()


_pointers: dict[str, tuple[float, cache.Pointer | None]] = {}
_hits: defaultdict[str, int] = defaultdict(int)


def _recent_pointer(key: str) -> cache.Pointer | None:
    """The cache's pointer for ``key``, read again at most every POINTER_CHECK_SECONDS.

    Reading and decoding it is most of a small request's cost; a new version still reaches
    every process within that interval.
    """
    now = time.monotonic()
    seen = _pointers.get(key)
    if seen is not None and now - seen[0] < float(koop_settings.POINTER_CHECK_SECONDS):
        return seen[1]
    hits = _hits.pop(key, 0)
    if hits:  # hits are counted here and handed to the shared counter with the pointer check
        cache.count(key, "hits", hits)
    pointer = cache.get_pointer(key)
    _pointers[key] = (now, pointer)
    return pointer


def get_table(dataset: Dataset, request: ProviderRequest, layer: int | None = None
              ) -> LayerTable:
    """One layer of ``dataset`` (the first when ``layer`` is None)."""
    layers = get_layers(dataset, request)
    return layers.layers[0] if layer is None else layers.layer(layer)


def _hot_key(key: str, layer_id: int) -> str:
    return f"{key}|{layer_id}"


# The LayerSet each key was last served from in this process: it keeps being served while a
# new version loads in the background, so a refresh never makes a client wait for the load.
_served: dict[str, LayerSet] = {}
_loading: dict[str, threading.Thread] = {}
_load_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_loading_lock = threading.Lock()
# A version this small (compressed bytes in the cache) loads in a few milliseconds: the request
# that finds it loads it and answers from it. Larger ones load in the background.
LOAD_INLINE_BYTES = 1024 * 1024
# Background loads run at a lower CPU priority than the threads answering queries.
LOAD_NICENESS = 10


def _hot(pointer: cache.Pointer) -> LayerSet | None:
    """``pointer``'s version ready to query, or the previous version while it loads.

    None when the cache no longer holds the version's data (the caller fetches anew).
    """
    ready = _hot_now(pointer)
    if ready is not None:
        return ready
    previous = _served.get(pointer.key)
    if (previous is None or previous.version == pointer.version
            or pointer.size <= LOAD_INLINE_BYTES or not _still_hot(previous)):
        return _load(pointer)
    with _loading_lock:  # one background load per key
        thread = _loading.get(pointer.key)
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=_load_in_background, args=(pointer,),
                                      daemon=True, name=f"koop-load-{pointer.version}")
            _loading[pointer.key] = thread
            thread.start()
    return previous


def _hot_now(pointer: cache.Pointer) -> LayerSet | None:
    tables = []
    for entry in pointer.layers:
        table = hot_tables.get(_hot_key(pointer.key, entry.id), pointer.version)
        if table is None:
            return None
        tables.append(table)
    return _layer_set(pointer, tables)


def _still_hot(layers: LayerSet) -> bool:
    return all(hot_tables.get(_hot_key(layers.key, t.layer_id), layers.version) is not None
               for t in layers.layers)


def _layer_set(pointer: cache.Pointer, tables: list[LayerTable]) -> LayerSet:
    return LayerSet(pointer.key, pointer.version, tuple(tables), pointer.relationships,
                    pointer.fetched_at, pointer.expires_at, count=pointer.count)


def _load(pointer: cache.Pointer) -> LayerSet | None:
    """Decode ``pointer``'s blobs into hot tables, once per process however many ask."""
    with _load_locks[pointer.key]:
        ready = _hot_now(pointer)
        if ready is not None:
            return ready
        clock = time.perf_counter()
        tables = []
        for entry in pointer.layers:
            hot_key = _hot_key(pointer.key, entry.id)
            table = hot_tables.get(hot_key, pointer.version)
            if table is None:
                blob = cache.get_blob(pointer.key, pointer.version, entry.id)
                if blob is None:
                    return None
                table = hot_tables.put(hot_key, pointer.version, stream_ipc(blob), entry.schema,
                                       pointer.fetched_at, layer_id=entry.id, kind=entry.kind)
            tables.append(table)
        layers = _layer_set(pointer, tables)
        _served[pointer.key] = layers
        log_event(logger, logging.INFO, "hot.load", f"{pointer.key}: version {pointer.version} "
                  "loaded", key=pointer.key, version=pointer.version, features=pointer.count,
                  bytes=sum(t.nbytes for t in tables),
                  duration_ms=round((time.perf_counter() - clock) * 1000))
        return layers


def _load_in_background(pointer: cache.Pointer) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOAD_NICENESS)
    except (AttributeError, OSError):  # not Linux: the thread keeps the process's priority
        pass
    try:
        if _load(pointer) is None:  # the blobs are gone: the next request fetches anew
            _served.pop(pointer.key, None)
    except Exception:
        _served.pop(pointer.key, None)
        log_event(logger, logging.ERROR, "hot.load_failed", f"{pointer.key}: loading version "
                  f"{pointer.version} failed", exc_info=True, key=pointer.key,
                  version=pointer.version)


HISTORY_KEPT = 50


@dataclass
class _Trace:
    """Where a refresh spent its time, for the log line."""

    fetch_ms: int = 0
    normalize_ms: int = 0
    store_ms: int = 0
    bytes: int = 0
    layers: int = 0


def refresh(dataset: Dataset, request: ProviderRequest | None = None, *,
            keep_hot: bool = True, trigger: str = "manual",
            history_id: int | None = None) -> LayerSet:
    """Fetch ``dataset`` now, store the new copy and record the outcome on the dataset.

    ``keep_hot=False`` (workers, commands) only stores the copy: a process that serves no
    queries need not hold the decoded tables. The returned LayerSet then has no layers.
    ``trigger`` says why (miss, stale, schedule, admin, command, manual) in the refresh
    history and the logs. ``history_id`` is the history row a queued refresh wrote as
    running when it started (koop_app/tasks.py): the outcome goes there.
    """
    request = request or provider_request(dataset)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    trace = _Trace()
    fields = {"dataset": dataset.route_label, "dataset_id": dataset.pk,
              "provider": dataset.provider.name, "trigger": trigger}
    try:
        layers = _build(dataset, request, store=True, keep_hot=keep_hot, trace=trace)
    except KoopError as exc:
        # admin_message: network failures keep their detail (refused, reset...) to the log.
        error = f"{type(exc).__name__}: {exc.admin_message}"[:2000]
        Dataset.objects.filter(pk=dataset.pk).update(last_error=error, last_error_at=started)
        duration_ms = _log_refresh(dataset, started, clock, trigger, history_id, ok=False,
                                   error=error)
        log_event(logger, logging.WARNING, "refresh.failed",
                  f"{dataset.route_label}: refresh failed: {exc.log_message}", **fields,
                  error=type(exc).__name__, status=exc.status, detail=exc.log_message,
                  duration_ms=duration_ms, fetch_ms=trace.fetch_ms)
        raise
    duration_ms = _log_refresh(dataset, started, clock, trigger, history_id, ok=True,
                               features=layers.count, version=layers.version)
    log_event(logger, logging.INFO, "refresh.done",
              f"{dataset.route_label}: refreshed {layers.count} features", **fields,
              key=layers.key, version=layers.version, features=layers.count,
              layers=trace.layers, bytes=trace.bytes, duration_ms=duration_ms,
              fetch_ms=trace.fetch_ms, normalize_ms=trace.normalize_ms,
              store_ms=trace.store_ms, ttl_s=round(layers.expires_at - layers.fetched_at))
    return layers


def _log_refresh(dataset: Dataset, started: datetime, clock: float, trigger: str,
                 history_id: int | None, **outcome: Any) -> int:
    """Keep the last HISTORY_KEPT refreshes of each dataset (shown in the admin)."""
    duration_ms = int((time.perf_counter() - clock) * 1000)
    if history_id is None or not RefreshLog.objects.filter(pk=history_id).update(
            state=RefreshLog.DONE, duration_ms=duration_ms, **outcome):
        RefreshLog.objects.create(dataset_id=dataset.pk, started=started,
                                  duration_ms=duration_ms, trigger=trigger[:16], **outcome)
    old = RefreshLog.objects.filter(dataset_id=dataset.pk).values_list("pk", flat=True)[
        HISTORY_KEPT:]
    RefreshLog.objects.filter(pk__in=list(old)).delete()
    return duration_ms


def split_layers(collection: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """(layer id, kind, FeatureCollection) for a plain collection or {layers, tables}."""
    if "layers" not in collection and "tables" not in collection:
        return [(0, "layer", collection)]
    entries: list[tuple[int, str, dict[str, Any]]] = []
    for kind, name in (("layer", "layers"), ("table", "tables")):
        items = collection.get(name) or []
        if not isinstance(items, list):
            raise SourceFormatError(f"'{name}' must be a list of FeatureCollections.")
        for item in items:
            if not isinstance(item, dict):
                raise SourceFormatError(f"An entry of '{name}' is not a FeatureCollection.")
            wanted = (item.get("metadata") or {}).get("id")
            layer_id = wanted if isinstance(wanted, int) and not isinstance(wanted, bool) \
                else len(entries)
            entries.append((layer_id, kind, item))
    layer_ids = [entry[0] for entry in entries]
    if not entries or len(set(layer_ids)) != len(layer_ids):
        raise SourceFormatError("Layer ids must be present and unique.")
    return sorted(entries, key=lambda entry: entry[0])


def _relationships(parts: list[tuple[int, str, dict[str, Any]]]) -> tuple[dict[str, Any], ...]:
    """Relationships declared in each layer's metadata, with the layer they start from."""
    found = []
    for layer_id, _, part in parts:
        for item in (part.get("metadata") or {}).get("relationships") or []:
            if isinstance(item, dict):
                found.append({**item, "originLayerId": layer_id})
    return tuple(found)


def _build(dataset: Dataset, request: ProviderRequest, *, store: bool,
           keep_hot: bool = True, trace: _Trace | None = None) -> LayerSet:
    trace = trace or _Trace()
    plugin = dataset.provider.plugin
    key = plugin.create_key(request)
    label = dataset.route_label
    started = time.perf_counter()
    collection = fetch(plugin, request, label, quiet=not store)
    trace.fetch_ms = round((time.perf_counter() - started) * 1000)
    parts = split_layers(collection)
    single = len(parts) == 1 and parts[0][0] == 0
    layers = []
    for layer_id, _kind, part in parts:
        ids_key = key if single else f"{key}|{layer_id}"
        layers.append(normalize(
            part,
            label=label if single else f"{label} layer {layer_id}",
            assign_ids=lambda keys, ids_key=ids_key: ids.assign_ids(ids_key, keys),
            overrides=overrides_of(dataset) if single or layer_id == parts[0][0] else Overrides(),
            check_geojson=koop_settings.validate_geojson,
        ))
    blobs = {layer_id: write_ipc(layer.table) for (layer_id, _, _), layer in zip(parts, layers,
                                                                                 strict=True)}
    trace.normalize_ms = round((time.perf_counter() - started) * 1000) - trace.fetch_ms
    trace.layers = len(parts)
    trace.bytes = sum(len(blob) for blob in blobs.values())
    digest = hashlib.blake2b(digest_size=8)
    for layer_id in sorted(blobs):
        digest.update(blobs[layer_id])
    version = digest.hexdigest()
    if not store:  # a pass-through answer belongs to this request alone
        version = f"{version}-{uuid.uuid4().hex[:8]}"
    now = time.time()
    ttl = collection.get("ttl") if isinstance(collection.get("ttl"), (int, float)) else None
    ttl = ttl if ttl is not None else dataset.effective_ttl
    entries = tuple(cache.LayerEntry(layer_id, kind, layer.schema, layer.table.num_rows,
                                     len(blobs[layer_id]))
                    for (layer_id, kind, _), layer in zip(parts, layers, strict=True))
    pointer = cache.Pointer(key, version, now, now + ttl, entries, _relationships(parts))
    if store:
        clock = time.perf_counter()
        cache.store(pointer, blobs)
        trace.store_ms = round((time.perf_counter() - clock) * 1000)
        _pointers[key] = (time.monotonic(), pointer)
    tables = tuple(
        hot_tables.put(_hot_key(key, layer_id), version, layer.table, layer.schema, now,
                       None if store else layer.answers, layer_id=layer_id, kind=kind)
        for (layer_id, kind, _), layer in zip(parts, layers, strict=True)) if keep_hot else ()
    result = LayerSet(key, version, tables, pointer.relationships, now, now + ttl,
                      pass_through=not store, count=pointer.count)
    if store and keep_hot:
        _served[key] = result
    if store:
        Dataset.objects.filter(pk=dataset.pk).update(
            cache_key=key,
            version=version,
            last_refresh=datetime.fromtimestamp(now, UTC),
            expires_at=datetime.fromtimestamp(now + ttl, UTC),
            feature_count=pointer.count,
            refresh_duration_ms=int((time.perf_counter() - started) * 1000),
            last_error="",
            last_error_at=None,
        )
        refreshed.send(sender=Dataset, dataset=dataset, ttl=ttl, version=version)
    return result


def _cache_key(dataset: Dataset) -> str:
    """The key the dataset's copy is stored under: recorded at its last refresh, else derived."""
    return dataset.cache_key or dataset.provider.plugin.create_key(provider_request(dataset))


def needs_refresh(dataset: Dataset) -> bool:
    """Whether a scheduled or stale-triggered refresh of ``dataset`` should run now.

    Not when the cached copy has more than half its TTL left: another refresh has run since
    that one was queued (a worker that fell behind its schedule catches up without refetching
    the same dataset once per missed interval).
    """
    key = _cache_key(dataset)
    pointer = cache.get_pointer(key)
    if pointer is None:
        return True
    return pointer.expires_at - time.time() <= (pointer.expires_at - pointer.fetched_at) / 2


def clear(dataset: Dataset) -> bool:
    """Drop the cached copy of ``dataset`` (ids are kept); return whether one existed."""
    key = _cache_key(dataset)
    _discard_hot(key)
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
        start_time_field=dataset.start_time_field,
        end_time_field=dataset.end_time_field,
    )


def _discard_hot(key: str) -> None:
    _pointers.pop(key, None)
    served = _served.pop(key, None)
    pointer = cache.get_pointer(key)
    layer_ids = {entry.id for entry in pointer.layers} if pointer else {0}
    layer_ids |= {table.layer_id for table in served.layers} if served else set()
    for layer_id in layer_ids:
        hot_tables.discard(_hot_key(key, layer_id))


def forget(key: str) -> None:
    """Drop everything kept for a cache key: hot tables, the cached copy and the id maps."""
    _discard_hot(key)
    cache.clear(key)
    ids.forget_ids(key)


def reset_process_state() -> None:
    """Forget this process's hot tables and remembered pointers (tests; memory pressure)."""
    for key, hits in list(_hits.items()):  # hand the hits counted so far to the shared count
        cache.count(key, "hits", hits)
    _pointers.clear()
    _hits.clear()
    _served.clear()
    hot_tables.clear()
