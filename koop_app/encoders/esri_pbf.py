"""``f=pbf``: query answers as Esri's FeatureCollection protocol buffer.

Features (with an ever-present ``transform``: the request's quantization, else a lossless
grid), counts, object ids and extents (with or without a count). The wire format is written by
``pbf``; this module maps the engine's Result onto it.
"""

from __future__ import annotations

import numpy as np

from koop_app.data.schema import SQL_TYPES
from koop_app.encoders import pbf
from koop_app.encoders.esri_json import has_object_ids
from koop_app.encoders.snapped import snapped_page
from koop_app.query import Result

MEDIA_TYPE = "application/x-protobuf"


def encode(result: Result, precision: int | None = None) -> bytes:
    schema = result.table.schema
    sr = result.out_sr.as_json()
    if result.extent_only:
        return pbf.extent_count_result(result.extent, sr, result.count)
    if result.count is not None:
        return pbf.count_result(result.count)
    if result.object_ids is not None:
        ids = result.ids if result.ids is not None else np.zeros(0, dtype=np.int64)
        return pbf.object_ids_result(schema.object_id_field, ids)
    page = result.page
    assert page is not None
    snapped = snapped_page(result, precision)
    fields = [pbf.PbfField(f.name, f.type, f.alias or f.name, SQL_TYPES.get(f.type, "sqlTypeOther"))
              for f in page.fields]
    columns = [snapped.rows.column(i) for i in range(len(page.fields))]
    features_layer = not result.statistics and has_object_ids(result)
    transform = None
    if snapped.grid is not None:
        grid = snapped.grid
        transform = pbf.Transform(grid.origin, (grid.scale, grid.scale), grid.translate)
    return pbf.feature_result(
        fields=fields, columns=columns,
        object_id_field=schema.object_id_field if features_layer else "",
        geometry_type=schema.geometry_type if features_layer else None,
        spatial_reference=sr, transform=transform, geometry=snapped.geometry,
        centroids=snapped.centroids,
        exceeded_transfer_limit=result.exceeded_transfer_limit or snapped.more)

