"""The marklogic provider through the FeatureServer routes: what goes to MarkLogic, errors."""

from __future__ import annotations

import logging
import socket
from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError

from tests.providers.marklogic.conftest import PASSWORD, ROWS_OPTIONS, SEARCH_OPTIONS, WELLS
from tests.providers.marklogic.server import View

ROWS = "/marklogic/rest/services/ml/main.wells/FeatureServer"
SEARCH = "/marklogic/rest/services/ml/wells/FeatureServer"


def get(client, path: str, **params: Any) -> dict[str, Any]:
    return orjson.loads(client.get(path, {"f": "json", **params}).content)


def plans(fake) -> list[dict[str, Any]]:
    return [c["body"]["$optic"]["args"] for c in fake.calls if c["path"] == "/v1/rows"]


def operators(plan: list[dict[str, Any]]) -> list[str]:
    return [step["fn"] for step in plan]


def searches(fake) -> list[dict[str, Any]]:
    return [c for c in fake.calls if c["path"] == "/v1/search"]


@pytest.mark.django_db
def test_rows_where_paging_and_order_go_to_one_optic_plan(client, layers, fake):
    body = get(client, f"{ROWS}/0/query", where="state = 'co' AND depth > 100",
               orderByFields="depth DESC", resultOffset="2", resultRecordCount="3",
               outFields="id,depth")
    expected = sorted((w for w in WELLS if (w["state"] or "").lower() == "co"
                       and (w["depth"] or 0) > 100), key=lambda w: -w["depth"])[2:5]
    assert [f["attributes"]["id"] for f in body["features"]] == [w["id"] for w in expected]
    assert body["exceededTransferLimit"] is True
    plan = plans(fake)[-1]
    assert operators(plan) == ["from-view", "where", "order-by", "offset-limit"]
    assert plan[3]["args"] == [2, 4]  # one row more: is there a next page?
    assert plan[1]["args"][0]["fn"] == "and"


@pytest.mark.django_db
def test_rows_count_extent_and_statistics_are_computed_by_marklogic(client, layers, fake):
    assert get(client, f"{ROWS}/0/query", where="wells > 5", returnCountOnly="true") == {
        "count": sum(1 for w in WELLS if w["wells"] > 5)}
    assert operators(plans(fake)[-1])[-1] == "group-by"
    extent = get(client, f"{ROWS}/0/query", returnExtentOnly="true")["extent"]
    assert extent["xmin"] == min(w["lon"] for w in WELLS)
    assert extent["ymax"] == max(w["lat"] for w in WELLS)
    stats = orjson.dumps([{"statisticType": "count", "onStatisticField": "id",
                           "outStatisticFieldName": "n"}]).decode()
    body = get(client, f"{ROWS}/0/query", outStatistics=stats,
               groupByFieldsForStatistics="state")
    assert operators(plans(fake)[-1]) == ["from-view", "group-by", "order-by"]
    counts = {f["attributes"]["state"]: f["attributes"]["n"] for f in body["features"]}
    assert counts == {s: sum(1 for w in WELLS if w["state"] == s)
                      for s in {w["state"] for w in WELLS}}


@pytest.mark.django_db
@pytest.mark.parametrize(("where", "said"), [
    ("COALESCE(state, 'x') = 'x'", "COALESCE"),
    ("ROUND(depth, 0) = 100", "ROUND"),
    ("CAST(wells AS VARCHAR) = '4'", "CAST()"),
    ("EXTRACT(YEAR FROM spud) = 2021", "EXTRACT"),
    ("state = NULL", "NULL"),
])
def test_rows_where_marklogic_cannot_take_is_a_clear_400(client, layers, fake, where, said):
    body = get(client, f"{ROWS}/0/query", where=where)
    assert body["error"]["code"] == 400, body
    text = " ".join([body["error"]["message"], *body["error"]["details"]])
    assert said.lower() in text.lower() and "Optic" in text
    assert not plans(fake)[1:]  # only the layer's columns were read


