"""One refresh's data: provider -> normalised layers -> Arrow IPC blobs for the cache.

    result = read_layers(plugin, request, key=key, label=label, overrides=overrides,
                    progress=progress)
    result.layers[0].blob, .schema, .count, .rows()    result.ttl, result.relationships

When the provider hands over a file (``Provider.get_source`` -> FileSource) holding a plain
GeoJSON FeatureCollection, the features are read, typed and written batch by batch through
DuckDB (``stream``): time linear in the file, memory bounded by a batch. Otherwise (a dict
from ``get_data``, a single Feature, a multi-layer document) the collection goes through
``normalize`` as a whole; both give the same schema for the same data.

``progress(phase, bytes_read, bytes_total, features)`` is called at most a few times a
second with phase "fetch", "read", "normalise", "ids" or "store".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from django import db

from koop_app.conf import koop_settings
from koop_app.data import csvstream, ids, slicer, stream
from koop_app.data.arrowio import stream_ipc, write_ipc
from koop_app.data.fetch import fetch, guarded
from koop_app.data.normalize import Overrides, SourceAnswers, normalize
from koop_app.data.progress import Progress
from koop_app.data.schema import LayerSchema
from koop_app.errors import KoopError, SourceFormatError, SourceTooLargeError
from koop_app.logs import log_event
from koop_app.provider import FileSource, Provider, ProviderRequest

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between two calls of the same phase
# Below this a file is parsed whole: a few milliseconds, where starting DuckDB costs ~0.2 s.
STREAM_MIN_BYTES = 2 * 1024 * 1024
# Rows per record batch of a streamed layer's blob (see EvenBatches).
EVEN_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class IngestedLayer:
    """One normalised layer (or table) and its IPC blob, as the cache stores it."""

    layer_id: int
    kind: str  # "layer" or "table"
    schema: LayerSchema
    count: int
    blob: bytes
    table: pa.Table | None = None  # kept by the dict path: loads hot without decoding the blob
    answers: SourceAnswers | None = None

    def rows(self) -> pa.Table | pa.RecordBatchReader:
        return self.table if self.table is not None else stream_ipc(self.blob)


@dataclass(frozen=True)
class Ingested:
    layers: tuple[IngestedLayer, ...]
    ttl: float | None = None  # the source's own ttl member, if any
    relationships: tuple[dict[str, Any], ...] = ()
    fetch_ms: int = 0
    normalize_ms: int = 0
    streamed: bool = False
    validators: dict[str, Any] | None = None  # stored with the copy (provider.NotModified)


def read_layers(provider: Provider, request: ProviderRequest, *, key: str, label: str,
           overrides: Overrides | None = None, quiet: bool = False,
           progress: Progress | None = None) -> Ingested:
    """Fetch and normalise the data of ``request``; ``key`` names the stable-id maps.

    ``quiet`` (a pass-through answer) skips the file path and logs success at DEBUG.
    """
    report = _Throttled(progress)
    clock = time.perf_counter()
    report("fetch", None, None, None)
    source = None if quiet else guarded(provider, label, "get_source",
                                                lambda: provider.get_source(request))
    if source is None:
        collection = fetch(provider, request, label, quiet=quiet)
        fetched = time.perf_counter()
        result = from_collection(collection, key=key, label=label, overrides=overrides,
                                 report=report)
        return replace(_timed(result, clock, fetched),
                       validators=_validators(collection.get("validators")))
    try:  # bugs of the streaming code are not source failures: they stay crashes
        result = guarded(provider, label, "reading the source", lambda: _from_file(
            source, clock, key=key, label=label, overrides=overrides, report=report),
            catch=(KoopError, OSError))
    finally:
        source.discard()
    result = replace(result, validators=_validators(source.validators))
    log_event(logger, logging.INFO, "fetch.done", f"{label}: fetched from {provider.name}",
              dataset=label, provider=provider.name, streamed=result.streamed,
              duration_ms=result.fetch_ms, features=sum(layer.count for layer in result.layers))
    return result


def _from_file(source: FileSource, clock: float, *, key: str, label: str,
               overrides: Overrides | None, report: Progress) -> Ingested:
    fetched = time.perf_counter()
    size = source.path.stat().st_size
    report("fetch", size, size, None)
    parse = source.parse or geojson_document
    if source.format == "csv" and size >= STREAM_MIN_BYTES:
        return _timed(_stream_csv(source, key=key, label=label, overrides=overrides,
                                  report=report), clock, fetched)
    if source.format not in ("csv", "geojson"):
        raise SourceFormatError(f"Unknown source format {source.format!r}.")
    found = None
    if source.format == "geojson" and size >= STREAM_MIN_BYTES:
        found = slicer.find_features(source.path)
    if found is not None:
        return _timed(_stream_geojson(source.path, found, key=key, label=label,
                                      overrides=overrides, report=report), clock, fetched)
    limit = int(koop_settings.MAX_DOWNLOAD_BYTES)
    if size > limit:  # read whole (not a plain FeatureCollection): bounded like a download
        raise SourceTooLargeError(log_message=f"{source.path} ({size} bytes) cannot be read "
                                  f"in a stream and is larger than {limit} bytes")
    collection = parse(source.path.read_bytes())
    return _timed(from_collection(collection, key=key, label=label, overrides=overrides,
                                  report=report), clock, fetched)


def _timed(result: Ingested, clock: float, fetched: float) -> Ingested:
    end = time.perf_counter()
    return Ingested(result.layers, result.ttl, result.relationships,
                    round((fetched - clock) * 1000), round((end - fetched) * 1000),
                    result.streamed)


def geojson_document(raw: bytes) -> dict[str, Any]:
    """A GeoJSON source parsed whole: a FeatureCollection, a Feature wrapped in one, or a
    multi-layer document ``{"layers": [...], "tables": [...]}``."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SourceFormatError("The GeoJSON source is not valid JSON.",
                                log_message=f"invalid JSON: {exc}") from exc
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = {"type": "FeatureCollection", "features": [data]}
    if isinstance(data, dict) and ("layers" in data or "tables" in data):
        return data
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise SourceFormatError("The GeoJSON source is not a FeatureCollection.")
    return data


