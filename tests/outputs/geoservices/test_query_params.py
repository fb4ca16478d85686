"""Query parameters beyond the basics, per geometry type, with ArcGIS semantics."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from tests.conftest import body_of, collection, feature, point

DAY = 86_400_000
JAN1 = 1704067200000  # 2024-01-01T00:00:00Z


def things() -> dict[str, Any]:
    return collection([
        feature({"name": f"Thing {i}", "size": i, "kind": "odd" if i % 2 else "even",
                 "seen": f"2024-01-{i:02d}T00:00:00Z", "score": None if i % 5 == 0 else i * 1.5},
                point(-100 + i, 40 + i / 10))
        for i in range(1, 26)
    ], metadata={"name": "Things", "timeInfo": {"startTimeField": "seen"}})


def square(x: float, y: float, size: float = 1) -> dict:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + size, y], [x + size, y + size],
                                                [x, y + size], [x, y]]]}


def shapes() -> dict[str, Any]:
    holed = {"type": "Polygon", "coordinates": [
        [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
        [[4, 4], [4, 6], [6, 6], [6, 4], [4, 4]]]}
    multi = {"type": "MultiPolygon", "coordinates": [square(20, 0)["coordinates"],
                                                     square(30, 0)["coordinates"]]}
    return collection([feature({"label": "holed", "area": 96}, holed),
                       feature({"label": "multi", "area": 2}, multi),
                       feature({"label": "small", "area": 1}, square(2, 2))])


def lines() -> dict[str, Any]:
    return collection([
        feature({"label": "diagonal"}, {"type": "LineString", "coordinates": [[0, 0], [10, 10]]}),
        feature({"label": "far"}, {"type": "LineString", "coordinates": [[50, 50], [60, 50]]}),
    ])


@pytest.fixture
def layers(make_dataset):
    make_dataset("geojson", "things", things(), max_record_count=10)
    make_dataset("geojson", "shapes", shapes())
    make_dataset("geojson", "lines", lines())


def q(client, dataset: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/geojson/rest/services/{dataset}/FeatureServer/0/query", params)
    assert response.status_code == 200
    return orjson.loads(body_of(response))


def ids(body: dict) -> list[int]:
    return [f["attributes"]["OBJECTID"] for f in body["features"]]


def err(body: dict) -> str:
    assert "error" in body, body
    assert body["error"]["code"] == 400
    return " ".join(body["error"]["details"])


@pytest.mark.django_db
class TestFilters:
    def test_object_ids(self, client, layers):
        assert ids(q(client, "things", objectIds="3, 1,2,99")) == [1, 2, 3]
        assert ids(q(client, "things", objectIds="4", where="size > 10")) == []
        assert "objectIds" in err(q(client, "things", objectIds="1,x"))

    @pytest.mark.parametrize("geometry", [
        "-95.5,40,-90.5,45",
        '{"xmin": -95.5, "ymin": 40, "xmax": -90.5, "ymax": 45}',
        '{"xmin": -95.5, "ymin": 40, "xmax": -90.5, "ymax": 45, "spatialReference": '
        '{"wkid": 4326}}',
        '{"rings": [[[-95.5, 40], [-95.5, 45], [-90.5, 45], [-90.5, 40], [-95.5, 40]]]}',
        '{"type": "Polygon", "coordinates": [[[-95.5, 40], [-90.5, 40], [-90.5, 45], '
        '[-95.5, 45], [-95.5, 40]]]}',
    ])
    def test_envelope_and_polygon_forms(self, client, layers, geometry):
        geometry_type = "esriGeometryPolygon" if "rings" in geometry or "type" in geometry \
            else "esriGeometryEnvelope"
        body = q(client, "things", geometry=geometry, geometryType=geometry_type,
                 outFields="size")
        assert [f["attributes"]["size"] for f in body["features"]] == [5, 6, 7, 8, 9]

    def test_envelope_in_web_mercator(self, client, layers):
        # -95.5..-90.5 lon, 40..45 lat in EPSG:3857
        envelope = {"xmin": -10631053.9, "ymin": 4865942.3, "xmax": -10074465.5,
                    "ymax": 5621521.5, "spatialReference": {"wkid": 102100,
                                                            "latestWkid": 3857}}
        body = q(client, "things", geometry=orjson.dumps(envelope).decode(), outFields="size")
        assert [f["attributes"]["size"] for f in body["features"]] == [5, 6, 7, 8, 9]
        body = q(client, "things", geometry="-10631053.9,4865942.3,-10074465.5,5621521.5",
                 inSR="3857", outFields="size")
        assert [f["attributes"]["size"] for f in body["features"]] == [5, 6, 7, 8, 9]

    def test_point_with_distance(self, client, layers):
        # Thing 10 is at (-90, 41); 1 degree of longitude at 41N is about 84 km.
        body = q(client, "things", geometry="-90,41", geometryType="esriGeometryPoint",
                 distance="90", units="esriSRUnit_Kilometer", outFields="size")
        assert [f["attributes"]["size"] for f in body["features"]] == [9, 10, 11]
        body = q(client, "things", geometry='{"x": -90, "y": 41}',
                 geometryType="esriGeometryPoint", distance="10", units="esriSRUnit_Meter")
        assert ids(body) == [10]

    def test_polygon_relations(self, client, layers):
        inside = '{"x": 1, "y": 1}'
        in_hole = '{"x": 5, "y": 5}'
        assert q(client, "shapes", geometry=inside, geometryType="esriGeometryPoint",
                 returnCountOnly="true")["count"] == 1
        assert q(client, "shapes", geometry=in_hole, geometryType="esriGeometryPoint",
                 returnCountOnly="true")["count"] == 0
        # EnvelopeIntersects only looks at boxes: the hole does not count.
        assert q(client, "shapes", geometry=in_hole, geometryType="esriGeometryPoint",
                 spatialRel="esriSpatialRelEnvelopeIntersects",
                 returnCountOnly="true")["count"] == 1
        big = "-1,-1,40,12"
        names = lambda body: sorted(f["attributes"]["label"] for f in body["features"])  # noqa
        # Contains: the query geometry contains the feature.
        assert names(q(client, "shapes", geometry=big, spatialRel="esriSpatialRelContains",
                       outFields="label")) == ["holed", "multi", "small"]
        assert names(q(client, "shapes", geometry="1,1,3.5,3.5",
                       spatialRel="esriSpatialRelContains", outFields="label")) == ["small"]
        # Within: the query geometry lies within the feature.
        assert names(q(client, "shapes", geometry="1,1,1.5,1.5",
                       spatialRel="esriSpatialRelWithin", outFields="label")) == ["holed"]
        assert names(q(client, "shapes", geometry="9,9,11,11",
                       spatialRel="esriSpatialRelOverlaps", outFields="label")) == ["holed"]
        assert names(q(client, "shapes", geometry="10,0,12,2",
                       spatialRel="esriSpatialRelTouches", outFields="label")) == ["holed"]

    def test_line_relations(self, client, layers):
        crossing = '{"paths": [[[0, 10], [10, 0]]]}'
        body = q(client, "lines", geometry=crossing, geometryType="esriGeometryPolyline",
                 spatialRel="esriSpatialRelCrosses", outFields="label")
        assert [f["attributes"]["label"] for f in body["features"]] == ["diagonal"]
        body = q(client, "lines", geometry="1,8,2,9", returnCountOnly="true")
        assert body["count"] == 0  # the box misses the line although the line's box holds it

    @pytest.mark.parametrize(("params", "needle"), [
        ({"geometry": "1,2,3"}, "geometry"),
        ({"geometry": "3,3,1,1"}, "xmin <= xmax"),
        ({"geometry": '{"rings": [[[0, 0], [1, 1]]]}', "geometryType": "esriGeometryPolygon"},
         "at least 3"),
        ({"geometry": '{"x": "a", "y": 1}', "geometryType": "esriGeometryPoint"}, "numbers"),
        ({"geometry": "{nope"}, "JSON"),
        ({"geometry": "1,1,2,2", "geometryType": "esriGeometryCircle"}, "geometryType"),
        ({"geometry": "1,1,2,2", "spatialRel": "esriSpatialRelRelation"}, "spatialRel"),
        ({"geometry": "1,1,2,2", "inSR": "999999"}, "inSR"),
        ({"geometry": "1,1", "geometryType": "esriGeometryPoint", "distance": "-1"},
         "distance"),
        ({"geometry": "1,1", "geometryType": "esriGeometryPoint", "distance": "1",
          "units": "esriSRUnit_Parsec"}, "units"),
    ])
    def test_bad_geometry_parameters(self, client, layers, params, needle):
        assert needle in err(q(client, "things", **params))

    def test_time(self, client, layers):
        def sizes(**params):
            return [f["attributes"]["size"] for f in q(client, "things", outFields="size",
                                                       **params)["features"]]

        assert sizes(time=str(JAN1 + 2 * DAY)) == [3]
        assert sizes(time=f"{JAN1 + 20 * DAY},null") == [21, 22, 23, 24, 25]
        assert sizes(time=f"null,{JAN1 + DAY}") == [1, 2]
        assert "time" in err(q(client, "things", time="soon"))

    def test_where_dates(self, client, layers):
        def count(where: str) -> int:
            return q(client, "things", where=where, returnCountOnly="true")["count"]

        assert count("seen >= date '2024-01-20'") == 6
        assert count("seen < timestamp '2024-01-03 00:00:01'") == 3
        assert count("seen BETWEEN '2024-01-02' AND '2024-01-04'") == 3
        assert count("EXTRACT(DAY FROM seen) = 7") == 1
        assert count("seen > CURRENT_DATE") == 0
        assert count("seen < CURRENT_TIMESTAMP") == 25
        assert count("CAST(seen AS DATE) = date '2024-01-05'") == 1
        assert "not a date" in err(q(client, "things", where="seen > date 'later'"))

    def test_where_functions(self, client, layers):
        def count(where: str) -> int:
            return q(client, "things", where=where, returnCountOnly="true")["count"]

        assert count("ABS(size - 10) <= 1") == 3
        assert count("CEILING(size / 2.0) = 2") == 2
        assert count("FLOOR(size / 10.0) = 2") == 6
        assert count("ROUND(score, 0) = 2") == 1  # 1.5 rounds to 2
        assert count("TRUNCATE(score, 0) = 4") == 1  # 4.5
        assert count("POWER(size, 2) > 600") == 1
        assert count("MOD(size, 10) = 0") == 2
        assert count("LOG10(size) >= 1") == 16
        assert count("LOG(size) < 1") == 2
        assert count("CHAR_LENGTH(name) = 7") == 9
        assert count("CONCAT(kind, 'x') = 'oddx'") == 13
        assert count("POSITION('2' IN name) = 7") == 7
        assert count("SUBSTRING(name FROM 7 FOR 1) = '1'") == 11
        assert count("TRIM(BOTH 'T' FROM name) = 'hing 1'") == 1
        assert count("COALESCE(score, -1) = -1") == 5
        assert count("NULLIF(kind, 'odd') IS NULL") == 13
        assert count("LOWER(name) LIKE 'thing 1%'") == 11
        assert count("name LIKE 'thing%'") == 25  # without case, as ArcGIS Online
        assert count("name LIKE 'Thing 1!_%' ESCAPE '!'") == 0
        assert count("CAST(size AS VARCHAR(5)) = '7'") == 1
        assert count("score IS NOT NULL AND NOT kind = 'odd'") == 10


@pytest.mark.django_db
class TestOutputs:
    def test_order_by(self, client, layers):
        body = q(client, "things", orderByFields="kind DESC,  size  ASC", outFields="kind,size",
                 resultRecordCount="3")
        assert [(f["attributes"]["kind"], f["attributes"]["size"]) for f in body["features"]] \
            == [("odd", 1), ("odd", 3), ("odd", 5)]
        body = q(client, "things", orderByFields="OBJECTID DESC", resultRecordCount="2")
        assert ids(body) == [25, 24]
        body = q(client, "things", orderByFields="score DESC", resultOffset="20")
        assert [f["attributes"]["score"] for f in body["features"]] == [None] * 5
        assert ids(q(client, "things", orderByFields="")) == list(range(1, 11))
        assert "orderByFields" in err(q(client, "things", orderByFields="nope"))
        assert "orderByFields" in err(q(client, "things", orderByFields="size UP"))

    def test_ids_only_follow_order(self, client, layers):
        body = q(client, "things", returnIdsOnly="true", orderByFields="size DESC",
                 where="size < 4")
        assert body == {"objectIdFieldName": "OBJECTID", "objectIds": [3, 2, 1]}

    def test_out_sr(self, client, layers):
        body = q(client, "things", objectIds="10", outSR="102100")
        assert body["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
        geometry = body["features"][0]["geometry"]
        assert geometry["x"] == pytest.approx(-10018754.17, abs=0.01)
        assert geometry["y"] == pytest.approx(5012341.6, abs=1)
        body = q(client, "things", objectIds="10", outSR='{"wkid": 3857, "vcsWkid": 5703}')
        assert body["spatialReference"]["latestWkid"] == 3857
        body = q(client, "things", objectIds="10", outSR="102003")  # ESRI-only code
        assert body["spatialReference"] == {"wkid": 102003, "latestWkid": 102003}
        assert "outSR" in err(q(client, "things", outSR="123456789"))
        assert "outSR" in err(q(client, "things", outSR="{bad"))

    def test_web_mercator_clamps_latitude(self, client, make_dataset):
        make_dataset("geojson", "polar", collection([feature({}, point(10, 89.9))]))
        body = q(client, "polar", outSR="3857")
        assert body["features"][0]["geometry"] is None or \
            body["features"][0]["geometry"]["y"] < 2.0e7

    def test_geometry_precision(self, client, layers):
        body = q(client, "things", objectIds="1", outSR="3857", geometryPrecision="1")
        geometry = body["features"][0]["geometry"]
        assert geometry["x"] == round(geometry["x"], 1)
        body = q(client, "shapes", objectIds="1", geometryPrecision="0", outSR="3857")
        ring = body["features"][0]["geometry"]["rings"][0]
        assert all(float(v).is_integer() for xy in ring for v in xy)
        assert "geometryPrecision" in err(q(client, "things", geometryPrecision="-1"))

    def test_esri_polygon_rings_are_clockwise_outside(self, client, layers):
        rings = q(client, "shapes", objectIds="1")["features"][0]["geometry"]["rings"]

        def signed_area(ring):
            return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:],
                                                                        strict=False)) / 2

        assert signed_area(rings[0]) < 0  # clockwise
        assert signed_area(rings[1]) > 0  # the hole, counter-clockwise
        multi = q(client, "shapes", objectIds="2")["features"][0]["geometry"]["rings"]
        assert len(multi) == 2

    def test_polylines(self, client, layers):
        body = q(client, "lines", objectIds="1")
        assert body["geometryType"] == "esriGeometryPolyline"
        assert body["features"][0]["geometry"] == {"paths": [[[0.0, 0.0], [10.0, 10.0]]]}

    def test_max_allowable_offset(self, client, make_dataset):
        wiggle = {"type": "LineString", "coordinates": [[0, 0], [1, 0.01], [2, 0], [3, 0.01],
                                                        [4, 0]]}
        make_dataset("geojson", "wiggle", collection([feature({}, wiggle)]))
        body = q(client, "wiggle", maxAllowableOffset="0.1")
        assert len(body["features"][0]["geometry"]["paths"][0]) == 2

    def test_centroid(self, client, layers):
        body = q(client, "shapes", objectIds="3", returnCentroid="true")
        assert body["features"][0]["centroid"] == {"x": 2.5, "y": 2.5}

    def test_extent(self, client, layers):
        body = q(client, "things", returnExtentOnly="true", where="size <= 2")
        assert body["extent"]["xmin"] == -99 and body["extent"]["xmax"] == -98
        assert body["extent"]["spatialReference"]["wkid"] == 4326
        both = q(client, "things", returnExtentOnly="true", returnCountOnly="true",
                 outSR="3857")
        assert both["count"] == 25
        assert both["extent"]["spatialReference"]["latestWkid"] == 3857
        assert both["extent"]["xmin"] == pytest.approx(-99 * 111319.49, rel=1e-6)
        geojson = q(client, "things", returnExtentOnly="true", f="geojson")
        assert geojson == {"type": "FeatureCollection", "features": [],
                           "bbox": [-99.0, 40.1, -75.0, 42.5]}

    def test_distinct(self, client, layers):
        body = q(client, "things", returnDistinctValues="true", outFields="kind",
                 orderByFields="kind")
        assert [f["attributes"] for f in body["features"]] == [{"kind": "even"}, {"kind": "odd"}]
        assert q(client, "things", returnDistinctValues="true", outFields="kind",
                 returnCountOnly="true") == {"count": 2}
        assert "outFields" in err(q(client, "things", returnDistinctValues="true"))

    def test_statistics(self, client, layers):
        stats = [
            {"statisticType": "count", "onStatisticField": "score", "outStatisticFieldName": "n"},
            {"statisticType": "sum", "onStatisticField": "size", "outStatisticFieldName": "total"},
            {"statisticType": "min", "onStatisticField": "seen", "outStatisticFieldName": "first"},
            {"statisticType": "max", "onStatisticField": "size", "outStatisticFieldName": "top"},
            {"statisticType": "avg", "onStatisticField": "size", "outStatisticFieldName": "mean"},
            {"statisticType": "stddev", "onStatisticField": "size", "outStatisticFieldName": "sd"},
            {"statisticType": "var", "onStatisticField": "size", "outStatisticFieldName": "v"},
            {"statisticType": "percentile_cont", "onStatisticField": "size",
             "outStatisticFieldName": "median", "statisticParameters": {"value": 0.5}},
            {"statisticType": "percentile_disc", "onStatisticField": "size",
             "outStatisticFieldName": "p90", "statisticParameters": {"value": 0.9,
                                                                     "orderBy": "DESC"}},
        ]
        body = q(client, "things", outStatistics=orjson.dumps(stats).decode())
        row = body["features"][0]["attributes"]
        sizes = list(range(1, 26))
        mean = sum(sizes) / 25
        var = sum((s - mean) ** 2 for s in sizes) / 24  # sample variance, as ArcGIS
        assert row["n"] == 20 and row["total"] == 325 and row["first"] == JAN1
        assert row["top"] == 25 and row["mean"] == 13 and row["median"] == 13
        assert row["v"] == pytest.approx(var) and row["sd"] == pytest.approx(math.sqrt(var))
        assert row["p90"] == 3  # 90th percentile of the sizes ordered high to low
        types = {f["name"]: f["type"] for f in body["fields"]}
        assert types["n"] == "esriFieldTypeInteger" and types["first"] == "esriFieldTypeDate"
        assert types["mean"] == "esriFieldTypeDouble"

    def test_grouped_statistics_having_and_order(self, client, layers):
        stats = orjson.dumps([{"statisticType": "count", "onStatisticField": "OBJECTID",
                               "outStatisticFieldName": "n"},
                              {"statisticType": "max", "onStatisticField": "size",
                               "outStatisticFieldName": "biggest"}]).decode()
        body = q(client, "things", outStatistics=stats, groupByFieldsForStatistics="kind",
                 orderByFields="n DESC")
        rows = [f["attributes"] for f in body["features"]]
        assert rows == [{"kind": "odd", "n": 13, "biggest": 25},
                        {"kind": "even", "n": 12, "biggest": 24}]
        body = q(client, "things", outStatistics=stats, groupByFieldsForStatistics="kind",
                 havingClause="COUNT(OBJECTID) < 13")
        assert [f["attributes"]["kind"] for f in body["features"]] == ["even"]
        body = q(client, "things", outStatistics=stats, groupByFieldsForStatistics="kind",
                 where="size > 20", orderByFields="kind")
        assert [f["attributes"]["n"] for f in body["features"]] == [2, 3]

    @pytest.mark.parametrize(("params", "needle"), [
        ({"outStatistics": "{"}, "JSON"),
        ({"outStatistics": '[{"statisticType": "median", "onStatisticField": "size"}]'},
         "statisticType"),
        ({"outStatistics": '[{"statisticType": "sum", "onStatisticField": "nope"}]'},
         "onStatisticField"),
        ({"outStatistics": '[{"statisticType": "sum", "onStatisticField": "size", '
                           '"outStatisticFieldName": "a b"}]'}, "outStatisticFieldName"),
        ({"outStatistics": '[{"statisticType": "percentile_cont", "onStatisticField": "size"}]'},
         "statisticParameters"),
        ({"groupByFieldsForStatistics": "kind"}, "needs outStatistics"),
        ({"havingClause": "COUNT(size) > 1"}, "needs outStatistics"),
        ({"outStatistics": '[{"statisticType": "sum", "onStatisticField": "size"}]',
          "havingClause": "pg_sleep(1) > 1"}, "not supported"),
    ])
    def test_bad_statistics(self, client, layers, params, needle):
        assert needle in err(q(client, "things", **params))

    def test_result_type_and_factor(self, client, make_dataset):
        make_dataset("geojson", "many", collection([feature({"n": i}, point(0, 0))
                                                    for i in range(60)]), max_record_count=10)
        assert len(q(client, "many")["features"]) == 10
        assert len(q(client, "many", maxRecordCountFactor="3")["features"]) == 30
        assert len(q(client, "many", resultType="standard")["features"]) == 60
        assert len(q(client, "many", resultType="tile", resultRecordCount="50")["features"]) == 50
        assert "maxRecordCountFactor" in err(q(client, "many", maxRecordCountFactor="9"))
        assert "resultType" in err(q(client, "many", resultType="huge"))

    def test_return_exceeded_limit_features(self, client, layers):
        body = q(client, "things", returnExceededLimitFeatures="false")
        assert body["features"] == [] and body["exceededTransferLimit"] is True
        body = q(client, "things", returnExceededLimitFeatures="false", where="size < 5")
        assert len(body["features"]) == 4 and body["exceededTransferLimit"] is False

    def test_ignored_parameters_are_accepted(self, client, layers):
        body = q(client, "things", sqlFormat="standard", datumTransformation="1234",
                 gdbVersion="x", historicMoment="1", cacheHint="true",
                 featureEncoding="esriDefault",
                 returnTrueCurves="false", timeReferenceUnknownClient="false",
                 returnAllRecords="true", quantizationParameters='{"mode": "view"}',
                 returnZ="true", returnM="true", orderByFields="", returnCentroid="false")
        assert len(body["features"]) == 10

    def test_geojson_keeps_features_with_out_fields(self, client, layers):
        body = q(client, "things", f="geojson", outFields="name", resultRecordCount="1")
        assert body["features"][0]["type"] == "Feature"
        assert body["features"][0]["properties"] == {"OBJECTID": 1, "name": "Thing 1"}


@pytest.mark.django_db
class TestResources:
    def test_single_feature(self, client, layers):
        body = orjson.loads(client.get(
            "/geojson/rest/services/things/FeatureServer/0/4").content)
        assert body["feature"]["attributes"]["size"] == 4
        assert body["feature"]["geometry"] == {"x": -96.0, "y": 40.4}
        missing = orjson.loads(client.get(
            "/geojson/rest/services/things/FeatureServer/0/999").content)
        assert missing["error"]["code"] == 404

    def test_catalog(self, client, layers):
        assert orjson.loads(client.get("/rest/services").content)["folders"] == ["geojson"]
        body = orjson.loads(client.get("/rest/services/geojson").content)
        names = [s["name"] for s in body["services"] if s["type"] == "FeatureServer"]
        assert names == ["geojson/lines", "geojson/shapes", "geojson/things"]
        assert body["services"][0]["url"] == (
            "http://testserver/rest/services/geojson/lines/FeatureServer")

    def test_time_info(self, client, layers):
        layer = orjson.loads(client.get("/geojson/rest/services/things/FeatureServer/0").content)
        assert layer["timeInfo"]["startTimeField"] == "seen"
        assert layer["timeInfo"]["timeExtent"] == [JAN1, JAN1 + 24 * DAY]
        shapes = orjson.loads(client.get("/geojson/rest/services/shapes/FeatureServer/0").content)
        assert "timeInfo" not in shapes


@pytest.mark.django_db
@pytest.mark.parametrize("enum_rows", [0, 10**9], ids=["text-as-enum", "text"])
def test_few_valued_text_behaves_the_same_as_an_enum(client, make_dataset, monkeypatch,
                                                     enum_rows):
    import importlib

    normalize_module = importlib.import_module("koop_app.data.normalize")
    monkeypatch.setattr(normalize_module, "ENUM_MIN_ROWS", enum_rows)
    make_dataset("geojson", "things", things())

    def count(where: str) -> int:
        return q(client, "things", where=where, returnCountOnly="true")["count"]

    assert count("kind = 'odd'") == 13
    assert count("kind = 'nope'") == 0
    assert count("kind > 'f'") == 13
    assert count("kind IN ('even', 'x')") == 12
    assert count("kind LIKE 'ev%'") == 12
    assert count("UPPER(kind) = 'ODD'") == 13
    body = q(client, "things", orderByFields="kind DESC, size", outFields="kind",
             resultRecordCount="1")
    assert body["features"][0]["attributes"]["kind"] == "odd"
    stats = orjson.dumps([{"statisticType": "count", "onStatisticField": "size",
                           "outStatisticFieldName": "n"}]).decode()
    body = q(client, "things", outStatistics=stats, groupByFieldsForStatistics="kind")
    assert [f["attributes"] for f in body["features"]] == [{"kind": "even", "n": 12},
                                                           {"kind": "odd", "n": 13}]


@pytest.mark.django_db
def test_time_fields_set_by_the_administrator(client, make_dataset):
    doc = things()
    del doc["metadata"]["timeInfo"]
    make_dataset("geojson", "things", doc, start_time_field="seen")
    layer = orjson.loads(client.get("/geojson/rest/services/things/FeatureServer/0").content)
    assert layer["timeInfo"]["startTimeField"] == "seen"
    body = q(client, "things", time=str(JAN1), outFields="size")
    assert [f["attributes"]["size"] for f in body["features"]] == [1]
