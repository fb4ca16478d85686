"""A provider with its own token security takes over generateToken and authorize (Koop style)."""

from __future__ import annotations

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.urls import include, path

from koop_app.models import Dataset, Provider
from koop_app.testing import GuardedProvider
from koop_app.urls import build_urlpatterns
from tests.auth.conftest import token_for

BASE = "/guarded/rest/services/secrets/FeatureServer"


@pytest.fixture
def site(settings, db):
    """The site with GuardedProvider registered, and one dataset of it."""
    settings.KOOP = {**settings.KOOP, "PROVIDERS": [*settings.KOOP["PROVIDERS"],
                                                    "koop_app.testing.GuardedProvider"]}
    settings.ROOT_URLCONF = type("URLConf", (), {"urlpatterns": [
        path("", include((build_urlpatterns(), "koop")))]})
    GuardedProvider.calls.clear()
    GuardedProvider.tokens.clear()
    rows = {row.name: row for row in Provider.sync_from_registry()}
    return Dataset.objects.create(provider=rows["guarded"], dataset_id="secrets")


def get(client, path: str, **params) -> dict:
    extra = {key: params.pop(key) for key in list(params) if key.isupper()}
    return orjson.loads(client.get(path, params, **extra).content)


def provider_token(client, password: str = "open sesame") -> dict:
    return token_for(client, username="carol", password=password,
                     path="/guarded/rest/generateToken")


def test_its_rest_info_points_at_its_own_token_service(client, site):
    assert get(client, "/guarded/rest/info")["authInfo"] == {
        "isTokenBasedSecurity": True,
        "tokenServicesUrl": "http://testserver/guarded/rest/generateToken"}


def test_use_http_false_means_an_https_token_service(client, site, monkeypatch):
    monkeypatch.setattr(GuardedProvider, "get_authentication_specification", lambda self: {})
    url = get(client, "/guarded/rest/info")["authInfo"]["tokenServicesUrl"]
    assert url == "https://testserver/guarded/rest/generateToken"


def test_generate_token_calls_authenticate(client, site):
    body = provider_token(client)
    assert set(body) == {"token", "expires", "ssl"}
    assert GuardedProvider.calls == ["authenticate"]
    assert provider_token(client, password="wrong") == {"error": {
        "code": 400, "message": "Unable to generate token.",
        "details": ["Invalid username or password."]}}


def test_authorize_guards_every_route(client, site):
    value = provider_token(client)["token"]
    for route in ["", "/layers", "/0", "/0/query", "/0/1"]:
        assert get(client, BASE + route)["error"]["code"] == 499
        assert get(client, BASE + route, token="forged")["error"]["code"] == 498
        assert "error" not in get(client, BASE + route, token=value)
        assert "error" not in get(client, BASE + route, HTTP_AUTHORIZATION=f"Bearer {value}")


def test_a_refusal_never_reaches_get_data(client, site):
    get(client, BASE + "/0/query")
    assert GuardedProvider.calls == ["authorize"]


def test_django_tokens_mean_nothing_to_it(client, site, alice):
    ours = token_for(client)["token"]
    assert get(client, BASE + "/0/query", token=ours)["error"]["code"] == 498


def test_its_extra_routes_naming_a_dataset_are_authorized(client, site):
    response = client.get("/guarded/items/secrets")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    value = provider_token(client)["token"]
    assert client.get("/guarded/items/secrets", {"token": value}).json() == {
        "id": "secrets", "provider": "guarded"}
    # an id that is no dataset is the provider's own business
    assert client.get("/guarded/items/other").status_code == 200


def test_its_datasets_stay_public_in_our_terms(site):
    site.access = Dataset.SIGNED_IN
    with pytest.raises(ValidationError, match="checks access itself"):
        site.full_clean()
