"""Quantization: the grid, Esri's part structure, view/edit modes, and quantized Esri JSON."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
import shapely

from koop_app.encoders.quantize import (
    Grid,
    grid_for,
    nested_lists,
    parts_from_wkb,
    parts_from_xy,
    snap,
)
from koop_app.errors import InvalidParameterError
from koop_app.query import RecordLimits, parse_query
from koop_app.query.params.quantization import parse_quantization
from koop_app.query.sr import WGS84, from_wkid
from tests.conftest import feature, point
from tests.query.test_fast_paths import answer, load

LIMITS = RecordLimits(2000, 2000, 2000)
MERCATOR = from_wkid(102100)


def q(**value: Any) -> dict[str, str]:
    return {"quantizationParameters": orjson.dumps(value).decode()}


def unsnap(parts, grid: Grid) -> list[list[list[tuple[float, float]]]]:
    """Decode snapped parts back to real coordinates, per feature and part (a test oracle)."""
    out, vertex, part = [], 0, 0
    for f in range(parts.features):
        feature_parts = []
        for _ in range(parts.feature_parts[f], parts.feature_parts[f + 1]):
            x = y = 0
            ring = []
            for i in range(parts.part_lengths[part]):
                dx, dy = parts.coords[vertex]
                x, y = (dx, dy) if i == 0 else (x + dx, y + dy)
                real_y = grid.translate[1] - y * grid.scale if grid.origin == "upperLeft" \
                    else grid.translate[1] + y * grid.scale
                ring.append((grid.translate[0] + x * grid.scale, real_y))
                vertex += 1
            part += 1
            feature_parts.append(ring)
        out.append(feature_parts)
    return out


def wkb(*geometries) -> pa.Array:
    return pa.array([None if g is None else shapely.to_wkb(shapely.from_wkt(g))
                     for g in geometries], type=pa.binary())


# --- the parameter ---------------------------------------------------------------------------

def test_parameter_defaults_and_values():
    assert parse_quantization({}) is None
    value = parse_quantization(q(tolerance=2, extent={
        "xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10, "spatialReference": {"wkid": 102100}}))
    assert (value.mode, value.origin, value.tolerance, value.extent) == (
        "view", "upperLeft", 2.0, (0.0, 0.0, 10.0, 10.0))
    assert value.extent_sr.is_web_mercator
    edit = parse_quantization(q(mode="edit", originPosition="lowerLeft"))
    assert (edit.mode, edit.origin, edit.view) == ("edit", "lowerLeft", False)


@pytest.mark.parametrize("text", [
    "nope", "[1]", '{"mode": "draw"}', '{"originPosition": "middle"}', '{"tolerance": 0}',
    '{"tolerance": "x"}', '{"tolerance": true}', '{"tolerance": 1e999}',
    '{"extent": {"xmin": 1, "ymin": 0, "xmax": 0, "ymax": 1}}', '{"extent": [1, 2]}',
    '{"extent": {"xmin": 0, "ymin": 0, "xmax": 1}}',
    '{"extent": {"xmin": 0, "ymin": 0, "xmax": 1, "ymax": 1, "spatialReference": 999999}}',
])
def test_bad_parameters_are_named(text):
    with pytest.raises(InvalidParameterError) as caught:
        parse_quantization({"quantizationParameters": text})
    assert "quantizationParameters" in caught.value.details[0]


def test_tile_queries_in_view_mode_are_generalised_to_the_cell():
    schema = load([feature({"a": 1}, point(0, 0))], "qtile").schema
    tile = parse_query({"resultType": "tile", **q(tolerance=5)}, schema)
    assert tile.max_allowable_offset == 5
    assert parse_query({"resultType": "tile", **q(tolerance=5, mode="edit")},
                       schema).max_allowable_offset is None
    assert parse_query(q(tolerance=5), schema).max_allowable_offset is None
    assert parse_query({"resultType": "tile", "maxAllowableOffset": "1", **q(tolerance=5)},
                       schema).max_allowable_offset == 1


# --- the grid --------------------------------------------------------------------------------

def test_grid_origins_and_defaults():
    value = parse_quantization(q(tolerance=2, extent={"xmin": 10, "ymin": 20, "xmax": 30,
                                                      "ymax": 40}))
    assert grid_for(value, WGS84) == Grid("upperLeft", 2.0, (10.0, 40.0), True)
    lower = parse_quantization(q(tolerance=2, originPosition="lowerLeft",
                                 extent={"xmin": 10, "ymin": 20, "xmax": 30, "ymax": 40}))
    assert grid_for(lower, WGS84).translate == (10.0, 20.0)
    assert grid_for(None, WGS84).scale == 1e-9
    assert grid_for(None, MERCATOR).scale == 1e-4
    assert grid_for(None, WGS84, precision=3).scale == pytest.approx(1e-3)


def test_an_extent_in_another_reference_is_moved_to_the_answers():
    value = parse_quantization(q(tolerance=1, extent={
        "xmin": 0, "ymin": 0, "xmax": 1, "ymax": 1, "spatialReference": {"wkid": 4326}}))
    grid = grid_for(value, MERCATOR)
    assert grid.translate[0] == pytest.approx(0.0, abs=1e-6)
    assert grid.translate[1] == pytest.approx(111325.14, rel=1e-6)


# --- parts and snapping ----------------------------------------------------------------------

def test_points_snap_absolute_and_missing_ones_have_no_geometry():
    grid = Grid("upperLeft", 0.5, (0.0, 10.0), True)
    parts = snap(parts_from_xy(np.array([1.0, np.nan, 2.2]), np.array([9.0, np.nan, 4.0])),
                 grid, "esriGeometryPoint")
    assert parts.feature_parts.tolist() == [0, 1, 1, 2]
    assert parts.coords.tolist() == [[2, 2], [4, 12]]


def test_polygons_become_clockwise_rings_with_per_part_deltas():
    grid = Grid("upperLeft", 1.0, (0.0, 100.0), False)
    parts = parts_from_wkb(wkb(
        "POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 2 4, 4 4, 4 2, 2 2))",
        None, "POLYGON EMPTY",
        "MULTIPOLYGON(((20 20, 30 20, 30 30, 20 20)), ((50 50, 60 50, 60 60, 50 50)))",
    ), "esriGeometryPolygon")
    snapped = snap(parts, grid, "esriGeometryPolygon")
    assert snapped.feature_parts.tolist() == [0, 2, 2, 2, 4]
    assert snapped.part_lengths.tolist() == [5, 5, 4, 4]
    decoded = unsnap(snapped, grid)
    outer, hole = (shapely.LinearRing(r) for r in decoded[0])
    assert not outer.is_ccw and hole.is_ccw  # Esri: clockwise outside, holes the other way
    assert decoded[0][0][0] == (0.0, 0.0)
    assert [shapely.LinearRing(r).is_ccw for r in decoded[3]] == [False, False]
    # Each part's first vertex is absolute: the second ring of the multipolygon starts at
    # its own position, not as a step from the first ring's end.
    assert snapped.coords[5 + 5 + 4].tolist() == [50, 50]


def test_view_mode_drops_repeated_vertices_and_collapsed_parts():
    grid = Grid("lowerLeft", 1.0, (0.0, 0.0), True)
    parts = parts_from_wkb(wkb(
        "LINESTRING(0 0, 0.1 0.1, 0.2 0, 5 5, 5.2 5.1, 9 9)",
        "MULTILINESTRING((0 0, 0.3 0.3), (1 1, 3 3))",
        "LINESTRING(0 0, 0.2 0.2)",
    ), "esriGeometryPolyline")
    snapped = snap(parts, grid, "esriGeometryPolyline")
    decoded = unsnap(snapped, grid)
    assert decoded[0] == [[(0, 0), (5, 5), (9, 9)]]
    assert decoded[1] == [[(1, 1), (3, 3)]]  # the collapsed part is gone
    assert decoded[2] == []  # nothing left to draw: no geometry
    edit = snap(parts, Grid("lowerLeft", 1.0, (0.0, 0.0), False), "esriGeometryPolyline")
    assert edit.part_lengths.tolist() == [6, 2, 2, 2]


def test_round_trip_within_half_a_cell():
    rng = np.random.default_rng(7)
    shapes = [shapely.Polygon(rng.uniform(-50, 50, (1, 2)) + rng.uniform(0, 5, (12, 2)))
              .convex_hull for _ in range(50)]
    values = pa.array([shapely.to_wkb(s) for s in shapes])
    grid = Grid("upperLeft", 0.01, (-60.0, 60.0), False)
    decoded = unsnap(snap(parts_from_wkb(values, "esriGeometryPolygon"), grid,
                          "esriGeometryPolygon"), grid)
    for shape, rings in zip(shapes, decoded, strict=True):
        got = np.array(rings[0])
        want = np.array(shape.exterior.coords)[::-1]
        assert np.abs(got - want).max() <= 0.005 + 1e-9


def test_nested_lists_follow_esri_json_members():
    grid = Grid("upperLeft", 1.0, (0.0, 10.0), False)
    points = snap(parts_from_xy(np.array([1.0, np.nan]), np.array([2.0, np.nan])), grid,
                  "esriGeometryPoint")
    assert nested_lists(points, "esriGeometryPoint").to_pylist() == [[1, 8], None]
    multi = snap(parts_from_wkb(wkb("MULTIPOINT(1 1, 2 2)", None), "esriGeometryMultipoint"),
                 grid, "esriGeometryMultipoint")
    assert nested_lists(multi, "esriGeometryMultipoint").to_pylist() == [[[1, 9], [1, -1]],
                                                                         None]
    lines = snap(parts_from_wkb(wkb(None, "LINESTRING(0 0, 1 1)"), "esriGeometryPolyline"),
                 grid, "esriGeometryPolyline")
    assert nested_lists(lines, "esriGeometryPolyline").to_pylist() == [None,
                                                                       [[[0, 10], [1, -1]]]]


# --- quantized Esri JSON ---------------------------------------------------------------------

def test_quantized_json_points_and_polygons():
    pts = load([feature({"v": 1}, point(1.5, 2.5)), feature({"v": 2}, None)], "qpts")
    out = answer(pts, **q(mode="view", tolerance=0.5, originPosition="upperLeft",
                          extent={"xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10}))
    assert out["transform"] == {"originPosition": "upperLeft", "scale": [0.5, 0.5, 0, 0],
                                "translate": [0.0, 10.0, 0, 0]}
    assert [f["geometry"] for f in out["features"]] == [{"x": 3, "y": 15}, None]
    assert [f["attributes"]["v"] for f in out["features"]] == [1, 2]

    square = {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 3], [0, 3], [0, 0]]]}
    shapes = load([feature({"v": 1}, square)], "qshapes")
    out = answer(shapes, returnCentroid="true", **q(
        mode="edit", tolerance=1, originPosition="lowerLeft",
        extent={"xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10}))
    (only,) = out["features"]
    assert only["geometry"] == {"rings": [[[0, 0], [0, 3], [4, 0], [0, -3], [-4, 0]]]}
    assert only["centroid"] == {"x": 2, "y": 2}


def test_quantized_json_in_web_mercator_matches_the_unquantized_answer():
    pts = load([feature({"v": i}, point(i * 10, i * 5)) for i in range(-5, 6)], "qmerc")
    plain = answer(pts, outSR="102100")
    quantized = answer(pts, outSR="102100", **q(tolerance=1, extent={
        "xmin": -2e7, "ymin": -2e7, "xmax": 2e7, "ymax": 2e7,
        "spatialReference": {"wkid": 102100}}))
    tx, ty = quantized["transform"]["translate"][:2]
    for a, b in zip(plain["features"], quantized["features"], strict=True):
        assert a["geometry"]["x"] == pytest.approx(tx + b["geometry"]["x"], abs=0.5)
        assert a["geometry"]["y"] == pytest.approx(ty - b["geometry"]["y"], abs=0.5)
