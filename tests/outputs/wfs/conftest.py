"""Datasets for the WFS tests: points with dates, nulls and unicode; lines; polygons; a
dataset of several layers and a table; a secured one."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from tests.conftest import body_of, collection, feature, point

NS = {"wfs": "http://www.opengis.net/wfs/2.0", "wfs11": "http://www.opengis.net/wfs",
      "gml": "http://www.opengis.net/gml/3.2", "gml311": "http://www.opengis.net/gml",
      "ows": "http://www.opengis.net/ows/1.1", "ows10": "http://www.opengis.net/ows",
      "fes": "http://www.opengis.net/fes/2.0", "xsd": "http://www.w3.org/2001/XMLSchema",
      "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
NAMES = ["Zürich", "Genève", "Basel", "Bern", "Lugano", "Chur", "Sion", "Thun", "Biel", None,
         "Aarau", "Zug"]


def places() -> dict[str, Any]:
    features = []
    for i, name in enumerate(NAMES):
        props = {"id": i + 1, "name": name, "pop": None if i == 3 else 1000 * (i + 1),
                 "score": None if i == 5 else i * 1.5,
                 "founded": f"20{10 + i:02d}-0{1 + i % 9}-15T12:00:00Z",
                 "note": "a < b & c" if i == 0 else f"n{i}"}
        features.append(feature(props, point(6.0 + i * 0.3, 46.0 + i * 0.1)))
    return collection(features, metadata={"name": "Swiss places", "idField": "id"})


def lines() -> dict[str, Any]:
    return collection([
        feature({"id": 1, "kind": "road"},
                {"type": "LineString", "coordinates": [[7, 46], [7.5, 46.5], [8, 46.2]]}),
        feature({"id": 2, "kind": "rail"},
                {"type": "MultiLineString", "coordinates": [[[8, 47], [8.1, 47.1]],
                                                            [[8.2, 47.2], [8.3, 47.3]]]}),
    ], metadata={"name": "ways", "idField": "id"})


def polygons() -> dict[str, Any]:
    return collection([
        feature({"id": 1, "label": "square with hole"},
                {"type": "Polygon", "coordinates": [
                    [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
                    [[1, 1], [1, 2], [2, 2], [2, 1], [1, 1]]]}),
        feature({"id": 2, "label": "two parts"},
                {"type": "MultiPolygon", "coordinates": [
                    [[[10, 10], [11, 10], [11, 11], [10, 10]]],
                    [[[12, 12], [13, 12], [13, 13], [12, 12]]]]}),
    ], metadata={"name": "areas", "idField": "id"})


@pytest.fixture
def wfs_data(make_dataset):
    make_dataset("geojson", "places", places(), max_record_count=5)
    make_dataset("geojson", "lines", lines())
    make_dataset("geojson", "areas", polygons())
    return "/geojson/places/WFSServer"


def xml(response: Any) -> etree._Element:
    return etree.fromstring(body_of(response))


def exception_code(response: Any) -> str:
    root = xml(response)
    found = root.xpath("//*[local-name()='Exception']")
    assert found, body_of(response)[:500]
    return found[0].get("exceptionCode")
