"""A dataset for OGC API - Features tests: points (dates, nulls, unicode), lines, polygons and
a table without geometry, as layers 0, 1, 2 and 3."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.clients.conftest import server_requests  # noqa: F401 - for the client tests
from tests.conftest import collection, feature, point

ROOT = "/geojson/ogc/OGCFeatureServer"
NAMES = ["Zürich", "São Paulo", "Kraków", "東京", None, "O'Brien", "a_c", "abc", "ABD", "x.y"]


def places() -> list[dict[str, Any]]:
    out = []
    for i in range(25):
        out.append(feature({
            "code": i + 1,
            "name": NAMES[i % len(NAMES)],
            "pop": None if i % 7 == 3 else i * 100,
            "ratio": i / 4,
            "when": f"2020-01-{i + 1:02d}T12:00:00Z",
        }, point(-10 + i, 40 + i / 2), id=i + 1))
    return out


def dataset_document() -> dict[str, Any]:
    return {
        "layers": [
            collection(places(), metadata={
                "id": 0, "name": "Places", "idField": "code",
                "timeInfo": {"startTimeField": "when"}}),
            collection([feature({"road": f"R{i}", "lanes": i % 3},
                                {"type": "LineString",
                                 "coordinates": [[i, 0], [i + 1, 1], [i + 2, 0]]})
                        for i in range(6)], metadata={"id": 1, "name": "Roads"}),
            collection([feature({"zone": f"Z{i}", "area": float(i * i)},
                                {"type": "Polygon", "coordinates": [[
                                    [i * 10, 0], [i * 10 + 5, 0], [i * 10 + 5, 5],
                                    [i * 10, 5], [i * 10, 0]]]})
                        for i in range(4)], metadata={"id": 2, "name": "Zones"}),
        ],
        "tables": [
            collection([feature({"site": "A", "score": 5}), feature({"site": "B", "score": 7}),
                        feature({"site": None, "score": 1})],
                       metadata={"id": 3, "name": "Inspections"}),
        ],
    }


@pytest.fixture
def ogc(make_dataset):
    return make_dataset("geojson", "ogc", dataset_document())


def get(client: Any, path: str, params: dict[str, Any] | None = None, **headers: Any) -> Any:
    return client.get(ROOT + path, params or {}, **headers)


def body(response: Any) -> Any:
    content = b"".join(response.streaming_content) if getattr(response, "streaming", False) \
        else response.content
    return orjson.loads(content)
