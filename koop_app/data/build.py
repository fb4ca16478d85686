"""Making a copy: the provider's data as encoded layers, with their version and pointer.

``ingest.read_layers`` reads the provider's file or answer into layers (streamed for large
files) and reports its progress through ``progress(phase, bytes_read, bytes_total,
features)``; here the copy gets its version, TTL and pointer.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass

from koop_app.data import cache
from koop_app.data.cache import Pointer
from koop_app.data.ingest import IngestedLayer, read_layers
from koop_app.data.normalize import Overrides
from koop_app.data.progress import Progress
from koop_app.models import Dataset
from koop_app.provider import ProviderRequest


def no_progress(phase: str, bytes_read: int | None, bytes_total: int | None,
                features: int | None) -> None:
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
class Copy:
    """A new copy of a dataset: its pointer (what the cache keeps) and its layers and blobs."""

    pointer: Pointer
    layers: tuple[IngestedLayer, ...]

    @property
    def blobs(self) -> dict[int, bytes]:
        return {layer.layer_id: layer.blob for layer in self.layers}


def build_copy(dataset: Dataset, request: ProviderRequest, *, key: str, pass_through: bool,
               progress: Progress = no_progress, trace: Trace | None = None) -> Copy:
    """Ask the provider for ``dataset`` and build a copy of its answer (not stored yet).

    The provider's file (``get_source``) or answer (``get_data``) becomes layers in
    ``ingest.read_layers``; the version is a digest of the encoded layers.
    """
    trace = trace or Trace()
    ingested = read_layers(dataset.provider.plugin, request, key=key,
                           label=dataset.route_label, overrides=overrides_of(dataset),
                           quiet=pass_through, progress=progress)
    trace.fetch_ms, trace.normalize_ms = ingested.fetch_ms, ingested.normalize_ms
    trace.layers = len(ingested.layers)
    trace.bytes = sum(len(layer.blob) for layer in ingested.layers)
    digest = hashlib.blake2b(digest_size=8)
    for layer in sorted(ingested.layers, key=lambda layer: layer.layer_id):
        digest.update(layer.blob)
    version = digest.hexdigest()
    if pass_through:  # a pass-through answer belongs to this request alone
        version = f"{version}-{uuid.uuid4().hex[:8]}"
    now = time.time()
    ttl = ingested.ttl if ingested.ttl is not None else dataset.effective_ttl
    entries = tuple(cache.LayerEntry(layer.layer_id, layer.kind, layer.schema, layer.count,
                                     len(layer.blob)) for layer in ingested.layers)
    return Copy(Pointer(key, version, now, now + ttl, entries, ingested.relationships,
                        ingested.validators or {}), ingested.layers)


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
