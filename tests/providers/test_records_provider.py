"""The pass-through records provider against a paged API served on 127.0.0.1."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from providers.records.provider import envelope, equalities

RECORDS = [{"id": i, "kind": "odd" if i % 2 else "even", "size": i, "lat": 40 + i / 10,
            "lon": -100 + i} for i in range(1, 26)]


class FakeAPI:
    """The remote API: equality filters, bbox, offset/limit, total; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    def __call__(self, query: dict[str, str]) -> bytes:
        self.calls.append(dict(query))
        rows = RECORDS
        for key, value in query.items():
            if key not in ("offset", "limit", "bbox"):
                rows = [r for r in rows if str(r.get(key)) == value]
        if "bbox" in query:
            xmin, ymin, xmax, ymax = map(float, query["bbox"].split(","))
            rows = [r for r in rows if xmin <= r["lon"] <= xmax and ymin <= r["lat"] <= ymax]
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        return orjson.dumps({"records": rows[offset:offset + limit], "total": len(rows)})


@pytest.fixture
def api(make_dataset, source_server, request):
    fake = FakeAPI()
    path = "/records-" + re.sub(r"\W", "-", request.node.name)  # parametrized names too
    url = source_server.route(path, body=fake)
    make_dataset("records", "api", options={"url": url, "page_size": 10})
    return fake


def query(client, **params: Any) -> dict[str, Any]:
    return orjson.loads(client.get("/records/rest/services/api/FeatureServer/0/query",
                                   params).content)


def sizes(body: dict) -> list[int]:
    return [f["attributes"]["size"] for f in body["features"]]


@pytest.mark.django_db
def test_equality_where_goes_to_the_source(client, api):
    body = query(client, where="kind = 'odd' AND size = 3", outFields="*")
    assert sizes(body) == [3]
    assert api.calls[0]["kind"] == "odd" and api.calls[0]["size"] == "3"


@pytest.mark.django_db
def test_other_where_is_applied_by_the_engine(client, api):
    body = query(client, where="size > 20", outFields="size")
    assert sizes(body) == [21, 22, 23, 24, 25]
    assert all("size" not in call for call in api.calls)
    assert len(api.calls) == 3  # 25 records in pages of 10, read unfiltered


@pytest.mark.django_db
def test_envelope_and_paging_go_to_the_source(client, api):
    body = query(client, geometry="-96.5,40,-90.5,45", resultOffset="1",
                 resultRecordCount="2", outFields="size", where="1=1")
    assert sizes(body) == [5, 6]
    assert body["exceededTransferLimit"] is True
    call = api.calls[-1]
    assert (call["bbox"], call["offset"], call["limit"]) == ("-96.5,40.0,-90.5,45.0", "1", "2")


@pytest.mark.django_db
def test_count_comes_from_the_source(client, api):
    assert query(client, where="kind = 'even'", returnCountOnly="true") == {"count": 12}
    assert api.calls[-1]["limit"] == "0"


@pytest.mark.django_db
def test_object_ids_are_the_record_ids(client, api):
    body = query(client, objectIds="7,9", outFields="kind")
    assert [f["attributes"]["id"] for f in body["features"]] == [7, 9]


@pytest.mark.django_db
def test_source_failures(client, make_dataset, source_server):
    url = source_server.route("/records-broken", body=b'{"records": "nope"}')
    make_dataset("records", "broken", options={"url": url})
    body = orjson.loads(client.get(
        "/records/rest/services/broken/FeatureServer/0/query").content)
    assert body["error"]["code"] == 502


@pytest.mark.parametrize(("where", "pushed"), [
    ("", {}), ("1=1", {}), ("a = 'x'", {"a": "x"}), ("(a = 1) AND b = 'y'", {"a": "1", "b": "y"}),
    ("a > 1", None), ("a = 1 OR b = 2", None), ("a = b", None), ("t.a = 1", None),
])
def test_equalities(where, pushed):
    assert equalities(where) == pushed


@pytest.mark.parametrize(("params", "box"), [
    ({"geometry": "1,2,3,4"}, "1.0,2.0,3.0,4.0"),
    ({"geometry": '{"xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4}'}, "1.0,2.0,3.0,4.0"),
    ({"geometry": "1,2,3,4", "inSR": "3857"}, None),
    ({"geometry": "1,2,3,4", "spatialRel": "esriSpatialRelWithin"}, None),
    ({"geometry": '{"x": 1, "y": 2}'}, None),
    ({}, None),
])
def test_envelope(params, box):
    assert envelope(params) == box


@pytest.mark.django_db
@pytest.mark.parametrize("params", [
    {"resultOffset": "x"}, {"resultRecordCount": "²"}, {"resultOffset": "9" * 5000},
    {"resultRecordCount": "-1"},
    {"geometry": "-inf,-inf,inf,inf"}, {"geometry": '{"xmin": 1e400, "ymin": 0, "xmax": 1, '
                                                     '"ymax": 1}'},
])
def test_bad_paging_and_geometry_are_a_400_not_a_source_failure(client, api, params):
    body = query(client, where="kind = 'odd'", **params)
    assert body["error"]["code"] == 400, body
