"""Geometries of a page as integers on a grid: the ``transform`` of PBF and quantized JSON.

A page's geometries arrive flat (coordinates, part offsets, feature offsets: the GeoArrow
layout shapely's ``to_ragged_array`` gives) and leave flat: every step is a numpy operation on
whole arrays, never a loop over features.

Esri's convention: polygon rings are clockwise outside (stored layers are RFC 7946, the
reverse, so rings are reversed here); each part's first vertex is absolute on the grid and each
following one the step from the vertex before it; in ``view`` mode a vertex on the same cell as
the one before is dropped, then paths with fewer than 2 and rings with fewer than 3 vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import shapely

from koop_app.encoders.pbf import Parts
from koop_app.query.params.quantization import Quantization
from koop_app.query.sr import SpatialRef, transformer

# Without quantizationParameters the grid is fine enough to lose nothing a map can show:
# a ten-millionth of a degree is ~1 cm; a tenth of a millimetre in projected units.
GEOGRAPHIC_RESOLUTION = 1e-9
PROJECTED_RESOLUTION = 1e-4
MIN_VERTICES = {"esriGeometryPolyline": 2, "esriGeometryPolygon": 3}


@dataclass(frozen=True)
class Grid:
    """Where and how coordinates are snapped: ``q = round((x - tx) / sx)``, and for an
    upper-left origin ``round((ty - y) / sy)``."""

    origin: str  # "upperLeft" | "lowerLeft"
    scale: float
    translate: tuple[float, float]
    view: bool

    def as_json(self) -> dict[str, object]:
        return {"originPosition": self.origin, "scale": [self.scale, self.scale, 0, 0],
                "translate": [self.translate[0], self.translate[1], 0, 0]}


def grid_for(quantization: Quantization | None, out_sr: SpatialRef,
             precision: int | None = None) -> Grid:
    """The grid of an answer: the request's, or a lossless default (``edit`` mode)."""
    geographic = out_sr.is_geographic
    default = 10.0 ** -precision if precision is not None else (
        GEOGRAPHIC_RESOLUTION if geographic else PROJECTED_RESOLUTION)
    if quantization is None:
        return Grid("upperLeft", default, (0.0, 0.0), view=False)
    origin = quantization.origin
    translate = (0.0, 0.0)
    if quantization.extent is not None:
        xmin, ymin, xmax, ymax = _in_reference(quantization.extent, quantization.extent_sr,
                                               out_sr)
        translate = (xmin, ymax if origin == "upperLeft" else ymin)
    return Grid(origin, quantization.tolerance or default, translate, view=quantization.view)


def _in_reference(bounds: tuple[float, float, float, float], source: SpatialRef | None,
                  target: SpatialRef) -> tuple[float, float, float, float]:
    """The extent in the answer's reference (clients send it in outSR; others are moved)."""
    if source is None or source.crs == target.crs or (
            source.is_web_mercator and target.is_web_mercator):
        return bounds
    xmin, ymin, xmax, ymax = bounds
    moved = transformer(source.crs, target.crs)
    xs, ys = moved.transform([xmin, xmin, xmax, xmax], [ymin, ymax, ymin, ymax])
    return min(xs), min(ys), max(xs), max(ys)


def parts_from_xy(x: np.ndarray, y: np.ndarray) -> Parts:
    """Points given as two columns (NaN or null: no geometry)."""
    coords = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    present = ~np.isnan(coords).any(axis=1)
    kept = coords[present]
    feature_parts = np.zeros(len(coords) + 1, dtype=np.int64)
    np.cumsum(present, out=feature_parts[1:])
    return Parts(kept, np.ones(len(kept), dtype=np.int64), feature_parts)


def parts_from_wkb(wkb: pa.Array | pa.ChunkedArray, geometry_type: str) -> Parts:
    """Geometries given as WKB (null or empty: no geometry), in Esri's part structure."""
    values = wkb.to_numpy(zero_copy_only=False) if len(wkb) else np.array([], dtype=object)
    geometries = shapely.from_wkb(values)
    if len(geometries) == 0 or shapely.is_missing(geometries).all():
        return Parts(np.zeros((0, 2)), np.zeros(0, dtype=np.int64),
                     np.zeros(len(geometries) + 1, dtype=np.int64))
    empty = shapely.is_empty(geometries)
    if empty.any():
        geometries = np.where(empty, None, geometries)
    if geometry_type == "esriGeometryPoint":
        xy = shapely.get_coordinates(geometries, include_z=False)
        present = ~shapely.is_missing(geometries)
        x = np.full(len(geometries), np.nan)
        y = np.full(len(geometries), np.nan)
        x[present], y[present] = xy[:, 0], xy[:, 1]
        return parts_from_xy(x, y)
    kind, coords, offsets = shapely.to_ragged_array(geometries, include_z=False)
    return _esri_parts(kind, coords, offsets, len(geometries))


