"""Cost limits of the query parameters: at the limit accepted, over it a 400 naming both."""

from __future__ import annotations

import orjson
import pytest

from koop_app.data.schema import INTEGER, OID, STRING, Field, LayerSchema
from koop_app.errors import InvalidParameterError
from koop_app.query.params import parse_query
from koop_app.query.params.geometry import parse_spatial_filter
from koop_app.query.params.object_ids import parse_object_ids

SCHEMA = LayerSchema(
    fields=(Field("OBJECTID", OID), *(Field(f"f{i}", INTEGER) for i in range(20)),
            Field("name", STRING)),
    object_id_field="OBJECTID", geometry_type="esriGeometryPoint", extent=None,
)


@pytest.fixture
def limits(settings):
    def set_limit(**values: int) -> None:
        settings.KOOP = {**settings.KOOP, **values}

    return set_limit


def problem(raw: dict[str, str], parameter: str) -> str:
    with pytest.raises(InvalidParameterError) as error:
        parse_query(raw, SCHEMA)
    assert error.value.parameter == parameter
    return error.value.details[0]


def test_object_ids(limits):
    limits(MAX_OBJECT_IDS=5)
    assert parse_object_ids({"objectIds": "1,2,3,4,5"}) == (1, 2, 3, 4, 5)
    assert parse_object_ids({"objectIds": "1, 2,,3,4,5,"}) == (1, 2, 3, 4, 5)
    assert "6 ids; at most 5" in problem({"objectIds": "1,2,3,4,5,6"}, "objectIds")


def test_object_ids_beyond_64_bits():
    assert parse_object_ids({"objectIds": f"{2**63 - 1},{-(2**63)}"}) == (2**63 - 1, -(2**63))
    assert "64 bits" in problem({"objectIds": f"1,{2**63}"}, "objectIds")


def test_object_ids_default_is_100_000():
    text = ",".join(map(str, range(100_000)))
    assert len(parse_object_ids({"objectIds": text})) == 100_000
    assert "at most 100000" in problem({"objectIds": text + ",7"}, "objectIds")


def _stats(n: int) -> str:
    return orjson.dumps([{"statisticType": "sum", "onStatisticField": f"f{i % 20}",
                          "outStatisticFieldName": f"s{i}"} for i in range(n)]).decode()


def test_statistics(limits):
    limits(MAX_STATISTICS=3)
    assert len(parse_query({"outStatistics": _stats(3)}, SCHEMA).statistics) == 3
    assert "4 statistics; at most 3" in problem({"outStatistics": _stats(4)}, "outStatistics")


def test_group_by_fields(limits):
    limits(MAX_GROUP_BY_FIELDS=2)
    ok = parse_query({"outStatistics": _stats(1), "groupByFieldsForStatistics": "f1, f2,"},
                     SCHEMA)
    assert ok.group_by == ("f1", "f2")
    assert "at most 2 fields" in problem(
        {"outStatistics": _stats(1), "groupByFieldsForStatistics": "f1,f2,f3"},
        "groupByFieldsForStatistics")


def test_order_by_fields(limits):
    limits(MAX_ORDER_BY_FIELDS=2)
    assert parse_query({"orderByFields": "f1 DESC, f2"}, SCHEMA).order_by == (
        ("f1", True), ("f2", False))
    assert "at most 2 fields" in problem({"orderByFields": "f1,f2,f3 DESC"}, "orderByFields")


def test_out_fields(limits):
    limits(MAX_OUT_FIELDS=3)
    assert parse_query({"outFields": "f1,f2,f3"}, SCHEMA).out_fields == ("f1", "f2", "f3")
    assert "4 fields; at most 3" in problem({"outFields": "f1,f2,f3,f4"}, "outFields")


def test_having_clause_length(limits):
    limits(MAX_WHERE_LENGTH=20)
    raw = {"outStatistics": _stats(1), "groupByFieldsForStatistics": "f1"}
    assert parse_query({**raw, "havingClause": "SUM(f0) > 1234567"}, SCHEMA).having
    assert "at most 20" in problem({**raw, "havingClause": "SUM(f0) > 123456789012"},
                                   "havingClause")


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
