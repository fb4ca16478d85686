"""Esri Leaflet draws every feature of layers larger than maxRecordCount, and queries them.

Leaflet and Esri Leaflet (pinned in ``esri_leaflet/package-lock.json``, served as they ship)
in Debian's chromium against a live server on 127.0.0.1, no basemap; the page comes from
another loopback port and nothing leaves the machine (see ``browser.py``). The answers are
checked against the generated source data (``generated.py``).
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from tests.clients.browser import LEAFLET_DIR
from tests.clients.generated import GeneratedLayer

pytestmark = pytest.mark.slow

PAGE = 500  # the layers' maxRecordCount
# More than a tile query answers at once (tileMaxRecordCount: 8000 points, 4000 shapes), so
# that Esri Leaflet has to page through its cells (fetchAllFeatures).
COUNTS = {"points": 12000, "polygons": 6000}
WHERE = "name = 'gamma' AND value > 50"


def check_geometry(feature: dict, data: GeneratedLayer) -> None:
    """A GeoJSON feature as Esri Leaflet made it, against the source (6 decimals asked)."""
    i = feature["properties"]["rank"]
    geometry = feature["geometry"]
    if data.kind == "points":
        assert geometry["type"] == "Point"
        np.testing.assert_allclose(geometry["coordinates"], data.vertices[i, 0], atol=2e-6)
        return
    assert geometry["type"] == "Polygon"
    (ring,) = geometry["coordinates"]
    got = np.array(ring)
    # The same closed ring, whichever way Esri Leaflet wound it and wherever it starts.
    assert len(got) == len(data.vertices[i]) and (got[0] == got[-1]).all()
    assert sorted(map(tuple, np.round(got[:-1], 6).tolist())) == sorted(
        map(tuple, data.vertices[i, :-1].tolist()))


@pytest.mark.parametrize("kind", ["points", "polygons"])
def test_feature_layer_draws_every_feature(esri_leaflet, serve_generated, kind):
    data, url = serve_generated(kind, COUNTS[kind], PAGE, size=2.0)
    drawn = esri_leaflet.call("drawFeatureLayer", {
        "url": url, "center": [0, 0], "zoom": 1, "fetchAllFeatures": True,
        "width": 1024, "height": 600}, timeout=240)
    picture = esri_leaflet.screenshot(f"esri-leaflet-{kind}")
    print(f"esri-leaflet {kind}: {drawn['count']} features in {drawn['seconds']:.1f} s, "
          f"{drawn['inkPixels']} ink pixels: {picture}")
    assert drawn["errors"] == []
    assert len(data) > PAGE
    # One Leaflet layer per feature, none missing, none twice.
    assert drawn["count"] == len(data)
    assert sorted(f["properties"]["rank"] for f in drawn["features"]) == data.rank.tolist()
    for feature in drawn["features"]:
        assert feature["properties"]["name"] == data.name[feature["properties"]["rank"]]
        check_geometry(feature, data)
    assert drawn["inkPixels"] > 1000

    # It read the cells of the map (tile queries), paging with resultOffset.
    queries = esri_leaflet.requests_to(url + "/query")
    assert queries and all(r.params.get("resultType") == "tile" for r in queries)
    assert {r.params.get("f") for r in queries} <= {"json", "geojson"}
    assert max(int(r.params.get("resultOffset", 0)) for r in queries) > 0


@pytest.mark.parametrize("kind", ["points", "polygons"])
def test_query_where_and_count(esri_leaflet, serve_generated, kind):
    data, url = serve_generated(kind, COUNTS[kind], PAGE, size=2.0)
    chosen = data.where("gamma", 50)
    counted = esri_leaflet.call("query", {"url": url, "where": WHERE, "count": True})
    assert counted == {"count": int(chosen.sum())}
    counted = esri_leaflet.call("query", {"url": url, "where": "1=1", "count": True})
    assert counted == {"count": len(data)}

    listed = chosen & (data.rank < PAGE)  # fits one page
    answer = esri_leaflet.call("query", {"url": url, "where": f"{WHERE} AND rank < {PAGE}",
                                         "orderBy": "rank"}, timeout=120)
    assert "error" not in answer, answer
    assert not answer["exceededTransferLimit"]
    # Esri Leaflet turns an Esri JSON answer into GeoJSON from the last feature to the first.
    features = answer["features"][::-1]
    assert [f["properties"]["rank"] for f in features] == data.rank[listed].tolist()
    for feature in features:
        rank = feature["properties"]["rank"]
        assert feature["properties"]["name"] == "gamma"
        assert feature["properties"]["value"] == data.value[rank]
        check_geometry(feature, data)

    # Past maxRecordCount a query answers one page and says so.
    answer = esri_leaflet.call("query", {"url": url, "where": "1=1", "orderBy": "rank"},
                               timeout=120)
    assert answer["exceededTransferLimit"]
    assert [f["properties"]["rank"] for f in answer["features"][::-1]] == list(range(PAGE))


def test_esri_leaflet_is_the_pinned_one(esri_leaflet):
    lock = orjson.loads((LEAFLET_DIR / "package-lock.json").read_bytes())["packages"]
    assert esri_leaflet.version == (f"{lock['node_modules/leaflet']['version']} / esri-leaflet "
                                    f"{lock['node_modules/esri-leaflet']['version']}")
