"""Every conformance class the API claims is exercised here: a checker per class walks the
requirements it implies (requests that use it succeed, with the required shape)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
import pyproj
import pytest
from openapi_spec_validator import validate

from koop_app.outputs.ogcapi.conformance import (
    CONFORMANCE,
    CQL2,
    FEATURES_1,
    FEATURES_2,
    FEATURES_3,
)
from tests.outputs.ogcapi.conftest import ROOT, body, get

pytestmark = pytest.mark.django_db
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def ok(client, path: str, params: dict[str, Any] | None = None, media: str = "application/json",
       **headers: Any) -> Any:
    response = get(client, path, params, **headers)
    assert response.status_code == 200, (path, params, response.content[:300])
    assert response["Content-Type"].startswith(media), (path, response["Content-Type"])
    return response


def codes(client, params: dict[str, Any], collection: str = "0") -> list[int]:
    answer = body(ok(client, f"/collections/{collection}/items", params, "application/geo+json"))
    assert answer["numberReturned"] == len(answer["features"]) == answer["numberMatched"]
    return sorted(f["id"] for f in answer["features"])


def bad(client, params: dict[str, Any]) -> None:
    response = get(client, "/collections/0/items", params)
    assert response.status_code == 400, (params, response.content[:300])
    assert body(response)["status"] == 400


def check_core(client) -> None:
    landing = body(ok(client, ""))
    rels = {x["rel"] for x in landing["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= rels
    for link in landing["links"]:
        parts = urlsplit(link["href"])
        assert client.get(parts.path + "?" + parts.query).status_code == 200, link
    assert set(body(ok(client, "/conformance"))["conformsTo"]) == set(CONFORMANCE)
    listed = body(ok(client, "/collections"))
    assert [c["id"] for c in listed["collections"]] == ["0", "1", "2", "3"]
    for entry in listed["collections"]:
        one = body(ok(client, f"/collections/{entry['id']}"))
        assert one["id"] == entry["id"] and one["itemType"] == "feature"
        assert {"self", "items"} <= {x["rel"] for x in one["links"]}
        if entry["id"] != "3":
            bbox = one["extent"]["spatial"]["bbox"][0]
            assert len(bbox) == 4 and bbox[0] <= bbox[2] and bbox[1] <= bbox[3]
            assert one["extent"]["spatial"]["crs"] == CRS84
    places = body(ok(client, "/collections/0"))
    assert places["extent"]["temporal"]["interval"] == [["2020-01-01T12:00:00Z",
                                                         "2020-01-25T12:00:00Z"]]
    page = body(ok(client, "/collections/0/items", {"limit": 10, "bbox": "-11,39,0,50",
                                                   "datetime": "2020-01-02/.."},
                   "application/geo+json"))
    assert page["type"] == "FeatureCollection" and page["numberMatched"] == 10
    assert page["numberReturned"] == 10 and page["timeStamp"]
    assert {"self", "alternate"} <= {x["rel"] for x in page["links"]}
    feature = body(ok(client, "/collections/0/items/2", media="application/geo+json"))
    assert feature["type"] == "Feature" and feature["id"] == 2
    missing = get(client, "/collections/0/items/9999")
    assert missing.status_code == 404
    assert get(client, "/collections/0/items", {"nonsense": "1"}).status_code == 400


def check_oas30(client) -> None:
    response = ok(client, "/api", {"f": "json"}, "application/vnd.oai.openapi+json")
    document = orjson.loads(response.content)
    validate(document)  # openapi-spec-validator: a well-formed OpenAPI 3.0 document
    assert document["openapi"].startswith("3.0")
    for cid in ("0", "1", "2", "3"):
        assert f"/collections/{cid}/items" in document["paths"]
        assert f"/collections/{cid}/items/{{featureId}}" in document["paths"]
    names = {p.get("name") for p in document["paths"]["/collections/0/items"]["get"][
        "parameters"]}
    assert {"limit", "name", "pop"} <= names  # the layer's own property filters
    assert document["servers"][0]["url"].endswith(ROOT)


def check_html(client) -> None:
    for path in ("", "/conformance", "/api", "/collections", "/collections/0",
                 "/collections/0/queryables", "/collections/0/items", "/collections/0/items/1",
                 "/collections/3/items"):
        text = ok(client, path, {"f": "html"}, "text/html").content.decode()
        assert text.startswith("<!DOCTYPE html>") and "</html>" in text
    ok(client, "/collections", media="text/html", HTTP_ACCEPT="text/html")
    items = ok(client, "/collections/0/items", {"f": "html", "limit": 5}, "text/html"
               ).content.decode()
    assert "5 of 25 features" in items and 'rel="next"' in items


def check_geojson(client) -> None:
    for cid, kind in (("0", "Point"), ("1", "LineString"), ("2", "Polygon"), ("3", None)):
        page = body(ok(client, f"/collections/{cid}/items", {"f": "json"},
                       "application/geo+json"))
        for feature in page["features"]:
            assert feature["type"] == "Feature" and isinstance(feature["id"], int)
            assert isinstance(feature["properties"], dict)
            assert (feature["geometry"] or {}).get("type") == kind


def check_crs(client) -> None:
    one = body(ok(client, "/collections/0"))
    assert one["storageCrs"] == CRS84 and CRS84 in one["crs"]
    assert EPSG + "4326" in one["crs"] and EPSG + "3857" in one["crs"]
    plain = ok(client, "/collections/0/items/1", media="application/geo+json")
    assert plain["Content-Crs"] == f"<{CRS84}>"
    assert body(plain)["geometry"]["coordinates"] == [-10.0, 40.0]
    latlon = ok(client, "/collections/0/items/1", {"crs": EPSG + "4326"},
                "application/geo+json")
    assert latlon["Content-Crs"] == f"<{EPSG}4326>"
    assert body(latlon)["geometry"]["coordinates"] == [40.0, -10.0]  # latitude first
    mercator = ok(client, "/collections/0/items", {"crs": EPSG + "3857", "limit": 1},
                  "application/geo+json")
    x, y = body(mercator)["features"][0]["geometry"]["coordinates"]
    assert x == pytest.approx(-1113194.9, abs=1) and y == pytest.approx(4865942.3, abs=1)
    # bbox-crs: EPSG:4326 boxes are (lat, lon); 3857 boxes in metres.
    assert codes(client, {"bbox": "39.5,-10.5,41.5,-7.5", "bbox-crs": EPSG + "4326"}) == \
        [1, 2, 3]
    assert codes(client, {"bbox": "-1170000,4800000,-1000000,5000000",
                          "bbox-crs": EPSG + "3857"}) == [1, 2]
    # Another CRS PROJ knows (UTM 32N): projected, easting first.
    utm = body(ok(client, "/collections/0/items/10", {"crs": EPSG + "32632"},
                  "application/geo+json"))
    want = pyproj.Transformer.from_crs(4326, 32632, always_xy=True).transform(-1.0, 44.5)
    assert utm["geometry"]["coordinates"] == pytest.approx(list(want), abs=0.01)
    bad(client, {"crs": EPSG + "0"})


def check_queryables(client) -> None:
    schema = body(ok(client, "/collections/0/queryables", media="application/schema+json"))
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["$id"].endswith("/collections/0/queryables") and schema["type"] == "object"
    props = schema["properties"]
    assert props["name"]["type"] == "string" and props["pop"]["type"] == "integer"
    assert props["ratio"]["type"] == "number"
    assert props["when"] == {"title": "when", "type": "string", "format": "date-time"}
    assert props["geometry"]["format"] == "geometry-point"
    table = body(ok(client, "/collections/3/queryables", media="application/schema+json"))
    assert "geometry" not in table["properties"]
    rel = {x["rel"]: x["href"] for x in body(ok(client, "/collections/0"))["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/queryables" in rel


def check_queryables_query_parameters(client) -> None:
    assert codes(client, {"name": "Kraków"}) == [3, 13, 23]
    assert codes(client, {"pop": "0"}) == [1]
    assert codes(client, {"ratio": "0.5"}) == [3]
    assert codes(client, {"when": "2020-01-02T12:00:00Z"}) == [2]
    bad(client, {"pop": "x"})


def check_filter(client) -> None:
    assert codes(client, {"filter": "pop > 2000"}) == [22, 23, 24]
    assert codes(client, {"filter": "pop > 2000", "filter-lang": "cql2-text"}) == \
        [22, 23, 24]
    # filter-crs: geometries of the filter in EPSG:4326 (latitude first).
    assert codes(client, {"filter": "S_INTERSECTS(geometry, BBOX(39.5,-10.5,41.5,-7.5))",
                          "filter-crs": EPSG + "4326"}) == [1, 2, 3]
    bad(client, {"filter": "pop >"})
    bad(client, {"filter": "nope = 1"})


def check_features_filter(client) -> None:
    # The filter combines with the other items parameters (AND).
    assert codes(client, {"filter": "pop >= 1000", "bbox": "0,40,20,60",
                          "datetime": "../2020-01-20"}) == [12, 13, 14, 15, 16, 17, 19, 20]
    assert codes(client, {"filter": "S_INTERSECTS(geometry, BBOX(-10.5,39,0,60))",
                          "bbox": "-8.5,39,20,60"}) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert codes(client, {"filter": "road = 'R2'"}, "1") == [3]


def check_cql2_text(client) -> None:
    assert codes(client, {"filter": "name = 'O''Brien'"}) == [6, 16]  # doubled quotes
    assert codes(client, {"filter": "code < 3 AND NOT (pop IS NULL)"}) == [1, 2]


def check_cql2_json(client) -> None:
    expression = {"op": "and", "args": [
        {"op": ">", "args": [{"property": "pop"}, 2000]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [0, 0, 20, 60]}]}]}
    assert codes(client, {"filter": orjson.dumps(expression).decode(),
                          "filter-lang": "cql2-json"}) == [22, 23, 24]
    bad(client, {"filter": "{not json", "filter-lang": "cql2-json"})


def check_basic_cql2(client) -> None:
    cases = {
        "code = 3": [3], "code <> 3 AND code < 4": [1, 2], "code <= 2": [1, 2],
        "code >= 24": [24, 25], "pop IS NULL": [4, 11, 18, 25],
        "code = 1 OR code = 25": [1, 25], "NOT (code > 2)": [1, 2],
        "when > TIMESTAMP('2020-01-24T00:00:00Z')": [24, 25],
        "when < DATE('2020-01-02')": [1],
        "name = '東京'": [4, 14, 24],
    }
    for text, want in cases.items():
        assert codes(client, {"filter": text}) == want, text


def check_advanced_comparison_operators(client) -> None:
    cases = {
        "name LIKE 'Kra%'": [3, 13, 23], "name LIKE 'a_c'": [7, 8, 17, 18],
        "name LIKE 'x.y'": [10, 20], "name NOT LIKE '%o%'": [1, 3, 4, 7, 8, 9, 10, 11, 13, 14,
                                                           17, 18, 19, 20, 21, 23, 24],
        "code BETWEEN 3 AND 5": [3, 4, 5], "code NOT BETWEEN 2 AND 24": [1, 25],
        "code IN (1, 5, 99)": [1, 5], "code NOT IN (1, 2, 3) AND code < 6": [4, 5],
    }
    for text, want in cases.items():
        assert codes(client, {"filter": text}) == want, text


def check_case_insensitive_comparison(client) -> None:
    assert codes(client, {"filter": "CASEI(name) = casei('zürich')"}) == [1, 11, 21]
    assert codes(client, {"filter": "CASEI(name) LIKE CASEI('ab%')"}) == [8, 9, 18, 19]


def check_arithmetic(client) -> None:
    assert codes(client, {"filter": "pop + 100 = 300"}) == [3]
    assert codes(client, {"filter": "ratio * 4 >= 24"}) == [25]
    assert codes(client, {"filter": "code - 1 < 1"}) == [1]
    assert codes(client, {"filter": "pop / 100 = 4"}) == [5]


CHECKS = {
    FEATURES_1 + "core": check_core,
    FEATURES_1 + "oas30": check_oas30,
    FEATURES_1 + "html": check_html,
    FEATURES_1 + "geojson": check_geojson,
    FEATURES_2 + "crs": check_crs,
    FEATURES_3 + "queryables": check_queryables,
    FEATURES_3 + "queryables-query-parameters": check_queryables_query_parameters,
    FEATURES_3 + "filter": check_filter,
    FEATURES_3 + "features-filter": check_features_filter,
    CQL2 + "cql2-text": check_cql2_text,
    CQL2 + "cql2-json": check_cql2_json,
    CQL2 + "basic-cql2": check_basic_cql2,
    CQL2 + "advanced-comparison-operators": check_advanced_comparison_operators,
    CQL2 + "case-insensitive-comparison": check_case_insensitive_comparison,
    CQL2 + "arithmetic": check_arithmetic,
}


def test_every_claimed_class_has_a_check():
    assert set(CHECKS) == set(CONFORMANCE)


def test_claimed_conformance_classes(client, ogc):
    claimed = body(ok(client, "/conformance"))["conformsTo"]
    for uri in claimed:
        CHECKS[uri](client)


def test_spatial_predicates_under_or_are_refused_not_claimed(client, ogc):
    assert CQL2 + "basic-spatial-functions" not in CONFORMANCE
    bad(client, {"filter": "S_INTERSECTS(geometry, BBOX(0,0,1,1)) OR code = 1"})
    bad(client, {"filter": "T_AFTER(when, TIMESTAMP('2020-01-01T00:00:00Z'))"})