@pytest.mark.django_db
def test_rows_bad_where_is_the_engines_400(client, layers):
    body = get(client, f"{ROWS}/0/query", where="nope = 1")
    assert body["error"]["code"] == 400
    assert "not a field" in " ".join(body["error"]["details"])


@pytest.mark.django_db
def test_rows_without_id_field_pages_in_the_engine(client, make_dataset, connected, fake):
    make_dataset("marklogic", "main.wells", host="ml",
                 options={"latitude": "lat", "longitude": "lon"})
    body = get(client, f"{ROWS}/0/query", where="wells = 4", resultRecordCount="2",
               outFields="id")
    assert len(body["features"]) == 2 and body["exceededTransferLimit"] is True
    assert "order-by" not in operators(plans(fake)[-1])
    body = get(client, f"{ROWS}/0/query", where="OBJECTID > 3")
    assert body["error"]["code"] == 400
    assert "id_field" in " ".join(body["error"]["details"])


@pytest.mark.django_db
def test_service_and_layer_info(client, layers, fake):
    service = get(client, ROWS)
    assert service["layers"][0]["geometryType"] == "esriGeometryPoint"
    layer = get(client, f"{ROWS}/0")
    assert layer["objectIdField"] == "id"
    types = {f["name"]: f["type"] for f in layer["fields"]}
    assert types == {"id": "esriFieldTypeOID", "name": "esriFieldTypeString",
                     "state": "esriFieldTypeString", "depth": "esriFieldTypeDouble",
                     "wells": "esriFieldTypeInteger", "spud": "esriFieldTypeDate",
                     "lat": "esriFieldTypeDouble", "lon": "esriFieldTypeDouble"}
    assert layer["extent"]["xmin"] == min(w["lon"] for w in WELLS)
    assert layer["extent"]["ymax"] == max(w["lat"] for w in WELLS)
    # The extent and its edge rows, not the view: an aggregate, then at most 8 rows.
    assert [operators(p)[1:] for p in plans(fake)[-2:]] == [["group-by"],
                                                             ["where", "offset-limit"]]
    assert plans(fake)[-1][-1]["args"] == [0, 8]
    assert get(client, f"{SEARCH}/0")["objectIdField"] == "id"


@pytest.mark.django_db
def test_geojson_output(client, layers):
    answer = client.get(f"{ROWS}/0/query", {"f": "geojson", "where": "id = 7",
                                             "outFields": "*"})
    features = orjson.loads(answer.content)["features"]
    assert features[0]["geometry"]["coordinates"] == [WELLS[6]["lon"], WELLS[6]["lat"]]


@pytest.mark.django_db
def test_case_sensitive_dataset(client, make_dataset, connected, fake):
    make_dataset("marklogic", "main.wells", host="ml", options=dict(ROWS_OPTIONS),
                 case_sensitive_strings=True)
    make_dataset("marklogic", "wells", host="ml", options=dict(SEARCH_OPTIONS),
                 case_sensitive_strings=True)
    expected = sum(1 for w in WELLS if w["state"] == "co")
    for path in (ROWS, SEARCH):
        assert get(client, f"{path}/0/query", where="state = 'co'",
                   returnCountOnly="true") == {"count": expected}
    assert searches(fake)[-1]["body"]["search"]["query"]["queries"][0]["value-query"][
        "term-option"][0] == "case-sensitive"


