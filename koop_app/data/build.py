"""Making a copy: ask the provider, then build the layers from its answer.

``build_layers`` is the one step that turns the provider's answer into stored layers (split,
normalise, encode, version); it reports its progress through ``progress(phase, bytes_read,
bytes_total, features)``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from koop_app.conf import koop_settings
from koop_app.data import cache, ids
from koop_app.data.arrowio import write_ipc
from koop_app.data.cache import Pointer
from koop_app.data.fetch import fetch
from koop_app.data.normalize import NormalizedLayer, Overrides, normalize
from koop_app.errors import SourceFormatError
from koop_app.models import Dataset
from koop_app.provider import ProviderRequest

Progress = Callable[[str, int, "int | None", int], None]


def no_progress(phase: str, bytes_read: int, bytes_total: int | None, features: int) -> None:
    return None


@dataclass
class Trace:
    """Where a refresh spent its time, for the log line."""

    fetch_ms: int = 0
    normalize_ms: int = 0
    store_ms: int = 0
    bytes: int = 0
    layers: int = 0


@dataclass(frozen=True)
class BuiltLayers:
    """The provider's answer as columnar layers, encoded for the cache, with their version."""

    kinds: tuple[tuple[int, str], ...]  # (layer id, "layer" or "table"), by layer id
    layers: tuple[NormalizedLayer, ...]
    blobs: dict[int, bytes]
    version: str
    relationships: tuple[dict[str, Any], ...] = ()

    @property
    def count(self) -> int:
        return sum(layer.table.num_rows for layer in self.layers)


@dataclass(frozen=True)
class Copy:
    """A new copy of a dataset: its pointer (what the cache keeps) and its built layers."""

    pointer: Pointer
    built: BuiltLayers


def build_copy(dataset: Dataset, request: ProviderRequest, *, key: str, pass_through: bool,
               progress: Progress = no_progress, trace: Trace | None = None) -> Copy:
    """Ask the provider for ``dataset`` and build a copy of its answer (not stored yet)."""
    trace = trace or Trace()
    label = dataset.route_label
    started = time.perf_counter()
    progress("fetch", 0, None, 0)
    collection = fetch(dataset.provider.plugin, request, label, quiet=pass_through)
    trace.fetch_ms = round((time.perf_counter() - started) * 1000)
    built = build_layers(collection, dataset, key, progress=progress)
    trace.normalize_ms = round((time.perf_counter() - started) * 1000) - trace.fetch_ms
    trace.layers = len(built.layers)
    trace.bytes = sum(len(blob) for blob in built.blobs.values())
    version = built.version
    if pass_through:  # a pass-through answer belongs to this request alone
        version = f"{version}-{uuid.uuid4().hex[:8]}"
    now = time.time()
    ttl = collection.get("ttl") if isinstance(collection.get("ttl"), (int, float)) else None
    ttl = ttl if ttl is not None else dataset.effective_ttl
    entries = tuple(cache.LayerEntry(layer_id, kind, layer.schema, layer.table.num_rows,
                                     len(built.blobs[layer_id]))
                    for (layer_id, kind), layer in zip(built.kinds, built.layers, strict=True))
    return Copy(Pointer(key, version, now, now + ttl, entries, built.relationships), built)


def build_layers(collection: dict[str, Any], dataset: Dataset, key: str, *,
                 progress: Progress = no_progress) -> BuiltLayers:
    """Build the layers from the provider's answer: split, normalise, encode, version."""
    parts = split_layers(collection)
    label = dataset.route_label
    single = len(parts) == 1 and parts[0][0] == 0
    layers = []
    features = 0
    for layer_id, _kind, part in parts:
        ids_key = key if single else f"{key}|{layer_id}"
        progress("normalize", 0, None, features)
        layer = normalize(
            part,
            label=label if single else f"{label} layer {layer_id}",
            assign_ids=lambda keys, ids_key=ids_key: ids.assign_ids(ids_key, keys),
            overrides=overrides_of(dataset) if single or layer_id == parts[0][0] else Overrides(),
            check_geojson=koop_settings.validate_geojson,
        )
        features += layer.table.num_rows
        layers.append(layer)
        progress("normalize", 0, None, features)
    progress("encode", 0, None, features)
    blobs = {layer_id: write_ipc(layer.table)
             for (layer_id, _, _), layer in zip(parts, layers, strict=True)}
    digest = hashlib.blake2b(digest_size=8)
    for layer_id in sorted(blobs):
        digest.update(blobs[layer_id])
    return BuiltLayers(tuple((layer_id, kind) for layer_id, kind, _ in parts), tuple(layers),
                       blobs, digest.hexdigest(), relationships_of(parts))


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


def relationships_of(parts: list[tuple[int, str, dict[str, Any]]]
                     ) -> tuple[dict[str, Any], ...]:
    """Relationships declared in each layer's metadata, with the layer they start from."""
    found = []
    for layer_id, _, part in parts:
        for item in (part.get("metadata") or {}).get("relationships") or []:
            if isinstance(item, dict):
                found.append({**item, "originLayerId": layer_id})
    return tuple(found)


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
