"""Esri JSON query answers: features, counts, ids, extents, statistics.

Feature arrays are written by DuckDB itself (``to_json`` over the engine's Page) and embedded
into the answer as an ``orjson.Fragment``. With ``quantizationParameters`` the geometries are
snapped on numpy arrays (``quantize``) and written by DuckDB from Arrow lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from koop_app.data.duck import quote_ident
from koop_app.data.normalize import GEOMETRY_COLUMN
from koop_app.encoders.fields import envelope_json, field_json
from koop_app.encoders.quantize import nested_lists
from koop_app.encoders.snapped import snapped_page
from koop_app.encoders.text import (
    StreamedArray,
    array_or_stream,
    array_text,
    attributes_sql,
    more_flag,
)
from koop_app.errors import NotFoundError
from koop_app.query import Page, Result, execute
from koop_app.query.engine import CENTROID_COLUMN

_G = quote_ident(GEOMETRY_COLUMN)


def _rounded(value: str, precision: int | None, depth: int) -> str:
    """Round every number of a DuckDB list nested ``depth`` deep (0: a plain number)."""
    return value if precision is None else _nest_round(value, precision, depth)


def _nest_round(value: str, precision: int, depth: int) -> str:
    if depth == 0:
        return f"round({value}, {int(precision)})"
    name = f"c{depth}"
    return f"list_transform({value}, {name} -> {_nest_round(name, precision, depth - 1)})"


def _coordinates(expression: str, cast: str) -> str:
    return f"CAST(json_extract(ST_AsGeoJSON({expression}), '$.coordinates') AS {cast})"


def esri_geometry_sql(geometry_type: str, column: str, precision: int | None) -> str:
    """Esri JSON geometry from a stored (RFC 7946) geometry column.

    Esri rings are clockwise outside and counter-clockwise inside: the reverse of RFC 7946,
    hence ST_Reverse for polygons.
    """
    if geometry_type == "esriGeometryPoint":
        return (f"{{'x': {_rounded(f'ST_X({column})', precision, 0)}, "
                f"'y': {_rounded(f'ST_Y({column})', precision, 0)}}}")
    if geometry_type == "esriGeometryMultipoint":
        points = _coordinates(f"ST_Multi({column})", "DOUBLE[][]")
        return f"{{'points': {_rounded(points, precision, 2)}}}"
    if geometry_type == "esriGeometryPolyline":
        paths = _coordinates(f"ST_Multi({column})", "DOUBLE[][][]")
        return f"{{'paths': {_rounded(paths, precision, 3)}}}"
    rings = f"flatten({_coordinates(f'ST_Multi(ST_Reverse({column}))', 'DOUBLE[][][][]')})"
    return f"{{'rings': {_rounded(rings, precision, 3)}}}"


def esri_features(page: Page, geometry_type: str | None, precision: int | None = None
                  ) -> tuple[orjson.Fragment | StreamedArray, bool]:
    """The features array (streamed when large), and whether features exist past the page
    (``Page.more_after``; a StreamedArray learns it while it is sent)."""
    if page.rows is not None and not page.geometry:
        return orjson.Fragment(_rows_text(page)), False
    return array_or_stream(page, _esri_row_sql(page, geometry_type, precision))


def _esri_features_text(page: Page, geometry_type: str | None, precision: int | None
                        ) -> tuple[str, bool]:
    if page.rows is not None and not page.geometry:
        return _rows_text(page), False
    return array_text(page, _esri_row_sql(page, geometry_type, precision))


def _rows_text(page: Page) -> str:
    # A few aggregate rows, already in memory: orjson writes them faster than a DuckDB round
    # trip would.
    assert page.rows is not None
    return orjson.dumps([{"attributes": row} for row in page.rows.to_pylist()]).decode()


def _esri_row_sql(page: Page, geometry_type: str | None, precision: int | None) -> str:
    parts = [f"'attributes': {attributes_sql(page.fields)}"]
    if page.geometry and geometry_type:
        parts.append(
            f"'geometry': CASE WHEN {_G} IS NULL OR ST_IsEmpty({_G}) THEN NULL "
            f"ELSE {esri_geometry_sql(geometry_type, _G, precision)} END"
        )
    if page.centroid:
        centroid = quote_ident(CENTROID_COLUMN)
        parts.append(f"'centroid': CASE WHEN {centroid} IS NULL OR ST_IsEmpty({centroid}) "
                     f"THEN NULL ELSE "
                     f"{esri_geometry_sql('esriGeometryPoint', centroid, precision)} END")
    return "{" + ", ".join(parts) + "}"


def has_object_ids(result: Result) -> bool:
    page = result.page
    oid = result.table.schema.object_id_field
    return page is not None and any(f.name == oid for f in page.fields)


def esri_query_json(result: Result, precision: int | None = None) -> dict[str, Any]:
    schema = result.table.schema
    if result.extent_only:
        out: dict[str, Any] = {}
        if result.count is not None:
            out["count"] = result.count
        out["extent"] = envelope_json(result.extent, result.out_sr)
        return out
    if result.count is not None:
        return {"count": result.count}
    if result.object_ids is not None:
        return {"objectIdFieldName": schema.object_id_field,
                "objectIds": orjson.Fragment(result.object_ids)}
    page = result.page
    assert page is not None
    if result.statistics or not has_object_ids(result):
        features, more = esri_features(page, None)
        return {"displayFieldName": "", "fieldAliases": {f.name: f.alias or f.name
                                                         for f in page.fields},
                "fields": [field_json(f) for f in page.fields],
                "features": features,
                "exceededTransferLimit": more_flag(features, result.exceeded_transfer_limit,
                                                   more)}
    out = {
        "objectIdFieldName": schema.object_id_field,
        "uniqueIdField": {"name": schema.object_id_field, "isSystemMaintained": True},
        "globalIdFieldName": "",
        "fields": [field_json(f) for f in page.fields],
    }
    if schema.geometry_type:
        out["geometryType"] = schema.geometry_type
        out["spatialReference"] = result.out_sr.as_json()
        out["hasZ"] = False
        out["hasM"] = False
    if result.quantization is not None and schema.geometry_type and page.geometry:
        out["transform"], out["features"], more = quantized_features(result, precision)
    else:
        out["features"], more = esri_features(page, schema.geometry_type, precision)
    out["exceededTransferLimit"] = more_flag(out["features"], result.exceeded_transfer_limit,
                                             more)
    return out


GEOMETRY_MEMBERS = {"esriGeometryMultipoint": "points", "esriGeometryPolyline": "paths",
                    "esriGeometryPolygon": "rings"}


def quantized_features(result: Result, precision: int | None = None
                       ) -> tuple[dict[str, Any], orjson.Fragment, bool]:
    """The answer's ``transform`` and its features with geometries on that grid.

    The snapped geometries go back to DuckDB as Arrow lists beside the attributes, and DuckDB
    writes the JSON, as for unquantized answers.
    """
    page = result.page
    assert page is not None
    geometry_type = result.table.schema.geometry_type
    snapped = snapped_page(result, precision)
    assert snapped.grid is not None and snapped.geometry is not None
    rows = snapped.rows.select(list(range(len(page.fields))))
    rows = rows.append_column("_koop_g", nested_lists(snapped.geometry, geometry_type))
    if snapped.centroids is not None:
        rows = rows.append_column("_koop_c", nested_lists(snapped.centroids, "esriGeometryPoint"))
    rows = rows.append_column("_koop_n", pa.array(np.arange(rows.num_rows, dtype=np.int64)))
    if geometry_type == "esriGeometryPoint":
        geometry = "{'x': _koop_g[1], 'y': _koop_g[2]}"
    else:
        geometry = f"{{'{GEOMETRY_MEMBERS[geometry_type]}': _koop_g}}"
    parts = [f"'attributes': {attributes_sql(page.fields)}",
             f"'geometry': CASE WHEN _koop_g IS NULL THEN NULL ELSE {geometry} END"]
    if snapped.centroids is not None:
        parts.append("'centroid': CASE WHEN _koop_c IS NULL THEN NULL "
                     "ELSE {'x': _koop_c[1], 'y': _koop_c[2]} END")
    row = "to_json({" + ", ".join(parts) + "})::VARCHAR"
    (text,) = execute(f"SELECT '[' || coalesce(string_agg({row}, ',' ORDER BY _koop_n), '') "
                      "|| ']' FROM page_rows", rows=rows).fetchone()
    return snapped.grid.as_json(), orjson.Fragment(text), snapped.more


def feature_json(result: Result) -> dict[str, Any]:
    """The single-feature resource: ``{"feature": {attributes, geometry}}``."""
    page = result.page
    assert page is not None
    text, _ = _esri_features_text(page, result.table.schema.geometry_type, None)
    features = orjson.loads(text)
    if not features:
        raise NotFoundError("Feature not found.")
    return {"feature": features[0]}
