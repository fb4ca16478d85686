"""The landing page and the map previews: links, access, escaping, no CDN."""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urlencode

import orjson
import pytest
from django.contrib.auth.models import User

from koop_app.models import Dataset
from koop_app.outputs.pages import views
from tests.conftest import collection, feature, point

HTML = "text/html; charset=utf-8"
PREVIEW = "/geojson/preview/dots/FeatureServer"


def dots(n: int = 3, **metadata) -> dict:
    return collection([feature({"name": f"dot {i}"}, point(i, i)) for i in range(n)],
                      metadata=metadata)


def hrefs(text: str) -> list[str]:
    return [html.unescape(found) for found in re.findall(r'(?:href|src)="([^"]*)"', text)]


@pytest.fixture(autouse=True)
def assets_installed(monkeypatch):
    """Pages render as if ``scripts/ensure-web-assets`` had run (the browser tests run it)."""
    monkeypatch.setattr(views, "VENDOR_FILES", ())


@pytest.fixture
def public(make_dataset):
    return make_dataset("geojson", "dots", dots(), name="Dots", description="three dots")


@pytest.fixture
def secured(make_dataset):
    return make_dataset("geojson", "vault", dots(), access=Dataset.SIGNED_IN, name="Vault")


@pytest.fixture
def staff(client, db):
    user = User.objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(user)
    return user


def token_of(client, username: str) -> str:
    User.objects.create_user(username, password="pw")
    return orjson.loads(client.post("/rest/generateToken", {
        "username": username, "password": "pw", "f": "json"}).content)["token"]


@pytest.mark.django_db
class TestLanding:
    def test_links_the_directory_previews_and_admin(self, client, public):
        response = client.get("/")
        assert response.status_code == 200
        assert response["Content-Type"] == HTML
        links = hrefs(response.content.decode())
        assert "/rest/services?f=html" in links
        assert "/admin/" in links
        assert PREVIEW in links
        assert "/geojson/rest/services/dots/FeatureServer?f=html" in links
        assert "/static/koop_app/pages.css" in links
        assert "three dots" in response.content.decode()

    def test_lists_only_what_the_visitor_may_read(self, client, public, secured):
        text = client.get("/").content.decode()
        assert "/geojson/preview/vault/FeatureServer" not in hrefs(text)
        assert "Vault" not in text
        token = token_of(client, "alice")
        text = client.get("/", {"token": token}).content.decode()
        assert "/geojson/preview/vault/FeatureServer" in hrefs(text)

    def test_staff_sessions_see_secured_datasets(self, client, public, secured, staff):
        text = client.get("/").content.decode()
        assert "/geojson/preview/vault/FeatureServer" in hrefs(text)
        assert "secured" in text

    def test_a_bad_token_is_an_anonymous_visit(self, client, public, secured):
        response = client.get("/", {"token": "forged"})
        assert response.status_code == 200
        assert PREVIEW in hrefs(response.content.decode())

    def test_disabled_datasets_are_left_out(self, client, make_dataset):
        make_dataset("geojson", "off", dots(), enabled=False)
        assert "/geojson/preview/off/FeatureServer" not in hrefs(client.get("/").content.decode())

    def test_escapes_names_and_descriptions(self, client, make_dataset):
        make_dataset("geojson", "xss", dots(), name="<script>alert(1)</script>",
                     description='<img src=x onerror="alert(2)">')
        text = client.get("/").content.decode()
        assert "<script>alert" not in text
        assert "<img" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text

    def test_pages_many_datasets(self, client, make_dataset, monkeypatch):
        monkeypatch.setattr(views, "LANDING_PAGE_SIZE", 2)
        for name in ("a", "b", "c"):
            make_dataset("geojson", name, dots(1))
        first = client.get("/").content.decode()
        assert "page 1 of 2" in first
        second = client.get("/", {"page": "2"}).content.decode()
        assert "/geojson/preview/c/FeatureServer" in hrefs(second)
        assert "/geojson/preview/a/FeatureServer" not in hrefs(second)


