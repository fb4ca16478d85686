"""ETag / Last-Modified from the data version, 304 on a match, Cache-Control and cacheHint."""

from __future__ import annotations

import pytest

from koop_app import data
from koop_app.models import Provider
from tests.conftest import collection, feature, point, write_json

URL = "/geojson/rest/services/c/FeatureServer/0"


def doc(n: int) -> dict:
    return collection([feature({"n": i}, point(i, i)) for i in range(n)])


@pytest.fixture
def dataset(make_dataset):
    return make_dataset("geojson", "c", doc(2), ttl=600)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["", "/query"])
def test_etag_and_304(client, dataset, path):
    first = client.get(URL + path, {"where": "1=1"})
    etag = first["ETag"]
    assert etag.startswith('"') and first["Last-Modified"]
    assert first["Cache-Control"] == "public, max-age=0, must-revalidate"
    again = client.get(URL + path, {"where": "1=1"}, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == etag
    other = client.get(URL + path, {"where": "n = 1"}, HTTP_IF_NONE_MATCH=etag)
    assert other.status_code == 200  # another question, another answer
    since = client.get(URL + path, {"where": "1=1"},
                       HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert since.status_code == 304


@pytest.mark.django_db
def test_new_data_version_changes_the_etag(client, dataset, data_dir):
    etag = client.get(URL + "/query")["ETag"]
    write_json(data_dir / "c.geojson", doc(3))
    data.refresh(dataset)
    data.reset_process_state()
    response = client.get(URL + "/query", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and response["ETag"] != etag


@pytest.mark.django_db
def test_cache_hint_allows_shared_caching_until_the_ttl(client, dataset):
    response = client.get(URL + "/query", {"cacheHint": "true"})
    maximum = int(response["Cache-Control"].split("max-age=")[1])
    assert response["Cache-Control"].startswith("public") and 590 <= maximum <= 600


@pytest.mark.django_db
def test_errors_and_pass_through_are_not_cached(client, dataset):
    error = client.get(URL + "/query", {"where": "nope = 1"})
    assert b'"error"' in error.content and "ETag" not in error
    provider = Provider.objects.get(name="geojson")  # saved as the admin does: seen at once
    provider.cache_policy = Provider.PASS_THROUGH
    provider.save()
    response = client.get(URL + "/query")
    assert response["Cache-Control"] == "no-store" and "ETag" not in response


@pytest.mark.django_db
def test_query_checks_and_304s_come_before_any_data(client, dataset, monkeypatch):
    """The stored copy's description decides a bad parameter and a current client copy: the
    layers are not even loaded."""
    etag = client.get(URL + "/query", {"where": "n = 1"})["ETag"]

    def no_data(*args, **kwargs):
        raise AssertionError("the layers were loaded")

    monkeypatch.setattr(data, "get_layers", no_data)
    bad = client.get(URL + "/query", {"where": "nope = 1"}).json()
    assert bad["error"]["code"] == 400
    unknown = client.get(URL + "/query", {"outFields": "nope"}).json()
    assert unknown["error"]["code"] == 400
    same = client.get(URL + "/query", {"where": "n = 1"}, HTTP_IF_NONE_MATCH=etag)
    assert same.status_code == 304 and same["ETag"] == etag
    posted = client.post(URL + "/query", {"where": "n = 1"}, HTTP_IF_NONE_MATCH=etag)
    assert posted.status_code == 304
