from __future__ import annotations

import orjson
import pytest

from koop_app.data.schema import DATE, DOUBLE, INTEGER, OID, STRING, Field, LayerSchema
from koop_app.query.ogc_filter import (
    FilterError,
    parse_cql2_json,
    parse_cql2_text,
    to_geoservices,
)
from koop_app.query.params.geometry import parse_spatial_filter
from koop_app.query.where import compile_where

SCHEMA = LayerSchema(
    fields=(Field("OBJECTID", OID), Field("name", STRING), Field("pop", INTEGER),
            Field("area km", DOUBLE), Field("founded", DATE), Field("x", INTEGER),
            Field("when", INTEGER)),
    object_id_field="OBJECTID", geometry_type="esriGeometryPoint", extent=None,
)


def where_of(text: str) -> tuple[str, dict[str, str]]:
    params = to_geoservices(parse_cql2_text(text), SCHEMA)
    compile_where(params.get("where"), SCHEMA)  # what we write, our where checker takes
    return params.get("where", ""), params


@pytest.mark.parametrize("text, where", [
    ("name = 'x'", "\"name\" = 'x'"),
    ("name = 'O''Hare'", "\"name\" = 'O''Hare'"),
    ("pop > 5 AND pop <= 10", "\"pop\" > 5 AND \"pop\" <= 10"),
    ("pop > 5 OR name <> 'x'", "(\"pop\" > 5 OR \"name\" <> 'x')"),
    ("pop BETWEEN 1 AND 3", "\"pop\" BETWEEN 1 AND 3"),
    ("name LIKE 'Ab%'", "\"name\" LIKE 'Ab%'"),
    ("name LIKE 'A_c.'", "\"name\" LIKE 'A_c.'"),  # CQL2's one-character wildcard is _
    ("name LIKE '10\\%%'", "\"name\" LIKE '10\\%%' ESCAPE '\\'"),
    ("pop IN (1, 2, 3)", "\"pop\" IN (1, 2, 3)"),
    ("pop NOT IN (1, 2)", "\"pop\" NOT IN (1, 2)"),
    ("name IS NULL", "\"name\" IS NULL"),
    ("name IS NOT NULL", "\"name\" IS NOT NULL"),
    ("NOT (pop < -1)", "NOT (\"pop\" < (-1))"),
    ("\"area km\" > 2.5", "\"area km\" > 2.5"),
    ("pop + 1 > pop * 2", "(\"pop\" + 1) > (\"pop\" * 2)"),
    ("CASEI(name) = CASEI('AB')", "LOWER(\"name\") = LOWER('AB')"),
    ("founded > DATE('2020-01-02')", "\"founded\" > date '2020-01-02'"),
    ("founded T_AFTER TIMESTAMP('2020-01-02T03:04:05Z')",
     "\"founded\" > timestamp '2020-01-02 03:04:05'"),
    ("NAME = 'a'", "\"name\" = 'a'"),
    ("x = 1", "\"x\" = 1"),  # one-letter names (pygeofilter's grammar needs them quoted)
    ("when > 3", "\"when\" > 3"),  # a field named like an SQL keyword
])
def test_cql2_text_becomes_a_checked_where(text, where):
    assert where_of(text)[0] == where


def test_text_is_quoted_by_us():
    node = parse_cql2_json({"op": "=", "args": [{"property": "name"}, "O'Hare' OR 1=1 --"]})
    params = to_geoservices(node, SCHEMA)
    assert params["where"] == "\"name\" = 'O''Hare'' OR 1=1 --'"
    assert compile_where(params["where"], SCHEMA).params == ("O'Hare' OR 1=1 --",)


def test_cql2_json_reads_the_same():
    node = parse_cql2_json(orjson.dumps({"op": "and", "args": [
        {"op": ">", "args": [{"property": "pop"}, 5]},
        {"op": "s_intersects", "args": [{"property": "geom"}, {"bbox": [0, 1, 2, 3]}]}]}))
    params = to_geoservices(node, SCHEMA)
    assert params["where"] == "\"pop\" > 5"
    spatial = parse_spatial_filter(params)
    assert spatial is not None and spatial.bbox == (0, 1, 2, 3)


def test_spatial_conjuncts_become_the_spatial_filter():
    _, params = where_of("S_INTERSECTS(geom, POINT(1 2)) AND pop > 1")
    assert params["where"] == "\"pop\" > 1" and params["spatialRel"] == "esriSpatialRelIntersects"
    assert orjson.loads(params["geometry"]) == {"type": "Point", "coordinates": [1.0, 2.0]}
    _, params = where_of("S_WITHIN(geom, POLYGON((0 0, 4 0, 4 4, 0 4, 0 0)))")
    assert params["spatialRel"] == "esriSpatialRelContains" and "where" not in params
    # Two boxes: their intersection; disjoint boxes: nothing.
    _, params = where_of("S_INTERSECTS(geom, BBOX(0,0,4,4)) AND S_INTERSECTS(geom, BBOX(2,2,6,6))")
    assert parse_spatial_filter(params).bbox == (2, 2, 4, 4)
    _, params = where_of("S_INTERSECTS(geom, BBOX(0,0,1,1)) AND S_INTERSECTS(geom, BBOX(2,2,3,3))")
    assert params == {"where": "1=0"}


def test_axis_order_of_latitude_first_crs_is_swapped():
    params = to_geoservices(parse_cql2_text("S_INTERSECTS(geom, BBOX(10,20,11,21))"), SCHEMA,
                            swap_xy=True)
    assert parse_spatial_filter(params).bbox == (20, 10, 21, 11)


@pytest.mark.parametrize("text, problem", [
    ("nope = 1", "'nope' is not a field"),
    ("pop > 1 OR S_INTERSECTS(geom, BBOX(0,0,1,1))", "only be combined with AND"),
    ("S_INTERSECTS(geom, POINT(1 2)) AND S_WITHIN(geom, POINT(1 2))", "at most one spatial"),
    ("name = ", "not valid CQL2 text"),
    ("ACCENTI(name) = 'a'", "not supported"),
])
def test_refused_with_a_reason(text, problem):
    with pytest.raises(FilterError) as caught:
        to_geoservices(parse_cql2_text(text), SCHEMA)
    assert problem in str(caught.value.details or caught.value.message)
