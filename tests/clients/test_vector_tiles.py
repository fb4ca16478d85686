"""Browsers draw our vector tiles: MapLibre GL JS the XYZ tiles (through our TileJSON and
style), the ArcGIS Maps SDK for JavaScript the VectorTileServer (a VectorTileLayer with its
default style), both in headless Chromium against a live server on 127.0.0.1."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.browser import ArcGISPage, Chromium, PageServer, ensure_node_modules
from tests.clients.browser import save_screenshot as save
from tests.conftest import collection, feature, point

pytestmark = pytest.mark.slow

MAPLIBRE_DIR = Path(__file__).parent / "maplibre"
CITIES = {"Zurich": (8.54, 47.37), "Nairobi": (36.82, -1.29), "Lagos": (3.38, 6.52)}
ZONE = [[20, -20], [30, -20], [30, -10], [20, -10], [20, -20]]  # a 10-degree square
EMPTY = (-30.0, -30.0)  # open sea: nothing drawn there


@pytest.fixture(scope="module")
def maplibre_page_url() -> Iterator[str]:
    ensure_node_modules(MAPLIBRE_DIR)
    with PageServer(MAPLIBRE_DIR, assets=None) as server:
        yield server.url


@pytest.fixture(scope="module")
def maplibre(chromium: Chromium, maplibre_page_url: str) -> Iterator[ArcGISPage]:
    page = chromium.open(maplibre_page_url)
    try:
        yield page
    finally:
        page.close()
    assert page.record.blocked == [], "the page tried to leave the machine"
    assert page.record.page_errors == [], "uncaught errors in the page"


@pytest.fixture
def africa(transactional_db, make_dataset, live_server) -> str:
    make_dataset("geojson", "africa", {"layers": [
        collection([feature({"name": name}, point(*where)) for name, where in CITIES.items()],
                   metadata={"id": 0, "name": "Cities"}),
        collection([feature({"road": "Trans-African"}, {
            "type": "LineString", "coordinates": [[3.38, 6.52], [36.82, -1.29]]})],
            metadata={"id": 1, "name": "Roads"}),
        collection([feature({"zone": "Z"}, {"type": "Polygon", "coordinates": [ZONE]})],
                   metadata={"id": 2, "name": "Zones"}),
    ]})
    return live_server.url


def test_maplibre_draws_the_xyz_tiles(maplibre, africa):
    probes = [*CITIES.values(), (25.0, -15.0), (20.0, 2.6), EMPTY]
    drawn = maplibre.call("draw", {"style": f"{africa}/geojson/africa/VectorTileServer/style.json",
                                   "center": [18, 10], "zoom": 2, "probes": probes},
                          timeout=90)
    assert "timeout" not in drawn, (drawn, maplibre.record.console_errors,
                                    [r.url for r in maplibre.record.requests])
    print(save(drawn.pop("screenshot"), "vector-tiles-maplibre"))
    assert drawn["errors"] == []
    rendered = drawn["rendered"]  # a line or fill across tiles counts once per tile
    assert rendered["Cities"] == 3 and rendered["Roads"] >= 1 and rendered["Zones"] >= 1
    *cities, zone, road, empty = drawn["probes"]
    assert all(p["inked"] > 0 for p in cities), cities  # a circle on each city
    assert zone["inked"] == 49  # inside the square: filled
    # On the road, half way from Lagos (3.38, 6.52) to Nairobi (36.82, -1.29), on screen.
    assert road["inked"] > 0, road
    assert empty["inked"] == 0 and drawn["ink"] > 1000
    maplibre_requests = [r.url for r in maplibre.record.requests if r.url.endswith(".pbf")]
    assert maplibre_requests and all("/geojson/africa/VectorTileServer/2/" in u
                                     for u in maplibre_requests)


def test_arcgis_js_draws_the_vector_tile_server(arcgis_js, africa):
    url = f"{africa}/geojson/rest/services/africa/VectorTileServer"
    drawn = arcgis_js.call("drawVectorTileLayer", {"url": url, "screenshot": True}, timeout=90)
    assert "error" not in drawn, drawn
    print(save(drawn.pop("screenshot"), "vector-tiles-arcgis-js"))
    layer = drawn["layer"]
    assert layer["loaded"] and layer["lods"] == 23
    assert layer["spatialReference"]["wkid"] in (102100, 3857)
    assert {(x["sourceLayer"], x["type"]) for x in layer["styleLayers"]} == {
        ("Cities", "circle"), ("Roads", "line"), ("Zones", "fill"), ("Zones", "line")}
    # Drawn: the square alone covers ~1.5% of the 800 x 600 view at the data's extent.
    assert drawn["view"]["inkPixels"] > 2000, drawn["view"]
    tiles = [r for r in arcgis_js.requests_to(url + "/tile/")]
    assert tiles and all(r.url.endswith(".pbf") for r in tiles)
    assert arcgis_js.record.console_errors == [] or all(
        "favicon" in e for e in arcgis_js.record.console_errors)


def test_the_road_probe_is_on_the_line() -> None:
    """The MapLibre test's road probe lies on the Lagos-Nairobi line (in Web Mercator)."""
    def y(lat: float) -> float:
        return math.log(math.tan((90 + lat) * math.pi / 360))

    t = (20.0 - 3.38) / (36.82 - 3.38)
    lat = math.degrees(2 * math.atan(math.exp(y(6.52) + t * (y(-1.29) - y(6.52)))) - math.pi / 2)
    assert lat == pytest.approx(2.6, abs=0.15)
