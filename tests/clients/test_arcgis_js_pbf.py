"""The ArcGIS Maps SDK for JavaScript draws and queries our layers through ``f=pbf``.

Points, lines and polygons, small (a few hundred) and large (100,000 features each), generated
by the test (``generated.py``) so that every answer is checked against the source data, not
only against the server: the FeatureLayer loads and draws (the LayerView holds the features,
the picture has ink: saved under var/test-screenshots/), and the SDK's own queries (count with
and without a where, features with a where, extent, grouped statistics, the latter also
through the SDK's PBF statistics path) are right in Web Mercator and WGS 84 views.

The request log shows how the SDK drew: every feature read is ``f=pbf`` (the SDK quietly
switches a layer to JSON for good when it cannot parse a PBF answer, so one JSON read means a
broken answer); tile reads carry ``resultType=tile`` and view-mode ``quantizationParameters``
on the SDK's tile; the features the LayerView decoded carry the source attributes and, within
a pixel or two, the source geometry.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import orjson
import pytest
from pyproj import Transformer

from tests.clients.browser import RecordedRequest, save_screenshot
from tests.clients.generated import NAMES, GeneratedLayer
from tests.conftest import body_of

pytestmark = pytest.mark.slow

SIZES = {"small": 300, "large": 100_000}
PAGE = {"small": 100, "large": 2000}  # maxRecordCount: the SDK pages past it
# Features a few pixels across at the zoom the SDK picks to show the whole layer, so that every
# one keeps a drawable shape on the view's grid.
FEATURE_SIZE = {"small": 4.0, "large": 1.0}
WHERE = "name = 'gamma' AND value > 50"
STATISTICS = [{"statisticType": "count", "onStatisticField": "rank", "outStatisticFieldName": "n"},
              {"statisticType": "sum", "onStatisticField": "value",
               "outStatisticFieldName": "total"},
              {"statisticType": "avg", "onStatisticField": "value",
               "outStatisticFieldName": "mean"}]
# A region in the middle of the generated data, for the WGS 84 view of the large layers.
REGION = (-40.0, -20.0, 0.0, 10.0)
TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)


def server_json(client, url: str, **params: Any) -> dict[str, Any]:
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    answer = orjson.loads(body_of(client.get(path, {"f": "json", **params})))
    assert "error" not in answer, answer
    return answer


def feature_reads(requests: list[RecordedRequest]) -> list[dict[str, str]]:
    """The parameters of the requests that read features (not counts, ids or extents)."""
    only = ("returnCountOnly", "returnIdsOnly", "returnExtentOnly")
    return [r.params for r in requests
            if r.path.endswith("/query") and not any(r.params.get(k) == "true" for k in only)]


def check_drawing_requests(reads: list[dict[str, str]], kind: str, count: int,
                           wkid: int) -> str:
    """Every read is PBF; tile reads are quantized on their tile; answers the SDK's mode."""
    assert reads, "the SDK read no features"
    assert {p.get("f") for p in reads} == {"pbf"}, "a drawing read was not f=pbf"
    tiles = [p for p in reads if p.get("resultType") == "tile"]
    if not tiles:  # snapshot: every feature at once, in pages, not quantized
        assert kind == "points", "lines and polygons are drawn by tiles"
        assert all("geometry" not in p and "quantizationParameters" not in p for p in reads)
        pages = sorted({(int(p["resultOffset"]), int(p["resultRecordCount"])) for p in reads})
        assert pages[0][0] == 0
        assert all(b[0] == a[0] + a[1] for a, b in zip(pages, pages[1:], strict=False))
        assert pages[-1][0] + pages[-1][1] >= count, "the pages do not reach the last feature"
        return "snapshot"
    assert len(tiles) == len(reads), "tile and snapshot reads mixed"
    for params in tiles:
        assert params["outSR"] in {str(wkid), "102100"} | ({"4326"} if wkid == 4326 else set())
        quantization = orjson.loads(params["quantizationParameters"])
        assert quantization["mode"] == "view"
        assert quantization["originPosition"] == "upperLeft"
        # The grid is the SDK's tile: its extent, a pixel of it as the cell. The envelope
        # asked is that tile or, when the tile held too many features, a part of it.
        tile = orjson.loads(params["geometry"])
        grid = quantization["extent"]
        pixels = (grid["xmax"] - grid["xmin"]) / quantization["tolerance"]
        assert 256 <= pixels <= 1024 * (1 + 1e-9)
        assert grid["xmin"] <= tile["xmin"] + 1e-6 and grid["ymin"] <= tile["ymin"] + 1e-6
        assert grid["xmax"] >= tile["xmax"] - 1e-6 and grid["ymax"] >= tile["ymax"] - 1e-6
        assert params["spatialRel"] == "esriSpatialRelIntersects"
    return "tiles"


def tolerance_of(reads: list[dict[str, str]]) -> float:
    """The coarsest grid the SDK asked for (0: none, snapshot)."""
    return max((orjson.loads(p["quantizationParameters"])["tolerance"] for p in reads
                if "quantizationParameters" in p), default=0.0)


