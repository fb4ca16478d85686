"""The elasticsearch provider: layer info, ids, errors, secrets, and a real node if given."""

from __future__ import annotations

import logging
import os

import orjson
import pytest

from koop_app.models import FeatureIdChunk
from koop_app.registry import registry

from .conftest import API_KEY, PASSWORD

pytestmark = pytest.mark.django_db

ROOT = "/elasticsearch/rest/services/{host}/{index}/FeatureServer"


def get(client, path: str, **params: str) -> dict:
    response = client.get(path, {"f": "json", **params})
    assert response.status_code == 200
    return orjson.loads(response.content)


def error_of(client, path: str, **params: str) -> dict:
    body = get(client, path, **params)
    assert "error" in body, body
    return body["error"]


def test_registered_with_its_facts():
    provider = type(registry.get("elasticsearch"))
    assert provider.hosts and provider.cache_policy == "pass-through"
    assert {o.name for o in provider.options_schema} >= {"geometry_field", "id_field",
                                                         "time_field", "max_result_window"}


def test_layer_info_from_the_mapping(client, es_dataset, cluster):
    es_dataset("places", id_field="oid", time_field="founded", max_result_window=250)
    cluster.requests.clear()
    layer = get(client, ROOT.format(host="local", index="places") + "/0")
    types = {f["name"]: f["type"] for f in layer["fields"]}
    assert types == {"oid": "esriFieldTypeOID", "name": "esriFieldTypeString",
                     "kind": "esriFieldTypeString", "pop": "esriFieldTypeInteger",
                     "big": "esriFieldTypeDouble", "score": "esriFieldTypeDouble",
                     "founded": "esriFieldTypeDate", "active": "esriFieldTypeSmallInteger"}
    assert layer["geometryType"] == "esriGeometryPoint"
    assert layer["objectIdField"] == "oid"
    assert layer["timeInfo"]["startTimeField"] == "founded"
    extent = layer["extent"]
    assert -170 <= extent["xmin"] < extent["xmax"] <= 170
    # The info costs the mapping and one size-0 search, no documents.
    searches = [r["body"] for r in cluster.requests if r["path"].endswith("_search")]
    assert [s["size"] for s in searches] == [0]


def test_geo_shape_layers_read_their_geometry_type(client, es_dataset):
    es_dataset("parcels", id_field="pid")
    layer = get(client, ROOT.format(host="local", index="parcels") + "/0")
    assert layer["geometryType"] == "esriGeometryPolygon"
    assert layer["fields"][0]["name"] == "pid"


def test_an_alias_and_basic_auth_with_failover(client, es_dataset):
    es_dataset("towns", host="basic", id_field="oid", max_result_window=250)
    body = get(client, ROOT.format(host="basic", index="towns") + "/0/query",
               where="oid <= 3", outFields="oid,name")
    assert [f["attributes"]["oid"] for f in body["features"]] == [1, 2, 3]


def test_assigned_object_ids_are_stable_and_queryable(client, es_dataset):
    es_dataset("parcels")  # no id_field: ids are assigned per document _id
    url = ROOT.format(host="local", index="parcels") + "/0/query"
    first = get(client, url, where="zone = 'C'", outFields="*", orderByFields="pid")
    again = get(client, url, where="zone = 'C'", outFields="*", orderByFields="pid")
    ids = [f["attributes"]["OBJECTID"] for f in first["features"]]
    assert ids == [f["attributes"]["OBJECTID"] for f in again["features"]]
    assert len(set(ids)) == len(ids) > 10 and FeatureIdChunk.objects.exists()
    wanted = {f["attributes"]["OBJECTID"]: f["attributes"]["pid"] for f in first["features"][:3]}
    picked = get(client, url, objectIds=",".join(map(str, wanted)), outFields="*")
    assert {f["attributes"]["OBJECTID"]: f["attributes"]["pid"]
            for f in picked["features"]} == wanted
    one = get(client, ROOT.format(host="local", index="parcels") + f"/0/{ids[0]}")
    assert one["feature"]["attributes"]["OBJECTID"] == ids[0]
    error = error_of(client, url, where="OBJECTID > 3")
    assert error["code"] == 400 and "objectIds" in error["details"][0]


