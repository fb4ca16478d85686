"""The geometry filter: vertex and part limits, holes assigned through an index."""

from __future__ import annotations

import orjson
import pytest

from koop_app.errors import InvalidParameterError
from koop_app.query.params.geometry import parse_spatial_filter


def _ring(n: int, x: float = 0.0) -> list[list[float]]:
    """A closed ring of n vertices (n - 1 distinct), clockwise like an Esri outer ring."""
    import math

    points = [[x + math.cos(-2 * math.pi * i / (n - 1)), math.sin(-2 * math.pi * i / (n - 1))]
              for i in range(n - 1)]
    return points + [points[0]]


def geometry_problem(raw: dict[str, str]) -> str:
    with pytest.raises(InvalidParameterError) as error:
        parse_spatial_filter(raw)
    assert error.value.parameter == "geometry"
    return error.value.details[0]


def test_geometry_vertices(limits):
    limits(MAX_GEOMETRY_VERTICES=100)
    polygon = {"geometryType": "esriGeometryPolygon"}
    assert parse_spatial_filter({**polygon, "geometry": orjson.dumps(
        {"rings": [_ring(100)]}).decode()}) is not None
    assert "101 vertices; at most 100" in geometry_problem({**polygon, "geometry": orjson.dumps(
        {"rings": [_ring(101)]}).decode()})
    assert "101 vertices" in geometry_problem({
        "geometryType": "esriGeometryMultipoint",
        "geometry": orjson.dumps({"points": [[i, i] for i in range(101)]}).decode()})
    geojson = {"type": "LineString", "coordinates": [[i, 0] for i in range(101)]}
    assert "101 vertices" in geometry_problem({"geometry": orjson.dumps(geojson).decode(),
                                               "geometryType": "esriGeometryPolyline"})


def test_geometry_parts(limits):
    limits(MAX_GEOMETRY_PARTS=3)
    polygon = {"geometryType": "esriGeometryPolygon"}
    three = [_ring(5, x * 3) for x in range(3)]
    assert parse_spatial_filter({**polygon, "geometry": orjson.dumps(
        {"rings": three}).decode()}) is not None
    assert "4 rings or paths; at most 3" in geometry_problem({**polygon, "geometry": orjson.dumps(
        {"rings": [*three, _ring(5, 9)]}).decode()})


def test_many_holes_are_assigned_quickly():
    """Holes find their outer ring through an index: 2,000 of each in well under a second."""
    import time

    shells = [_ring(5, x * 3) for x in range(2000)]
    holes = [[[x * 3 + px * 0.3, py * 0.3] for px, py in reversed(_ring(5))]
             for x in range(2000)]
    started = time.perf_counter()
    spatial = parse_spatial_filter({"geometryType": "esriGeometryPolygon",
                                    "geometry": orjson.dumps({"rings": shells + holes}).decode()})
    assert time.perf_counter() - started < 2.0
    assert spatial.geometry.geom_type == "MultiPolygon"
    assert all(len(part.interiors) == 1 for part in spatial.geometry.geoms)
