"""Per-dataset access on every GeoServices route, the catalog, sessions, and no fetch on refusal."""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings

from koop_app.data import cache as data_cache
from koop_app.models import Dataset, RefreshLog
from tests.auth.conftest import PASSWORD, code_of, fetch, token
from tests.conftest import collection, feature, point

# Every route of the FeatureServer, with parameters that make it answer (not a 400).
ROUTES = [
    ("", {}),
    ("/layers", {}),
    ("/0", {}),
    ("/0/info", {}),
    ("/0/query", {"where": "1=1"}),
    ("/0/1", {}),
    ("/0/generateRenderer", {"classificationDef": orjson.dumps(
        {"type": "uniqueValueDef", "uniqueValueFields": ["code"]}).decode()}),
    ("/0/queryRelatedRecords", {"objectIds": "1", "relationshipId": "3", "outFields": "*"}),
]
REFUSALS = (498, 499, 403)


def answers(body: dict) -> bool:
    """The route answered (no refusal, no error at all)."""
    return "error" not in body


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "params"), ROUTES, ids=[r[0] or "/" for r in ROUTES])
class TestEveryRoute:
    def test_public(self, client, secured, path, params):
        secured(Dataset.PUBLIC)
        assert answers(fetch(client, path, **params))

    def test_signed_in(self, client, secured, alice, path, params):
        secured(Dataset.SIGNED_IN)
        assert code_of(fetch(client, path, **params)) == 499
        assert code_of(fetch(client, path, token="nope", **params)) == 498
        assert answers(fetch(client, path, token=token(client), **params))

    def test_chosen_users_and_groups(self, client, secured, alice, bob, readers, path,
                                     params):
        dataset = secured(Dataset.RESTRICTED)
        dataset.allowed_users.add(alice)
        assert answers(fetch(client, path, token=token(client), **params))
        bobs = token(client, username="bob")
        assert fetch(client, path, token=bobs, **params) == {"error": {
            "code": 403, "details": [], "message": "You do not have permissions to access "
            "this resource or perform this operation."}}
        dataset.allowed_groups.add(readers)
        assert answers(fetch(client, path, token=bobs, **params))
        assert code_of(fetch(client, path, **params)) == 499


@pytest.mark.django_db
class TestModes:
    def test_superusers_read_everything(self, client, secured):
        secured(Dataset.RESTRICTED)
        User.objects.create_superuser("root", "root@example.org", PASSWORD)
        assert answers(fetch(client, token=token(client, username="root")))

    def test_a_bad_token_is_498_on_a_public_dataset_too(self, client, secured):
        secured(Dataset.PUBLIC)  # as ArcGIS Server does: the client must renew it
        assert code_of(fetch(client, token="expired-or-forged")) == 498

    def test_unknown_services_stay_404(self, client, db):
        body = orjson.loads(client.get("/geojson/rest/services/nope/FeatureServer/0").content)
        assert code_of(body) == 404

    def test_secured_answers_are_private_to_the_caller(self, client, secured, alice):
        secured(Dataset.SIGNED_IN)
        response = client.get("/geojson/rest/services/vault/FeatureServer/0/query",
                              {"token": token(client), "cacheHint": "true"})
        assert response["Cache-Control"].startswith("private, max-age=")
        assert "Authorization" in response["Vary"]

    def test_public_answers_stay_public(self, client, secured):
        secured(Dataset.PUBLIC)
        response = client.get("/geojson/rest/services/vault/FeatureServer/0/query")
        assert response["Cache-Control"].startswith("public")


@pytest.mark.django_db
@pytest.mark.parametrize("credentials", ["none", "bad token", "not allowed"])
def test_a_refused_request_never_fetches(client, secured, alice, credentials):
    dataset = secured(Dataset.RESTRICTED)
    params = {"none": {}, "bad token": {"token": "x"},
              "not allowed": {"token": token(client)}}[credentials]
    for path, route_params in ROUTES:
        assert code_of(fetch(client, path, **route_params, **params)) in REFUSALS
    dataset.refresh_from_db()
    assert RefreshLog.objects.count() == 0
    assert dataset.version == "" and dataset.cache_key == ""
    assert data_cache.get_pointer("geojson::vault") is None


