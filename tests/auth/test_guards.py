"""The same gate in front of other outputs and providers' extra routes, with real statuses."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.urls import include, path

from koop_app.models import Dataset, Provider
from koop_app.provider import Controller, Route
from koop_app.urls import build_urlpatterns
from providers.geojson import GeoJSONProvider
from tests.auth.conftest import token


class Shelf(Controller):
    def item(self, request, id):
        return HttpResponse(f"item {id}")


class ShelfProvider(GeoJSONProvider):
    name = "shelf"
    routes = (Route("items/<id>", "item"), Route("about", "about"))
    controller_class = Shelf


Shelf.about = lambda self, request: HttpResponse("about")


@pytest.fixture
def site(settings, db):
    settings.KOOP = {**settings.KOOP,
                     "PROVIDERS": [*settings.KOOP["PROVIDERS"],
                                   "tests.auth.test_guards.ShelfProvider"],
                     "OUTPUTS": ["koop_app.outputs.geoservices", "tests.outputs.tiny"]}
    settings.ROOT_URLCONF = type("URLConf", (), {"urlpatterns": [
        path("", include((build_urlpatterns(), "koop")))]})
    Provider.sync_from_registry()


def test_other_outputs_answer_with_real_statuses(client, site, secured, alice, bob):
    dataset = secured(Dataset.RESTRICTED)
    dataset.allowed_users.add(alice)
    response = client.get("/geojson/tiny/vault/count")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == 499
    assert client.get("/geojson/tiny/vault/count", {"token": "x"}).status_code == 401
    bobs = token(client, username="bob")
    assert client.get("/geojson/tiny/vault/count", {"token": bobs}).status_code == 403
    allowed = client.get("/geojson/tiny/vault/count",
                         HTTP_AUTHORIZATION=f"Bearer {token(client)}")
    assert allowed.status_code == 200 and allowed.content.endswith(b" features")


def test_other_outputs_of_public_datasets_are_open(client, site, secured):
    secured(Dataset.PUBLIC)
    assert client.get("/geojson/tiny/vault/count").content.endswith(b" features")


def test_extra_routes_naming_a_dataset(client, site, alice):
    rows = {row.name: row for row in Provider.objects.all()}
    Dataset.objects.create(provider=rows["shelf"], dataset_id="box", access=Dataset.SIGNED_IN,
                           options={"source": "box.geojson"})
    assert client.get("/shelf/items/box").status_code == 401
    assert client.get("/shelf/items/box", {"token": token(client)}).content == b"item box"
    assert client.get("/shelf/items/elsewhere").content == b"item elsewhere"
    assert client.get("/shelf/about").content == b"about"