@pytest.mark.django_db
class TestPreview:
    @pytest.mark.parametrize("path", [PREVIEW + "/0", PREVIEW + "/0/", PREVIEW])
    def test_page(self, client, public, path):
        response = client.get(path)
        assert response.status_code == 200
        assert response["Content-Type"] == HTML
        text = response.content.decode()
        assert 'data-service-url="http://testserver/geojson/rest/services/dots/FeatureServer"' \
            in text
        assert 'id="koop-map"' in text
        links = hrefs(text)
        for asset in ("koop_app/vendor/leaflet/leaflet.css", "koop_app/vendor/leaflet/leaflet.js",
                      "koop_app/vendor/esri-leaflet/esri-leaflet.js", "koop_app/preview.js"):
            assert f"/static/{asset}" in links

    def test_layer_page_links(self, client, public):
        text = client.get(PREVIEW + "/0").content.decode()
        assert 'data-layer="0"' in text
        layer_url = "http://testserver/geojson/rest/services/dots/FeatureServer/0"
        assert f'value="{layer_url}"' in text
        assert 'data-copy="preview-url"' in text
        links = hrefs(text)
        assert "https://www.arcgis.com/apps/mapviewer/index.html?url=" + quote(
            layer_url, safe="") in links
        assert "/geojson/rest/services/dots/FeatureServer/0/query?f=html" in links
        assert "/geojson/rest/services/dots/FeatureServer/0?f=html" in links
        assert PREVIEW in links

    def test_service_page_draws_every_layer(self, client, public):
        assert 'data-layer=""' in client.get(PREVIEW).content.decode()

    def test_nothing_from_another_site(self, client, public):
        """Scripts, styles and images are the site's own: the only outside link is the Map
        Viewer's, opened by a person."""
        text = client.get(PREVIEW + "/0").content.decode()
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", text):
            assert "http" not in tag, tag
        outside = [link for link in hrefs(text) if link.startswith("http")]
        assert all(link.startswith("https://www.arcgis.com/apps/mapviewer/") for link in outside)

    def test_no_basemap_unless_configured(self, client, public, settings):
        assert 'data-basemap=""' in client.get(PREVIEW).content.decode()
        settings.KOOP = {**settings.KOOP, "PREVIEW_BASEMAP": {
            "url": "https://tiles.example.org/{z}/{x}/{y}.png", "attribution": "Example"}}
        text = client.get(PREVIEW).content.decode()
        assert 'data-basemap="https://tiles.example.org/{z}/{x}/{y}.png"' in text
        assert 'data-basemap-attribution="Example"' in text

    def test_unknown_service_is_a_404_page(self, client, db):
        response = client.get("/geojson/preview/nope/FeatureServer/0")
        assert response.status_code == 404
        assert response["Content-Type"] == HTML
        assert "Service not found." in response.content.decode()

    def test_secured_dataset(self, client, secured):
        response = client.get("/geojson/preview/vault/FeatureServer/0")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
        login = "/admin/login/?" + urlencode({"next": "/geojson/preview/vault/FeatureServer/0"})
        assert login in hrefs(response.content.decode())
        token = token_of(client, "alice")
        response = client.get("/geojson/preview/vault/FeatureServer/0", {"token": token})
        assert response.status_code == 200
        # the map asks the FeatureServer with the same token
        assert f'data-token="{token}"' in response.content.decode()

    def test_restricted_dataset_refuses_other_users(self, client, make_dataset):
        make_dataset("geojson", "vault", dots(), access=Dataset.RESTRICTED)
        token = token_of(client, "bob")
        response = client.get("/geojson/preview/vault/FeatureServer", {"token": token})
        assert response.status_code == 403

    def test_staff_session_previews_secured_datasets(self, client, secured, staff):
        assert client.get("/geojson/preview/vault/FeatureServer/0").status_code == 200

    def test_post_is_not_allowed(self, client, public):
        assert client.post(PREVIEW).status_code == 405

    def test_missing_map_libraries_are_explained(self, client, public, monkeypatch):
        monkeypatch.setattr(views, "VENDOR_FILES", ("koop_app/vendor/missing.js",))
        text = client.get(PREVIEW).content.decode()
        assert "scripts/ensure-web-assets" in text
        assert 'id="koop-map"' not in text

    def test_escapes_the_dataset_name(self, client, make_dataset):
        make_dataset("geojson", "xss", dots(), name="<script>alert(1)</script>")
        text = client.get("/geojson/preview/xss/FeatureServer").content.decode()
        assert "<script>alert" not in text