def _stream_geojson(path: Path, found: slicer.Slice, *, key: str, label: str,
                    overrides: Overrides | None, report: Progress) -> Ingested:
    """The FeatureCollection in ``path`` through DuckDB, batch by batch, into an IPC blob."""
    with stream.Workspace() as space:
        features = space.dir / "features.json"
        total = found.end - found.start
        report("read", 0, total, None)
        slicer.copy_range(path, found.start, found.end, features)
        try:
            with reading(space.con, total, report):
                count = stream.stage_features(space.con, features)
        except SourceFormatError:
            if not found.guessed:
                raise
            # The end was a guess that DuckDB did not confirm: find it by scanning.
            with open(path, "rb") as handle:
                end = slicer.value_end(handle.fileno(), found.start)
            slicer.copy_range(path, found.start, end, features)
            total = end - found.start
            count = stream.stage_features(space.con, features)
        features.unlink()
        report("read", total, total, count)
        schema, written, blob = _write(space, count, found.members, key, label, overrides,
                                       report)
    layer = IngestedLayer(0, "layer", schema, written, blob,
                          answers=SourceAnswers.from_collection(found.members))
    return Ingested((layer,), ttl=_ttl(found.members), streamed=True)


def _stream_csv(source: FileSource, *, key: str, label: str, overrides: Overrides | None,
                report: Progress) -> Ingested:
    """The CSV in ``source`` through DuckDB, batch by batch, into an IPC blob."""
    with stream.Workspace() as space:
        size = source.path.stat().st_size
        report("read", 0, size, None)
        with reading(space.con, size, report):
            columns, count = csvstream.stage_csv(space.con, source.path, source.options,
                                                 space.dir)
        report("read", size, size, count)
        schema, written, blob = _write(space, count, {}, key, label, overrides, report,
                                       csv_columns=columns)
    return Ingested((IngestedLayer(0, "layer", schema, written, blob),), streamed=True)


def _write(space: stream.Workspace, count: int, members: dict[str, Any], key: str,
           label: str, overrides: Overrides | None, report: Progress,
           **kwargs: Any) -> tuple[LayerSchema, int, bytes]:
    """Normalise the staged table into a zstd Arrow IPC stream: (schema, rows, blob).

    The stream is written to a file and read back once: the blob is held in memory once,
    never as a growing buffer and a copy of it.
    """
    path = space.dir / "layer.arrows"
    writers: list[EvenBatches] = []
    with pa.OSFile(str(path), "wb") as sink:

        def open_writer(schema: pa.Schema) -> EvenBatches:
            writer = EvenBatches(pa.ipc.new_stream(
                sink, schema, options=pa.ipc.IpcWriteOptions(compression="zstd")))
            writers.append(writer)
            return writer

        schema, written = stream.normalize_staged(
            space.con, count=count, members=members, label=label, ids_key=key,
            overrides=overrides, check_geojson=koop_settings.validate_geojson,
            sink=open_writer, progress=report, **kwargs)
        for writer in writers:
            writer.close()
    blob = path.read_bytes()
    path.unlink()
    return schema, written, blob


