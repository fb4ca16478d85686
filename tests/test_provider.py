"""The provider contract, and every registered provider run through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from koop_app.data import provider_request
from koop_app.errors import OptionsError, ProviderError, SourceTimeoutError
from koop_app.models import Dataset, Provider
from koop_app.options import Option
from koop_app.provider import Controller, ProviderRequest, Route, contract_problems
from koop_app.provider import Provider as ProviderPlugin
from koop_app.registry import registry
from tests.conftest import collection, feature, point, write_json

# A working source for each built-in provider; a new provider must add one here. Each sample
# is (host, dataset id, source paths served by the session's SourceServer, options): "{url}" in
# an option is the server's root URL. Providers whose host names a configured server get
# KOOP["CONNECTIONS"][name]["main"] = {"url": <root>} and are asked a layer's query.
POINT_FEATURES = (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
                  b'{"name": "A"}, "geometry": {"type": "Point", "coordinates": [20.25, 10.5]}}]}')
SAMPLES: dict[str, tuple[str, str, dict[str, bytes], dict[str, Any]]] = {
    "geojson": ("", "sample", {}, {"source": "sample.geojson"}),
    "csv": ("", "sample", {}, {"source": "sample.csv"}),
    "records": ("", "sample", {"/sample-records": b'{"records": [{"id": 1, "lat": 10.5, '
                                                  b'"lon": 20.25}], "total": 1}'},
                {"url": "{url}/sample-records"}),
    # an object of a bucket (host) on an S3-compatible endpoint, path-style
    "s3": ("sample-bucket", "sample", {"/sample-bucket/sample.geojson": POINT_FEATURES},
           {"endpoint": "{url}", "key": "sample.geojson", "anonymous": True}),
    # a file of a repository (host owner::repo, id the path) through the contents API
    "github": ("octo::maps", "sample.geojson",
               {"/repos/octo/maps/contents/sample.geojson": POINT_FEATURES},
               {"api_url": "{url}"}),
    # a configured server: a FeatureServer scripted on the SourceServer
    "arcgis": ("main", "sample", {
        "/rest/services/sample/FeatureServer/layers": b'{"layers": [{"id": 0, "name": "S", '
        b'"type": "Feature Layer", "geometryType": "esriGeometryPoint", "objectIdField": "oid", '
        b'"advancedQueryCapabilities": {"supportsPagination": true}, '
        b'"fields": [{"name": "oid", "type": "esriFieldTypeOID"}]}]}',
        "/rest/services/sample/FeatureServer/0/query": b'{"features": [{"attributes": '
        b'{"oid": 1}, "geometry": {"x": 20.25, "y": 10.5}}]}'}, {}),
    # a configured cluster: the mapping and one search answer scripted on the SourceServer
    "elasticsearch": ("main", "sample", {
        "/sample/_mapping": b'{"sample": {"mappings": {"properties": {"name": {"type": '
        b'"keyword"}, "location": {"type": "geo_point"}}}}}',
        "/sample/_search": b'{"took": 1, "timed_out": false, "hits": {"total": {"value": 1, '
        b'"relation": "eq"}, "hits": [{"_index": "sample", "_id": "a1", "_source": {"name": '
        b'"A", "location": {"lat": 10.5, "lon": 20.25}}, "sort": ["a1"]}]}}'}, {}),
    # a configured server: one Optic rows answer scripted on the SourceServer
    "marklogic": ("main", "sample", {
        "/v1/rows": b'{"columns": [{"name": "s.v.lat", "type": "xs:double"}, '
                    b'{"name": "s.v.lon", "type": "xs:double"}], '
                    b'"rows": [{"s.v.lat": 10.5, "s.v.lon": 20.25}]}'},
                  {"view": "s.v", "latitude": "lat", "longitude": "lon"}),
}
CONNECTION_ROOTS = {"arcgis": "/rest/services"}
# Providers whose source needs a server of its own: run through the contract in their tests.
CONTRACT_TESTED_ELSEWHERE = {
    "googleanalytics": "tests/providers/googleanalytics/test_provider.py",
    "postgis": "tests/providers/postgis/test_postgis_provider.py",  # a real PostgreSQL
}


def test_every_registered_provider_has_a_sample():
    assert set(registry.names()) <= set(SAMPLES) | set(CONTRACT_TESTED_ELSEWHERE)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_registered_provider_keeps_the_contract(name: str, data_dir: Path, source_server,
                                               settings):
    plugin = registry.get(name)
    assert contract_problems(type(plugin)) == []
    assert plugin.name == name
    assert plugin.cache_policy in ("cached", "pass-through")
    assert all(isinstance(option, Option) for option in plugin.options_schema)
    with pytest.raises(OptionsError) as bad:
        plugin.clean_options({"no_such_option": 1})
    assert "no_such_option" in bad.value.errors

    host, dataset_id, served, options = SAMPLES[name]
    assert bool(host) == plugin.hosts
    for path, body in served.items():
        source_server.route(path, body=body)
    root = source_server.url("").rstrip("/")
    options = {k: v.replace("{url}", root) if isinstance(v, str) else v
               for k, v in options.items()}
    write_json(data_dir / "sample.geojson", collection([feature({"name": "A"},
                                                                point(20.25, 10.5))]))
    (data_dir / "sample.csv").write_bytes(b"name,lat,lon\nA,10.5,20.25\nB,-5,7\n")
    method = layer = None
    if plugin.connection_hosts:  # the host names a configured server; data comes by query
        settings.KOOP = {**settings.KOOP, "CONNECTIONS": {
            name: {host: {"url": root + CONNECTION_ROOTS.get(name, "")}}}}
        method, layer = "query", 0
    row = Provider.sync_from_registry()[registry.names().index(name)]
    dataset = Dataset.objects.create(provider=row, host=host, dataset_id=dataset_id,
                                     options=options)
    request = provider_request(dataset, layer=layer, method=method)
    assert isinstance(request, ProviderRequest)
    assert request.params == {"host": host or None, "id": dataset_id, "layer": layer,
                              "method": method}
    assert request.dataset == dataset
    result = plugin.get_data(request)
    if "layers" in result:  # a service of several layers
        result = result["layers"][0]
    assert result["type"] == "FeatureCollection"
    assert result["features"][0]["geometry"]["coordinates"] == [20.25, 10.5]
    assert plugin.create_key(request) == f"{name}:{host}:{dataset_id}"


class Minimal(ProviderPlugin):
    name = "minimal"

    def get_data(self, request):
        return collection([])


def test_defaults_of_optional_hooks():
    plugin = Minimal()
    request = ProviderRequest(params={"host": "h", "id": "i"})
    assert plugin.create_key(request) == "minimal:h:i"
    assert plugin.get_authentication_specification() is None
    assert plugin.authorize(request) is None
    with pytest.raises(NotImplementedError, match="authentication"):
        plugin.authenticate(request)
    assert plugin.clean_options({}) == {}
    assert plugin.get_route_handlers() == []


def test_get_data_is_required():
    class NoData(ProviderPlugin):
        name = "nodata"

    with pytest.raises(NotImplementedError, match="get_data"):
        NoData().get_data(ProviderRequest())
    assert contract_problems(NoData) == ["get_data(request) must be overridden"]


@pytest.mark.parametrize(
    ("attrs", "problem"),
    [
        ({"name": "Bad Name"}, "must be lowercase"),
        ({"name": ""}, "must be lowercase"),
        ({"cache_policy": "sometimes"}, "cache_policy"),
        ({"options_schema": ({"name": "x"},)}, "options_schema"),
        ({"routes": (Route("x", "missing"),)}, "does not have"),
    ],
)
def test_contract_problems(attrs, problem):
    broken = type("Broken", (Minimal,), attrs)
    assert any(problem in text for text in contract_problems(broken))


def test_not_a_provider():
    assert "not a subclass" in contract_problems(object)[0]


def test_routes_bind_to_the_controller():
    class Hello(Controller):
        def hello(self, request, **kwargs):
            return f"hello from {self.provider.name}"

    class WithRoutes(Minimal):
        name = "withroutes"
        routes = (Route("hello", "hello"),)
        controller_class = Hello

    [(route, handler)] = WithRoutes().get_route_handlers()
    assert route.path == "hello"
    assert handler(None) == "hello from withroutes"


def test_provider_error_carries_status_and_safe_message():
    error = ProviderError(404, "No such item", log_message="GET http://secret/1 -> 404")
    assert (error.status, error.code, error.message) == (404, 404, "No such item")
    assert "secret" in str(error) and "secret" not in error.message
    timeout = SourceTimeoutError("Too slow")
    assert (timeout.status, timeout.message) == (504, "Too slow")


def test_title_and_description_default_from_name_and_docstring():
    from koop_app.provider import Provider as Base

    class MyApiProvider(Base):
        """Reads my API.

        More text.
        """

        name = "my_api"

    assert MyApiProvider.get_title() == "My api"
    assert MyApiProvider.get_description() == "Reads my API."

    class Plain(Base):
        name = "plain-source"

    assert (Plain.get_title(), Plain.get_description()) == ("Plain source", "")


def test_built_in_providers_have_human_titles():
    from providers.csv_ import CSVProvider
    from providers.geojson import GeoJSONProvider
    from providers.records import RecordsProvider

    assert GeoJSONProvider.get_title() == "GeoJSON file or URL"
    assert "CSV" in CSVProvider.get_title()
    assert "developer example" in RecordsProvider.get_title()
    assert all(p.get_description() for p in (GeoJSONProvider, CSVProvider, RecordsProvider))


def test_only_given_options_are_stored_and_defaults_apply_at_use():
    from koop_app.options import Option, given_options, validate_options

    schema = (Option("source", str, required=True), Option("size", int, default=5),
              Option("note", str))
    raw = {"source": "a.csv", "size": "7", "note": ""}
    stored = given_options(raw, validate_options(schema, raw))
    assert stored == {"source": "a.csv", "size": 7}
    assert validate_options(schema, {"source": "a.csv"}) == {"source": "a.csv", "size": 5,
                                                             "note": None}