def _esri_parts(kind: shapely.GeometryType, coords: np.ndarray, offsets: tuple[np.ndarray, ...],
                count: int) -> Parts:
    offsets = tuple(np.asarray(o, dtype=np.int64) for o in offsets)
    if kind == shapely.GeometryType.MULTIPOINT:
        # One part holding every point, as Esri's multipoint JSON lists them.
        (feature_vertices,) = offsets
        lengths = np.diff(feature_vertices)
        has = lengths > 0
        feature_parts = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(has, out=feature_parts[1:])
        return Parts(coords, lengths[has], feature_parts)
    if kind == shapely.GeometryType.LINESTRING:
        (part_vertices,) = offsets
        lengths = np.diff(part_vertices)
        feature_parts = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(lengths > 0, out=feature_parts[1:])
        return Parts(coords, lengths[lengths > 0], feature_parts)
    if kind == shapely.GeometryType.MULTILINESTRING:
        part_vertices, feature_parts = offsets
        return Parts(coords, np.diff(part_vertices), feature_parts)
    if kind == shapely.GeometryType.POLYGON:
        ring_vertices, feature_rings = offsets
    else:  # MULTIPOLYGON: features -> polygons -> rings, flattened to features -> rings
        ring_vertices, polygon_rings, feature_polygons = offsets
        feature_rings = polygon_rings[feature_polygons]
    lengths = np.diff(ring_vertices)
    return Parts(_reverse_within(coords, ring_vertices), lengths, feature_rings)


def _reverse_within(coords: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each run ``offsets[i]:offsets[i + 1]`` of ``coords`` reversed (ring orientation)."""
    if not len(coords):
        return coords
    lengths = np.diff(offsets)
    starts = np.repeat(offsets[:-1], lengths)
    ends = np.repeat(offsets[1:] - 1, lengths)
    index = np.arange(len(coords), dtype=np.int64)
    return coords[starts + ends - index]


def snap(parts: Parts, grid: Grid, geometry_type: str) -> Parts:
    """Quantize and delta-encode ``parts`` on ``grid`` (dropping repeats in view mode)."""
    coords = parts.coords
    qx = np.rint((coords[:, 0] - grid.translate[0]) / grid.scale)
    if grid.origin == "upperLeft":
        qy = np.rint((grid.translate[1] - coords[:, 1]) / grid.scale)
    else:
        qy = np.rint((coords[:, 1] - grid.translate[1]) / grid.scale)
    q = np.column_stack([qx, qy]).astype(np.int64)
    lengths = parts.part_lengths
    feature_parts = parts.feature_parts
    part_of = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    starts = np.zeros(len(q), dtype=bool)
    if len(lengths):
        first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        starts[first[lengths > 0]] = True
    if grid.view and geometry_type in MIN_VERTICES:
        keep = starts.copy()
        if len(q) > 1:
            keep[1:] |= (q[1:] != q[:-1]).any(axis=1)
        q, part_of, starts = q[keep], part_of[keep], starts[keep]
        lengths = np.bincount(part_of, minlength=len(lengths)).astype(np.int64)
        long_enough = lengths >= MIN_VERTICES[geometry_type]
        if not long_enough.all():
            vertex_kept = long_enough[part_of]
            q, starts = q[vertex_kept], starts[vertex_kept]
            kept_before = np.concatenate([[0], np.cumsum(long_enough)])
            feature_parts = kept_before[feature_parts]
            lengths = lengths[long_enough]
    deltas = q.copy()
    if len(q) > 1:
        deltas[1:] -= q[:-1]
    deltas[starts] = q[starts]
    return Parts(deltas, lengths, feature_parts)


def nested_lists(parts: Parts, geometry_type: str) -> pa.Array:
    """Snapped parts as Arrow lists per feature, the shape of Esri JSON geometry members:
    ``[x, y]`` for points, ``[[x, y], ...]`` for multipoints (one part) and parts of paths or
    rings otherwise; null where a feature has no geometry."""
    flat = pa.array(parts.coords.reshape(-1), type=pa.int64())
    vertices = pa.FixedSizeListArray.from_arrays(flat, 2)
    no_geometry = np.diff(parts.feature_parts) == 0
    mask = pa.array(no_geometry) if no_geometry.any() else None
    if geometry_type == "esriGeometryPoint":
        index = np.minimum(parts.feature_parts[:-1], max(len(parts.coords) - 1, 0))
        if not len(parts.coords):
            return pa.nulls(parts.features, type=pa.list_(pa.int64(), 2))
        taken = vertices.take(pa.array(index))
        return pa.FixedSizeListArray.from_arrays(taken.flatten(), 2, mask=mask)
    vertex_offsets = np.concatenate([[0], np.cumsum(parts.part_lengths)]).astype(np.int32)
    part_lists = pa.ListArray.from_arrays(pa.array(vertex_offsets), vertices)
    if geometry_type == "esriGeometryMultipoint":
        # One part per feature: the feature's list is its part's list of points.
        index = np.minimum(parts.feature_parts[:-1], max(len(parts.part_lengths) - 1, 0))
        if not len(parts.part_lengths):
            return pa.nulls(parts.features, type=pa.list_(pa.list_(pa.int64(), 2)))
        taken = part_lists.take(pa.array(index))
        return pa.ListArray.from_arrays(taken.offsets, taken.values, mask=mask)
    return pa.ListArray.from_arrays(pa.array(parts.feature_parts.astype(np.int32)), part_lists,
                                    mask=mask)
