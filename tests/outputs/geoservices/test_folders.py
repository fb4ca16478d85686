"""The services directory by folders: /rest/services/<provider>[/<service>/FeatureServer/...].

A folder alias serves exactly what the Koop URL serves (same bytes, ETag, access checks and
errors) on every FeatureServer route, and names in the directory resolve under /rest/services/
for every provider shape (id, host + id, host only, neither).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import include, path, reverse

from koop_app.models import Dataset, Provider
from koop_app.outputs import folder_alias, output_modules
from koop_app.provider import Provider as ProviderPlugin
from koop_app.urls import build_urlpatterns
from tests.conftest import collection, feature, point

KOOP = "/geojson/rest/services/sites/FeatureServer"
FOLDER = "/rest/services/geojson/sites/FeatureServer"
UNIQUE = orjson.dumps({"type": "uniqueValueDef", "uniqueValueFields": ["kind"]}).decode()
# Every kind of FeatureServer route: answers, refusals, unsupported operations and errors.
SUFFIXES = [
    ("", {}), ("/layers", {}), ("/queryDomains", {}), ("/0", {}), ("/0/info", {}),
    ("/0/query", {"where": "size > 1", "outFields": "*"}),
    ("/0/query", {"where": "1=1", "returnCountOnly": "true", "f": "pjson"}),
    ("/0/query", {"where": "nope = 1"}),
    ("/0/query", {"f": "geojson"}),
    ("/0/1", {}), ("/0/999", {}), ("/9", {}), ("/x/query", {}),
    ("/0/generateRenderer", {"classificationDef": UNIQUE}),
    ("/0/queryRelatedRecords", {"objectIds": "1", "relationshipId": "3", "outFields": "*"}),
    ("/0/queryRelatedRecords", {"objectIds": "1", "relationshipId": "9"}),
    ("/applyEdits", {}), ("/0/addFeatures", {}), ("/0/queryAttachments", {}),
]


def sites() -> dict[str, Any]:
    relationship = {"id": 3, "name": "checks", "relatedTableId": 7,
                    "keyField": "code", "relatedKeyField": "site"}
    return {
        "layers": [collection([feature({"code": "A", "kind": "well", "size": 1}, point(1, 1)),
                               feature({"code": "B", "kind": "pump", "size": 2}, point(2, 2))],
                              metadata={"id": 0, "name": "Sites",
                                        "relationships": [relationship]})],
        "tables": [collection([feature({"site": "A", "score": 5})],
                              metadata={"id": 7, "name": "Checks"})],
    }


@pytest.fixture
def geoservices_only(settings):
    """Offers of the GeoServices output alone: the listings below are about its services
    (the other outputs' offers are checked in their own tests)."""
    settings.KOOP = {**settings.KOOP,
                     "OUTPUTS": ["koop_app.outputs.geoservices", "koop_app.outputs.pages"]}


@pytest.fixture
def datasets(make_dataset):
    make_dataset("geojson", "sites", sites())
    make_dataset("geojson", "secret", sites(), access=Dataset.SIGNED_IN)


def body(response) -> dict[str, Any]:
    assert response.status_code == 200 and response["Content-Type"].startswith(
        "application/json"), (response.status_code, response.content[:200])
    return orjson.loads(response.content)


@pytest.mark.django_db
@pytest.mark.parametrize(("suffix", "params"), SUFFIXES,
                         ids=[f"{s or '/'}{'?' + '&'.join(p) if p else ''}" for s, p in SUFFIXES])
def test_the_folder_alias_serves_what_the_koop_url_serves(client, datasets, suffix, params):
    koop = client.get(KOOP + suffix, params)
    folder = client.get(FOLDER + suffix, params)
    assert folder.status_code == koop.status_code == 200
    assert folder.content == koop.content
    assert folder.get("ETag") == koop.get("ETag")
    assert folder["Content-Type"] == koop["Content-Type"]
    posted = client.post(FOLDER + suffix, params)  # ArcGIS clients POST long queries
    assert posted.content == koop.content


@pytest.mark.django_db
def test_answers_are_real_on_the_folder_url(client, datasets):
    count = body(client.get(FOLDER + "/0/query", {"where": "1=1", "returnCountOnly": "true"}))
    assert count == {"count": 2}
    feature_body = body(client.get(FOLDER + "/0/2"))
    assert feature_body["feature"]["attributes"]["code"] == "B"
    related = body(client.get(FOLDER + "/0/queryRelatedRecords",
                              {"objectIds": "1", "relationshipId": "3", "outFields": "*"}))
    assert related["relatedRecordGroups"][0]["relatedRecords"][0]["attributes"]["score"] == 5
    etag = client.get(FOLDER + "/0").get("ETag")
    assert client.get(FOLDER + "/0", HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.django_db
def test_access_checks_are_the_same(client, datasets):
    for suffix in ("", "/0", "/0/query", "/0/1", "/0/generateRenderer"):
        koop = body(client.get(f"/geojson/rest/services/secret/FeatureServer{suffix}"))
        folder = body(client.get(f"/rest/services/geojson/secret/FeatureServer{suffix}"))
        assert folder == koop and folder["error"]["code"] == 499, suffix
        forged = body(client.get(f"/rest/services/geojson/secret/FeatureServer{suffix}",
                                 {"token": "forged"}))
        assert forged["error"]["code"] == 498


@pytest.mark.django_db
def test_unknown_services_folders_and_routes(client, datasets):
    missing = body(client.get("/rest/services/geojson/nope/FeatureServer/0/query"))
    assert missing["error"]["code"] == 404
    assert missing == body(client.get("/geojson/rest/services/nope/FeatureServer/0/query"))
    for unknown in ("/rest/services/nope", "/rest/services/FeatureServer",
                    "/rest/services/nope?f=pjson"):
        error = body(client.get(unknown))["error"]
        assert error == {"code": 404, "message": "Folder not found.", "details": []}, unknown
    assert body(client.get("/rest/services/nope/sites/FeatureServer"))["error"]["code"] == 404
    assert body(client.get("/rest/services/geojson/a/b"))["error"]["code"] == 404


@pytest.mark.django_db
def test_root_and_folder_listings(client, geoservices_only, datasets, make_dataset):
    make_dataset("csv", "wells", "x,y\n1,2\n", suffix=".csv",
                 options={"source": "wells.csv"})
    make_dataset("geojson", "off", sites(), enabled=False)
    root = body(client.get("/rest/services"))
    assert root == {"currentVersion": 11.3, "folders": ["csv", "geojson"], "services": []}
    listing = body(client.get("/rest/services/geojson/", {"f": "json"}))
    assert listing == {"currentVersion": 11.3, "folders": [], "services": [
        {"name": "geojson/sites", "type": "FeatureServer",
         "url": "http://testserver/rest/services/geojson/sites/FeatureServer",
         # What the dataset offers through every output (here GeoServices alone).
         "offers": {"FeatureServer": "http://testserver/geojson/rest/services/sites/FeatureServer"}}]}
    # A client builds <root>/rest/services/<name>/<type> from each entry: it works.
    for service in listing["services"]:
        assert "layers" in body(client.get(f"/rest/services/{service['name']}/FeatureServer"))
    pretty = client.get("/rest/services/csv", {"f": "pjson"})
    assert b"\n" in pretty.content and body(pretty)["services"][0]["name"] == "csv/wells"
    callback = client.get("/rest/services/csv", {"callback": "cb"})
    assert callback.content.startswith(b"cb(")


@pytest.mark.django_db
def test_a_folder_shows_only_what_the_caller_may_read(client, geoservices_only, make_dataset):
    make_dataset("geojson", "secret", sites(), access=Dataset.SIGNED_IN)
    make_dataset("csv", "open", "x,y\n1,2\n", suffix=".csv", options={"source": "open.csv"})
    assert body(client.get("/rest/services"))["folders"] == ["csv"]
    assert body(client.get("/rest/services/geojson"))["error"]["code"] == 404
    User.objects.create_user("ann", "ann@example.org", "pw-for-ann-1")
    token = body(client.post("/rest/generateToken", {"username": "ann",
                                                     "password": "pw-for-ann-1"}))["token"]
    assert body(client.get("/rest/services", {"token": token}))["folders"] == ["csv", "geojson"]
    names = [s["name"] for s in body(client.get("/rest/services/geojson",
                                                {"token": token}))["services"]]
    assert names == ["geojson/secret"]
    assert body(client.get("/rest/services/geojson", {"token": "x"}))["error"]["code"] == 498


def test_every_service_route_has_a_folder_alias():
    """A new output route under $namespace/rest/services/ gets its alias without more code."""
    names = {pattern.name for provider in build_urlpatterns()
             for pattern in getattr(provider, "url_patterns", [])}
    routes = [route for module in output_modules() for route in module.routes
              if not route.absolute]
    under_services = [route for route in routes if folder_alias(route.path)]
    assert len(under_services) >= 11  # service, layers, layer, query, feature, ...
    assert all(f"{route.name}-in-folder" in names for route in under_services)
    assert folder_alias("$namespace/rest/info") is None


# --- Provider shapes: host + id, host only, neither --------------------------------------

class Hosted(ProviderPlugin):
    name = "hosted"
    hosts = True

    def get_data(self, request):
        return collection([feature({"where": request.params.get("host") or "-"}, point(1, 2))])


class HostOnly(Hosted):
    name = "hostonly"
    disable_id_param = True


class Single(Hosted):
    name = "single"
    hosts = False
    disable_id_param = True


# This module is the URLconf of the test below: the route table built with its providers.
urlpatterns: list[Any] = []


@pytest.fixture
def shapes(db):
    providers = ["providers.geojson.GeoJSONProvider"] + [
        f"{__name__}.{cls.__name__}" for cls in (Hosted, HostOnly, Single)]
    with override_settings(KOOP={**settings.KOOP, "PROVIDERS": providers,
                                 "OUTPUTS": ["koop_app.outputs.geoservices"]}):
        urlpatterns[:] = [path("", include((build_urlpatterns(), "koop")))]
        with override_settings(ROOT_URLCONF=__name__):
            rows = {row.name: row for row in Provider.sync_from_registry()}
            for provider, host, dataset_id in [("hosted", "h1", "d1"), ("hosted", "h2", "d2"),
                                               ("hostonly", "h3", ""), ("single", "", "")]:
                Dataset.objects.create(provider=rows[provider], host=host, dataset_id=dataset_id)
            yield


@pytest.mark.django_db
def test_names_resolve_for_every_provider_shape(client, geoservices_only, shapes):
    root = body(client.get("/rest/services"))
    assert root["folders"] == ["hosted", "hostonly"]
    assert root["services"] == [{
        "name": "single", "type": "FeatureServer",
        "url": "http://testserver/rest/services/single/FeatureServer",
        "offers": {"FeatureServer": "http://testserver/single/rest/services/FeatureServer"}}]
    hosted = body(client.get("/rest/services/hosted"))["services"]
    assert [s["name"] for s in hosted] == ["hosted/h1/d1", "hosted/h2/d2"]
    host_only = body(client.get("/rest/services/hostonly"))["services"]
    assert [s["name"] for s in host_only] == ["hostonly/h3"]
    assert body(client.get("/rest/services/single"))["error"]["message"] == "Folder not found."
    for service in root["services"] + hosted + host_only:
        url = f"/rest/services/{service['name']}/FeatureServer"
        assert service["url"] == "http://testserver" + url
        koop_name = service["name"].split("/", 1)
        koop_url = f"/{koop_name[0]}/rest/services/" + "".join(
            part + "/" for part in koop_name[1:]) + "FeatureServer"
        for suffix in ("", "/0", "/0/query?where=1%3D1&outFields=*"):
            folder = client.get(url + suffix)
            assert folder.content == client.get(koop_url + suffix).content, url + suffix
            assert "error" not in body(folder), (url + suffix, folder.content)
    rows = body(client.get("/rest/services/hosted/h2/d2/FeatureServer/0/query",
                           {"where": "1=1", "outFields": "*"}))["features"]
    assert rows[0]["attributes"]["where"] == "h2"
    assert reverse("koop:hosted:geoservices-query-in-folder",
                   kwargs={"host": "h1", "id": "d1", "layer": "0"}) == (
        "/rest/services/hosted/h1/d1/FeatureServer/0/query")
    assert body(client.get("/hosted/rest/services/h1/d1/FeatureServer"))["layers"]
