"""The postgis provider: layers from the catalog, named queries, errors, secrets, injection."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
import pytest

from koop_app.testing import free_port
from providers.postgis import catalog, pools
from tests.conftest import body_of

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
ROOT = "/postgis/rest/services"


def get(client, path: str, **params: Any) -> dict[str, Any]:
    return orjson.loads(body_of(client.get(f"{ROOT}/{path}", params)))


def error_of(body: dict[str, Any]) -> tuple[int, str]:
    assert "error" in body, body
    return body["error"]["code"], body["error"]["message"]


def assert_no_secret(caplog, *texts: Any) -> None:
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for text in (logged, *map(str, texts)):
        assert PASSWORD not in text
        assert "s3cr3t" not in text


def test_layer_info_from_the_catalog(client, postgis_dataset):
    postgis_dataset("public.places")
    info = get(client, "gis/public.places/FeatureServer/0")
    assert info["type"] == "Feature Layer"
    assert info["geometryType"] == "esriGeometryPoint"
    assert info["objectIdField"] == "gid"
    types = {f["name"]: f["type"] for f in info["fields"]}
    assert types == {"gid": "esriFieldTypeOID", "name": "esriFieldTypeString",
                     "kind": "esriFieldTypeString", "value": "esriFieldTypeDouble",
                     "amount": "esriFieldTypeInteger", "big": "esriFieldTypeDouble",
                     "flag": "esriFieldTypeSmallInteger", "day": "esriFieldTypeDate",
                     "seen": "esriFieldTypeDate"}
    extent = info["extent"]
    assert -20 <= extent["xmin"] < extent["xmax"] <= 20 and 30 <= extent["ymin"] < 60
    service = get(client, "gis/public.places/FeatureServer")
    assert service["layers"][0]["geometryType"] == "esriGeometryPoint"


def test_polygons_in_web_mercator_are_served_in_wgs84(client, postgis_dataset):
    postgis_dataset("public.zones")
    info = get(client, "gis/public.zones/FeatureServer/0")
    assert info["geometryType"] == "esriGeometryPolygon"
    assert info["extent"]["xmin"] == pytest.approx(-16.5, abs=0.01)
    types = {f["name"]: f["type"] for f in info["fields"]}
    assert types["area_m2"] == "esriFieldTypeDouble"
    body = get(client, "gis/public.zones/FeatureServer/0/query", where="zid = 1",
               outFields="*", f="geojson")
    (feature,) = body["features"]
    ring = feature["geometry"]["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert (min(xs), max(xs)) == pytest.approx((-16.5, -13.5), abs=1e-6)
    assert (min(ys), max(ys)) == pytest.approx((30.5, 33.5), abs=1e-6)
    assert feature["properties"]["area_m2"] == 1000.5
    # Contains in Web Mercator: the zone holding a point given in 3857.
    body = get(client, "gis/public.zones/FeatureServer/0/query", geometry="-1669792,3763310",
               geometryType="esriGeometryPoint", inSR="3857",
               spatialRel="esriSpatialRelWithin", outFields="zid")
    assert [f["attributes"]["zid"] for f in body["features"]] == [1]


def test_a_table_without_geometry_is_served_as_a_table(client, postgis_dataset):
    postgis_dataset("public.readings")
    info = get(client, "gis/public.readings/FeatureServer/0")
    assert info["type"] == "Table" and "geometryType" not in info
    body = get(client, "gis/public.readings/FeatureServer/0/query", where="reading > 20",
               outFields="*", orderByFields="reading DESC")
    assert [f["attributes"]["rid"] for f in body["features"]] == [20, 19, 18, 17, 16, 15, 14]
    assert "geometry" not in body["features"][0]
    assert error_of(get(client, "gis/public.readings/FeatureServer/0/query",
                        geometry="0,0,1,1"))[0] == 400


def test_named_queries(client, postgis_dataset):
    postgis_dataset("big_values")
    body = get(client, "gis/big_values/FeatureServer/0/query", where="name = 'alpha'",
               returnCountOnly="true")
    direct = get(client, "gis/big_values/FeatureServer/0/query", returnCountOnly="true")
    assert 0 < body["count"] < direct["count"]
    info = get(client, "gis/big_values/FeatureServer/0")
    assert info["objectIdField"] == "OBJECTID"  # a query has no key: see the README
    postgis_dataset("kinds")
    body = get(client, "gis/kinds/FeatureServer/0/query", outFields="*",
               orderByFields="n DESC")
    assert get(client, "gis/kinds/FeatureServer/0")["objectIdField"] == "first"
    assert sum(f["attributes"]["n"] for f in body["features"]) == 240


def test_a_layer_without_integer_key(client, postgis_dataset):
    postgis_dataset("public.nokey")
    body = get(client, "gis/public.nokey/FeatureServer/0/query", where="label > 'n1'",
               outFields="*")
    assert sorted(f["attributes"]["label"] for f in body["features"]) == ["n2", "n3", "n4"]
    ids = {f["attributes"]["OBJECTID"] for f in body["features"]}
    again = get(client, "gis/public.nokey/FeatureServer/0/query", where="label > 'n1'",
                outFields="*")
    assert ids == {f["attributes"]["OBJECTID"] for f in again["features"]}  # stable
    code, message = error_of(get(client, "gis/public.nokey/FeatureServer/0/query",
                                 objectIds="1"))
    assert code == 400 and "primary key" in str(get(client, "gis/public.nokey/FeatureServer"
                                                          "/0/query", objectIds="1"))


def test_one_feature_by_id(client, postgis_dataset):
    postgis_dataset("public.places")
    body = get(client, "gis/public.places/FeatureServer/0/7")
    assert body["feature"]["attributes"]["gid"] == 7
    assert set(body["feature"]["geometry"]) == {"x", "y"}


def test_unknown_connection_and_table_are_404(client, postgis_dataset, connections):
    postgis_dataset("public.places", host="nowhere")
    postgis_dataset("public.missing")
    postgis_dataset("hidden.secrets", host="public_only")
    postgis_dataset("pg_catalog.pg_authid")
    postgis_dataset("nodot")
    for path in ("nowhere/public.places", "gis/public.missing", "public_only/hidden.secrets",
                 "gis/pg_catalog.pg_authid", "gis/nodot"):
        code, _ = error_of(get(client, f"{path}/FeatureServer/0/query", where="1=1"))
        assert code == 404, path


@pytest.mark.expected_server_error(502)
def test_connection_refused_says_so_without_the_password(client, postgis_dataset, settings,
                                                         caplog):
    port = free_port()  # nothing listens there
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {"postgis": {"down": {
        "dsn": f"postgresql://koop:{PASSWORD}@127.0.0.1:{port}/gis"}}}}
    postgis_dataset("public.places", host="down")
    caplog.set_level(logging.DEBUG)
    body = get(client, "down/public.places/FeatureServer/0/query", where="1=1")
    code, message = error_of(body)
    assert code == 502 and "connect" in message.lower()
    assert_no_secret(caplog, body)


@pytest.mark.expected_server_error(502)
def test_wrong_password_is_an_auth_error_and_never_shown(client, postgis_dataset, settings,
                                                         cluster, caplog):
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {"postgis": {"wrong": {
        "dsn": cluster.dsn, "password": PASSWORD + "-wrong"}}}}
    postgis_dataset("public.places", host="wrong")
    caplog.set_level(logging.DEBUG)
    body = get(client, "wrong/public.places/FeatureServer/0")
    code, message = error_of(body)
    assert code == 502 and "credentials" in message
    assert_no_secret(caplog, body)
    assert any("password authentication failed" in r.getMessage() for r in caplog.records)


@pytest.mark.expected_server_error(504)
def test_statement_timeout_is_a_query_timeout(client, postgis_dataset, settings, cluster,
                                              caplog):
    settings.KOOP = {**settings.KOOP, "QUERY_TIMEOUT_SECONDS": 0.5, "CONNECTIONS": {
        "postgis": {"gis": cluster.connection_settings(queries={
            "slow": "SELECT gid, name FROM public.places WHERE pg_sleep(0.05) IS NOT NULL"})}}}
    postgis_dataset("slow")
    caplog.set_level(logging.DEBUG)
    body = get(client, "gis/slow/FeatureServer/0/query", returnCountOnly="true")
    code, message = error_of(body)
    assert code == 504 and "0.5 seconds" in message
    assert_no_secret(caplog, body)


@pytest.mark.expected_server_error(502)
def test_statements_run_read_only(client, postgis_dataset, settings, cluster):
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.touched (n integer)")
        conn.execute("CREATE OR REPLACE FUNCTION public.touch() RETURNS integer LANGUAGE sql "
                     "AS 'INSERT INTO public.touched VALUES (1) RETURNING n'")
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {"postgis": {"gis": (
        cluster.connection_settings(queries={"writer": "SELECT public.touch() AS n"}))}}}
    postgis_dataset("writer")
    code, _ = error_of(get(client, "gis/writer/FeatureServer/0/query", where="1=1"))
    assert code == 502
    with psycopg.connect(cluster.url) as conn:
        assert conn.execute("SELECT count(*) FROM public.touched").fetchone() == (0,)


@pytest.mark.parametrize("params", [
    {"where": "1=1; DROP TABLE public.places"},
    {"where": "name = 'x' OR 1=1 --"},
    {"where": "name = 'x' /* */"},
    {"where": "pg_sleep(5) IS NULL"},
    {"where": "gid IN (SELECT gid FROM public.places)"},
    {"where": "public.places.gid = 1"},
    {"where": "current_user = 'koop'"},
    {"where": "name = $$x$$"},
    {"where": "\"name\" = 'x'); DROP TABLE public.places; --"},
    {"outFields": "name; DROP TABLE public.places"},
    {"outFields": "(SELECT 1)"},
    {"outFields": "gid, pg_sleep(1)"},
    {"orderByFields": "name; DROP TABLE public.places"},
    {"orderByFields": "name DESC, (SELECT 1)"},
    {"orderByFields": "pg_sleep(1)"},
    {"groupByFieldsForStatistics": "name; DROP TABLE public.places",
     "outStatistics": '[{"statisticType":"count","onStatisticField":"gid"}]'},
    {"havingClause": "COUNT(gid) > 1; DROP TABLE public.places",
     "groupByFieldsForStatistics": "kind",
     "outStatistics": '[{"statisticType":"count","onStatisticField":"gid"}]'},
    {"outStatistics": '[{"statisticType":"count","onStatisticField":"gid",'
                      '"outStatisticFieldName":"n\\"; DROP TABLE public.places; --"}]'},
])
def test_sql_injection_is_refused(client, postgis_dataset, cluster, params):
    postgis_dataset("public.places")
    code, _ = error_of(get(client, "gis/public.places/FeatureServer/0/query", **params))
    assert code == 400
    with psycopg.connect(cluster.url) as conn:
        assert conn.execute("SELECT count(*) FROM public.places").fetchone() == (240,)


def test_values_are_bound_never_pasted(client, postgis_dataset):
    postgis_dataset("public.places")
    tricky = "x'); DROP TABLE public.places; --"
    body = get(client, "gis/public.places/FeatureServer/0/query",
               where=f"name = '{tricky.replace(chr(39), chr(39) * 2)}'", returnCountOnly="true")
    assert body == {"count": 0}


def test_a_value_problem_is_a_400(client, postgis_dataset):
    postgis_dataset("public.places")
    code, message = error_of(get(client, "gis/public.places/FeatureServer/0/query",
                                 where="LOG(amount - amount) > 1"))
    assert code == 400 and "logarithm" in str(get(client, "gis/public.places/FeatureServer/0/"
                                                   "query", where="LOG(amount - amount) > 1"))


def test_one_pool_per_connection_and_brief_metadata(client, postgis_dataset, cluster):
    postgis_dataset("public.places")
    for _ in range(5):
        get(client, "gis/public.places/FeatureServer/0/query", where="amount > 3",
            returnCountOnly="true")
    server = pools.server("gis")
    assert server.pool().get_stats()["connections_num"] <= 2  # pool_size
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.readings ADD COLUMN note text")
    try:
        catalog.forget()  # the metadata is kept METADATA_SECONDS; forgetting it reads anew
        postgis_dataset("public.readings")
        info = get(client, "gis/public.readings/FeatureServer/0")
        assert "note" in {f["name"] for f in info["fields"]}
    finally:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("ALTER TABLE public.readings DROP COLUMN note")


def test_the_provider_keeps_the_contract(postgis_dataset):
    from koop_app.data import provider_request
    from koop_app.errors import OptionsError
    from koop_app.provider import contract_problems
    from koop_app.registry import registry

    plugin = registry.get("postgis")
    assert contract_problems(type(plugin)) == []
    assert plugin.hosts and plugin.cache_policy == "pass-through"
    with pytest.raises(OptionsError):
        plugin.clean_options({"no_such_option": 1})
    dataset = postgis_dataset("public.places")
    request = provider_request(dataset)
    assert request.params["host"] == "gis" and request.params["id"] == "public.places"
    answer = plugin.get_data(request)  # the layer's info: no rows, its fields and extent
    assert answer["type"] == "FeatureCollection" and answer["features"] == []
    assert answer["metadata"]["idField"] == "gid" and answer["count"] == 240
    assert plugin.create_key(request) == "postgis:gis:public.places"
