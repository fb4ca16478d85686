"""Exports at size, their cap, errors as problem JSON, access rules, HTTP caching, pass-through."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import orjson
import pytest
from django.http import StreamingHttpResponse

from koop_app import query as query_module
from koop_app.models import Dataset
from koop_app.outputs.flat import export as flat_export
from tests.auth.conftest import alice, bob, secured, token  # noqa: F401 - fixtures
from tests.conftest import body_of, collection, feature, point
from tests.outputs.flat.test_flat import (
    expected_records,
    export,
    featureserver,
    json_records,
    points_document,
)
from tests.providers.test_records_provider import RECORDS, FakeAPI

BIG = 50_000


@pytest.fixture
def stations(make_dataset):
    return make_dataset("geojson", "stations", points_document())


@pytest.fixture
def big(make_dataset):
    features = [feature({"n": i, "label": f"row {i}"}, point(-120 + (i % 500) / 10, 30 + i / 5000))
                for i in range(BIG)]
    return make_dataset("geojson", "big", collection(features))


@pytest.fixture
def engine_calls(monkeypatch) -> list[int | None]:
    """The page size of each statement the engine runs for a query (None: a count)."""
    calls: list[int | None] = []
    run = query_module.run

    def counting(parsed, table, limits):
        calls.append(None if parsed.count_only else limits.max_record_count)
        return run(parsed, table, limits)

    monkeypatch.setattr(query_module, "run", counting)
    return calls


@pytest.mark.django_db
def test_a_big_export_is_streamed_in_chunks(client, big, monkeypatch, engine_calls):
    monkeypatch.setattr(flat_export, "POINT_CHUNK_ROWS", 7_000)
    response = export(client, {"outFields": "n,label"}, "csv", dataset="big")
    assert isinstance(response, StreamingHttpResponse)
    # answered once the count and the first chunk are known; the rest is read as sent
    assert engine_calls == [None, 7_000]
    pieces = list(response.streaming_content)
    assert len(pieces) > 8
    assert engine_calls[2:] == [7_000] * 6 + [BIG - 7 * 7_000]
    rows = list(csv.reader(io.StringIO(b"".join(pieces).decode(), newline="")))
    assert rows[0] == ["OBJECTID", "n", "label", "x", "y"]
    assert [int(row[1]) for row in rows[1:]] == list(range(BIG))  # every row once, in order
    assert rows[-1][2:] == [f"row {BIG - 1}", str(-120 + 499 / 10), str(30 + (BIG - 1) / 5000)]
    # the FeatureServer pages at maxRecordCount; the export does not
    page = featureserver(client, {"where": "n >= 1000"}, dataset="big")
    assert len(page["features"]) == 2000 and page["exceededTransferLimit"] is True


@pytest.mark.django_db
def test_a_big_export_keeps_the_query_order_across_chunks(client, big, monkeypatch):
    monkeypatch.setattr(flat_export, "POINT_CHUNK_ROWS", 9_000)
    body = body_of(export(client, {"where": "n >= 1000", "orderByFields": "n DESC",
                                   "outFields": "n", "geometryFormat": "none"},
                          "ndjson", dataset="big"))
    numbers = [orjson.loads(line)["n"] for line in body.splitlines()]
    assert numbers == list(range(BIG - 1, 999, -1))
    first = featureserver(client, {"where": "n >= 1000", "orderByFields": "n DESC",
                                   "outFields": "n", "returnGeometry": "false"}, dataset="big")
    assert [f["attributes"]["n"] for f in first["features"]] == numbers[:2000]


@pytest.mark.django_db
def test_the_cap_refuses_upfront(client, stations, settings):
    settings.KOOP = {**settings.KOOP, "EXPORT_MAX_ROWS": 5}
    refused = export(client, {}, "csv")
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["status"], problem["rows"], problem["limit"]) == (400, 10, 5)
    assert "at most 5" in problem["detail"] and "resultOffset" in problem["details"][0]
    assert len(json_records(client, {"where": "n < 5"})) == 5
    assert len(json_records(client, {"resultRecordCount": "5"})) == 5
    assert [r["n"] for r in json_records(client, {"resultOffset": "6"})] == [6, 7, 8, 9]
    assert export(client, {"resultRecordCount": "8"}, "json").json()["rows"] == 8
    statistics = {"outStatistics": '[{"statisticType": "count", "onStatisticField": "n", '
                                   '"outStatisticFieldName": "c"}]',
                  "groupByFieldsForStatistics": "n"}
    assert export(client, statistics, "json").status_code == 400  # 10 groups


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "parameter"), [
    ({"where": "nope = 1"}, "where"),
    ({"where": "n >"}, "where"),
    ({"outFields": "nope"}, "outFields"),
    ({"geometry": "garbage"}, "geometry"),
    ({"orderByFields": "nope DESC"}, "orderByFields"),
    ({"resultOffset": "-1"}, "resultOffset"),
    ({"resultRecordCount": "0"}, "resultRecordCount"),
    ({"outSR": "999999"}, "outSR"),
    ({"time": "later"}, "time"),
])
def test_bad_parameters_are_problem_json(client, stations, params, parameter):
    for ext in ("csv", "json", "ndjson"):
        response = export(client, params, ext)
        assert response.status_code == 400, (ext, response.content)
        assert response["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 400 and problem["title"] == "Bad Request"
        assert problem["parameter"] == parameter, problem


@pytest.mark.django_db
def test_unknown_dataset_layer_and_method(client, stations):
    missing = client.get("/geojson/nowhere/export/0.csv")
    assert missing.status_code == 404 and missing.json()["title"] == "Not Found"
    assert missing["Content-Type"] == "application/problem+json"
    layer = client.get("/geojson/stations/export/3.json")
    assert layer.status_code == 404 and layer.json()["detail"] == "Layer not found."
    put = client.put("/geojson/stations/export/0.csv")
    assert put.status_code == 405 and put["Allow"] == "GET, HEAD, POST"
    posted = client.post("/geojson/stations/export/0.json", {"where": "n = 3"})
    assert [r["n"] for r in orjson.loads(body_of(posted))] == [3]


@pytest.mark.django_db
def test_a_secured_dataset_refuses_anonymous_callers(client, secured, alice, bob):  # noqa: F811
    dataset = secured(Dataset.RESTRICTED)
    dataset.allowed_users.add(alice)
    url = "/geojson/vault/export/0.csv"
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Bearer"
    assert anonymous["Content-Type"] == "application/problem+json"
    assert anonymous.json()["status"] == 401
    assert client.get(url, {"token": "forged"}).status_code == 401
    refused = client.get(url, {"token": token(client, username="bob")})
    assert refused.status_code == 403 and refused.json()["title"] == "Forbidden"
    allowed = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token(client)}")
    assert allowed.status_code == 200
    assert body_of(allowed).decode().splitlines()[0] == "OBJECTID,code,size,x,y"
    assert "private" in allowed["Cache-Control"] and "Authorization" in allowed["Vary"]


@pytest.mark.django_db
def test_http_caching(client, stations):
    first = export(client, {"where": "n > 2"}, "csv")
    etag = first["ETag"]
    assert first["Cache-Control"] == "public, max-age=0, must-revalidate"
    again = export(client, {"where": "n > 2"}, "csv", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    assert export(client, {"where": "n > 2"}, "json")["ETag"] != etag  # another format
    assert export(client, {"where": "n > 3"}, "csv")["ETag"] != etag
    with_bom = export(client, {"where": "n > 2", "bom": "true"}, "csv", HTTP_IF_NONE_MATCH=etag)
    assert with_bom.status_code == 200


@pytest.fixture
def records_api(make_dataset, source_server, request):
    fake = FakeAPI()
    url = source_server.route("/records-" + re.sub(r"\W", "-", request.node.name), body=fake)
    make_dataset("records", "api", options={"url": url, "page_size": 10})
    return fake


def records_query(client, params: dict[str, str]) -> dict[str, Any]:
    body = orjson.loads(client.get("/records/rest/services/api/FeatureServer/0/query",
                                   {**params, "f": "json"}).content)
    assert "error" not in body, body
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("params", [
    {},
    {"where": "kind = 'odd'"},
    {"where": "size > 20"},
    {"geometry": "-96.5,40,-90.5,45", "orderByFields": "size DESC"},
])
def test_pass_through_provider(client, records_api, params):
    expected = expected_records(records_query(client, params), params)
    records_api.calls.clear()
    response = client.get("/records/api/export/0.json", params)
    assert response.status_code == 200, response.content
    assert "ETag" not in response and response["Cache-Control"] == "no-store"
    records = orjson.loads(body_of(response))
    assert records == expected
    assert len(records) == len([r for r in RECORDS if _matches(r, params)])
    if params.get("where", "").startswith("kind"):
        # paged at the source: the export asked for its rows page after page
        assert [c["offset"] for c in records_api.calls if c.get("limit") != "0"] == [
            "0", "10"]


def _matches(record: dict[str, Any], params: dict[str, str]) -> bool:
    where = params.get("where", "")
    if where == "kind = 'odd'":
        return record["kind"] == "odd"
    if where == "size > 20":
        return record["size"] > 20
    if "geometry" in params:
        return -96.5 <= record["lon"] <= -90.5 and 40 <= record["lat"] <= 45
    return True


@pytest.mark.django_db
def test_listed_as_offers(client, stations):
    info = client.get("/rest/info", {"f": "json"}).json()
    assert {"name": "flat", "offers": ["CSV", "JSON records", "NDJSON records"]} in \
        info["outputs"]
    services = client.get("/rest/services/geojson", {"f": "json"}).json()["services"]
    offers = next(s["offers"] for s in services if s["name"] == "geojson/stations")
    assert offers["CSV"] == "http://testserver/geojson/stations/export/0.csv"
    assert offers["JSON records"] == "http://testserver/geojson/stations/export/0.json"
    assert client.get(offers["CSV"]).status_code == 200


@pytest.mark.django_db
@pytest.mark.expected_server_error(502)
def test_a_source_failing_mid_export_breaks_the_transfer(client, make_dataset, source_server):
    from koop_app.outputs.flat.views import ExportInterruptedError

    api = FakeAPI()

    def failing(query: dict[str, str]) -> bytes:
        return b"not json" if query.get("offset") == "10" else api(query)

    url = source_server.route("/records-failing-mid-export", body=failing)
    make_dataset("records", "api", options={"url": url, "page_size": 10})
    response = client.get("/records/api/export/0.csv", {"where": "kind = 'odd'"})
    assert response.status_code == 200  # the first chunk was read before answering
    pieces = iter(response.streaming_content)
    assert next(pieces) == b"id,kind,size,lat,lon,x,y\r\n"
    with pytest.raises(ExportInterruptedError):
        list(pieces)  # no last chunk: the client sees a broken download, not a short file
    failed = client.get("/records/api/export/0.csv", {"where": "kind = 'odd'",
                                                      "resultOffset": "10"})
    assert failed.status_code == 502  # failing before the first byte: a problem answer
    assert failed.json()["status"] == 502
