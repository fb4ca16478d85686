"""The arcgis provider against sources that page differently, fail, or want a token."""

from __future__ import annotations

import logging

import orjson
import pytest
from django.conf import settings as django_settings

from koop_app.models import Dataset
from koop_app.testing import SourceServer
from providers.arcgis.source import tokens
from tests.auth.conftest import PASSWORD, token
from tests.providers.arcgis.conftest import COUNT, SOURCE_PAGE, arcgis_dataset, connect, proxy
from tests.providers.arcgis.stub import NoPaginationServer


def error_of(body: dict) -> tuple[int, str]:
    assert "error" in body, body
    return body["error"]["code"], body["error"]["message"]


# --- a source without pagination ----------------------------------------------------------

def test_a_source_without_pagination_is_paged_by_object_ids(upstream, client):
    with NoPaginationServer(upstream.url) as stub:
        connect(django_settings, old={"url": f"{stub.url}/geojson/rest/services"})
        arcgis_dataset(host="old", max_record_count=2000)
        whole = proxy(client, "/0/query", {"where": "1=1", "outFields": "*", "f": "json"},
                      host="old")
        assert sorted(f["attributes"]["fid"] for f in whole["features"]) == \
            list(range(1, COUNT + 1))
        params = {"where": "rank < 9", "orderByFields": "name DESC", "resultOffset": "20",
                  "resultRecordCount": "50", "outFields": "name", "f": "json"}
        got = proxy(client, "/0/query", params, host="old")
        wanted = upstream.direct(client, "/0/query", params)
        assert got["features"] == wanted["features"]
        assert got.get("exceededTransferLimit") == wanted.get("exceededTransferLimit")
        queries = [a for a in stub.asked if a["path"].endswith("/0/query")]
        assert all("resultOffset" not in a for a in queries)
        chunks = [a["objectIds"].split(",") for a in queries if "returnIdsOnly" not in a]
        assert chunks and all(len(chunk) <= SOURCE_PAGE for chunk in chunks)


def test_forced_offset_paging_on_such_a_source_is_a_clear_error(upstream, client):
    with NoPaginationServer(upstream.url) as stub:
        connect(django_settings, old={"url": f"{stub.url}/geojson/rest/services"})
        arcgis_dataset(host="old", options={"paging": "offset"})
        code, message = error_of(proxy(client, "/0/query", {"where": "1=1", "f": "json"},
                                       host="old"))
        assert code == 400 and message == "Unable to complete operation."


# --- errors -------------------------------------------------------------------------------

def test_unknown_server_is_not_found(upstream, client):
    arcgis_dataset(host="elsewhere")
    code, _ = error_of(proxy(client, "/0/query", {"f": "json"}, host="elsewhere"))
    assert code == 404
    code, _ = error_of(proxy(client, "", {"f": "json"}, host="nobody"))
    assert code == 404


def test_unknown_service_at_the_source_is_not_found(upstream, client):
    arcgis_dataset("missing")
    code, message = error_of(proxy(client, "/0/query", {"f": "json"}, service="missing"))
    assert code == 404 and "not found" in message


def test_unknown_layer_is_not_found(upstream, client):
    arcgis_dataset()
    code, _ = error_of(proxy(client, "/9/query", {"where": "1=1", "f": "json"}))
    assert code == 404


def test_a_where_the_source_refuses_is_a_bad_request(upstream, client):
    arcgis_dataset()
    code, _ = error_of(proxy(client, "/0/query", {"where": "nosuch = 1", "f": "json"}))
    assert code == 400


def test_an_unreachable_source(transactional_db, client, settings):
    connect(settings, gone={"url": "http://127.0.0.1:9/arcgis/rest/services"})
    arcgis_dataset(host="gone")
    code, message = error_of(proxy(client, "/0/query", {"f": "json"}, host="gone"))
    assert code == 502 and message.startswith("Could not connect")


