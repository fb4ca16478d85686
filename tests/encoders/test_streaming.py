"""Large answers are streamed, and say exactly what the whole answer would have said."""

from __future__ import annotations

import orjson
import pytest

from koop_app.encoders import text
from tests.conftest import collection, feature, point

URL = "/geojson/rest/services/big/FeatureServer/0/query"


@pytest.fixture
def big(make_dataset):
    features = [feature({"n": i, "s": f"row {i}", "d": None if i % 3 else "x"},
                        point(i % 90, i % 45))
                for i in range(300)]
    return make_dataset("geojson", "big", collection(features), max_record_count=120)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.django_db
@pytest.mark.parametrize("params", [
    {"f": "json"}, {"f": "geojson"}, {"f": "json", "resultOffset": "250"},
    {"f": "json", "outFields": "n", "returnGeometry": "false", "orderByFields": "n DESC"},
    {"f": "json", "where": "n < 100", "outSR": "3857"}, {"f": "geojson", "resultOffset": "290"},
    {"f": "json", "callback": "cb"}, {"f": "pjson"}, {"f": "json", "returnCentroid": "true"},
    {"f": "json", "returnDistinctValues": "true", "outFields": "d"},
    {"f": "json", "resultRecordCount": "7", "resultOffset": "3"},
])
def test_streamed_answers_are_the_whole_answers(client, big, monkeypatch, params):
    whole = client.get(URL, params)
    assert not whole.streaming
    monkeypatch.setattr(text, "STREAM_ROWS", 0)
    monkeypatch.setattr(text, "STREAM_BATCH_ROWS", 16)
    streamed = client.get(URL, params)
    assert streamed.streaming == (params["f"] != "pjson")
    assert streamed["Content-Type"] == whole["Content-Type"]
    assert streamed["ETag"] == whole["ETag"]
    got, want = body(streamed), body(whole)
    if params.get("callback"):
        assert got.startswith(b"cb(") and got.endswith(b");")
        got, want = got[3:-2], want[3:-2]
    got_json, want_json = orjson.loads(got), orjson.loads(want)
    if params["f"] == "geojson" and "properties" not in want_json:
        # A streamed GeoJSON answer always says whether more rows exist.
        assert got_json.pop("properties") == {"exceededTransferLimit": False}
    assert got_json == want_json


@pytest.mark.django_db
def test_the_transfer_limit_flag_comes_after_the_features(client, big, monkeypatch):
    monkeypatch.setattr(text, "STREAM_ROWS", 0)
    answer = orjson.loads(body(client.get(URL, {"where": "n >= 0"})))
    assert len(answer["features"]) == 120 and answer["exceededTransferLimit"] is True
    last = orjson.loads(body(client.get(URL, {"where": "n >= 0", "resultOffset": "200"})))
    assert len(last["features"]) == 100 and last["exceededTransferLimit"] is False
    tile = orjson.loads(body(client.get(URL, {"where": "n >= 0",
                                              "returnExceededLimitFeatures": "false"})))
    assert tile["features"] == [] and tile["exceededTransferLimit"] is True


@pytest.mark.django_db
def test_pages_for_people_read_streamed_answers_whole(client, big, monkeypatch):
    monkeypatch.setattr(text, "STREAM_ROWS", 0)
    page = client.get(URL, {"f": "html", "where": "n < 5", "outFields": "*"})
    assert page.status_code == 200 and not page.streaming
    assert page["Content-Type"].startswith("text/html") and b"row 4" in page.content