@pytest.mark.django_db
def test_search_count_paging_and_envelope_go_to_marklogic(client, layers, fake):
    assert get(client, f"{SEARCH}/0/query", where="depth > 300",
               returnCountOnly="true") == {"count": sum(1 for w in WELLS
                                                        if (w["depth"] or 0) > 300)}
    call = searches(fake)[-1]
    assert ("pageLength", "1") in call["params"]
    assert call["body"]["search"]["query"]["queries"][0]["range-query"]["range-operator"] == "GT"
    fake.calls.clear()
    body = get(client, f"{SEARCH}/0/query", where="state IN ('co', 'WY')",
               geometry="-112,30,-95,45", resultOffset="3", resultRecordCount="4",
               outFields="id")
    wanted = [w["id"] for w in WELLS if (w["state"] or "").lower() in ("co", "wy")]
    assert [f["attributes"]["id"] for f in body["features"]] == wanted[3:7]
    (call,) = searches(fake)
    assert ("start", "4") in call["params"] and ("pageLength", "4") in call["params"]
    queries = call["body"]["search"]["query"]["queries"]
    assert [next(iter(q)) for q in queries] == ["value-query", "geo-json-property-pair-query"]
    assert call["body"]["search"]["options"]["sort-order"][0]["json-property"] == "id"


@pytest.mark.django_db
def test_search_reads_every_page_when_marklogic_cannot_filter(client, layers, fake):
    body = get(client, f"{SEARCH}/0/query", where="name LIKE '%a%' AND wells = 4",
               outFields="id")
    assert [f["attributes"]["id"] for f in body["features"]] == [
        w["id"] for w in WELLS if "a" in w["name"].lower() and w["wells"] == 4]
    pushed = searches(fake)[-1]["body"]["search"]["query"]["queries"]
    assert pushed == [{"value-query": {"json-property": "wells", "type": "number",
                                       "text": [4]}}]  # the part that maps still narrows


@pytest.mark.django_db
def test_search_options_path_index_directory_and_fixed_queries(client, make_dataset,
                                                                connected, fake):
    make_dataset("marklogic", "wells", host="ml", options={
        "mode": "search", "directory": "/wells/", "geometry": "location",
        "latitude": "location.lat", "longitude": "location.lon", "geo_index": "path",
        "geo_path": "/location", "structured_query": '{"query": {"queries": [{"value-query": '
        '{"json-property": "state", "type": "string", "text": ["WY"]}}]}}',
        "string_query": "gamma", "filtered": "false"})
    body = get(client, f"{SEARCH}/0/query", geometry="-120,30,-90,50", outFields="*")
    wanted = [w["id"] for w in WELLS if w["state"] == "WY" and "gamma" in w["name"].lower()]
    assert sorted(f["attributes"]["id"] for f in body["features"]) == wanted
    call = searches(fake)[-1]
    assert ("directory", "/wells/") in call["params"]
    assert not any(k == "collection" for k, _ in call["params"])
    search = call["body"]["search"]
    assert search["qtext"] == "gamma" and search["options"]["search-option"] == ["unfiltered"]
    assert "geo-path-query" in search["query"]["queries"][0]


@pytest.mark.django_db
def test_layers_described_in_the_connection(client, make_dataset, connected, fake):
    connected(layers={"north": {"mode": "search", "collection": "even",
                                "latitude": "location.lat", "longitude": "location.lon"}})
    make_dataset("marklogic", "north", host="ml", options={"page_size": 4})  # and the rest
    body = get(client, "/marklogic/rest/services/ml/north/FeatureServer/0/query",
               returnCountOnly="true")
    assert body == {"count": 30}


@pytest.mark.django_db
def test_geometry_column_with_geojson_or_point_text(client, make_dataset, connected, fake):
    square = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}
    fake.views[("main", "parcels")] = View(
        [("pid", "xs:int"), ("shape", "xs:string")],
        [{"pid": 1, "shape": orjson.dumps(square).decode()}, {"pid": 2, "shape": "45.5,-100"},
         {"pid": 3, "shape": None}])
    make_dataset("marklogic", "main.parcels", host="ml",
                 options={"geometry": "shape", "id_field": "pid"})
    body = get(client, "/marklogic/rest/services/ml/main.parcels/FeatureServer/0/query",
               geometry="1,1,3,3", outFields="*")
    assert [f["attributes"]["pid"] for f in body["features"]] == [1]
    body = get(client, "/marklogic/rest/services/ml/main.parcels/FeatureServer/0/query",
               where="pid = 2", outFields="*")
    assert body["features"][0]["geometry"] == {"x": -100, "y": 45.5}