@pytest.mark.django_db
class TestAdminSession:
    @pytest.fixture
    def staff(self, db):
        user = User.objects.create_user("staff", password=PASSWORD, is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_dataset"))
        return user

    def test_staff_sessions_read_secured_datasets(self, client, secured, staff):
        secured(Dataset.RESTRICTED)
        client.force_login(staff)
        assert answers(fetch(client))

    def test_staff_without_the_view_permission_need_to_be_chosen(self, client, secured):
        dataset = secured(Dataset.RESTRICTED)
        helper = User.objects.create_user("helper", password=PASSWORD, is_staff=True)
        client.force_login(helper)
        assert code_of(fetch(client)) == 403
        dataset.allowed_users.add(helper)
        assert answers(fetch(client))

    def test_other_sessions_do_not(self, client, secured, alice):
        secured(Dataset.SIGNED_IN)
        client.force_login(alice)
        assert code_of(fetch(client)) == 499

    def test_off_by_setting(self, client, secured, staff, settings):
        secured(Dataset.SIGNED_IN)
        client.force_login(staff)
        with override_settings(KOOP={**settings.KOOP, "SESSION_ACCESS": False}):
            assert code_of(fetch(client)) == 499

    def test_posts_need_the_csrf_token(self, secured, staff):
        secured(Dataset.SIGNED_IN)
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(staff)
        url = "/geojson/rest/services/vault/FeatureServer/0/query"
        assert code_of(orjson.loads(browser.post(url, {"where": "1=1"}).content)) == 499
        browser.get("/admin/", follow=True)  # sets the CSRF cookie
        csrf = browser.cookies["csrftoken"].value
        body = orjson.loads(browser.post(url, {"where": "1=1"}, HTTP_X_CSRFTOKEN=csrf).content)
        assert answers(body)

    def test_a_token_wins_over_the_session(self, client, secured, staff):
        secured(Dataset.SIGNED_IN)
        client.force_login(staff)
        assert code_of(fetch(client, token="forged")) == 498


@pytest.mark.django_db
def test_the_catalog_lists_what_the_caller_may_read(client, make_dataset, alice, bob, readers):
    empty = collection([feature({"a": 1}, point(0, 0))])
    make_dataset("geojson", "open", empty)
    make_dataset("geojson", "members", empty, access=Dataset.SIGNED_IN)
    make_dataset("geojson", "alices", empty, access=Dataset.RESTRICTED).allowed_users.add(alice)
    make_dataset("geojson", "readers", empty,
                 access=Dataset.RESTRICTED).allowed_groups.add(readers)
    User.objects.create_superuser("root", "root@example.org", PASSWORD)

    def names(**params) -> list[str]:
        assert orjson.loads(client.get("/rest/services", params).content)["folders"] == [
            "geojson"]
        body = orjson.loads(client.get("/rest/services/geojson", params).content)
        return sorted(service["name"] for service in body["services"]
                      if service["type"] == "FeatureServer")

    assert names() == ["geojson/open"]
    assert names(token=token(client)) == ["geojson/alices", "geojson/members", "geojson/open"]
    assert names(token=token(client, username="bob")) == [
        "geojson/members", "geojson/open", "geojson/readers"]
    assert len(names(token=token(client, username="root"))) == 4
    assert code_of(orjson.loads(client.get("/rest/services", {"token": "x"}).content)) == 498


@pytest.mark.django_db
def test_providers_are_not_handed_the_site_token(client, secured, alice, monkeypatch):
    from providers.geojson import GeoJSONProvider

    seen = []
    for hook in ("get_data", "get_source"):  # a refresh calls get_source, else get_data
        original = getattr(GeoJSONProvider, hook)
        monkeypatch.setattr(GeoJSONProvider, hook,
                            lambda self, request, original=original:
                            seen.append(dict(request.query)) or original(self, request))
    secured(Dataset.SIGNED_IN)
    assert answers(fetch(client, token=token(client), where="1=1"))
    assert seen and all("token" not in query for query in seen)


@pytest.mark.django_db
def test_cors_preflight_of_a_secured_layer(client, secured):
    secured(Dataset.SIGNED_IN)
    response = client.options("/geojson/rest/services/vault/FeatureServer/0/query",
                              HTTP_ORIGIN="https://maps.example",
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                              HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")
    assert response.status_code == 200
    assert "authorization" in response["Access-Control-Allow-Headers"]