@pytest.mark.parametrize(("script", "status"), [
    ({"body": b"<html>maintenance</html>", "content_type": "text/html"}, 502),
    ({"body": b"{}", "delay": 3.0}, 502),  # no answer's head in time: "could not connect"
    ({"slowly": b'{"layers": []}' * 40}, 504),  # a body that trickles past the limit
    ({"body": orjson.dumps({"error": {"code": 500, "message": "Database down"}})}, 502),
    ({"status": 503, "body": b""}, 502),
    ({"status": 429, "body": b"", "headers": {"Retry-After": "30"}}, 503),
])
def test_failing_sources_give_clear_errors(transactional_db, client, settings, script, status):
    with SourceServer() as server:
        path = "/arcgis/rest/services/parks/FeatureServer/layers"
        if "slowly" in script:
            server.route_slowly(path, script["slowly"], seconds=4.0)
        else:
            server.route(path, **script)
        connect(settings, flaky={"url": server.url("/arcgis/rest/services")})
        arcgis_dataset(host="flaky")
        code, message = error_of(proxy(client, "/0/query", {"f": "json"}, host="flaky"))
    assert code == status
    assert "127.0.0.1" not in message and "rest/services" not in message


# --- tokens -------------------------------------------------------------------------------

@pytest.fixture
def secured_upstream(upstream, django_user_model):
    django_user_model.objects.create_user("alice", "alice@example.org", PASSWORD)
    Dataset.objects.filter(provider__name="geojson", dataset_id="parks").update(
        access="signed-in")
    return upstream


def test_a_secured_source_without_credentials_is_an_auth_error(secured_upstream, client):
    arcgis_dataset()
    code, message = error_of(proxy(client, "/0/query", {"where": "1=1", "f": "json"}))
    assert code == 502 and "refused access" in message


def test_username_and_password_get_a_token(secured_upstream, client, settings, sent, caplog):
    caplog.set_level(logging.DEBUG)
    connect(settings, local={"url": secured_upstream.services, "username": "alice",
                             "password": PASSWORD, "referer": "https://maps.example.org/"})
    arcgis_dataset(max_record_count=2000)
    got = proxy(client, "/0/query", {"where": "1=1", "outFields": "fid", "f": "json"})
    assert len(got["features"]) == COUNT
    generated = [call for call in sent if call["url"].endswith("/generateToken")]
    assert len(generated) == 1
    issued = next(iter(tokens._tokens.values()))[0]
    queries = [call for call in sent if "/FeatureServer/" in call["url"]]
    assert all(call["form"]["token"] == issued for call in queries)
    assert all("token" not in call["url"] and call["method"] == "POST" for call in queries)
    assert all(call["headers"]["Referer"] == "https://maps.example.org/" for call in queries)
    # An expired or revoked token (498) is renewed once, then the request goes on.
    key = next(iter(tokens._tokens))
    tokens._tokens[key] = ("revoked-token", tokens._tokens[key][1])
    again = proxy(client, "/0/query", {"where": "rank = 1", "returnCountOnly": "true",
                                       "f": "json"})
    assert again["count"] > 0
    assert len([call for call in sent if call["url"].endswith("/generateToken")]) == 2
    assert PASSWORD not in caplog.text and issued not in caplog.text
    assert "revoked-token" not in caplog.text


def test_a_static_token(secured_upstream, client, settings, caplog):
    caplog.set_level(logging.DEBUG)
    issued = token(client)
    connect(settings, local={"url": secured_upstream.services, "token": issued})
    arcgis_dataset()
    got = proxy(client, "/0/query", {"where": "fid = 3", "outFields": "name", "f": "json"})
    assert [f["attributes"]["name"] for f in got["features"]] == ["park 003"]
    connect(settings, local={"url": secured_upstream.services, "token": "not-a-token"})
    code, message = error_of(proxy(client, "/0/query", {"where": "1=1", "f": "json"}))
    assert code == 502 and "not-a-token" not in message
    assert issued not in caplog.text and "not-a-token" not in caplog.text


def test_wrong_password_is_an_auth_error(secured_upstream, client, settings, caplog):
    caplog.set_level(logging.DEBUG)
    connect(settings, local={"url": secured_upstream.services, "username": "alice",
                             "password": "wrong horse"})
    arcgis_dataset()
    code, message = error_of(proxy(client, "/0/query", {"where": "1=1", "f": "json"}))
    assert code == 502 and "username and password" in message
    assert "wrong horse" not in caplog.text


@pytest.mark.parametrize("url", ["ftp://gis.example.org/rest/services",
                                 "http://reader:hunter2@127.0.0.1:9/rest/services", ""])
def test_a_badly_configured_server(transactional_db, client, settings, caplog, url):
    connect(settings, bad={"url": url})
    arcgis_dataset(host="bad")
    code, message = error_of(proxy(client, "/0/query", {"f": "json"}, host="bad"))
    assert code == 502 and "not configured correctly" in message
    assert "hunter2" not in caplog.text
