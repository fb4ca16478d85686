"""The request path outputs share (koop_app.outputs.serving), through tests/outputs/tiny.py."""

from __future__ import annotations

import logging

import pytest
from django.urls import include, path

from koop_app.models import Dataset, Provider
from koop_app.urls import build_urlpatterns
from tests.auth.conftest import token


@pytest.fixture
def site(settings, db):
    settings.KOOP = {**settings.KOOP, "OUTPUTS": ["koop_app.outputs.geoservices",
                                                  "tests.outputs.tiny"]}
    settings.ROOT_URLCONF = type("URLConf", (), {"urlpatterns": [
        path("", include((build_urlpatterns(), "koop")))]})
    Provider.sync_from_registry()


def test_geoservices_parameters_run_on_the_engine_with_http_caching(client, site, secured):
    secured(Dataset.PUBLIC)
    everything = client.get("/geojson/tiny/vault/0/matching")
    assert everything.status_code == 200 and everything.content.endswith(b" matching")
    some = client.get("/geojson/tiny/vault/0/matching", {"where": "1=0"})
    assert some.content == b"0 matching"
    assert everything["ETag"] != some["ETag"]  # the question is part of the validator
    assert everything["Cache-Control"] == "public, max-age=0, must-revalidate"
    again = client.get("/geojson/tiny/vault/0/matching", HTTP_IF_NONE_MATCH=everything["ETag"])
    assert again.status_code == 304


def test_errors_are_answered_in_the_outputs_format(client, site, secured):
    secured(Dataset.PUBLIC)
    bad = client.get("/geojson/tiny/vault/0/matching", {"where": "nope = 1"})
    assert bad.status_code == 400 and bad.content.startswith(b"error 400: ")
    missing = client.get("/geojson/tiny/vault/5/matching")
    assert missing.status_code == 404 and missing.content == b"error 404: Layer not found."
    assert client.get("/geojson/tiny/nothing/0/matching").status_code == 404


def test_refusals_use_the_routes_error_response(client, site, secured, alice):
    dataset = secured(Dataset.RESTRICTED)
    dataset.allowed_users.add(alice)
    refused = client.get("/geojson/tiny/vault/0/matching")
    assert refused.status_code == 401 and refused.content.startswith(b"error 499: ")
    allowed = client.get("/geojson/tiny/vault/0/matching",
                         HTTP_AUTHORIZATION=f"Bearer {token(client)}")
    assert allowed.status_code == 200
    # Secured answers stay in the caller's cache, keyed by its credentials.
    assert allowed["Cache-Control"].startswith("private") and "Authorization" in allowed["Vary"]


@pytest.mark.expected_server_error(500)
def test_a_crash_is_logged_and_answered_with_a_reference(client, site, secured, caplog):
    secured(Dataset.PUBLIC)
    with caplog.at_level(logging.ERROR):
        crashed = client.get("/geojson/tiny/vault/0/matching", {"crash": "1"})
    assert crashed.status_code == 500
    assert crashed.content.startswith(b"error 500: An unexpected error occurred, reference ")
    assert b"a bug of ours" not in crashed.content
    assert any(getattr(r, "event", "") == "request.crashed" for r in caplog.records)


def test_outputs_are_listed_with_what_each_dataset_offers(client, site, secured):
    secured(Dataset.PUBLIC)
    info = client.get("/rest/info", {"f": "json"}).json()
    assert {"name": "tiny", "offers": ["Tiny counts"]} in info["outputs"]
    assert {"name": "geoservices", "offers": ["FeatureServer"]} in info["outputs"]
    [entry] = client.get("/rest/services/geojson", {"f": "json"}).json()["services"]
    assert entry["offers"] == {
        "FeatureServer": "http://testserver/geojson/rest/services/vault/FeatureServer",
        "Tiny counts": "http://testserver/geojson/tiny/vault/count"}
