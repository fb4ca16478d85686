"""CSV, JSON records and NDJSON exports: the FeatureServer's rows, every one, streamed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from django.http import StreamingHttpResponse

from tests.conftest import body_of, collection, feature, point

QUERY = "/geojson/rest/services/{id}/FeatureServer/{layer}/query"
EXPORT = "/geojson/{id}/export/{layer}.{ext}"

NAMES = ["plain", 'quote "q", comma', "line\nbreak\r\nend", "", None, "Zürich — 東京 🎉",
         "tab\tand \\ backslash \x01 control", "=SUM(A1)", "  spaced  ", "x"]
VALUES = [0.1 + 0.2, -1.5e20, None, 0.0, 7.0, 1e-7, 123456789.125, -0.5, 3.0, 2.0]
WHEN = ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.250Z", None, "1969-07-20T20:17:40Z",
        "2000-02-29T00:00:00Z", None, "2024-12-31T23:59:59Z", "2024-06-01T12:00:00Z",
        "1999-12-31T23:59:59.999Z", "2024-01-02T03:04:05Z"]


def points_document(count: int = 10) -> dict[str, Any]:
    features = []
    for i in range(count):
        geometry = None if i == 4 else point(-100 + i * 1.5, 40 + i / 3)
        features.append(feature({"n": i, "kind": "odd" if i % 2 else "even",
                                 "name": NAMES[i % len(NAMES)], "value": VALUES[i % 10],
                                 "when": WHEN[i % 10]}, geometry))
    return collection(features, metadata={"name": "Stations — Zürich"})


def polygons_document() -> dict[str, Any]:
    def square(x: float, y: float) -> dict[str, Any]:
        return {"type": "Polygon", "coordinates": [[[x, y], [x + 1, y], [x + 1, y + 1],
                                                    [x, y + 1], [x, y]]]}

    return collection([feature({"n": i, "x": i * 10}, square(i, i)) for i in range(4)])


@pytest.fixture
def stations(make_dataset):
    return make_dataset("geojson", "stations", points_document())


def featureserver(client, params: dict[str, str], dataset: str = "stations",
                  layer: int = 0) -> dict[str, Any]:
    response = client.get(QUERY.format(id=dataset, layer=layer), {**params, "f": "json"})
    body = orjson.loads(response.content)
    assert "error" not in body, body
    return body


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    stamp = datetime.fromtimestamp(ms / 1000, UTC)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


def expected_records(body: dict[str, Any], params: dict[str, str] | None = None
                     ) -> list[dict[str, Any]]:
    """The FeatureServer's features as the flat records an export should hold."""
    geometry = "none" if (params or {}).get("returnGeometry") == "false" else "xy"
    dates = {f["name"] for f in body.get("fields", []) if f["type"] == "esriFieldTypeDate"}
    records = []
    for item in body["features"]:
        record = {k: iso(v) if k in dates else v for k, v in item["attributes"].items()}
        if geometry == "xy" and "geometryType" in body:
            shape = item.get("geometry") or {}
            record["x"], record["y"] = shape.get("x"), shape.get("y")
        records.append(record)
    return records


def export(client, params: dict[str, str], ext: str, dataset: str = "stations",
           layer: int = 0, **extra: Any) -> Any:
    return client.get(EXPORT.format(id=dataset, layer=layer, ext=ext), params, **extra)


def json_records(client, params: dict[str, str], **kwargs: Any) -> list[dict[str, Any]]:
    response = export(client, params, "json", **kwargs)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return orjson.loads(body_of(response))


def csv_records(client, params: dict[str, str], **kwargs: Any) -> tuple[list[str], list[list[str]]]:
    response = export(client, params, "csv", **kwargs)
    assert response.status_code == 200, response.content
    text = body_of(response).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    return rows[0], rows[1:]


def as_text(value: Any) -> str:
    """How a JSON value reads in a CSV cell (numbers compared as numbers elsewhere)."""
    return "" if value is None else str(value)


