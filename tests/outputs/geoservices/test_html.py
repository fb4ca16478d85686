"""``f=html``: the services directory's pages, rendered from the same answers as ``f=json``."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest
from django.contrib.auth.models import User

from koop_app.models import Dataset
from koop_app.outputs.geoservices.html import Location, geometry_summary
from tests.conftest import collection, feature, point
from tests.outputs.geoservices.test_views import BASE, things

HTML = "text/html; charset=utf-8"
XSS_NAME = "<script>alert('name')</script>"
XSS_VALUE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def dataset(make_dataset):
    return make_dataset("geojson", "things", things(), max_record_count=10)


def page(client, path: str, **params: Any) -> str:
    response = client.get(path, {"f": "html", **params})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == HTML
    return response.content.decode()


def hrefs(text: str) -> list[str]:
    return [html.unescape(found) for found in re.findall(r'href="([^"]*)"', text)]


def rows_of(text: str, table_class: str) -> int:
    table = text.split(f'<table class="{table_class}">', 1)[1].split("</table>", 1)[0]
    return table.split("<tbody>", 1)[1].count("<tr>")


@pytest.mark.django_db
class TestPages:
    def test_catalog(self, client, dataset):
        text = page(client, "/rest/services")
        assert "<h1>Services</h1>" in text
        assert "/rest/services/geojson?f=html" in hrefs(text)  # one folder per provider
        assert "/rest/services?f=pjson" in hrefs(text)
        folder = page(client, "/rest/services/geojson")
        assert "http://testserver/rest/services/geojson/things/FeatureServer?f=html" in hrefs(
            folder)
        assert "/rest/services/geojson?f=pjson" in hrefs(folder)

    def test_service(self, client, dataset):
        text = page(client, BASE)
        links = hrefs(text)
        assert f"{BASE}/0?f=html" in links
        assert f"{BASE}/layers?f=html" in links
        assert "/geojson/preview/things/FeatureServer/0" in links
        assert "/geojson/preview/things/FeatureServer" in links
        assert f"{BASE}?f=pjson" in links
        assert 'value="http://testserver/geojson/rest/services/things/FeatureServer"' in text
        viewer = "https://www.arcgis.com/apps/mapviewer/index.html?url=" + quote(
            "http://testserver" + BASE, safe="")
        assert viewer in links
        assert "test things" in text  # the description
        assert "esriGeometryPoint" in text

    def test_layer(self, client, dataset):
        text = page(client, BASE + "/0")
        assert "<h1>Feature Layer: Things (ID: 0)</h1>" in text
        links = hrefs(text)
        assert links.index("/") < links.index("/rest/services?f=html") \
            < links.index(f"{BASE}?f=html")  # Home > Services > things (FeatureServer)
        assert '<span aria-current="page">Things (0)</span>' in text
        assert f"{BASE}/0/query?f=html" in links
        assert "/geojson/preview/things/FeatureServer/0" in links
        assert f"{BASE}/0?f=pjson" in links
        assert 'value="http://testserver/geojson/rest/services/things/FeatureServer/0"' in text
        assert 'data-copy="layer-url-0"' in text
        assert "https://www.arcgis.com/apps/mapviewer/index.html?url=" + quote(
            f"http://testserver{BASE}/0", safe="") in links
        assert rows_of(text, "fields") == 7
        for name, kind in (("OBJECTID", "esriFieldTypeOID"), ("seen", "esriFieldTypeDate")):
            assert f"<td>{name}</td><td>{kind}</td>" in text
        assert "<th>XMin</th><td>-99.0</td>" in text
        assert "esriGeometryPoint" in text

    @pytest.mark.parametrize("path", ["/0/info", "/0/"])
    def test_layer_aliases_link_the_layer(self, client, dataset, path):
        text = page(client, BASE + path)
        assert f"{BASE}/0/query?f=html" in hrefs(text)

    def test_all_layers(self, client, dataset):
        text = page(client, BASE + "/layers")
        assert f"{BASE}/0?f=html" in hrefs(text)
        assert rows_of(text, "fields") == 7

    def test_other_answers_get_the_generic_page(self, client, dataset):
        text = page(client, "/rest/info")
        assert "<th>currentVersion</th>" in text
        assert "tokenServicesUrl" in text  # nested: shown as indented JSON
        assert "http://testserver/rest/generateToken" in text
        text = page(client, BASE + "/0/3")  # one feature
        assert "Thing 3" in text

    def test_errors_are_pages_with_http_200(self, client, dataset):
        text = page(client, "/geojson/rest/services/nope/FeatureServer")
        assert 'data-error-code="404"' in text
        assert "Service not found." in text
        text = page(client, BASE + "/applyEdits")
        assert 'data-error-code="400"' in text

    def test_token_required_offers_a_sign_in(self, client, make_dataset):
        make_dataset("geojson", "vault", things(3), access=Dataset.SIGNED_IN)
        text = page(client, "/geojson/rest/services/vault/FeatureServer/0")
        assert 'data-error-code="499"' in text
        login = [link for link in hrefs(text) if link.startswith("/admin/login/")]
        assert login == ["/admin/login/?next=" + quote(
            "/geojson/rest/services/vault/FeatureServer/0?f=html", safe="")]

    def test_a_token_is_carried_by_the_links(self, client, make_dataset):
        make_dataset("geojson", "vault", things(3), access=Dataset.SIGNED_IN)
        User.objects.create_user("alice", password="pw")
        token = orjson.loads(client.post("/rest/generateToken", {
            "username": "alice", "password": "pw", "f": "json"}).content)["token"]
        text = page(client, "/geojson/rest/services/vault/FeatureServer", token=token)
        carried = urlencode({"token": token})
        assert f"/geojson/rest/services/vault/FeatureServer/0?f=html&{carried}" in hrefs(text)
        assert f"/geojson/preview/vault/FeatureServer/0?{carried}" in hrefs(text)
        text = page(client, "/geojson/rest/services/vault/FeatureServer/0/query", token=token)
        assert f'<input type="hidden" name="token" value="{token}">' in text

    def test_json_is_unchanged(self, client, dataset):
        for path in ("", "/0", "/layers", "/0/query"):
            for params in ({}, {"f": "json"}):
                response = client.get(BASE + path, params)
                assert response["Content-Type"].startswith("application/json")
                assert "error" not in orjson.loads(response.content)
        response = client.get(BASE + "/0", {"f": "pjson"})
        assert response.content.startswith(b"{\n")

    def test_jsonp_callback_is_ignored_by_pages(self, client, dataset):
        text = page(client, BASE + "/0", callback="cb")
        assert text.startswith("<!DOCTYPE html>")

    def test_conditional_get(self, client, dataset):
        first = client.get(BASE + "/0", {"f": "html"})
        again = client.get(BASE + "/0", {"f": "html"}, HTTP_IF_NONE_MATCH=first["ETag"])
        assert again.status_code == 304
        assert again.content == b""
        json_etag = client.get(BASE + "/0", {"f": "json"})["ETag"]
        assert json_etag != first["ETag"]


@pytest.mark.django_db
class TestQueryPage:
    def test_the_form_alone_runs_no_query(self, client, dataset):
        text = page(client, BASE + "/0/query")
        for name in ("where", "objectIds", "geometry", "geometryType", "spatialRel",
                     "outFields", "returnGeometry", "orderByFields", "resultOffset",
                     "resultRecordCount", "returnCountOnly", "returnIdsOnly",
                     "returnExtentOnly", "outSR", "outStatistics",
                     "groupByFieldsForStatistics", "f"):
            assert f'name="{name}"' in text, name
        assert 'method="get"' in text
        assert f'action="{BASE}/0/query"' in text
        assert '<option value="html" selected>' in text
        for other in ("json", "pjson", "geojson"):
            assert f'<option value="{other}">' in text
        assert 'class="result"' not in text
        assert "Thing" not in text

    def test_features_as_a_table(self, client, dataset):
        text = page(client, BASE + "/0/query", where="size > 20", outFields="name,size,seen",
                    orderByFields="size DESC")
        assert 'class="result"' in text
        assert rows_of(text, "features") == 5
        assert "<th>name</th><th>size</th><th>seen</th><th>geometry</th>" in text
        assert "<td>Thing 25</td><td>25</td><td>2024-01-26T00:00:00Z</td>" \
               "<td>Point (-75.0, 42.5)</td>" in text
        # the form shows what was asked
        assert 'name="where" rows="3">size &gt; 20</textarea>' in text
        assert 'id="q-outFields" type="text" name="outFields" value="name,size,seen"' in text

    def test_a_page_past_max_record_count_says_so(self, client, dataset):
        text = page(client, BASE + "/0/query", where="1=1")
        assert rows_of(text, "features") == 10
        assert "more match" in text

    def test_count_ids_extent(self, client, dataset):
        assert "Count: <strong>4</strong>" in page(
            client, BASE + "/0/query", where="size <= 4", returnCountOnly="true")
        assert "OBJECTID: 1, 2, 3" in page(
            client, BASE + "/0/query", where="size <= 3", returnIdsOnly="true")
        text = page(client, BASE + "/0/query", returnExtentOnly="true", where="size <= 3")
        assert "<th>XMin</th><td>-99.0</td>" in text

    def test_statistics(self, client, dataset):
        statistics = orjson.dumps([{"statisticType": "count", "onStatisticField": "OBJECTID",
                                    "outStatisticFieldName": "n"}]).decode()
        text = page(client, BASE + "/0/query", outStatistics=statistics,
                    groupByFieldsForStatistics="kind", orderByFields="kind")
        assert "<th>kind</th><th>n</th>" in text
        assert "<td>even</td><td>12</td>" in text
        assert "<td>odd</td><td>13</td>" in text

    def test_an_error_is_shown_under_the_form(self, client, dataset):
        text = page(client, BASE + "/0/query", where="nothere = 1")
        assert 'data-error-code="400"' in text
        assert 'name="where"' in text

    def test_an_empty_submitted_form_queries_everything(self, client, dataset):
        fields = {name: "" for name in ("where", "objectIds", "geometry", "outFields",
                                        "orderByFields", "resultOffset", "outSR")}
        text = page(client, BASE + "/0/query", returnGeometry="false", returnCountOnly="false",
                    geometryType="esriGeometryEnvelope",
                    spatialRel="esriSpatialRelIntersects", **fields)
        assert rows_of(text, "features") == 10
        assert "<th>geometry</th>" not in text


@pytest.fixture
def xss(make_dataset):
    document = collection([feature({XSS_NAME: XSS_VALUE, "plain": XSS_VALUE},
                                   point(1, 2))],
                          metadata={"name": XSS_NAME, "description": XSS_VALUE})
    return make_dataset("geojson", "xss", document, name="<b>bold</b>",
                        description=XSS_VALUE)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "params"), [
    ("", {}), ("/layers", {}), ("/0", {}), ("/0/query", {"outFields": "*"}),
    ("/0/query", {"where": XSS_VALUE}), ("/0/1", {}), ("/0/query", {"where": "1=1",
                                                                      "outSR": XSS_NAME}),
])
def test_data_and_parameters_are_escaped(client, xss, path, params):
    text = page(client, "/geojson/rest/services/xss/FeatureServer" + path, **params)
    for raw in (XSS_NAME, XSS_VALUE, "<b>bold</b>", "<img", "<script>alert"):
        assert raw not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text \
        or "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in text


@pytest.mark.parametrize(("path", "expected"), [
    ("/rest/services", Location(root=("rest", "services"))),
    ("/rest/services/geojson", Location(root=("rest", "services"), folders=("geojson",))),
    ("/geojson/rest/services/a/FeatureServer", Location(
        root=("geojson", "rest", "services"), service="a", service_type="FeatureServer")),
    ("/geojson/rest/services/h/a/FeatureServer/3/query", Location(
        root=("geojson", "rest", "services"), folders=("h",), service="a",
        service_type="FeatureServer", layer="3", tail=("query",))),
    ("/rest/services/f1/f2/svc/FeatureServer/layers", Location(
        root=("rest", "services"), folders=("f1", "f2"), service="svc",
        service_type="FeatureServer", tail=("layers",))),
    ("/geojson/rest/info", Location(root=("geojson", "rest"), tail=("info",))),
])
def test_locations(path, expected):
    assert Location.of(path) == expected


def test_location_paths():
    location = Location.of("/rest/services/f1/svc/FeatureServer/0/query")
    assert location.path(folders=1) == "/rest/services/f1"
    assert location.path(service=True) == "/rest/services/f1/svc/FeatureServer"
    assert location.path(service=True, layer=True, tail=1) == \
        "/rest/services/f1/svc/FeatureServer/0/query"


@pytest.mark.parametrize(("geometry", "summary"), [
    (None, "null"),
    ({"x": 1.5, "y": 2}, "Point (1.5, 2)"),
    ({"points": [[1, 2], [3, 4]]}, "Multipoint: 2 points"),
    ({"paths": [[[0, 0], [1, 1]]]}, "Polyline: 1 path, 2 vertices"),
    ({"rings": [[[0, 0], [1, 0], [1, 1], [0, 0]], [[0, 0], [1, 0], [1, 1], [0, 0]]]},
     "Polygon: 2 rings, 8 vertices"),
])
def test_geometry_summaries(geometry, summary):
    assert geometry_summary(geometry) == summary


@pytest.mark.django_db
def test_folders_from_a_catalog_answer_are_linked(rf):
    """A folder listing (same shape as the catalog) links its folders and services."""
    from rest_framework.request import Request

    from koop_app.outputs.geoservices.html import HTMLRenderer

    request = Request(rf.get("/rest/services/geojson", {"f": "html"}))
    text = HTMLRenderer().render(
        {"currentVersion": 11.3, "folders": ["sub"], "services": [
            {"name": "geojson/a", "type": "FeatureServer",
             "url": "http://testserver/rest/services/geojson/a/FeatureServer"}]},
        renderer_context={"request": request, "view": None}).decode()
    assert "<h1>Folder: geojson</h1>" in text
    assert "/rest/services/geojson/sub?f=html" in hrefs(text)
    assert "http://testserver/rest/services/geojson/a/FeatureServer?f=html" in hrefs(text)


@pytest.mark.urls("tests.outputs.geoservices.crash_urls")
@pytest.mark.expected_server_error(500)
def test_a_crash_is_a_page_without_internals(client):
    response = client.get("/crash/rest/boom", {"f": "html"})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-error-code="500"' in text
    assert "reference" in text
    assert "secret" not in text
    assert "DATABASE_URL" not in text


@pytest.mark.django_db
def test_long_answers_show_their_first_rows(client, dataset, monkeypatch):
    from koop_app.outputs.geoservices import html as html_pages

    monkeypatch.setattr(html_pages, "MAX_TABLE_ROWS", 3)
    text = page(client, BASE + "/0/query", where="1=1")
    assert rows_of(text, "features") == 3
    assert "The first 3 are shown" in text