@pytest.mark.django_db
@pytest.mark.parametrize(("problem", "code", "said"), [
    ("no connection", 404, "No marklogic server named 'gone'"),
    ("no view", 404, "SQL-TABLENOTFOUND"),
    ("wrong password", 502, "credentials"),
    ("no range index", 502, "range index"),
    ("unreachable", 502, "Could not connect"),
])
def test_failures_are_clear_and_keep_the_password_out(client, make_dataset, connected, fake,
                                                       caplog, problem, code, said):
    host, options, where = "ml", dict(ROWS_OPTIONS), "1=1"
    if problem == "no connection":
        host = "gone"
    elif problem == "no view":
        options["view"] = "main.nope"
    elif problem == "wrong password":
        connected(password="Wrong-but-secret")
    elif problem == "unreachable":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        connected(url=f"http://127.0.0.1:{port}")
    else:
        options = {**SEARCH_OPTIONS, "range_indexes": "wells:int"}
        where = "wells > 3"
    make_dataset("marklogic", "main.wells", host=host, options=options)
    with caplog.at_level(logging.DEBUG):
        body = get(client, f"/marklogic/rest/services/{host}/main.wells/FeatureServer/0/query",
                   where=where)
    assert body["error"]["code"] == code, body
    assert said in body["error"]["message"]
    for secret in (PASSWORD, "Wrong-but-secret"):
        assert secret not in caplog.text and secret not in str(body)


@pytest.mark.django_db
@pytest.mark.parametrize("options", [
    {"view": "no_dot"}, {"mode": "other"}, {"range_indexes": "depth:text"},
    {"structured_query": "[1]"}, {"page_size": 0}, {"password": "x"},
])
def test_bad_options_are_refused(make_dataset, connected, options):
    with pytest.raises(ValidationError):
        make_dataset("marklogic", "main.wells", host="ml", options=options)


@pytest.mark.django_db
@pytest.mark.parametrize("path", [ROWS, SEARCH])
def test_answers_past_max_records_say_so(client, make_dataset, connected, path):
    options = ROWS_OPTIONS if path == ROWS else SEARCH_OPTIONS
    make_dataset("marklogic", "main.wells" if path == ROWS else "wells", host="ml",
                 options={**options, "max_records": 10})
    body = get(client, f"{path}/0/query", where="name LIKE '%a%'", outFields="id")
    # Rows: 10 matching rows read; search: 10 documents read, then filtered by the engine.
    assert len(body["features"]) == (10 if path == ROWS else 8)
    assert body["exceededTransferLimit"] is True


@pytest.mark.django_db
def test_documents_without_an_id_field_keep_their_object_ids(client, make_dataset, connected):
    make_dataset("marklogic", "wells", host="ml", options={
        "mode": "search", "latitude": "location.lat", "longitude": "location.lon"})
    first = get(client, f"{SEARCH}/0/query", where="wells = 4", outFields="id")
    again = get(client, f"{SEARCH}/0/query", where="wells = 4 OR wells = 5", outFields="id")
    ids = {f["attributes"]["id"]: f["attributes"]["OBJECTID"] for f in first["features"]}
    assert ids and all({f["attributes"]["id"]: f["attributes"]["OBJECTID"]
                        for f in again["features"]}[k] == v for k, v in ids.items())
    chosen = next(iter(ids.values()))
    body = get(client, f"{SEARCH}/0/query", objectIds=str(chosen), outFields="id")
    assert [f["attributes"]["OBJECTID"] for f in body["features"]] == [chosen]


@pytest.mark.django_db
@pytest.mark.parametrize("path", [ROWS, SEARCH])
def test_one_feature_by_its_object_id(client, layers, path):
    assert get(client, f"{path}/0/7")["feature"]["attributes"]["name"] == WELLS[6]["name"]
