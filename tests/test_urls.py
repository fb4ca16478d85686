"""The route table: outputs multiplied by providers, hosts/id parameters, extra routes, auth."""

from __future__ import annotations

import orjson
import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.urls import resolve

from koop_app.errors import ProviderError
from koop_app.provider import Controller, Provider, Route
from koop_app.urls import build_urlpatterns


class Hello(Controller):
    def hello(self, request, name):
        return HttpResponse(f"hello {name} from {self.provider.name}")


class Hosted(Provider):
    name = "hosted"
    hosts = True
    routes = (Route("hello/<str:name>", "hello", ("GET",)),)
    controller_class = Hello

    def get_data(self, request):
        return {"type": "FeatureCollection", "features": []}


class Single(Hosted):
    name = "single"
    hosts = False
    disable_id_param = True
    routes = ()


@pytest.fixture
def urlconf():
    with override_settings(KOOP={"PROVIDERS": ["tests.test_urls.Hosted",
                                               "tests.test_urls.Single"]}):
        yield type("URLConf", (), {"urlpatterns": build_urlpatterns()})


def test_provider_params_shape_the_routes(urlconf):
    match = resolve("/hosted/rest/services/h1/d1/FeatureServer/0/query", urlconf=urlconf)
    assert match.kwargs == {"host": "h1", "id": "d1", "layer": "0", "provider": "hosted"}
    assert match.url_name == "geoservices-query"
    assert match.namespaces == ["hosted"]
    match = resolve("/single/rest/services/FeatureServer/layers/", urlconf=urlconf)
    assert match.kwargs == {"provider": "single"}
    assert resolve("/rest/info", urlconf=urlconf).url_name == "geoservices-rest-info"


def test_extra_routes_reach_the_controller(urlconf):
    match = resolve("/hosted/hello/world", urlconf=urlconf)
    request = RequestFactory().get("/hosted/hello/world")
    assert match.func(request, **match.kwargs).content == b"hello world from hosted"
    refused = match.func(RequestFactory().delete("/hosted/hello/world"), **match.kwargs)
    assert refused.status_code == 405


@pytest.mark.django_db
def test_authorize_hook_guards_the_data(client, make_dataset, monkeypatch):
    from providers.geojson import GeoJSONProvider

    make_dataset("geojson", "guarded", {"type": "FeatureCollection", "features": []})

    def deny(self, request):
        if request.query.get("token") != "ok":
            raise ProviderError(499, "Token Required")

    monkeypatch.setattr(GeoJSONProvider, "authorize", deny)
    # its own tokens: declared, so the site's token check leaves them to authorize()
    monkeypatch.setattr(GeoJSONProvider, "get_authentication_specification",
                        lambda self: {"useHttp": True})
    url = "/geojson/rest/services/guarded/FeatureServer/0/query"
    body = orjson.loads(client.get(url).content)
    assert body["error"]["code"] == 499
    assert "features" in orjson.loads(client.get(url, {"token": "ok"}).content)


@pytest.mark.django_db
def test_a_second_output_is_multiplied_by_the_registry(make_dataset, rf):
    make_dataset("geojson", "pts", {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": None}] * 3})
    outputs = ["koop_app.outputs.geoservices", "tests.outputs.tiny"]
    with override_settings(KOOP={**settings.KOOP, "OUTPUTS": outputs}):
        urlconf = type("URLConf", (), {"urlpatterns": build_urlpatterns()})
        match = resolve("/geojson/tiny/pts/count", urlconf=urlconf)
        assert match.func(rf.get("/"), **match.kwargs).content == b"3 features"
        assert resolve("/tiny", urlconf=urlconf).func(rf.get("/")).content == b"tiny output"
        # the GeoServices routes are still there
        assert resolve("/geojson/rest/services/pts/FeatureServer/0/query",
                       urlconf=urlconf).url_name == "geoservices-query"
