"""Getting data: ``get_table(dataset, request)`` is the only door.

    provider.get_data -> build the layers -> data cache (stored copy) -> hot tables (served)

Cached providers are fetched when no copy exists or the copy has expired; a failed refresh
serves the last good copy and records the error on the dataset. Pass-through providers are
asked on every request and nothing is stored_copies. The parts, one job each:

- ``stored_copies`` (StoredCopies): the cache's pointer of each key, as this process last read it;
- ``served_layers`` (ServedLayers): the versions this process serves, made of hot tables;
- ``first_loads`` (Flight) and ``CacheLock``: one refresh per dataset across threads,
  processes and workers, and bounded waits for it;
- ``recorder``: the history row, the dataset's state and the live progress of a refresh;
- ``executor()``: where the refresh of an expired copy runs (a Celery worker or a thread).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pyarrow as pa
from django.db import connection as db_connection

from koop_app import lookup
from koop_app.conf import koop_settings
from koop_app.data import cache, ids, recorder
from koop_app.data.build import Copy, Trace, build_copy, overrides_of
from koop_app.data.cache import Pointer
from koop_app.data.executors import executor
from koop_app.data.flight import CacheLock, Flight
from koop_app.data.hot import LayerTable, hot_tables
from koop_app.data.ingest import split_layers
from koop_app.data.layerset import LayerSet
from koop_app.data.progress import Progress, reporting
from koop_app.data.recorder import refreshed
from koop_app.data.served import ServedLayers, hot_key
from koop_app.data.stored import StoredCopies
from koop_app.errors import DatasetLoadingError, KoopError, ProviderError, SourceError
from koop_app.logs import log_event
from koop_app.models import Dataset, Provider
from koop_app.provider import NotModified, ProviderRequest

__all__ = ["LayerSet", "LayerTable", "Pointer", "clear", "described", "forget", "get_layers",
           "get_table", "needs_refresh", "overrides_of", "provider_request", "refresh",
           "refreshed", "reset_process_state", "split_layers", "wait_for_refreshes"]

logger = logging.getLogger(__name__)
stored_copies = StoredCopies()
served_layers = ServedLayers(hot_tables)
first_loads: Flight[LayerSet] = Flight()
# What a request that gave up waiting for a first load is told (Retry-After, seconds).
RETRY_AFTER_SECONDS = 5


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


def get_table(dataset: Dataset, request: ProviderRequest, layer: int | None = None
              ) -> LayerTable:
    """One layer of ``dataset`` (the first when ``layer`` is None)."""
    layers = get_layers(dataset, request)
    return layers.layers[0] if layer is None else layers.layer(layer)


def described(dataset: Dataset, request: ProviderRequest) -> Pointer | None:
    """What the stored copy says of ``dataset`` (version, times, each layer's schema) without
    loading any data: None for pass-through providers and before the first load.

    Views check a request's parameters and its conditional headers against it, so that a bad
    parameter or a client's current copy costs no data at all.
    """
    if dataset.cache_policy == Provider.PASS_THROUGH:
        return None
    return stored_copies.recent(dataset.provider.plugin.create_key(request))


def get_layers(dataset: Dataset, request: ProviderRequest) -> LayerSet:
    """The queryable layers of ``dataset`` for ``request``; fetches only when there is no copy.

    An expired copy is served at once while one refresh runs elsewhere (stale-while-
    revalidate); with no copy at all, one fetch runs for every thread and process, and each
    request waits for it at most KOOP["FETCH_WAIT_SECONDS"] (then DatasetLoadingError).
    """
    if dataset.cache_policy == Provider.PASS_THROUGH:
        return _pass_through(dataset, request)
    key = dataset.provider.plugin.create_key(request)
    pointer = stored_copies.recent(key)
    if pointer is not None:
        layers = served_layers.serve(pointer)
        if layers is not None:
            if pointer.expires_at <= time.time():
                _revalidate(dataset, key)
            stored_copies.hit(key)
            return layers
    cache.count(key, "misses")
    return _first_load(dataset, request, key)


def _first_load(dataset: Dataset, request: ProviderRequest, key: str) -> LayerSet:
    """One load for all the requests of this process, each waiting for it a bounded time.

    It runs in a thread of its own, unless the caller is inside a transaction (a test, or
    ATOMIC_REQUESTS): another thread could not see its uncommitted rows, so it runs it itself.
    """
    inline = db_connection.in_atomic_block

    def load() -> LayerSet:
        try:
            pointer = stored_copies.current(key)  # another process may have stored it meanwhile
            layers = served_layers.serve(pointer) if pointer is not None else None
            return layers or refresh(dataset, request, trigger="miss")
        finally:
            if not inline:
                db_connection.close()  # the thread's own connection

    try:
        return first_loads.join(key, load, wait=float(koop_settings.FETCH_WAIT_SECONDS),
                                inline=inline, retry_after=RETRY_AFTER_SECONDS)
    except DatasetLoadingError:
        log_event(logger, logging.INFO, "fetch.still_loading", f"{dataset.route_label}: the "
                  "first load is still running; the request was told to retry",
                  dataset=dataset.route_label, key=key)
        raise


def _revalidate(dataset: Dataset, key: str) -> None:
    """Start one refresh of an expired copy, on a Celery worker or in a thread here.

    The marker outlives a failure for REVALIDATE_BACKOFF_SECONDS, so a failing source is asked
    again only that often while its last good copy is served.
    """
    if not cache.acquire(cache.revalidate_key(key), "1",
                         float(koop_settings.REVALIDATE_BACKOFF_SECONDS)):
        return

    def run_here() -> None:
        try:
            refresh(dataset, trigger="stale")
            cache.release(cache.revalidate_key(key), "1")
        except KoopError:
            pass  # logged by refresh(); the last good copy is served and retried after a backoff

    runs_on = executor().submit(dataset, "stale", run_here)
    log_event(logger, logging.INFO, "refresh.queued", f"{dataset.route_label}: expired copy "
              f"served; refresh {'queued' if runs_on == 'worker' else 'running in the background'}",
              dataset=dataset.route_label, key=key, runs_on=runs_on)


def refresh(dataset: Dataset, request: ProviderRequest | None = None, *,
            keep_hot: bool = True, trigger: str = "manual", history_id: int | None = None,
            on_progress: Progress | None = None, built: Copy | None = None) -> LayerSet:
    """Fetch ``dataset`` now, store the new copy and record the outcome on the dataset.

    One refresh per dataset runs at a time across threads, processes and workers: when one
    runs elsewhere, this call waits for it (bounded by FETCH_LOCK_SECONDS) and shares its copy.
    ``keep_hot=False`` (workers, commands) only stores the copy: a process that serves no
    queries need not hold the decoded tables. The returned LayerSet then has no layers.
    ``trigger`` says why (miss, stale, schedule, admin, command, manual) in the refresh
    history and the logs. ``history_id`` is the history row a queued refresh wrote as running
    when it started (koop_app/tasks.py). ``on_progress(phase, bytes_read, bytes_total,
    features)`` hears the progress too (koop_refresh's bar). ``built`` is a copy already
    made of the same key (the admin's check of the source, koop_app/probe.py): it is stored
    as it is instead of fetching the source again.
    """
    request = request or provider_request(dataset)
    key = dataset.provider.plugin.create_key(request)
    lock = CacheLock(cache.lock_key(key), float(koop_settings.FETCH_LOCK_SECONDS))
    asked = time.time()
    while not lock.acquire():
        shared = _share_running_refresh(dataset, key, lock, asked, keep_hot, trigger, history_id)
        if shared is not None:
            return shared
    try:
        if trigger == "miss":  # another process may have stored it just before this lock
            pointer = cache.get_pointer(key)
            layers = served_layers.serve(pointer) if pointer is not None else None
            if layers is not None:
                return layers
        return _refresh_locked(dataset, request, key, lock, keep_hot=keep_hot, trigger=trigger,
                               history_id=history_id, on_progress=on_progress,
                               built=built if built is not None and built.pointer.key == key
                               else None)
    finally:
        lock.release()


def _share_running_refresh(dataset: Dataset, key: str, lock: CacheLock, asked: float,
                           keep_hot: bool, trigger: str, history_id: int | None
                           ) -> LayerSet | None:
    """Wait for the refresh running elsewhere; its copy, or None to run one here."""
    log_event(logger, logging.INFO, "refresh.waiting", f"{dataset.route_label}: another "
              "refresh of this dataset runs; waiting for it", dataset=dataset.route_label,
              key=key, trigger=trigger)
    if not lock.wait_released(float(koop_settings.FETCH_LOCK_SECONDS)):
        raise DatasetLoadingError(retry_after=RETRY_AFTER_SECONDS,
                                  log_message=f"{key}: another refresh still runs")
    pointer = cache.get_pointer(key)
    if pointer is not None and pointer.fetched_at >= asked:
        layers = served_layers.serve(pointer) if keep_hot else None
        layers = layers or LayerSet.of(pointer)
        if history_id is not None:
            recorder.start(dataset, trigger, history_id=history_id).joined(
                version=pointer.version, features=pointer.count)
        log_event(logger, logging.INFO, "refresh.shared", f"{dataset.route_label}: shares "
                  "the copy of the refresh it waited for", dataset=dataset.route_label,
                  key=key, version=pointer.version, trigger=trigger)
        return layers
    failure = cache.get_failure(key)
    if failure is not None and failure.get("at", 0) >= asked:
        error = ProviderError(failure["status"], failure["message"])
        if history_id is not None:
            recorder.start(dataset, trigger, history_id=history_id).failed(error)
        raise error
    return None


def _refresh_locked(dataset: Dataset, request: ProviderRequest, key: str, lock: CacheLock, *,
                    keep_hot: bool, trigger: str, history_id: int | None,
                    on_progress: Progress | None, built: Copy | None = None) -> LayerSet:
    recording = recorder.start(dataset, trigger, history_id=history_id, lock=lock,
                               listener=on_progress)
    trace = Trace()
    fields = {"dataset": dataset.route_label, "dataset_id": dataset.pk,
              "provider": dataset.provider.name, "trigger": trigger}
    unchanged = False
    try:
        if built is not None:
            new = built
        else:
            previous = _revalidatable(key, dataset)
            if previous is not None:
                request = replace(request, validators=previous.validators)
            try:
                with reporting(recording.progress):
                    new = build_copy(dataset, request, key=key, pass_through=False,
                                     progress=recording.progress, trace=trace)
            except NotModified as signal:
                new, unchanged = _renewed(dataset, previous, signal), True
        recording.progress("store", recording.state["bytes_read"],
                           recording.state["bytes_total"], new.pointer.count)
        clock = time.perf_counter()
        cache.store(new.pointer, new.blobs)  # unchanged: no blobs, the pointer's times only
        trace.store_ms = round((time.perf_counter() - clock) * 1000)
        stored_copies.remember(new.pointer)
        layers = LayerSet.of(new.pointer)
        if keep_hot and unchanged:
            layers = served_layers.serve(new.pointer) or layers
        elif keep_hot:
            layers = LayerSet.of(new.pointer, _put_hot(new, pass_through=False))
            served_layers.keep(layers)
    except KoopError as exc:
        cache.set_failure(key, exc.status, exc.message)
        duration_ms = recording.failed(exc)
        log_event(logger, logging.WARNING, "refresh.failed",
                  f"{dataset.route_label}: refresh failed: {exc.log_message}", **fields,
                  error=type(exc).__name__, status=exc.status, detail=exc.log_message,
                  duration_ms=duration_ms, fetch_ms=trace.fetch_ms)
        raise
    except BaseException as exc:  # a bug, or the process stopping: not left "running"
        recording.failed(exc)
        raise
    pointer = new.pointer
    ttl = pointer.expires_at - pointer.fetched_at
    duration_ms = recording.succeeded(key=key, version=pointer.version, features=pointer.count,
                                      fetched_at=pointer.fetched_at, ttl=ttl)
    log_event(logger, logging.INFO, "refresh.done",
              f"{dataset.route_label}: {'source unchanged, kept' if unchanged else 'refreshed'}"
              f" {pointer.count} features", **fields, unchanged=unchanged,
              key=key, version=pointer.version, features=pointer.count,
              layers=trace.layers, bytes=trace.bytes, duration_ms=duration_ms,
              fetch_ms=trace.fetch_ms, normalize_ms=trace.normalize_ms,
              store_ms=trace.store_ms, ttl_s=round(ttl))
    if not keep_hot and koop_settings.HOT_PREBUILD:
        _prebuild_hot(new)
    return layers


def _revalidatable(key: str, dataset: Dataset) -> Pointer | None:
    """The stored copy of ``key`` when its provider may answer "not modified" against it: it
    has validators, all its data is still in the cache, and the dataset was not edited since it
    was made (new options over an unchanged source still need a full read)."""
    pointer = cache.get_pointer(key)
    if pointer is None or not pointer.validators or not cache.has_blobs(pointer):
        return None
    edited = getattr(dataset, "updated", None)
    if edited is not None and edited.timestamp() >= pointer.fetched_at:
        return None
    return pointer


def _renewed(dataset: Dataset, previous: Pointer | None, signal: NotModified) -> Copy:
    """The stored copy confirmed by the source (provider.NotModified): same version and data,
    checked now, expiring one TTL from now."""
    if previous is None:
        raise SourceError("The provider answered 'not modified' with no stored copy to keep.",
                          log_message=f"{dataset.route_label}: NotModified raised without "
                                      "request.validators")
    now = time.time()
    ttl = signal.ttl if signal.ttl is not None else dataset.effective_ttl
    return Copy(replace(previous, fetched_at=now, expires_at=now + ttl), ())


def _prebuild_hot(new: Copy) -> None:
    """Build the new version's hot files for this host's web processes (see HOT_PREBUILD).

    After the refresh is recorded: the copy is stored either way; a failure here only means a
    web process builds the file itself when it first needs it.
    """
    pointer = new.pointer
    pa.default_memory_pool().release_unused()  # what the refresh itself no longer needs
    for layer in new.layers:
        clock = time.perf_counter()
        try:
            built = hot_tables.prebuild(hot_key(pointer.key, layer.layer_id), pointer.version,
                                        layer.rows(), layer.schema, pointer.fetched_at,
                                        layer_id=layer.layer_id, kind=layer.kind)
        except Exception:
            log_event(logger, logging.WARNING, "hot.prebuild_failed", f"{pointer.key}: "
                      f"building the hot file of version {pointer.version} failed",
                      exc_info=True, key=pointer.key, version=pointer.version)
            return
        if built:
            log_event(logger, logging.INFO, "hot.prebuilt", f"{pointer.key}: hot file of "
                      f"version {pointer.version} built", key=pointer.key,
                      version=pointer.version, layer=layer.layer_id,
                      duration_ms=round((time.perf_counter() - clock) * 1000))


def _put_hot(new: Copy, *, pass_through: bool) -> tuple[LayerTable, ...]:
    pointer = new.pointer
    return tuple(
        hot_tables.put(hot_key(pointer.key, layer.layer_id), pointer.version, layer.rows(),
                       layer.schema, pointer.fetched_at, layer.answers if pass_through else None,
                       layer_id=layer.layer_id, kind=layer.kind, shared=not pass_through)
        for layer in new.layers)


def _pass_through(dataset: Dataset, request: ProviderRequest) -> LayerSet:
    """A pass-through answer: built for this request alone, never stored."""
    key = dataset.provider.plugin.create_key(request)
    new = build_copy(dataset, request, key=key, pass_through=True)
    tables = _put_hot(new, pass_through=True)
    pointer = new.pointer
    return LayerSet(key, pointer.version, tables, pointer.relationships, pointer.fetched_at,
                    pointer.expires_at, pass_through=True, count=pointer.count)


def wait_for_refreshes(timeout: float = 30.0) -> None:
    """Wait for this process's background refreshes and loads (tests, a clean shutdown)."""
    first_loads.wait(timeout)
    executor().wait(timeout)
    served_layers.wait(timeout)


def _cache_key(dataset: Dataset) -> str:
    """The key the dataset's copy is stored under: recorded at its last refresh, else derived."""
    return dataset.cache_key or dataset.provider.plugin.create_key(provider_request(dataset))


def needs_refresh(dataset: Dataset) -> bool:
    """Whether a scheduled or stale-triggered refresh of ``dataset`` should run now.

    Not when the cached copy has more than half its TTL left: another refresh has run since
    that one was queued (a worker that fell behind its schedule catches up without refetching
    the same dataset once per missed interval).
    """
    pointer = cache.get_pointer(_cache_key(dataset))
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


def _discard_hot(key: str) -> None:
    stored_copies.forget(key)
    pointer = cache.get_pointer(key)
    layer_ids = {entry.id for entry in pointer.layers} if pointer else {0}
    served_layers.discard(key, layer_ids | served_layers.tables_of(key))


def forget(key: str) -> None:
    """Drop everything kept for a cache key: hot tables, the cached copy and the id maps."""
    _discard_hot(key)
    cache.clear(key)
    ids.forget_ids(key)


def reset_process_state() -> None:
    """Forget this process's hot tables and remembered pointers (tests; memory pressure)."""
    stored_copies.clear()
    served_layers.clear()
