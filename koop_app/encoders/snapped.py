"""A page's rows as Arrow with its geometries snapped to the answer's grid (PBF, quantized JSON)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from koop_app.encoders.quantize import Grid, Parts, grid_for, parts_from_wkb, parts_from_xy, snap
from koop_app.query import Result
from koop_app.query.engine import (
    CENTROID_X,
    CENTROID_Y,
    WKB_COLUMN,
    X_COLUMN,
    Y_COLUMN,
    page_arrow,
)


@dataclass(frozen=True)
class SnappedPage:
    rows: pa.Table  # the page's fields (then engine columns, unused here)
    more: bool  # rows exist past the page
    grid: Grid | None  # None: a table (no geometry)
    geometry: Parts | None  # None: geometries not asked for
    centroids: Parts | None


def snapped_page(result: Result, precision: int | None = None) -> SnappedPage:
    page = result.page
    assert page is not None
    geometry_type = result.table.schema.geometry_type
    points = geometry_type == "esriGeometryPoint"
    rows, more = page_arrow(page, points_as_xy=points)
    if geometry_type is None or result.statistics:
        return SnappedPage(rows, more, None, None, None)
    grid = grid_for(result.quantization, result.out_sr, precision)
    geometry = centroids = None
    if page.geometry:
        if points:
            parts = parts_from_xy(_floats(rows[X_COLUMN]), _floats(rows[Y_COLUMN]))
        else:
            parts = parts_from_wkb(rows[WKB_COLUMN], geometry_type)
        geometry = snap(parts, grid, geometry_type)
    if page.centroid:
        centroids = snap(parts_from_xy(_floats(rows[CENTROID_X]), _floats(rows[CENTROID_Y])),
                         grid, "esriGeometryPoint")
    return SnappedPage(rows, more, grid, geometry, centroids)


def _floats(column: pa.ChunkedArray):
    return column.to_numpy(zero_copy_only=False).astype("float64")
