"""Answers the engine gives without scanning (a whole layer's count and extent, remembered
where clauses, a single statistics row) are the answers of the general path."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pyarrow as pa
import pytest

from koop_app.data.hot import hot_tables
from koop_app.data.normalize import normalize
from koop_app.encoders.esri_json import esri_query_json
from koop_app.encoders.geojson import geojson_query_json
from koop_app.errors import InvalidParameterError
from koop_app.query import RecordLimits, parse_query, run, where
from tests.conftest import collection, feature, point

LIMITS = RecordLimits(2000, 2000, 2000)
SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 3], [0, 3], [0, 0]]]}
MULTI = {"type": "MultiPolygon", "coordinates": [
    [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]],
    [[[-8, -6], [-7, -6], [-7, -5], [-8, -5], [-8, -6]]]]}


def load(features: list[dict[str, Any]], name: str = "fast"):
    normalized = normalize(collection(features), label=name,
                           assign_ids=lambda keys: pa.array(range(1, len(keys) + 1), pa.int64()))
    return hot_tables.put(name, "v1", normalized.table, normalized.schema, 0.0)


def answer(table, **params: str) -> dict[str, Any]:
    query = parse_query({"f": "json", **params}, table.schema)
    return orjson.loads(orjson.dumps(esri_query_json(run(query, table, LIMITS))))


@pytest.fixture
def points():
    return load([feature({"v": i, "s": "a" if i % 2 else "b"}, point(i, -i)) for i in range(1, 8)]
                + [feature({"v": None, "s": None}, None)])


@pytest.fixture
def shapes():
    return load([feature({"v": 1}, SQUARE), feature({"v": 2}, MULTI), feature({"v": 3}, None)],
                name="shapes")


@pytest.mark.parametrize("fixture", ["points", "shapes"])
def test_whole_layer_count_is_the_scanned_count(request, fixture):
    table = request.getfixturevalue(fixture)
    fast = answer(table, where="1=1", returnCountOnly="true")
    scanned = answer(table, where="v IS NULL OR v IS NOT NULL", returnCountOnly="true")
    assert fast == scanned == {"count": table.count}


@pytest.mark.parametrize("fixture", ["points", "shapes"])
@pytest.mark.parametrize("out_sr", ["", "3857"])
def test_whole_layer_extent_is_the_scanned_extent(request, fixture, out_sr):
    table = request.getfixturevalue(fixture)
    params = {"returnExtentOnly": "true", "returnCountOnly": "true", "outSR": out_sr}
    first, again = answer(table, **params), answer(table, **params)  # computed, then remembered
    scanned = answer(table, where="v IS NULL OR v IS NOT NULL", **params)
    assert first == again == scanned
    assert first["count"] == table.count


def test_whole_layer_extent_of_multipart_shapes(shapes):
    extent = answer(shapes, returnExtentOnly="true")["extent"]
    assert (extent["xmin"], extent["ymin"], extent["xmax"], extent["ymax"]) == (-8, -6, 11, 11)


def test_empty_selection_extent_and_count(points):
    body = answer(points, where="v > 100", returnExtentOnly="true", returnCountOnly="true")
    assert body["count"] == 0 and body["extent"]["xmin"] is None


def test_a_remembered_where_answers_like_a_new_one(points):
    where._compiled.clear()
    first = answer(points, where="s = 'a' AND v > 2", returnIdsOnly="true")
    assert len(where._compiled) == 1
    again = answer(points, where="s = 'a' AND v > 2", returnIdsOnly="true")
    assert first == again and first["objectIds"] == [3, 5, 7]


def test_a_where_reading_the_clock_is_not_remembered(points):
    where._compiled.clear()
    answer(points, where="v < 100 AND CURRENT_DATE > DATE '2000-01-01'", returnCountOnly="true")
    assert where._compiled == {}


def test_a_remembered_where_is_per_layer_schema(points, shapes):
    assert answer(points, where="s = 'a'", returnCountOnly="true") == {"count": 4}
    with pytest.raises(InvalidParameterError):  # no field s on this layer
        answer(shapes, where="s = 'a'", returnCountOnly="true")


STATS = orjson.dumps([{"statisticType": "count", "onStatisticField": "v",
                       "outStatisticFieldName": "n"},
                      {"statisticType": "avg", "onStatisticField": "v",
                       "outStatisticFieldName": "mean"}]).decode()


def test_statistics_without_groups_is_one_row(points):
    body = answer(points, where="s = 'a'", outStatistics=STATS)
    assert [f["attributes"] for f in body["features"]] == [{"n": 4, "mean": 4.0}]
    assert body["exceededTransferLimit"] is False


def test_statistics_without_groups_past_the_first_row_is_empty(points):
    body = answer(points, outStatistics=STATS, resultOffset="1")
    assert body["features"] == []


def test_statistics_of_nothing(points):
    body = answer(points, where="v > 100", outStatistics=STATS)
    assert [f["attributes"] for f in body["features"]] == [{"n": 0, "mean": None}]


def geojson(table, **params: str) -> dict[str, Any]:
    from koop_app.encoders.geojson import geojson_query_json

    query = parse_query({"f": "geojson", **params}, table.schema)
    return orjson.loads(orjson.dumps(geojson_query_json(run(query, table, LIMITS),
                                                        query.geometry_precision)))


def ids(body: dict[str, Any]) -> list[int]:
    return [f["attributes"]["OBJECTID"] for f in body["features"]]


@pytest.mark.parametrize("where_text", ["1=1", "v > 1", "s = 'a' OR v IS NULL"])
@pytest.mark.parametrize("order", ["", "s DESC", "v"])
def test_page_and_its_limit_flag_without_a_second_statement(points, where_text, order):
    """A page read with one row more says "exceeded" exactly when rows exist past it."""
    everything = answer(points, where=where_text, orderByFields=order, outFields="*")
    assert everything["exceededTransferLimit"] is False
    total = ids(everything)
    for offset in range(len(total) + 1):
        for count in range(1, len(total) + 2):
            body = answer(points, where=where_text, orderByFields=order, outFields="*",
                          resultOffset=str(offset), resultRecordCount=str(count))
            assert ids(body) == total[offset:offset + count]
            assert body["exceededTransferLimit"] is (offset + count < len(total))


def test_over_the_limit_without_features_when_asked(points):
    body = answer(points, where="v > 1", resultRecordCount="2",
                  returnExceededLimitFeatures="false")
    assert body["features"] == [] and body["exceededTransferLimit"] is True
    body = answer(points, where="v > 1", resultRecordCount="20",
                  returnExceededLimitFeatures="false")
    assert len(body["features"]) == 6 and body["exceededTransferLimit"] is False


def test_geojson_features_as_written_before(shapes):
    body = geojson(shapes, outFields="*")
    assert [f["id"] for f in body["features"]] == [1, 2, 3]
    square, multi, empty = body["features"]
    assert square == {"type": "Feature", "id": 1, "properties": {"OBJECTID": 1, "v": 1},
                      "geometry": SQUARE}
    assert multi["geometry"] == MULTI
    assert empty["geometry"] is None and empty["properties"] == {"OBJECTID": 3, "v": 3}
    assert "properties" not in body  # not over the limit


def test_geojson_page_over_the_limit_and_precision(shapes):
    body = geojson(shapes, where="v >= 1", resultRecordCount="1", geometryPrecision="0")
    assert [f["id"] for f in body["features"]] == [1]
    assert body["properties"] == {"exceededTransferLimit": True}
    ring = body["features"][0]["geometry"]["coordinates"][0]
    assert {tuple(p) for p in ring} == {(0, 0), (4, 0), (4, 3), (0, 3)}


def test_geojson_without_object_ids_or_geometry(shapes):
    body = geojson(shapes, outFields="v", returnGeometry="false", where="v > 1")
    assert [f["properties"] for f in body["features"]] == [{"OBJECTID": 2, "v": 2},
                                                           {"OBJECTID": 3, "v": 3}]
    assert all(f["geometry"] is None for f in body["features"])


def test_empty_pages(points, shapes):
    assert answer(points, where="v > 100")["features"] == []
    assert geojson(shapes, where="v > 100")["features"] == []


@pytest.mark.parametrize("object_ids", ["3", "7,1", "5,2,6,2", "0,-4,99", "2,1000000000000"])
def test_object_ids_narrowed_by_their_range_select_exactly_the_listed_rows(points, object_ids):
    wanted = {int(i) for i in object_ids.split(",")} & set(range(1, 9))
    body = answer(points, objectIds=object_ids, outFields="*", returnGeometry="false")
    assert sorted(f["attributes"]["OBJECTID"] for f in body["features"]) == sorted(wanted)
    counted = answer(points, objectIds=object_ids, where="v > 2", returnCountOnly="true")
    assert counted == {"count": len({i for i in wanted if 3 <= i <= 7})}


# --- plain points are read from their boxes ---------------------------------------------------

POINT_QUERIES = [
    {"where": "1=1", "outFields": "*"},
    {"where": "v > 2", "outFields": "*", "outSR": "3857"},
    {"objectIds": "7,2,5", "outFields": "v"},
    {"geometry": '{"rings":[[[0,0],[6,0],[0,-6],[0,0]]]}', "geometryType": "esriGeometryPolygon",
     "spatialRel": "esriSpatialRelIntersects", "outFields": "*"},
    {"geometry": "1,-5,5,-1", "geometryType": "esriGeometryEnvelope", "inSR": "4326",
     "outSR": "102100", "resultType": "tile", "returnExceededLimitFeatures": "false"},
    {"where": "1=1", "returnCentroid": "true", "maxAllowableOffset": "0.5"},
]


@pytest.mark.parametrize("params", POINT_QUERIES)
def test_plain_points_from_their_boxes_answer_as_from_their_geometry(points, params):
    assert points.point_boxes
    stored = dataclasses.replace(points, point_boxes=False)
    assert answer(points, **params) == answer(stored, **params)
    query = parse_query({"f": "geojson", **params}, points.schema)
    as_geojson = [orjson.dumps(geojson_query_json(run(query, t, LIMITS)))
                  for t in (points, stored)]
    assert as_geojson[0] == as_geojson[1]


def test_layers_other_than_plain_points_read_their_geometry(shapes):
    empty = load([feature({"v": 1}, point(1, 2)),
                  feature({"v": 2}, {"type": "Point", "coordinates": []})], name="empty")
    assert not empty.point_boxes and not shapes.point_boxes
    assert answer(empty, where="1=1")["features"][1]["geometry"] is None


@pytest.mark.parametrize("where_clause", ["1=1", "v > 0"])
def test_over_the_limit_without_exceeded_features_answers_no_features(points, where_clause):
    params = {"where": where_clause, "resultRecordCount": "3",
              "returnExceededLimitFeatures": "false"}
    body = answer(points, **params)
    assert body["features"] == [] and body["exceededTransferLimit"] is True
    everything = answer(points, **{**params, "resultRecordCount": "8"})
    assert len(everything["features"]) == (7 if where_clause == "v > 0" else 8)
    assert everything["exceededTransferLimit"] is False


# --- few-valued text stored as an ENUM ------------------------------------------------------

ENUM_WHERES = [
    "kind = 'b'", "kind <> 'b'", "NOT kind = 'b'", "kind = 'zz'", "kind <> 'zz'",
    "'c' = kind", "kind > 'b'", "kind <= 'b'", "kind < 'bb'", "kind BETWEEN 'a' AND 'b'",
    "kind IN ('a', 'c')", "kind NOT IN ('a', 'c')", "kind IN ('zz')", "kind IN ('a', 'zz')",
    "NOT kind IN ('zz')", "kind = 'a' OR kind = 'c' OR kind = 'zz'",
    "kind IN ('a', 'b') AND n > 3", "kind IS NULL OR kind IN ('c')", "UPPER(kind) = 'A'",
    "kind LIKE 'b%'",
]


@pytest.fixture
def labelled(monkeypatch):
    monkeypatch.setattr("koop_app.data.normalize.ENUM_MIN_ROWS", 100)
    labels = ["a", "b", "c", None, "b é"]
    table = load([feature({"kind": labels[i % 5], "n": i}, point(i, i)) for i in range(200)],
                 name="labelled")
    assert table.schema.field("kind").enum_values == ("a", "b", "b é", "c")
    text = dataclasses.replace(table.schema, fields=tuple(
        dataclasses.replace(f, enum_values=None) for f in table.schema.fields))
    rows = hot_tables.cursor().execute(
        f"SELECT * REPLACE (ST_AsWKB(_koop_geom) AS _koop_geom) FROM {table.table_name}"
    ).to_arrow_table()
    rows = rows.set_column(rows.column_names.index("kind"), "kind",
                           rows["kind"].cast(pa.string()))
    plain = hot_tables.put("labelled-text", "v1", rows, text, 0.0)
    return table, plain


@pytest.mark.parametrize("clause", ENUM_WHERES)
def test_an_enum_field_answers_as_text(labelled, clause):
    enum, text = labelled
    types = dict(hot_tables.cursor().execute(
        f"SELECT column_name, column_type FROM (DESCRIBE {enum.table_name})").fetchall())
    assert types["kind"].startswith("ENUM")
    params = {"where": clause, "returnIdsOnly": "true"}
    assert answer(enum, **params) == answer(text, **params)


def test_enum_comparisons_compare_codes_not_text(labelled):
    enum, text = labelled
    assert "AS ENUM('a', 'b', 'b é', 'c')" in where.compile_where("kind = 'b'", enum.schema).sql
    masked = where.compile_where("kind IN ('a', 'c', 'zz')", enum.schema)
    assert "enum_code" in masked.sql and masked.params == (0b1001,)
    assert "ENUM" not in where.compile_where("kind = 'zz'", enum.schema).sql
    assert "ENUM" not in where.compile_where("kind = 'b'", text.schema).sql


@pytest.mark.parametrize(("ids", "count", "features", "exceeded"), [
    ("1,3,5", "3", 3, False), ("1,3,5,99", "3", 3, False), ("1,3,5", "2", 2, True),
    ("7,1", "", 2, False)])
def test_a_page_of_object_ids_is_over_the_limit_only_when_more_ids_match(points, ids, count,
                                                                        features, exceeded):
    body = answer(points, objectIds=ids, resultRecordCount=count)
    assert len(body["features"]) == features and body["exceededTransferLimit"] is exceeded