def same_cell(cell: str, value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return cell == as_text(value)
    return float(cell) == float(value)


SHAPES = [
    {},
    {"where": "n > 3 AND name IS NOT NULL"},
    {"where": "kind = 'odd'", "orderByFields": "value DESC"},
    {"geometry": "-97,40,-90,45", "geometryType": "esriGeometryEnvelope"},
    {"geometry": '{"x": -10575351, "y": 4865942}', "geometryType": "esriGeometryPoint",
     "inSR": "3857", "distance": "300000", "units": "esriSRUnit_Meter"},
    {"outFields": "n,name", "orderByFields": "name ASC"},
    {"resultOffset": "2", "resultRecordCount": "3", "orderByFields": "n DESC"},
    {"objectIds": "1,3,5,9"},
    {"outSR": "3857", "where": "value < 10"},
    {"outFields": "kind", "returnDistinctValues": "true"},
    {"returnGeometry": "false", "outFields": "*"},
    {"time": "946684800000,1735689600000"},
]


@pytest.mark.django_db
def test_json_records_equal_the_featureserver(client, stations):
    for params in SHAPES:  # one dataset for every shape (a dataset per case costs a second)
        expected = expected_records(featureserver(client, params), params)
        assert json_records(client, params) == expected, params
        ndjson = export(client, params, "ndjson")
        assert ndjson["Content-Type"] == "application/x-ndjson"
        lines = body_of(ndjson).decode().split("\n")
        assert lines[-1] == ""
        assert [orjson.loads(line) for line in lines[:-1]] == expected, params


@pytest.mark.django_db
def test_csv_rows_equal_the_featureserver(client, stations):
    for params in SHAPES:
        expected = expected_records(featureserver(client, params), params)
        header, rows = csv_records(client, params)
        assert len(rows) == len(expected), params
        if expected:
            assert header == list(expected[0])
        for row, record in zip(rows, expected, strict=True):
            assert len(row) == len(header)
            assert all(same_cell(cell, record[key])
                       for cell, key in zip(row, header, strict=True)), (params, row, record)


@pytest.mark.django_db
def test_statistics_equal_the_featureserver(client, stations):
    params = {"outStatistics": orjson.dumps([
        {"statisticType": "count", "onStatisticField": "n", "outStatisticFieldName": "how_many"},
        {"statisticType": "avg", "onStatisticField": "value", "outStatisticFieldName": "mean"},
        {"statisticType": "max", "onStatisticField": "when", "outStatisticFieldName": "last"},
    ]).decode(), "groupByFieldsForStatistics": "kind", "orderByFields": "kind DESC"}
    expected = expected_records(featureserver(client, params), params)
    assert [r["kind"] for r in expected] == ["odd", "even"]
    assert json_records(client, params) == expected
    header, rows = csv_records(client, params)
    assert header == ["kind", "how_many", "mean", "last"]
    assert [row[0] for row in rows] == ["odd", "even"]


@pytest.mark.django_db
def test_csv_text_quoting_nulls_dates_and_unicode(client, stations):
    response = export(client, {"outFields": "n,name,value,when", "returnGeometry": "false",
                               "where": "n < 7"}, "csv")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8; header=present"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"Stations _ Z_rich.csv\"; "
        "filename*=UTF-8''Stations%20%E2%80%94%20Z%C3%BCrich.csv")
    lines = body_of(response).decode().split("\r\n")
    assert lines[0] == "OBJECTID,n,name,value,when"
    assert lines[1] == "1,0,plain,0.30000000000000004,2024-01-02T03:04:05Z"
    assert lines[2] == '2,1,"quote ""q"", comma",-1.5e+20,2024-01-02T03:04:05.250Z'
    # a quoted field keeps its line breaks: the record goes on past the CRLF inside it
    assert lines[3] == '3,2,"line\nbreak'
    assert lines[4] == 'end",,'  # null value and date: empty cells
    assert lines[5] == '4,3,"",0,1969-07-20T20:17:40Z'  # the empty string is quoted, not null
    assert lines[6] == "5,4,,7,2000-02-29T00:00:00Z"  # a null name
    assert lines[7] == "6,5,Zürich — 東京 🎉,1e-7,"
    assert lines[8] == "7,6,tab\tand \\ backslash \x01 control,123456789.125,2024-12-31T23:59:59Z"
    assert lines[9:] == [""]  # every record ends with CRLF


@pytest.mark.django_db
def test_byte_order_mark_for_excel(client, stations):
    plain = body_of(export(client, {}, "csv"))
    with_bom = body_of(export(client, {"bom": "true"}, "csv"))
    assert not plain.startswith(b"\xef\xbb\xbf")
    assert with_bom == b"\xef\xbb\xbf" + plain
    assert with_bom.decode("utf-8-sig").startswith("OBJECTID,")
    bad = export(client, {"bom": "maybe"}, "csv")
    assert bad.status_code == 400 and bad.json()["parameter"] == "bom"