def in_view(data: GeneratedLayer, wkid: int) -> np.ndarray:
    """The source vertices in the view's reference."""
    if wkid == 4326:
        return data.vertices
    x, y = TO_MERCATOR.transform(data.vertices[..., 0], data.vertices[..., 1])
    return np.stack([x, y], axis=-1)


def check_decoded_features(features: list[dict[str, Any]], data: GeneratedLayer, wkid: int,
                           pixel: float) -> None:
    """Features the LayerView decoded from PBF: the source's attributes exactly, and every
    vertex within a pixel or two of the source's (view mode drops vertices that fall on the
    same pixel, so the bounds are compared for lines and polygons)."""
    assert features
    source = in_view(data, wkid)
    slack = 2 * pixel + (1e-6 if wkid == 4326 else 0.01)
    for feature in features:
        attributes = feature["attributes"]
        i = attributes["rank"]
        assert (attributes["name"], attributes["value"]) == (data.name[i], data.value[i])
        geometry = feature["geometry"]
        if data.kind == "points":
            got = np.array([[geometry["x"], geometry["y"]]])
        else:
            parts = geometry["paths" if data.kind == "lines" else "rings"]
            got = np.array([v for part in parts for v in part])[:, :2]
        want = source[i]
        np.testing.assert_allclose(got.min(axis=0), want.min(axis=0), rtol=0, atol=slack)
        np.testing.assert_allclose(got.max(axis=0), want.max(axis=0), rtol=0, atol=slack)


def check_queries(page, client, url: str, data: GeneratedLayer, wkid: int, page_size: int
                  ) -> None:
    """The SDK's queries on the layer (server round trips) against the source data."""
    chosen = data.where("gamma", 50)
    listed = chosen & (data.rank < page_size)  # one page of features
    out_sr = {"wkid": wkid}
    statistics_spec = {"kind": "features", "query": {
        "where": "value > 50", "outStatistics": STATISTICS,
        "groupByFieldsForStatistics": ["name"], "orderByFields": ["name"]}}
    before = len(page.record.requests)
    answers = page.query_layer(
        {"kind": "count"},
        {"kind": "count", "query": {"where": WHERE}},
        {"kind": "features", "query": {
            "where": f"{WHERE} AND rank < {page_size}", "outFields": ["name", "rank", "value"],
            "orderByFields": ["rank"], "returnGeometry": True, "outSpatialReference": out_sr}},
        {"kind": "extent", "query": {"where": WHERE, "outSpatialReference": out_sr}},
        statistics_spec,
    )
    assert all("error" not in a for a in answers), answers
    every, where_count, listed_features, extent, statistics = answers
    # Features come as PBF; counts, extents and (by default) statistics as JSON.
    asked = [r.params for r in page.record.requests[before:] if r.path.endswith("/query")]
    assert [p["f"] for p in asked if "outStatistics" in p] == ["json"]
    assert {p["f"] for p in asked if "outStatistics" not in p
            and not any(p.get(k) == "true" for k in ("returnCountOnly", "returnIdsOnly"))
            } == {"pbf"}

    assert every["count"] == len(data) == server_json(
        client, url + "/query", where="1=1", returnCountOnly="true")["count"]
    assert where_count["count"] == int(chosen.sum()) == server_json(
        client, url + "/query", where=WHERE, returnCountOnly="true")["count"]

    features = listed_features["features"]
    assert [f["attributes"]["rank"] for f in features] == data.rank[listed].tolist()
    assert not listed_features["exceededTransferLimit"]
    check_decoded_features(features, data, wkid, pixel=0)

    assert extent["count"] == int(chosen.sum())
    xmin, ymin, xmax, ymax = data.extent(chosen)
    if wkid == 3857:
        (xmin, xmax), (ymin, ymax) = TO_MERCATOR.transform([xmin, xmax], [ymin, ymax])
    got = extent["extent"]
    assert got["spatialReference"]["wkid"] in ({wkid, 102100} if wkid == 3857 else {wkid})
    tolerance = 1e-6 if wkid == 4326 else 0.01
    for side, want in zip(("xmin", "ymin", "xmax", "ymax"), (xmin, ymin, xmax, ymax),
                          strict=True):
        assert math.isclose(got[side], want, abs_tol=tolerance), side

    truth = data.statistics(data.where(value_above=50))
    rows = {f["attributes"]["name"]: f["attributes"] for f in statistics["features"]}
    assert set(rows) == set(truth) <= set(NAMES)
    for name, want in truth.items():
        assert rows[name]["n"] == want["count"]
        assert math.isclose(rows[name]["total"], want["sum"], rel_tol=1e-9)
        assert math.isclose(rows[name]["mean"], want["avg"], rel_tol=1e-9)
    server = server_json(client, url + "/query", where="value > 50",
                         outStatistics=orjson.dumps(STATISTICS).decode(),
                         groupByFieldsForStatistics="name")
    assert {f["attributes"]["name"]: f["attributes"] for f in server["features"]} == rows

    # The same statistics through the SDK's PBF path (its feature flag on): the same rows.
    assert page.call("setHas", "featurelayer-pbf-statistics", True) in (False, None)
    before = len(page.record.requests)
    try:
        (again,) = page.query_layer(statistics_spec)
    finally:
        page.call("setHas", "featurelayer-pbf-statistics", False)
    assert "error" not in again, again
    assert [r.params["f"] for r in page.record.requests[before:]] == ["pbf"]
    assert {f["attributes"]["name"]: f["attributes"] for f in again["features"]} == rows