class EvenBatches:
    """An IPC writer fed batches of any size that writes batches of EVEN_BATCH_ROWS rows.

    DuckDB hands over batches whose sizes depend on its threads' timing; the version is a
    digest of the blob's bytes, so the same data must always be cut the same way.
    """

    def __init__(self, writer: pa.ipc.RecordBatchStreamWriter,
                 rows: int = EVEN_BATCH_ROWS) -> None:
        self.writer, self.rows = writer, rows
        self.pending: list[pa.RecordBatch] = []
        self.count = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.count += batch.num_rows
        while self.count >= self.rows:
            self._flush(self.rows)

    def close(self) -> None:
        if self.count:
            self._flush(self.count)
        self.writer.close()

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self.pending)
        head, rest = table.slice(0, rows), table.slice(rows)
        for batch in head.combine_chunks().to_batches():  # one batch, its own buffers
            self.writer.write_batch(_zero_under_nulls(batch))
        self.pending = rest.combine_chunks().to_batches() if rest.num_rows else []
        self.count = rest.num_rows


def _zero_under_nulls(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with zeros in the value slots of null fixed-width values.

    DuckDB leaves whatever was in memory there; the values are the same, but not the bytes.
    """
    columns = []
    for column in batch.columns:
        kind = column.type
        if column.null_count and (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                  or pa.types.is_temporal(kind) or pa.types.is_boolean(kind)):
            filled = column.fill_null(pa.scalar(False if pa.types.is_boolean(kind) else 0,
                                                kind))
            valid = column.is_valid()  # the validity bitmap, from offset 0 like ``filled``
            column = pa.Array.from_buffers(kind, len(column),
                                           [valid.buffers()[1], filled.buffers()[1]],
                                           null_count=column.null_count)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def from_collection(collection: dict[str, Any], *, key: str, label: str,
                    overrides: Overrides | None, report: Progress | None = None) -> Ingested:
    """A FeatureCollection (or multi-layer document) dict, normalised layer by layer."""
    report = report or (lambda *args: None)
    parts = split_layers(collection)
    single = len(parts) == 1 and parts[0][0] == 0
    layers = []
    for layer_id, kind, part in parts:
        ids_key = key if single else f"{key}|{layer_id}"
        count = len(part.get("features") or ()) if isinstance(part, dict) else None
        report("normalise", None, None, 0)
        layer = normalize(
            part,
            label=label if single else f"{label} layer {layer_id}",
            assign_ids=lambda keys, ids_key=ids_key: ids.assign_ids(ids_key, keys),
            overrides=(overrides or Overrides()) if single or layer_id == parts[0][0]
            else Overrides(),
            check_geojson=koop_settings.validate_geojson,
        )
        report("normalise", None, None, count)
        report("store", None, None, 0)
        blob = write_ipc(layer.table)
        layers.append(IngestedLayer(layer_id, kind, layer.schema, layer.table.num_rows, blob,
                                    layer.table, layer.answers))
        report("store", None, None, layer.table.num_rows)
    return Ingested(tuple(layers), ttl=_ttl(collection), relationships=_relationships(parts))


def _validators(value: Any) -> dict[str, Any] | None:
    """A provider's validators as stored with the copy: a JSON-able mapping, or None."""
    if not value:
        return None
    if not isinstance(value, Mapping):
        raise SourceFormatError("The provider's validators must be a mapping.")
    return dict(value)


def _ttl(members: dict[str, Any]) -> float | None:
    ttl = members.get("ttl")
    return ttl if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) else None


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


@contextmanager
def reading(con: Any, size: int, report: Progress) -> Iterator[None]:
    """Report the bytes DuckDB has read of a ``size``-byte file while the block runs.

    One DuckDB statement reads the whole file, so its own progress (``query_progress``,
    polled from a thread) is the only sign of how far the read is.
    """
    done = threading.Event()

    def watch() -> None:
        furthest = 0
        try:
            while not done.wait(PROGRESS_INTERVAL * 2):
                try:
                    percent = con.query_progress()
                except Exception:  # the connection is busy closing: nothing more to say
                    return
                read = int(size * min(max(percent, 0.0), 100.0) / 100)
                if read > furthest:  # a statement after the read starts again from 0 %
                    furthest = read
                    report("read", read, size, None)
        finally:
            db.connections.close_all()  # the recorder's row update opened one in this thread

    watcher = threading.Thread(target=watch, name="koop-read-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


class _Throttled:
    """Calls ``progress`` on a change of phase and otherwise at most every PROGRESS_INTERVAL."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.phase = ""
        self.last = 0.0

    def __call__(self, phase: str, done: int | None, total: int | None,
                 features: int | None) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if phase == self.phase and now - self.last < PROGRESS_INTERVAL:
            return
        self.phase, self.last = phase, now
        try:
            self.progress(phase, done, total, features)
        except Exception:  # a broken progress display never fails the refresh
            logger.warning("progress callback failed", exc_info=True)