@pytest.mark.django_db
def test_json_strings_are_escaped(client, stations):
    text = body_of(export(client, {"outFields": "name", "returnGeometry": "false"}, "json"))
    assert b'"tab\\tand \\\\ backslash \\u0001 control"' in text
    assert b'"line\\nbreak\\r\\nend"' in text
    assert "Zürich — 東京 🎉".encode() in text  # UTF-8 as it is, not \u-escaped
    names = [r["name"] for r in orjson.loads(text)]
    assert names == NAMES


@pytest.mark.django_db
def test_header_aliases(client, make_dataset):
    document = points_document(3)
    document["metadata"]["fields"] = [
        {"name": "n", "type": "Integer", "alias": "Number"},
        {"name": "name", "type": "String", "alias": "Full name, as given"},
    ]
    make_dataset("geojson", "aliased", document)
    header, _ = csv_records(client, {"outFields": "n,name", "header": "alias"}, dataset="aliased")
    assert header[1:3] == ["Number", "Full name, as given"]
    records = json_records(client, {"outFields": "n", "header": "alias"}, dataset="aliased")
    assert "Number" in records[0]
    assert export(client, {"header": "label"}, "csv", dataset="aliased").status_code == 400


@pytest.mark.django_db
def test_geometry_formats(client, stations, make_dataset):
    make_dataset("geojson", "squares", polygons_document())
    # lines and polygons: WKT by default; a field named x leaves "x" to it
    records = json_records(client, {"where": "n = 1"}, dataset="squares")
    assert records == [{"OBJECTID": 2, "n": 1, "x": 10,
                        "wkt": "POLYGON ((1 1, 2 1, 2 2, 1 2, 1 1))"}]
    wrong = export(client, {"geometryFormat": "xy"}, "csv", dataset="squares")
    assert wrong.status_code == 400
    assert wrong["Content-Type"] == "application/problem+json"
    assert wrong.json()["parameter"] == "geometryFormat"
    # points: x/y by default, WKT when asked, none at all
    first = json_records(client, {"objectIds": "2", "outFields": "n"})
    assert first == [{"OBJECTID": 2, "n": 1, "x": -98.5, "y": 40 + 1 / 3}]
    wkt = json_records(client, {"objectIds": "2,5", "outFields": "n", "geometryFormat": "wkt"})
    assert wkt == [{"OBJECTID": 2, "n": 1, "wkt": f"POINT (-98.5 {40 + 1 / 3!r})"},
                   {"OBJECTID": 5, "n": 4, "wkt": None}]
    bare = json_records(client, {"objectIds": "2", "outFields": "n", "geometryFormat": "none"})
    assert bare == [{"OBJECTID": 2, "n": 1}]
    rounded = json_records(client, {"objectIds": "2", "outFields": "n",
                                    "geometryPrecision": "2"})
    assert rounded[0]["y"] == 40.33
    assert export(client, {"geometryFormat": "geojson"}, "csv").status_code == 400


@pytest.mark.django_db
def test_count_ids_and_extent_only(client, stations):
    count = body_of(export(client, {"where": "kind = 'odd'", "returnCountOnly": "true"}, "csv"))
    assert count == b"count\r\n5\r\n"
    ids = json_records(client, {"where": "n < 3", "returnIdsOnly": "true"})
    assert ids == [{"OBJECTID": 1}, {"OBJECTID": 2}, {"OBJECTID": 3}]
    extent = json_records(client, {"returnExtentOnly": "true", "outSR": "4326"})
    assert extent[0]["xmin"] == -100 and extent[0]["xmax"] == -100 + 9 * 1.5


@pytest.mark.django_db
def test_a_table_without_geometry(client, secured_public_vault):
    records = json_records(client, {}, dataset="vault", layer=7)
    assert records == [{"OBJECTID": 1, "site": "A", "score": 5}]
    header, rows = csv_records(client, {}, dataset="vault", layer=7)
    assert header == ["OBJECTID", "site", "score"] and rows == [["1", "A", "5"]]


@pytest.fixture
def secured_public_vault(make_dataset):
    from koop_app.models import Dataset
    from tests.auth.conftest import vault

    return make_dataset("geojson", "vault", vault(), access=Dataset.PUBLIC)