def draw(page, url: str, wkid: int, name: str, **options: Any) -> dict[str, Any]:
    started = len(page.record.requests)
    clock = time.perf_counter()
    drawn = page.draw_layer(url, wkid, timeout=300, keep=True, screenshot=True, **options)
    assert "error" not in drawn, drawn
    picture = save_screenshot(drawn.pop("screenshot"), name)
    print(f"{name}: drawn in {time.perf_counter() - clock:.1f} s, "
          f"{drawn['view']['featureCount']} features, {drawn['view']['inkPixels']} ink pixels: "
          f"{picture}")
    drawn["requests"] = [r for r in page.record.requests[started:] if r.url.startswith(url)]
    return drawn


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("kind", ["points", "lines", "polygons"])
def test_draws_and_queries_through_pbf(arcgis_js, serve_generated, client, kind, size):
    data, url = serve_generated(kind, SIZES[size], PAGE[size], size=FEATURE_SIZE[size])
    assert server_json(client, url)["supportedQueryFormats"].replace(" ", "").split(",") == [
        "JSON", "geoJSON", "PBF"]

    # Web Mercator, the whole layer in view: every feature drawn.
    drawn = draw(arcgis_js, url, 3857, f"arcgis-js-pbf-{kind}-{size}-3857")
    assert drawn["view"]["featureCount"] == len(data)
    assert drawn["view"]["inkPixels"] > 1000
    reads = feature_reads(drawn["requests"])
    mode = check_drawing_requests(reads, kind, len(data), 3857)
    print(f"{kind} {size}: the SDK drew by {mode}, {len(reads)} reads")
    # Points below the SDK's smaller snapshot threshold are read all at once; above its larger
    # one, by tiles (in between it depends on the device).
    if kind == "points":
        smaller, larger = (arcgis_js.call("hasValue",
                                          f"featurelayer-snapshot-point-{end}-threshold")
                           for end in ("min", "max"))
        if len(data) <= smaller:
            assert mode == "snapshot"
        elif len(data) > larger:
            assert mode == "tiles"
    sample = {"kind": "features", "on": "view", "query": {
        "where": f"rank < {min(len(data), 200)}", "outFields": ["*"], "returnGeometry": True}}
    (decoded,) = arcgis_js.query_layer(sample)
    assert "error" not in decoded, decoded
    assert len(decoded["features"]) == min(len(data), 200)
    check_decoded_features(decoded["features"], data, 3857, tolerance_of(reads))
    check_queries(arcgis_js, client, url, data, 3857, PAGE[size])

    # WGS 84: the whole small layer; a region of the large one.
    region = {}
    if size == "large":
        region = {"extent": dict(zip(("xmin", "ymin", "xmax", "ymax"), REGION, strict=True),
                                 spatialReference={"wkid": 4326})}
    # Large points are drawn by tiles here (the SDK's snapshot mode off), so that the
    # quantized point tiles are decoded too, not only snapshot pages.
    tiles_forced = kind == "points" and size == "large"
    if tiles_forced:
        snapshots = arcgis_js.call("setHas", "featurelayer-snapshot-enabled", False)
    try:
        drawn = draw(arcgis_js, url, 4326, f"arcgis-js-pbf-{kind}-{size}-4326", **region)
    finally:
        if tiles_forced:
            arcgis_js.call("setHas", "featurelayer-snapshot-enabled", snapshots)
    assert drawn["view"]["spatialReference"]["wkid"] == 4326
    assert drawn["view"]["inkPixels"] > 1000
    view = drawn["view"]["extent"]
    wholly = data.within((view["xmin"], view["ymin"], view["xmax"], view["ymax"]))
    if size == "small":
        assert drawn["view"]["featureCount"] == len(data)
    else:  # at least every feature wholly in view, at most those meeting the tiles read
        assert wholly.sum() <= drawn["view"]["featureCount"] <= len(data)
    reads = feature_reads(drawn["requests"])
    mode = check_drawing_requests(reads, kind, len(data), 4326)
    assert mode == "tiles" or not tiles_forced
    shown = data.rank[wholly][:200].tolist()
    (decoded,) = arcgis_js.query_layer({"kind": "features", "on": "view", "query": {
        "where": f"rank IN ({','.join(map(str, shown))})",
        "outFields": ["*"], "returnGeometry": True}})
    assert "error" not in decoded, decoded
    assert sorted(f["attributes"]["rank"] for f in decoded["features"]) == sorted(shown)
    check_decoded_features(decoded["features"], data, 4326, tolerance_of(reads))
    check_queries(arcgis_js, client, url, data, 4326, PAGE[size])
