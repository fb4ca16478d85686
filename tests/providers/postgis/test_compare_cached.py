"""The same rows answer the same, passed through PostGIS or served cached (geojson provider).

Each query runs against ``/postgis/.../public.places`` and ``/geojson/.../places`` (the same
240 rows) through the FeatureServer query route; the answers must match feature for feature.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import body_of

PG = "/postgis/rest/services/gis/public.places/FeatureServer/0/query"
CACHED = "/geojson/rest/services/places/FeatureServer/0/query"
pytestmark = pytest.mark.django_db

WHERES = [
    "value > 50",
    "name = 'beta'",  # without case, as ArcGIS Online
    "name <> 'alpha'",
    "kind IN ('oak', 'PINE')",
    "kind NOT IN ('birch')",
    "name LIKE 'e%'",
    "name LIKE '%A'",
    "name LIKE 'zeta\\%' ESCAPE '\\'",
    "name LIKE 'theta\\n'",  # a backslash is no escape character by default
    "name LIKE 'eta_x'",
    "kind LIKE 'é%'",
    "value BETWEEN 10 AND 20 AND NOT flag = 1",
    "name BETWEEN 'b' AND 'e'",
    "name > 'Delta'",
    "name IS NULL OR kind IS NULL",
    "value IS NOT NULL AND amount < 5",
    "day >= date '2020-06-01'",
    "day = '2019-03-04'",
    "seen < timestamp '2020-01-01 12:00:00'",
    "seen BETWEEN '2019-06-01' AND '2019-12-31 23:59:59'",
    "EXTRACT(YEAR FROM day) = 2020 AND EXTRACT(MONTH FROM seen) < 4",
    "(value * 2) + 1 > 100",
    "amount / 4 > 10",
    "amount % 7 = 3",
    "-amount < -45",
    "UPPER(kind) = 'OAK'",
    "LOWER(name) LIKE 'del%'",
    "CHAR_LENGTH(name) > 5",
    "ROUND(value, 0) > 90",
    "ABS(value - 50) < 5",
    "FLOOR(value) = 12 OR CEILING(value) = 13",
    "POWER(amount, 2) > 2000",
    "COALESCE(name, 'none') = 'none'",
    "NULLIF(amount, 0) IS NULL",
    "SUBSTRING(name, 1, 2) = 'ga'",
    "TRIM(kind) = 'pine'",
    "CONCAT(name, kind) LIKE '%oak%'",
    "name || '-' || kind = 'alpha-Oak'",
    "CAST(amount AS VARCHAR) = '7'",
    "CAST('12' AS INTEGER) < amount",
    "flag = 1 AND (big > 4000000000 OR amount = 0)",
    "gid IN (3, 5, 8, 13, 21)",
    "gid = 1 OR gid = 2 OR gid = 3 OR gid = 40",
    "day > CURRENT_DATE - 3650000",
    "1=1",
]


def fetch(client, url: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.get(url, params)
    body = orjson.loads(body_of(response))
    assert "error" not in body, body
    return body


def same_features(pg: dict[str, Any], cached: dict[str, Any]) -> None:
    assert len(pg["features"]) == len(cached["features"])
    for mine, theirs in zip(pg["features"], cached["features"], strict=True):
        assert mine["attributes"] == pytest.approx(theirs["attributes"]), mine
        if "geometry" in theirs:
            assert mine["geometry"] == pytest.approx(theirs["geometry"], abs=1e-6)
    assert pg.get("exceededTransferLimit") == cached.get("exceededTransferLimit")


def both(client, **params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return fetch(client, PG, params), fetch(client, CACHED, params)


@pytest.mark.parametrize("where", WHERES)
def test_where(client, twins, where):
    pg, cached = both(client, where=where, outFields="*", orderByFields="gid")
    same_features(pg, cached)
    count_pg, count_cached = both(client, where=where, returnCountOnly="true")
    assert count_pg == count_cached


def test_where_matches_something_each_time(client, twins):
    # The battery means something: most clauses select some rows and leave others.
    counts = [fetch(client, PG, {"where": w, "returnCountOnly": "true"})["count"]
              for w in WHERES]
    assert sum(0 < c < 240 for c in counts) >= len(WHERES) - 6


def test_case_sensitive_dataset_compares_exactly(client, twins):
    from koop_app.models import Dataset

    Dataset.objects.update(case_sensitive_strings=True)
    for where in ("name = 'beta'", "name = 'Beta'", "kind LIKE 'o%'", "kind IN ('oak')",
                  "name > 'Delta'"):
        pg, cached = both(client, where=where, outFields="*")
        same_features(pg, cached)


@pytest.mark.parametrize("params", [
    {"geometry": "-10,40,5,50"},
    {"geometry": orjson.dumps({"xmin": -10, "ymin": 40, "xmax": 5, "ymax": 50}).decode(),
     "spatialRel": "esriSpatialRelEnvelopeIntersects"},
    # An envelope and a polygon in Web Mercator.
    {"geometry": "-1113194,4865942,556597,6446275", "inSR": "3857"},
    {"geometry": orjson.dumps({"rings": [[[-1500000, 4000000], [1500000, 4000000],
                                          [0, 7000000], [-1500000, 4000000]]],
                               "spatialReference": {"wkid": 102100}}).decode(),
     "geometryType": "esriGeometryPolygon"},
    {"geometry": orjson.dumps({"rings": [[[-15, 35], [15, 35], [0, 55], [-15, 35]]]}).decode(),
     "geometryType": "esriGeometryPolygon", "spatialRel": "esriSpatialRelContains"},
    # Short paths: over thousands of kilometres a great circle (PostGIS's geography) and the
    # cached engine's drawn buffer part ways.
    {"geometry": orjson.dumps({"paths": [[[-4, 44], [3, 47]]]}).decode(),
     "geometryType": "esriGeometryPolyline", "distance": "300",
     "units": "esriSRUnit_Kilometer"},
    {"geometry": "0,45", "geometryType": "esriGeometryPoint", "distance": "500000"},
])
def test_geometry(client, twins, params):
    pg, cached = both(client, outFields="gid,name", orderByFields="gid", **params)
    if "distance" in params:  # the exact geodesic distance against a drawn buffer: edges
        ids_pg = {f["attributes"]["gid"] for f in pg["features"]}
        ids_cached = {f["attributes"]["gid"] for f in cached["features"]}
        assert len(ids_pg ^ ids_cached) <= 2 and ids_pg
    else:
        same_features(pg, cached)
        assert pg["features"]


def test_object_ids_order_and_paging(client, twins):
    for params in [
        {"objectIds": "5,1,9,200,999"},
        {"orderByFields": "value DESC", "resultOffset": "10", "resultRecordCount": "15"},
        {"orderByFields": "name ASC, day DESC", "resultRecordCount": "30"},
        {"orderByFields": "kind", "resultOffset": "230", "resultRecordCount": "20"},
        {"where": "amount > 10", "resultOffset": "0", "resultRecordCount": "5",
         "returnExceededLimitFeatures": "false"},
        {"outFields": "name", "orderByFields": "amount DESC", "resultRecordCount": "7"},
        {"returnGeometry": "false", "outFields": "gid,seen", "resultRecordCount": "9"},
    ]:
        pg, cached = both(client, outFields=params.pop("outFields", "*"), **params)
        same_features(pg, cached)


def test_paging_reads_every_row_once(client, twins):
    seen: list[int] = []
    offset = 0
    while True:
        body = fetch(client, PG, {"orderByFields": "name, gid", "resultOffset": offset,
                                  "resultRecordCount": 50, "outFields": "gid"})
        seen += [f["attributes"]["gid"] for f in body["features"]]
        offset += 50
        if not body.get("exceededTransferLimit"):
            break
    assert sorted(seen) == list(range(1, 241))


def test_ids_counts_and_extents(client, twins):
    for params in [
        {"returnIdsOnly": "true", "where": "flag = 1"},
        {"returnIdsOnly": "true", "orderByFields": "value DESC", "geometry": "-10,40,5,50"},
        {"returnCountOnly": "true", "geometry": "-10,40,5,50"},
        {"returnExtentOnly": "true", "where": "kind = 'oak'"},
        {"returnExtentOnly": "true", "returnCountOnly": "true", "outSR": "3857"},
        {"returnCountOnly": "true", "returnDistinctValues": "true", "outFields": "kind"},
    ]:
        pg, cached = both(client, **params)
        if "extent" in cached:
            assert pg["extent"].pop("spatialReference") == cached["extent"].pop(
                "spatialReference")
            assert pg.pop("extent") == pytest.approx(cached.pop("extent")), params
        assert pg == cached, params


def test_distinct_values(client, twins):
    pg, cached = both(client, returnDistinctValues="true", outFields="kind,flag",
                      orderByFields="kind,flag", returnGeometry="false")
    assert [f["attributes"] for f in pg["features"]] == [f["attributes"]
                                                         for f in cached["features"]]


@pytest.mark.parametrize("params", [
    {"outStatistics": [{"statisticType": "count", "onStatisticField": "gid",
                        "outStatisticFieldName": "n"},
                       {"statisticType": "sum", "onStatisticField": "amount",
                        "outStatisticFieldName": "total"},
                       {"statisticType": "avg", "onStatisticField": "value",
                        "outStatisticFieldName": "mean"}]},
    {"outStatistics": [{"statisticType": "count", "onStatisticField": "gid",
                        "outStatisticFieldName": "n"},
                       {"statisticType": "max", "onStatisticField": "day",
                        "outStatisticFieldName": "latest"},
                       {"statisticType": "min", "onStatisticField": "name",
                        "outStatisticFieldName": "first_name"},
                       {"statisticType": "stddev", "onStatisticField": "value",
                        "outStatisticFieldName": "sd"}],
     "groupByFieldsForStatistics": "kind", "orderByFields": "n DESC"},
    {"outStatistics": [{"statisticType": "count", "onStatisticField": "gid",
                        "outStatisticFieldName": "n"},
                       {"statisticType": "percentile_cont", "onStatisticField": "value",
                        "outStatisticFieldName": "median",
                        "statisticParameters": {"value": 0.5}}],
     "groupByFieldsForStatistics": "flag,kind", "havingClause": "COUNT(gid) > 5",
     "where": "value > 0"},
    {"outStatistics": [{"statisticType": "var", "onStatisticField": "amount",
                        "outStatisticFieldName": "v"}],
     "groupByFieldsForStatistics": "name", "geometry": "-10,40,5,50"},
])
def test_statistics(client, twins, params):
    query = {**params, "outStatistics": orjson.dumps(params["outStatistics"]).decode()}
    pg, cached = both(client, **query)
    rows = [f["attributes"] for f in pg["features"]]
    expected = [f["attributes"] for f in cached["features"]]
    assert len(rows) == len(expected) and rows
    for mine, theirs in zip(rows, expected, strict=True):
        assert mine == pytest.approx(theirs)


@pytest.mark.parametrize("out_sr", ["3857", "102100", "32631", '{"wkid": 27700}'])
def test_out_sr(client, twins, out_sr):
    pg, cached = both(client, outSR=out_sr, outFields="gid", orderByFields="gid",
                      resultRecordCount=40)
    assert pg["spatialReference"] == cached["spatialReference"]
    for mine, theirs in zip(pg["features"], cached["features"], strict=True):
        assert mine["geometry"]["x"] == pytest.approx(theirs["geometry"]["x"], abs=1e-3)
        assert mine["geometry"]["y"] == pytest.approx(theirs["geometry"]["y"], abs=1e-3)


@pytest.mark.parametrize("f", ["geojson", "pbf"])
def test_other_formats(client, twins, f):
    params = {"where": "amount > 20", "outFields": "*", "orderByFields": "gid",
              "resultRecordCount": 25, "f": f}
    pg = body_of(client.get(PG, params))
    cached = body_of(client.get(CACHED, params))
    if f == "geojson":
        mine, theirs = orjson.loads(pg), orjson.loads(cached)
        assert [x["properties"] for x in mine["features"]] == pytest.approx(
            [x["properties"] for x in theirs["features"]])
        assert len(mine["features"]) == 25
    else:
        assert pg == cached  # the same bytes: types, values, quantized coordinates


def test_time_and_precision(client, twins):
    from koop_app.models import Dataset

    Dataset.objects.update(start_time_field="seen")
    window = "1560000000000,1580000000000"  # 2019-06-08 .. 2020-01-26
    pg, cached = both(client, time=window, outFields="gid,seen", orderByFields="gid")
    same_features(pg, cached)
    assert 0 < len(pg["features"]) < 240
    pg, cached = both(client, time="1580000000000,null", returnCountOnly="true")
    assert pg == cached and pg["count"] > 0
    pg, cached = both(client, geometryPrecision="2", outFields="gid", orderByFields="gid",
                      resultRecordCount=20)
    assert [f["geometry"] for f in pg["features"]] == [f["geometry"]
                                                       for f in cached["features"]]