def test_paging_past_the_window_needs_a_tiebreaker(client, es_dataset):
    es_dataset("places", max_result_window=250)
    error = error_of(client, ROOT.format(host="local", index="places") + "/0/query",
                     resultOffset="300", resultRecordCount="10")
    assert error["code"] == 400 and "tiebreaker_field" in error["details"][0]
    es_dataset("places", host="basic", max_result_window=250, tiebreaker_field="oid")
    body = get(client, ROOT.format(host="basic", index="places") + "/0/query",
               resultOffset="300", resultRecordCount="10", outFields="oid")
    assert sorted(f["attributes"]["oid"] for f in body["features"]) == list(range(301, 311))


@pytest.mark.parametrize(("where", "part"), [
    ("pop * 2 > 10", "pop * 2"),
    ("pop > score", "only a literal value"),
    ("length(kind) = 4", "LENGTH(kind)"),
    ("founded > CURRENT_DATE", "CURRENT_DATE"),
    ("kind > 'Port'", "normalizer"),
])
def test_clauses_the_dsl_cannot_say_are_400_naming_the_part(client, es_dataset, where, part):
    es_dataset("places", id_field="oid")
    error = error_of(client, ROOT.format(host="local", index="places") + "/0/query",
                     where=where)
    assert error["code"] == 400
    assert part in error["details"][0] and "Elasticsearch" in error["details"][0]


def test_relations_the_index_cannot_answer_are_400(client, es_dataset):
    es_dataset("parcels", id_field="pid")
    error = error_of(client, ROOT.format(host="local", index="parcels") + "/0/query",
                     geometry="0,0,1,1", spatialRel="esriSpatialRelTouches")
    assert error["code"] == 400 and "spatialRel" in error["details"][0]


def test_unknown_cluster_index_and_disallowed_index_are_404(client, es_dataset, cluster):
    es_dataset("places", host="nowhere")
    assert error_of(client, ROOT.format(host="nowhere", index="places"))["code"] == 404
    es_dataset("missing")
    error = error_of(client, ROOT.format(host="local", index="missing") + "/0")
    assert error["code"] == 404 and "does not exist" in error["message"]
    cluster.requests.clear()
    es_dataset("places", host="limited")
    assert error_of(client, ROOT.format(host="limited", index="places") + "/0")["code"] == 404
    assert cluster.requests == []  # refused before asking the cluster


def test_the_clusters_400_is_reported_clearly(client, es_dataset):
    es_dataset("places", id_field="oid")  # max_result_window left at 10000: the index has 250
    error = error_of(client, ROOT.format(host="local", index="places") + "/0/query",
                     resultOffset="240", resultRecordCount="20")
    assert error["code"] == 400
    assert "Result window is too large" in error["details"][0]


@pytest.mark.expected_server_error(502)
def test_refused_credentials_say_so_without_secrets(client, es_dataset, caplog):
    caplog.set_level(logging.DEBUG)
    es_dataset("places", host="wrong")
    es_dataset("secret")
    for host, index in (("wrong", "places"), ("local", "secret")):
        response = client.get(ROOT.format(host=host, index=index) + "/0", {"f": "json"})
        error = orjson.loads(response.content)["error"]
        assert error["code"] == 502 and "credentials" in error["message"]
        assert PASSWORD not in response.content.decode()
    get(client, ROOT.format(host="local", index="places") + "/0/query", where="1=1")
    for secret in (PASSWORD, API_KEY, "nope-" + PASSWORD):
        assert secret not in caplog.text


@pytest.mark.expected_server_error(502, 504)
def test_unreachable_slow_and_broken_clusters(client, es_dataset, cluster, settings):
    es_dataset("places", host="down")
    error = error_of(client, ROOT.format(host="down", index="places") + "/0")
    assert error["code"] == 502 and "connect" in error["message"].lower()
    es_dataset("parcels")
    cluster.broken = True
    error = error_of(client, ROOT.format(host="local", index="parcels") + "/0")
    assert error["code"] == 502
    cluster.broken = False
    settings.KOOP = {**settings.KOOP, "READ_TIMEOUT": 0.3, "MAX_FETCH_SECONDS": 0.5}
    cluster.delay = 1.0
    error = error_of(client, ROOT.format(host="local", index="parcels") + "/0")
    assert error["code"] in (502, 504)
    cluster.delay = 0.0


