"""The FeatureServer endpoints: service, layers, layer, query; formats, paging, bad input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import collection, feature, point

BASE = "/geojson/rest/services/things/FeatureServer"


def things(n: int = 25) -> dict[str, Any]:
    return collection([
        feature({"name": f"Thing {i}", "size": i, "ratio": i / 4, "kind": "odd" if i % 2 else
                 "even", "seen": f"2024-01-{(i % 28) + 1:02d}T00:00:00Z", "ok": i % 3 == 0},
                point(-100 + i, 40 + i / 10))
        for i in range(1, n + 1)
    ], metadata={"name": "Things", "description": "test things"})


@pytest.fixture
def dataset(make_dataset):
    return make_dataset("geojson", "things", things(), max_record_count=10)


def get(client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(BASE + path, params)
    assert response.status_code == 200, response.content
    return orjson.loads(response.content)


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.mark.django_db
class TestInfo:
    def test_rest_info(self, client):
        body = orjson.loads(client.get("/rest/info").content)
        assert body["currentVersion"] >= 10.0
        assert body["authInfo"] == {"isTokenBasedSecurity": True, "shortLivedTokenValidity": 60,
                                    "tokenServicesUrl": "http://testserver/rest/generateToken"}

    def test_provider_rest_info(self, client):
        body = orjson.loads(client.get("/geojson/rest/info").content)
        assert body["provider"] == "geojson"

    def test_service(self, client, dataset):
        body = get(client, "")
        assert body["layers"][0]["id"] == 0
        assert body["layers"][0]["geometryType"] == "esriGeometryPoint"
        assert body["layers"][0]["name"] == "Things"
        assert body["tables"] == []
        assert body["maxRecordCount"] == 10
        assert body["spatialReference"]["wkid"] == 4326
        assert body["fullExtent"]["xmin"] == pytest.approx(-99)
        assert body["fullExtent"]["xmax"] == pytest.approx(-75)

    def test_layers(self, client, dataset):
        body = get(client, "/layers")
        assert [layer["id"] for layer in body["layers"]] == [0]
        assert body["layers"][0]["objectIdField"] == "OBJECTID"

    @pytest.mark.parametrize("path", ["/0", "/0/", "/0/info"])
    def test_layer(self, client, dataset, path):
        body = get(client, path)
        assert body["id"] == 0
        assert body["type"] == "Feature Layer"
        assert body["geometryType"] == "esriGeometryPoint"
        assert body["objectIdField"] == "OBJECTID"
        assert body["maxRecordCount"] == 10
        assert body["spatialReference"] == {"wkid": 4326, "latestWkid": 4326}
        assert body["extent"]["ymin"] == pytest.approx(40.1)
        assert body["drawingInfo"]["renderer"]["type"] == "simple"
        assert body["drawingInfo"]["renderer"]["symbol"]["type"] == "esriSMS"
        types = {f["name"]: f["type"] for f in body["fields"]}
        assert types == {
            "OBJECTID": "esriFieldTypeOID", "name": "esriFieldTypeString",
            "size": "esriFieldTypeInteger", "ratio": "esriFieldTypeDouble",
            "kind": "esriFieldTypeString", "seen": "esriFieldTypeDate",
            "ok": "esriFieldTypeSmallInteger",
        }
        assert body["advancedQueryCapabilities"]["supportsPagination"] is True
        assert body["advancedQueryCapabilities"]["supportsOrderBy"] is True
        assert body["standardMaxRecordCount"] == 32000 and body["tileMaxRecordCount"] == 8000

    def test_table_without_geometry(self, client, make_dataset):
        make_dataset("geojson", "rows", collection([feature({"a": 1}), feature({"a": 2})]))
        body = orjson.loads(client.get("/geojson/rest/services/rows/FeatureServer/0").content)
        assert body["type"] == "Table"
        assert "geometryType" not in body
        service = orjson.loads(client.get("/geojson/rest/services/rows/FeatureServer").content)
        assert service["layers"] == [] and service["tables"][0]["id"] == 0

    def test_unknown_service_and_layer(self, client, dataset):
        body = orjson.loads(client.get("/geojson/rest/services/nope/FeatureServer/0").content)
        assert error_of(body)["code"] == 404
        assert error_of(get(client, "/1"))["code"] == 404
        assert error_of(get(client, "/abc/query"))["code"] == 404

    def test_disabled_dataset_is_not_served(self, client, dataset):
        dataset.enabled = False
        dataset.save()
        assert error_of(get(client, "/0"))["code"] == 404

    def test_disabled_provider_is_not_served(self, client, dataset):
        dataset.provider.enabled = False
        dataset.provider.save()
        assert error_of(get(client, ""))["code"] == 404

    def test_polygon_layer_renderer(self, client, make_dataset):
        square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
        make_dataset("geojson", "poly", collection([feature({"a": 1}, square)]))
        body = orjson.loads(client.get("/geojson/rest/services/poly/FeatureServer/0").content)
        assert body["geometryType"] == "esriGeometryPolygon"
        assert body["drawingInfo"]["renderer"]["symbol"]["type"] == "esriSFS"


@pytest.mark.django_db
class TestQuery:
    def test_where_1_1_returns_a_page(self, client, dataset):
        body = get(client, "/0/query", where="1=1", outFields="*")
        assert len(body["features"]) == 10  # maxRecordCount
        assert body["exceededTransferLimit"] is True
        assert body["objectIdFieldName"] == "OBJECTID"
        assert body["geometryType"] == "esriGeometryPoint"
        first = body["features"][0]
        assert first["attributes"]["OBJECTID"] == 1
        assert first["attributes"]["name"] == "Thing 1"
        assert first["attributes"]["seen"] == 1704153600000  # 2024-01-02 UTC in epoch ms
        assert first["attributes"]["ok"] == 0
        assert first["geometry"] == {"x": -99.0, "y": 40.1}

    def test_no_where_means_everything(self, client, dataset):
        assert get(client, "/0/query", returnCountOnly="true") == {"count": 25}

    def test_out_fields(self, client, dataset):
        body = get(client, "/0/query", outFields="NAME, size", resultRecordCount=1)
        assert set(body["features"][0]["attributes"]) == {"OBJECTID", "name", "size"}
        assert [f["name"] for f in body["fields"]] == ["OBJECTID", "name", "size"]

    def test_return_geometry_false(self, client, dataset):
        body = get(client, "/0/query", returnGeometry="FALSE", resultRecordCount=2)
        assert all("geometry" not in f for f in body["features"])

    def test_count_only_with_where(self, client, dataset):
        assert get(client, "/0/query", where="kind = 'odd'", returnCountOnly="true") == {
            "count": 13}

    def test_ids_only_not_capped(self, client, dataset):
        body = get(client, "/0/query", returnIdsOnly="true")
        assert body["objectIds"] == list(range(1, 26))

    @pytest.mark.parametrize(
        ("offset", "count", "expected_ids", "exceeded"),
        [
            (None, None, list(range(1, 11)), True),
            ("0", "5", [1, 2, 3, 4, 5], True),
            ("20", "5", [21, 22, 23, 24, 25], False),  # exactly the last page
            ("20", "10", [21, 22, 23, 24, 25], False),  # a short last page
            ("24", None, [25], False),  # offset alone
            ("25", None, [], False),  # past the end
            ("1000", "5", [], False),
            ("5", "50", list(range(6, 16)), True),  # capped at maxRecordCount
            ("15", "10", list(range(16, 26)), False),  # page ends at the last feature
        ],
    )
    def test_paging_edges(self, client, dataset, offset, count, expected_ids, exceeded):
        params = {"where": "1=1", "outFields": "OBJECTID"}
        if offset is not None:
            params["resultOffset"] = offset
        if count is not None:
            params["resultRecordCount"] = count
        body = get(client, "/0/query", **params)
        assert [f["attributes"]["OBJECTID"] for f in body["features"]] == expected_ids
        assert body["exceededTransferLimit"] is exceeded

    def test_paging_with_where(self, client, dataset):
        body = get(client, "/0/query", where="size > 20", resultRecordCount=2, resultOffset=2)
        assert [f["attributes"]["size"] for f in body["features"]] == [23, 24]
        assert body["exceededTransferLimit"] is True

    def test_geojson(self, client, dataset):
        response = client.get(BASE + "/0/query", {"f": "geojson", "resultRecordCount": 2})
        assert response["Content-Type"].startswith("application/geo+json")
        body = orjson.loads(response.content)
        assert body["type"] == "FeatureCollection"
        assert body["features"][0] == {
            "type": "Feature", "id": 1,
            "properties": {"OBJECTID": 1, "name": "Thing 1", "size": 1, "ratio": 0.25,
                           "kind": "odd", "seen": 1704153600000, "ok": 0},
            "geometry": {"type": "Point", "coordinates": [-99.0, 40.1]},
        }
        assert body["properties"] == {"exceededTransferLimit": True}

    def test_geojson_last_page_has_no_exceeded_flag(self, client, dataset):
        body = get(client, "/0/query", f="geojson", resultOffset=20)
        assert len(body["features"]) == 5
        assert "properties" not in body

    def test_pjson_is_indented(self, client, dataset):
        response = client.get(BASE + "/0/query", {"f": "pjson", "resultRecordCount": 1})
        assert response.content.startswith(b"{\n  ")
        assert orjson.loads(response.content)["features"][0]["attributes"]["OBJECTID"] == 1

    def test_post_form_merged_with_query_string(self, client, dataset):
        response = client.post(BASE + "/0/query?f=json&outFields=name",
                               {"where": "size = 3", "returnGeometry": "false"})
        body = orjson.loads(response.content)
        assert body["features"] == [{"attributes": {"OBJECTID": 3, "name": "Thing 3"}}]

    def test_jsonp(self, client, dataset):
        response = client.get(BASE + "/0/query", {"returnCountOnly": "true", "callback": "cb.x"})
        assert response["Content-Type"].startswith("application/javascript")
        assert response.content == b'cb.x({"count":25});'

    def test_cors(self, client, dataset):
        origin = {"HTTP_ORIGIN": "https://maps.example"}
        assert client.get(BASE + "/0", **origin)["Access-Control-Allow-Origin"] == "*"
        assert client.get(BASE + "/9", **origin)["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Origin" not in client.get(BASE + "/0")  # same origin
        preflight = client.options(BASE + "/0/query", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                                   HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-esri-authorization",
                                   **origin)
        assert preflight.status_code == 200
        assert preflight["Access-Control-Allow-Origin"] == "*"
        assert "POST" in preflight["Access-Control-Allow-Methods"]
        assert "x-esri-authorization" in preflight["Access-Control-Allow-Headers"]
        assert client.options(BASE + "/0/query").status_code == 204
        assert "Access-Control-Allow-Origin" not in client.get("/admin/login/", **origin)

    def test_empty_strings_mean_absent(self, client, dataset):
        body = get(client, "/0/query", where="", outFields="", resultOffset="",
                   resultRecordCount="", returnGeometry="", returnCountOnly="")
        assert len(body["features"]) == 10

    def test_where_comparisons(self, client, dataset):
        def count(where: str) -> int:
            return get(client, "/0/query", where=where, returnCountOnly="true")["count"]

        assert count("size >= 20 AND kind = 'even'") == 3
        assert count("size IN (1, 2, 3) OR name LIKE 'Thing 2_'") == 9
        assert count("size BETWEEN 5 AND 7") == 3
        assert count("NOT (size < 25)") == 1
        assert count("\"NAME\" = 'Thing 4'") == 1
        assert count("ok = 1") == 8
        assert count("ratio * 4 = size") == 25
        assert count("upper(kind) = 'ODD'") == 13


@pytest.mark.django_db
class TestBadInput:
    """Every parameter's bad value is a GeoServices error with code 400, never a crash."""

    @pytest.mark.parametrize(
        ("params", "needle"),
        [
            ({"where": "nosuchfield = 1"}, "not a field"),
            ({"where": "size = "}, "cannot parse"),
            ({"where": "size = 1; DROP TABLE x"}, "';'"),
            ({"where": "size = 1 -- comment"}, "comments"),
            ({"where": "size = 1 /* x */"}, "comments"),
            ({"where": "size = (SELECT 1)"}, "subquery"),
            ({"where": "pg_sleep(10) = 1"}, "PG_SLEEP"),
            ({"where": "name > 3"}, "where"),
            ({"where": "x" * 100_000}, "too long"),
            ({"outFields": "name,bogus"}, "'bogus' is not a field"),
            ({"resultOffset": "-1"}, "resultOffset"),
            ({"resultOffset": "ten"}, "resultOffset"),
            ({"resultRecordCount": "1.5"}, "resultRecordCount"),
            ({"resultRecordCount": "0"}, "resultRecordCount"),
            ({"returnGeometry": "yes"}, "returnGeometry"),
            ({"returnCountOnly": "1"}, "returnCountOnly"),
            ({"returnIdsOnly": "maybe"}, "returnIdsOnly"),
            ({"f": "kml"}, "'f'"),
            ({"callback": "alert(1)"}, "callback"),
        ],
    )
    def test_bad_parameter(self, client, dataset, params, needle):
        body = get(client, "/0/query", **params)
        error = error_of(body)
        assert error["code"] == 400
        assert needle.lower() in " ".join(error["details"]).lower() or needle.lower() in error[
            "message"].lower()

    def test_huge_record_count_is_capped(self, client, dataset):
        body = get(client, "/0/query", resultRecordCount=str(10**30))
        assert len(body["features"]) == 10

    def test_huge_offset(self, client, dataset):
        body = get(client, "/0/query", resultOffset=str(10**30))
        assert body["features"] == []


@pytest.mark.django_db
def test_gzip_when_accepted(client, dataset):
    import gzip

    response = client.get(BASE + "/0/query", {"resultRecordCount": 10},
                          HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    body = orjson.loads(gzip.decompress(response.content))
    assert len(body["features"]) == 10
    assert "Content-Encoding" not in client.get(BASE + "/0/query")
