"""Bad input and unknown routes under /rest/: always a GeoServices error body, never a crash."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from tests.conftest import collection, feature, point

SERVICE = "/geojson/rest/services/things/FeatureServer"
QUERY = SERVICE + "/0/query"
LINES = "/geojson/rest/services/lines/FeatureServer/0/query"


@pytest.fixture
def layers(make_dataset):
    make_dataset("geojson", "things", collection(
        [feature({"name": f"T{i}", "size": i, "seen": f"2024-01-{i:02d}T00:00:00Z"},
                 point(-100 + i, 40 + i / 10)) for i in range(1, 11)],
        metadata={"timeInfo": {"startTimeField": "seen"}}))
    make_dataset("geojson", "lines", collection(
        [feature({"label": "d"}, {"type": "LineString", "coordinates": [[0, 0], [10, 10]]})]))


def body_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return orjson.loads(response.content)


def error_of(response: Any) -> dict[str, Any]:
    body = body_of(response)
    assert set(body) == {"error"}, body
    return body["error"]


BIG_WKID = "9" * 5000

# Each of these crashed once (HTTP 500 or code 500): each must be a code 400 now.
BAD_QUERIES = {
    "unicode digit outSR": (QUERY, {"outSR": "²"}),
    "unicode digit inSR": (QUERY, {"geometry": "1,2", "inSR": "²"}),
    "5000-digit outSR": (QUERY, {"outSR": BIG_WKID}),
    "5000-digit inSR": (QUERY, {"geometry": "1,2", "inSR": BIG_WKID}),
    "5000-digit wkid JSON": (QUERY, {"outSR": '{"wkid": ' + BIG_WKID + "}"}),
    "negative huge wkid": (QUERY, {"outSR": "-" + BIG_WKID}),
    "float wkid JSON": (QUERY, {"outSR": '{"wkid": 1e400}'}),
    "wkid as list": (QUERY, {"outSR": "[4326]"}),
    "time inf": (QUERY, {"time": "inf"}),
    "time 1e400": (QUERY, {"time": "1e400"}),
    "time -inf": (QUERY, {"time": "-inf,inf"}),
    "time nan": (QUERY, {"time": "nan"}),
    "time huge": (QUERY, {"time": "1e300"}),
    "time 5000 digits": (QUERY, {"time": BIG_WKID}),
    "projecting 1e308": (
        LINES, {"geometry": '{"paths": [[[0, 0], [1e308, 1e308]]]}',
                "geometryType": "esriGeometryPolyline", "inSR": "3857"}),
    "5000-digit paging": (QUERY, {"resultOffset": BIG_WKID}),
    "5000-digit objectIds": (QUERY, {"objectIds": BIG_WKID}),
    "5000-digit precision": (QUERY, {"geometryPrecision": BIG_WKID}),
    "unicode digit paging": (QUERY, {"resultRecordCount": "²"}),
    "statistics as a number": (QUERY, {"outStatistics": "5"}),
    "statistics parameters as a list": (
        QUERY, {"outStatistics": '[{"statisticType": "percentile_cont", '
                                 '"onStatisticField": "size", "statisticParameters": [0.5]}]'}),
    "geometry as a list": (QUERY, {"geometry": "[1, 2]"}),
    "rings of strings": (QUERY, {"geometry": '{"rings": "abc"}',
                                 "geometryType": "esriGeometryPolygon"}),
    "geometry SR as a list": (QUERY, {"geometry": '{"x": 1, "y": 2, "spatialReference": [1]}',
                                      "geometryType": "esriGeometryPoint"}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_QUERIES), ids=list(BAD_QUERIES))
def test_bad_values_are_code_400(client, layers, case):
    path, params = BAD_QUERIES[case]
    for response in (client.get(path, params), client.post(path, params)):
        error = error_of(response)
        assert error["code"] == 400, error


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "count"), [
    ({"geometry": "16,80,53,125", "distance": "1e7"}, 10),  # reaches the pole: a band
    ({"geometry": "-100,40,-90,45", "distance": "1e300", "units": "esriSRUnit_StatuteMile"}, 10),
    ({"geometry": "-99,40.1", "distance": "1e6", "units": "9036"}, 10),  # wider than the globe
    ({"geometry": "-99,40.1", "distance": "1", "units": "esriSRUnit_Meter"}, 1),
])
def test_extreme_buffers_are_answered(client, layers, params, count):
    body = body_of(client.get(QUERY, {**params, "returnCountOnly": "true"}))
    assert body == {"count": count}


@pytest.mark.django_db
@pytest.mark.parametrize("ramp", [
    {"type": "multipart", "colorRamps": 5},
    {"type": "multipart", "colorRamps": [5]},
    {"type": "algorithmic", "fromColor": [1], "toColor": "x"},
    {"type": "algorithmic", "fromColor": [999, -5, "a", None], "toColor": [2**60, 0, 0]},
])
def test_odd_colour_ramps_are_answered(client, layers, ramp):
    definition = {"type": "uniqueValueDef", "uniqueValueFields": ["name"], "colorRamp": ramp}
    body = body_of(client.get(SERVICE + "/0/generateRenderer",
                              {"classificationDef": orjson.dumps(definition).decode()}))
    colors = [info["symbol"]["color"] for info in body["uniqueValueInfos"]]
    assert all(len(c) == 4 and all(0 <= v <= 255 for v in c) for c in colors)


@pytest.mark.django_db
def test_utf16_form_is_read_or_refused(client, layers):
    body = "where=1%3D1&returnCountOnly=true".encode("utf-16")
    response = client.generic("POST", QUERY, body,
                              "application/x-www-form-urlencoded; charset=utf-16")
    assert error_of(response)["details"] == [
        "HTTP requests with the 'application/x-www-form-urlencoded' content type must be UTF-8 "
        "encoded."]


@pytest.mark.django_db
@pytest.mark.parametrize("path", [
    QUERY + "/x", SERVICE + "/0/%ff", SERVICE + "/0/nothing/here", "/geojson/rest/nothing",
    "/rest/services/nothing/FeatureServer", "/nope/rest/services/x/FeatureServer/0",
    "/geojson/rest/services/a%00b/FeatureServer", "/geojson/rest/services/%ff/FeatureServer/0",
])
def test_unknown_routes_are_json_404(client, layers, path):
    origin = {"HTTP_ORIGIN": "https://maps.example"}
    for response in (client.get(path, **origin), client.post(path, **origin)):
        assert error_of(response)["code"] == 404
        assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.django_db
@pytest.mark.parametrize("path", [
    SERVICE + "/0/applyEdits", SERVICE + "/0/addFeatures", SERVICE + "/0/updateFeatures",
    SERVICE + "/0/deleteFeatures", SERVICE + "/0/calculate", SERVICE + "/0/append",
    SERVICE + "/0/uploads/upload", SERVICE + "/0/queryDomains", SERVICE + "/applyEdits",
    SERVICE + "/append", SERVICE + "/uploads", SERVICE + "/createReplica",
])
def test_edit_operations_are_not_supported(client, layers, path):
    for response in (client.get(path), client.post(path, {"edits": "[]"})):
        error = error_of(response)
        assert error == {"code": 400, "details": [],
                         "message": "Requested operation is not supported by this service."}


@pytest.mark.django_db
def test_service_query_domains(client, layers):
    assert body_of(client.get(SERVICE + "/queryDomains", {"layers": "[0]"})) == {"domains": []}


@pytest.mark.django_db
def test_a_host_not_allowed_is_a_body(client):
    response = client.get("/rest/services", HTTP_HOST="evil.example")
    assert error_of(response)["code"] == 400


@pytest.mark.django_db
def test_errors_keep_jsonp(client, layers):
    response = client.get(QUERY + "/x", {"callback": "cb"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response.content.startswith(b"cb({") and response.content.endswith(b");")


@pytest.mark.django_db
def test_unsupported_method_is_a_body(client, layers):
    for method in ("PUT", "DELETE", "PATCH"):
        assert error_of(client.generic(method, QUERY))["code"] == 405


class TestBodies:
    """Bodies Django cannot read, too large or with files: code 400 before any view runs."""

    @pytest.mark.django_db
    def test_multipart_without_boundary(self, client, layers):
        response = client.generic("POST", QUERY, b"where=1=1", "multipart/form-data")
        assert error_of(response)["code"] == 400

    @pytest.mark.django_db
    def test_too_many_fields(self, client, layers):
        form = "&".join(f"f{i}=1" for i in range(1500))
        response = client.generic("POST", QUERY, form, "application/x-www-form-urlencoded")
        assert error_of(response)["message"] == "The request has too many parameters."
        assert error_of(client.get(QUERY + "?" + form))["code"] == 400

    @pytest.mark.django_db
    def test_body_over_the_limit_is_refused_from_its_length(self, client, layers, settings):
        settings.KOOP = {**settings.KOOP, "MAX_REQUEST_BODY_BYTES": 1000}
        # The length says 200 MB; the refusal comes without reading the (short) body.
        response = client.generic("POST", QUERY, b"where=1%3D1",
                                  "application/x-www-form-urlencoded",
                                  CONTENT_LENGTH=str(200 * 1024 * 1024))
        assert error_of(response)["message"] == "The request body is too large."

    @pytest.mark.django_db
    def test_chunked_body_without_a_length_is_refused(self, client, layers):
        response = client.generic("POST", QUERY, b"", "application/x-www-form-urlencoded",
                                  HTTP_TRANSFER_ENCODING="chunked")
        assert error_of(response)["message"] == "A request body needs a Content-Length header."

    @pytest.mark.django_db
    def test_form_over_djangos_limit(self, client, layers, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        response = client.post(QUERY, {"where": "1=1", "pad": "x" * 5000})
        assert error_of(response)["message"] == "The request body is too large."

    @pytest.mark.django_db
    def test_file_parts_are_refused(self, client, layers, tmp_path):
        upload = tmp_path / "big.bin"
        upload.write_bytes(b"x" * 100_000)
        with upload.open("rb") as handle:
            response = client.post(QUERY, {"where": "1=1", "file": handle})
        assert error_of(response)["message"] == "File uploads are not accepted here."

    @pytest.mark.django_db
    def test_multipart_form_without_files_is_read(self, client, layers):
        response = client.post(QUERY, {"where": "size > 5", "returnCountOnly": "true"})
        assert body_of(response) == {"count": 5}

    @pytest.mark.django_db
    def test_unknown_charset(self, client, layers):
        response = client.generic("POST", QUERY, b"where=1%3D1",
                                  "application/x-www-form-urlencoded; charset=no-such")
        assert body_of(response).get("error", {"code": 400})["code"] == 400

    @pytest.mark.django_db
    def test_long_url(self, client, layers, settings):
        settings.KOOP = {**settings.KOOP, "MAX_URL_BYTES": 2000}
        error = error_of(client.get(QUERY, {"where": "1=1", "pad": "x" * 3000}))
        assert error["message"] == "The request URL is too long."
        assert body_of(client.post(QUERY, {"where": "1=1", "pad": "x" * 3000,
                                           "returnCountOnly": "true"})) == {"count": 10}


def test_a_200_mb_upload_is_refused_before_its_body(live_server):
    """Over a real socket: the answer comes after the head, with none of the body sent.

    (Django's development server then waits to drain the body it announced; gunicorn closes.)
    """
    address = urlsplit(live_server.url)
    head = (f"POST {QUERY} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while b"The request body is too large." not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b'"message":"The request body is too large."' in answer


@pytest.mark.django_db
def test_outside_rest_real_statuses(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert b"Traceback" not in response.content
