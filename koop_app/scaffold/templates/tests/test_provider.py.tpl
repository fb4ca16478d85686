"""Tests of the $name provider, as generated. Run them with pytest-django and the
project's settings:

    python -m pytest $test_path
"""

from __future__ import annotations

import io
import uuid

import orjson
import pytest
from django.core.management import call_command

from koop_app.errors import OptionsError
from koop_app.provider import contract_problems
from koop_app.testing import SourceServer
from koop_app.urls import build_urlpatterns
from $module import $class_name

PROVIDER = "$module.$class_name"
RECORDS = {"records": [
    {"id": 1, "name": "North gate", "lat": 40.01, "lon": -105.27},
    {"id": 2, "name": "South gate", "lat": 39.98, "lon": -105.25},
    {"id": 3, "name": "No position", "lat": None, "lon": None},
]}


@pytest.fixture
def source():
    """A local HTTP server standing in for the API (tests reach 127.0.0.1 only)."""
    with SourceServer() as server:
        yield server


@pytest.fixture
def served(settings):
    """The provider registered as a project registers it, and its routes mounted."""
    providers = [p for p in settings.KOOP.get("PROVIDERS", []) if p != PROVIDER]
    # The fetch policy refuses loopback addresses unless they are listed.
    settings.KOOP = {**settings.KOOP, "PROVIDERS": [*providers, PROVIDER],
                     "ALLOWED_SOURCE_NETWORKS": ["127.0.0.1/32"]}
    settings.ROOT_URLCONF = type("URLs", (), {"urlpatterns": build_urlpatterns()})


@pytest.fixture
def layer():
    """A new dataset id for each test, so that no test reads a copy another one cached."""
    return Layer(f"sample-{uuid.uuid4().hex[:8]}")


class Layer:
    def __init__(self, dataset_id: str) -> None:
        self.id = dataset_id
        self.url = f"/$name/rest/services/{dataset_id}/FeatureServer/0"
        self.query = f"{self.url}/query"

    def register(self, url: str, *options: str) -> None:
        extra = [arg for option in options for arg in ("--option", option)]
        call_command("koop_dataset", "$name", self.id, "--option", f"url={url}", *extra,
                     "--no-check", stdout=io.StringIO())


def test_the_provider_keeps_the_contract():
    assert contract_problems($class_name) == []


def test_a_url_is_required_and_checked():
    with pytest.raises(OptionsError):
        $class_name().clean_options({})
    with pytest.raises(OptionsError):
        $class_name().clean_options({"url": "ftp://example.com/records"})


@pytest.mark.django_db
def test_records_are_served_as_features(client, served, source, layer):
    layer.register(source.route("/records", body=orjson.dumps(RECORDS)))
    answer = client.get(layer.query, {"where": "1=1", "outFields": "*", "f": "json"}).json()
    assert [f["attributes"]["name"] for f in answer["features"]] == [
        "North gate", "South gate", "No position"]
    assert answer["features"][0]["geometry"] == {"x": -105.27, "y": 40.01}
    assert "geometry" not in answer["features"][2] or not answer["features"][2]["geometry"]
    count = client.get(layer.query, {"where": "name LIKE 'North%'", "returnCountOnly": "true",
                               "f": "json"}).json()
    assert count == {"count": 1}


@pytest.mark.django_db
def test_the_api_key_is_sent_and_never_shown(client, served, source, layer):
    layer.register(source.route("/keyed", body=orjson.dumps(RECORDS)), "api_key=k-123")
    answer = client.get(layer.query, {"where": "1=1", "f": "json"})
    assert len(answer.json()["features"]) == 3
    assert source.requests[-1]["x-api-key"] == "k-123"
    info = client.get(layer.url, {"f": "json"})
    assert b"k-123" not in info.content and b"k-123" not in answer.content


@pytest.mark.django_db
def test_a_failing_source_is_a_clear_error(client, served, source, layer):
    layer.register(source.route("/broken", status=500))
    answer = client.get(layer.query, {"where": "1=1", "f": "json"}).json()
    assert answer["error"]["code"] == 502
    assert "HTTP 500" in answer["error"]["message"]


@pytest.mark.django_db
def test_an_answer_that_is_not_json_is_a_clear_error(client, served, source, layer):
    layer.register(source.route("/not-json", body=b"<html>maintenance</html>"))
    answer = client.get(layer.query, {"where": "1=1", "f": "json"}).json()
    assert answer["error"]["code"] == 502
    assert "did not answer JSON" in answer["error"]["message"]
