"""The "atlas" dataset: points, lines and polygons (with a hole) in three layers, and a table."""

from __future__ import annotations

import io
from typing import Any

import pytest
from lxml import etree
from PIL import Image

from tests.conftest import collection, feature, point

BASE = "/geojson/atlas/WMSServer"
OGC = "{http://www.opengis.net/ogc}"
WMS = "{http://www.opengis.net/wms}"

# Where things are (lon, lat): each test computes their pixels from the map's box and size.
SPOT_A, SPOT_B, SPOT_C = (10.0, 20.0), (-30.0, -10.0), (100.0, 60.0)
ROAD_Y = 40.0  # a road along this parallel, from -60 to 60
PARK = (-20.0, -60.0, 20.0, -20.0)  # a square park ...
POND = (-5.0, -45.0, 5.0, -35.0)  # ... with a pond (a hole)


def _ring(xmin: float, ymin: float, xmax: float, ymax: float) -> list[list[float]]:
    return [[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax], [xmin, ymin]]


def atlas() -> dict[str, Any]:
    spots = collection([
        feature({"name": "a", "kind": "red", "value": 5, "when": "2024-03-01T00:00:00Z"},
                point(*SPOT_A)),
        feature({"name": "b", "kind": "blue", "value": 50, "when": "2024-06-01T00:00:00Z"},
                point(*SPOT_B)),
        feature({"name": "Zürich ü", "kind": "green", "value": None,
                 "when": "2025-01-01T00:00:00Z"}, point(*SPOT_C)),
    ], metadata={"id": 0, "name": "Spots", "description": "Places to see",
                 "timeInfo": {"startTimeField": "when"}})
    roads = collection([
        feature({"name": "main road", "lanes": 2},
                {"type": "LineString", "coordinates": [[-60, ROAD_Y], [60, ROAD_Y]]}),
    ], metadata={"id": 1, "name": "Roads"})
    parks = collection([
        feature({"name": "central park"},
                {"type": "Polygon", "coordinates": [_ring(*PARK), _ring(*POND)[::-1]]}),
    ], metadata={"id": 2, "name": "Parks"})
    notes = collection([feature({"text": "no map for me"})], metadata={"id": 5, "name": "Notes"})
    return {"layers": [spots, roads, parks], "tables": [notes]}


@pytest.fixture
def dataset(make_dataset):
    return make_dataset("geojson", "atlas", atlas())


def wms(client, **params: Any):
    return client.get(BASE, params)


def image_of(response) -> Image.Image:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("image/"), response.content[:500]
    return Image.open(io.BytesIO(response.content))


def exception_of(response, status: int = 400) -> tuple[str | None, str]:
    """The code and text of a 1.3.0 ServiceExceptionReport answer."""
    assert response.status_code == status, response.content[:500]
    root = etree.fromstring(response.content)
    assert root.tag == f"{OGC}ServiceExceptionReport", response.content
    assert root.get("version") == "1.3.0"
    (exception,) = root.findall(f"{OGC}ServiceException")
    return exception.get("code"), exception.text or ""


def pixel_of(x: float, y: float, bbox: tuple[float, float, float, float], width: int,
             height: int) -> tuple[int, int]:
    """The pixel (column, row) of map point x/y, in a map of ``bbox`` (x/y order)."""
    minx, miny, maxx, maxy = bbox
    return (int((x - minx) / (maxx - minx) * width),
            int((maxy - y) / (maxy - miny) * height))
