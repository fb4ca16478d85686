"""The ArcGIS Maps SDK for JavaScript, in headless Chromium, loads and draws our layers.

The SDK (``@arcgis/core``, pinned in ``arcgis_js/package-lock.json``) runs in Debian's chromium
against a live server on 127.0.0.1; the page comes from another loopback port, so CORS is
exercised. Nothing leaves the machine (see ``browser.py``).
"""

from __future__ import annotations

import math

import orjson
import pytest

from tests.clients.browser import PAGE_DIR
from tests.conftest import collection, feature, point

pytestmark = pytest.mark.slow

POINTS = 240
POLYGONS = 36
PAGE = 50  # the layers' maxRecordCount: the SDK must page (it asks 4 pages at once) to draw all
NAMES = ("alpha", "beta", "gamma", "delta")
# How the SDK names the field types of a layer's JSON.
SDK_FIELD_TYPES = {"esriFieldTypeOID": "oid", "esriFieldTypeString": "string",
                   "esriFieldTypeInteger": "integer", "esriFieldTypeSmallInteger": "small-integer",
                   "esriFieldTypeDouble": "double", "esriFieldTypeDate": "date"}


def points_document() -> dict:
    features = []
    for i in range(POINTS):
        # spread over the world but inside Web Mercator's latitudes
        x = -170 + (i * 37) % 340 + 0.5
        y = -70 + (i * 53) % 140 + 0.25
        features.append(feature({"name": NAMES[i % 4], "rank": i, "score": i / 8},
                                point(x, y)))
    return collection(features)


def square(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def polygons_document() -> dict:
    features = []
    for i in range(POLYGONS):
        x, y = -160 + (i % 9) * 35, -60 + (i // 9) * 30
        rings = [square(x, y, 20)]
        if i % 3 == 0:  # a hole, wound the other way
            rings.append(list(reversed(square(x + 5, y + 5, 5))))
        features.append(feature({"name": NAMES[i % 4], "rank": i, "area_ha": 1000.0 + i},
                                {"type": "Polygon", "coordinates": rings}))
    return collection(features)


@pytest.fixture
def layers(transactional_db, make_dataset, live_server) -> dict[str, str]:
    make_dataset("geojson", "dots", points_document(), max_record_count=PAGE)
    make_dataset("geojson", "plots", polygons_document(), max_record_count=PAGE)
    base = f"{live_server.url}/geojson/rest/services"
    return {"points": f"{base}/dots/FeatureServer/0", "polygons": f"{base}/plots/FeatureServer/0"}


def server_json(client, url: str, **params: str) -> dict:
    path = url.split("//", 1)[1].split("/", 1)[1]
    return orjson.loads(client.get("/" + path, {"f": "json", **params}).content)


@pytest.mark.parametrize("wkid", [4326, 3857])
@pytest.mark.parametrize("kind", ["points", "polygons"])
def test_draws_every_feature_and_queries_attributes(arcgis_js, layers, client, kind, wkid,
                                                    server_requests):
    url = layers[kind]
    count = server_json(client, url + "/query", where="1=1", returnCountOnly="true")["count"]
    drawn = arcgis_js.draw_layer(url, wkid, layerQuery={
        "where": "name = 'gamma' AND rank < 20", "outFields": ["name", "rank"],
        "orderByFields": ["rank"], "returnGeometry": True})
    assert "error" not in drawn, drawn

    assert drawn["view"]["spatialReference"]["wkid"] in ({wkid} | ({102100} if wkid == 3857
                                                                   else set()))
    assert drawn["view"]["featureCount"] == count == (POINTS if kind == "points" else POLYGONS)
    assert drawn["view"]["inkPixels"] > 2000  # the features are on the picture, not only counted
    queried = drawn["layerQuery"]["features"]
    assert [f["attributes"]["rank"] for f in queried] == [2, 6, 10, 14, 18]
    assert {f["attributes"]["name"] for f in queried} == {"gamma"}
    assert all(f["geometry"] for f in queried)

    # The layer's definition comes from our layer JSON.
    info = server_json(client, url)
    layer = drawn["layer"]
    assert layer["geometryType"] == {"points": "point", "polygons": "polygon"}[kind]
    assert layer["objectIdField"] == info["objectIdField"]
    assert [(f["name"], f["type"]) for f in layer["fields"]] == [
        (f["name"], SDK_FIELD_TYPES[f["type"]]) for f in info["fields"]]
    for side in ("xmin", "ymin", "xmax", "ymax"):
        assert math.isclose(layer["extent"][side], info["extent"][side], abs_tol=1e-6)

    # How the SDK read the features: all points at once (snapshot), paging past
    # maxRecordCount; polygons by tiles of the view (on demand, generalized), in PBF as our
    # layer JSON advertises (test_arcgis_js_pbf.py checks what it decoded).
    queries = arcgis_js.requests_to(url + "/query")
    reads = [r.params for r in queries  # for drawing: not the count, not our layerQuery
             if r.params.get("returnCountOnly") != "true" and r.params.get("where") == "1=1"]
    assert reads and all(p["f"] == "pbf" for p in reads)
    if kind == "points":
        offsets = sorted(int(p["resultOffset"]) for p in reads)  # it may ask ahead of the end
        assert offsets == list(range(0, offsets[-1] + 1, 4 * PAGE))
        assert offsets[1] == 4 * PAGE < POINTS, "the SDK did not page past maxRecordCount"
    else:
        assert all(p["resultType"] == "tile" and "geometry" in p for p in reads)
        assert all(orjson.loads(p["quantizationParameters"])["mode"] == "view" for p in reads)
    seen_by_server = {(r.path, r.query) for r in server_requests}
    for request in arcgis_js.requests_to(url):  # the page's record misses nothing
        assert (request.path, request.url.partition("?")[2]) in seen_by_server or \
            request.method == "POST"


def test_requests_off_the_machine_are_blocked_before_leaving(arcgis_js):
    # The name is never resolved (chromium maps every name but loopback to NOTFOUND) and the
    # interceptor aborts the request inside the browser: nothing is sent.
    answer = arcgis_js.call("request", "http://tiles.example.invalid/arcgis/rest/info")
    assert answer["error"]["name"] == "request:server"
    assert arcgis_js.record.blocked == ["http://tiles.example.invalid/arcgis/rest/info?f=json"]
    arcgis_js.record.blocked.clear()  # seen here; any other would fail the test at teardown


def test_the_sdk_is_the_pinned_one(arcgis_js):
    lock = orjson.loads((PAGE_DIR / "package-lock.json").read_bytes())
    pinned = lock["packages"]["node_modules/@arcgis/core"]["version"]
    assert arcgis_js.version == ".".join(pinned.split(".")[:2])
