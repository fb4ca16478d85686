"""GetFeatureInfo: the features at a pixel, in each INFO_FORMAT."""

from __future__ import annotations

import orjson
import pytest
from lxml import etree

from tests.outputs.wms.conftest import SPOT_A, SPOT_B, pixel_of, wms

pytestmark = pytest.mark.django_db
WORLD = (-180, -90, 180, 90)


def info(client, at, *, version="1.3.0", **params):
    i, j = pixel_of(*at, WORLD, 720, 360)
    where = {"I": i, "J": j} if version == "1.3.0" else {"X": i, "Y": j}
    box = "-90,-180,90,180" if version == "1.3.0" else "-180,-90,180,90"
    crs = {"CRS": "EPSG:4326"} if version == "1.3.0" else {"SRS": "EPSG:4326"}
    base = {"SERVICE": "WMS", "VERSION": version, "REQUEST": "GetFeatureInfo",
            "LAYERS": "atlas", "STYLES": "", "QUERY_LAYERS": "atlas", "BBOX": box,
            "WIDTH": 720, "HEIGHT": 360, "INFO_FORMAT": "application/json", **crs, **where}
    return wms(client, **{**base, **params})


def test_json_finds_the_feature_at_the_pixel(client, dataset):
    response = info(client, SPOT_A)
    assert response.status_code == 200, response.content
    body = orjson.loads(response.content)
    (found,) = body["features"]
    assert found["properties"]["name"] == "a" and found["properties"]["value"] == 5
    assert found["geometry"] == {"type": "Point", "coordinates": [10.0, 20.0]}
    assert found["layer"] == {"id": 0, "name": "Spots"}
    # Inside the park, not in its pond; and nothing in the empty sea.
    assert [f["properties"]["name"] for f in orjson.loads(
        info(client, (-15, -40)).content)["features"]] == ["central park"]
    assert orjson.loads(info(client, (0, -40)).content)["features"] == []
    # WMS 1.1.1: X/Y.
    old = orjson.loads(info(client, SPOT_B, version="1.1.1", QUERY_LAYERS="0").content)
    assert [f["properties"]["name"] for f in old["features"]] == ["b"]


def test_text_html_and_xml(client, dataset):
    text = info(client, SPOT_A, INFO_FORMAT="text/plain")
    assert text["Content-Type"].startswith("text/plain")
    body = text.content.decode()
    assert "Layer '0' (Spots): 1 feature" in body and "name = a" in body
    assert "when = 2024-03-01T00:00:00Z" in body
    html = info(client, (100, 60), INFO_FORMAT="text/html").content.decode()
    assert "<td>Zürich ü</td>" in html and "<caption>Spots</caption>" in html
    xml = etree.fromstring(info(client, SPOT_A, INFO_FORMAT="text/xml").content)
    values = {f.findtext("FieldName"): f.findtext("FieldValue")
              for f in xml.iter("Field")}
    assert values["name"] == "a" and values["kind"] == "red"


def test_feature_count(client, dataset):
    # A map so small that spots A and B are in one pixel's reach.
    params = {"BBOX": "-90,-180,90,180", "WIDTH": 4, "HEIGHT": 2, "I": 1, "J": 0,
              "QUERY_LAYERS": "0"}
    one = orjson.loads(info(client, SPOT_A, **params).content)["features"]
    two = orjson.loads(info(client, SPOT_A, FEATURE_COUNT=5, **params).content)["features"]
    assert len(one) == 1 and len(two) >= 2