@pytest.mark.expected_server_error(503, 504)
def test_search_timeouts_and_throttling(client, es_dataset, cluster, settings):
    connections = settings.KOOP["CONNECTIONS"]["elasticsearch"]
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {"elasticsearch": {
        **connections, "local": {**connections["local"], "timeout": 2.5}}}}
    es_dataset("parcels", id_field="pid")
    url = ROOT.format(host="local", index="parcels") + "/0/query"
    cluster.requests.clear()
    get(client, url, where="1=1")
    assert cluster.requests[-1]["body"]["timeout"] == "2500ms"
    cluster.timed_out = True
    try:
        error = error_of(client, url, where="1=1")
        assert error["code"] == 504 and "timed out" in error["message"]
    finally:
        cluster.timed_out = False
    cluster.throttled = True
    try:
        assert error_of(client, url, where="1=1")["code"] == 503
    finally:
        cluster.throttled = False


def test_connection_secrets_are_masked_for_the_admin(cluster):
    from koop_app.connections import connection, redacted

    shown = orjson.dumps(redacted(connection("elasticsearch", "basic"))).decode()
    assert PASSWORD not in shown
    assert API_KEY not in orjson.dumps(redacted(connection("elasticsearch", "local"))).decode()


@pytest.mark.skipif(not os.environ.get("ELASTICSEARCH_URL"),
                    reason="ELASTICSEARCH_URL is not set: no real Elasticsearch/OpenSearch node "
                           "can be installed here (the fake cluster covers the API)")
def test_against_a_real_node(client, make_dataset, settings):
    """With ELASTICSEARCH_URL (e.g. http://127.0.0.1:9200, credentials in ELASTICSEARCH_API_KEY
    or the URL): an index is written, served and compared with what was written."""
    from koop_app import net

    url = os.environ["ELASTICSEARCH_URL"].rstrip("/")
    headers = {"Content-Type": "application/json"}
    if os.environ.get("ELASTICSEARCH_API_KEY"):
        headers["Authorization"] = f"ApiKey {os.environ['ELASTICSEARCH_API_KEY']}"
    settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": ["0.0.0.0/0", "::/0"],
                     "CONNECTIONS": {"elasticsearch": {"real": {
                         "url": url, "api_key": os.environ.get("ELASTICSEARCH_API_KEY")}}}}
    index = "koop-test-places"
    net.request("DELETE", f"{url}/{index}", headers=headers, accept={404})
    net.request("PUT", f"{url}/{index}", headers=headers, body=orjson.dumps({"mappings": {
        "properties": {"oid": {"type": "integer"}, "kind": {"type": "keyword"},
                       "pop": {"type": "integer"}, "location": {"type": "geo_point"}}}}))
    lines = []
    for number in range(1, 301):
        lines.append(orjson.dumps({"index": {"_id": str(number)}}))
        lines.append(orjson.dumps({"oid": number, "kind": ["City", "town"][number % 2],
                                   "pop": number * 10,
                                   "location": {"lat": number % 80, "lon": number % 170}}))
    net.request("POST", f"{url}/{index}/_bulk?refresh=true", body=b"\n".join(lines) + b"\n",
                headers={**headers, "Content-Type": "application/x-ndjson"})
    try:
        make_dataset("elasticsearch", index, None, host="real", options={"id_field": "oid"})
        root = ROOT.format(host="real", index=index) + "/0/query"
        assert get(client, root, where="kind = 'city'", returnCountOnly="true") == {
            "count": 150}
        body = get(client, root, where="pop > 2000", orderByFields="pop DESC", outFields="*",
                   resultRecordCount="5")
        assert [f["attributes"]["oid"] for f in body["features"]] == [300, 299, 298, 297, 296]
    finally:
        net.request("DELETE", f"{url}/{index}", headers=headers, accept={404})
