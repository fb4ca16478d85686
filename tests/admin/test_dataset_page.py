"""The dataset's change page and list in the admin: state, tools, URLs, preview (issue 11)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from koop_app import data
from koop_app.admin.datasets import first_line
from koop_app.models import Dataset
from tests.conftest import collection, feature, point

GOOD = collection([feature({"name": "a"}, point(1, 2)), feature({"name": "b"}, point(3, 4))])
# A trusted proxy (loopback, as the test client's REMOTE_ADDR) serving the site under /gis.
BEHIND = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "localhost:8443",
          "HTTP_X_FORWARDED_PREFIX": "/gis"}


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "", "pw")


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def staff(username: str, *codenames: str):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def change_url(dataset: Dataset) -> str:
    return reverse("admin:koop_app_dataset_change", args=[dataset.pk])


def page_of(client: Client, dataset: Dataset, **extra: str) -> str:
    response = client.get(change_url(dataset), **extra)
    assert response.status_code == 200
    return response.content.decode()


def attribute(page: str, element_id: str, name: str) -> str:
    """The (unescaped) value of attribute ``name`` on the element with ``id``."""
    tag = re.search(rf'<[a-z]+\b[^>]*\bid="{element_id}"[^>]*>', page)
    assert tag, f"no #{element_id} in the page"
    value = re.search(rf'\b{name}="([^"]*)"', tag.group(0))
    assert value, f"#{element_id} has no {name}"
    return html.unescape(value.group(1))


# --- the change page -----------------------------------------------------------------------

@pytest.mark.django_db
class TestChangePage:
    def test_buttons_urls_links_and_preview(self, admin_client, make_dataset):
        dataset = make_dataset("geojson", "parks", GOOD, name="Parks")
        data.refresh(dataset)
        page = page_of(admin_client, dataset)
        service = "http://testserver/geojson/rest/services/parks/FeatureServer"
        for button, url in (("koop-refresh-now", "refresh"), ("koop-clear-cache", "clear-cache")):
            form = re.search(rf'<form method="post" action="([^"]+)"[^>]*>\s*'
                             rf'<input type="hidden" name="csrfmiddlewaretoken"[^>]*>\s*'
                             rf'<button type="submit" id="{button}"', page)
            assert form, button
            assert form.group(1) == f"/admin/koop_app/dataset/{dataset.pk}/{url}/"
        assert attribute(page, "koop-feature-server-url", "value") == service
        assert "readonly" in re.search(r'<input id="koop-feature-server-url"[^>]*>', page)[0]
        assert 'id="koop-copy-url"' in page and 'id="koop-copy-status"' in page
        agol = urlsplit(attribute(page, "koop-open-agol", "href"))
        assert (agol.scheme, agol.netloc, agol.path) == ("https", "www.arcgis.com",
                                                         "/apps/mapviewer/index.html")
        assert parse_qs(agol.query) == {"url": [service]}
        assert attribute(page, "koop-services-directory", "href") == f"{service}?f=html"
        assert attribute(page, "koop-preview-map", "src") == (
            "/geojson/preview/parks/FeatureServer?embed=1")
        assert f'data-koop-progress="{dataset.pk}"' in page and "progress.js" in page
        assert "koop_app/admin.js" in page and "koop_app/admin.css" in page
        assert "2 features" in page and 'id="koop-last-error"' not in page

    def test_absolute_urls_honour_a_trusted_proxy(self, admin_client, make_dataset):
        dataset = make_dataset("geojson", "parks", GOOD)
        page = page_of(admin_client, dataset, **BEHIND)
        service = "https://localhost:8443/gis/geojson/rest/services/parks/FeatureServer"
        assert attribute(page, "koop-feature-server-url", "value") == service
        assert parse_qs(urlsplit(attribute(page, "koop-open-agol", "href")).query) == {
            "url": [service]}
        assert attribute(page, "koop-services-directory", "href") == f"{service}?f=html"
        assert attribute(page, "koop-preview-map", "src") == (
            "/gis/geojson/preview/parks/FeatureServer?embed=1")
        assert f'action="/gis/admin/koop_app/dataset/{dataset.pk}/refresh/"' in page
        # A sender that is not a trusted proxy gets the connection's own address.
        page = page_of(admin_client, dataset, REMOTE_ADDR="192.0.2.7", **BEHIND)
        assert attribute(page, "koop-feature-server-url", "value") == (
            "http://testserver/geojson/rest/services/parks/FeatureServer")

    def test_the_last_error_in_full(self, admin_client, make_dataset, data_dir):
        dataset = make_dataset("geojson", "parks", GOOD)
        data.refresh(dataset)
        (data_dir / "parks.geojson").write_bytes(b'{"type": "FeatureCollection", <oops>')
        with pytest.raises(Exception):  # noqa: B017  (which error is not the point here)
            data.refresh(dataset)
        dataset.refresh_from_db()
        dataset.last_error += "\nsecond line of the error <b>not html</b>"
        dataset.save(update_fields=["last_error"])
        page = page_of(admin_client, dataset)
        shown = re.search(r'<pre id="koop-last-error">(.*?)</pre>', page, re.S)
        assert shown and html.unescape(shown.group(1)) == dataset.last_error
        assert "<b>not html</b>" not in page  # escaped
        assert 'class="koop-page koop-failing"' in page
        assert "The last refresh failed" in page and "Clients get the last good copy" in page
        assert f'datetime="{dataset.last_error_at.isoformat()}"' in page

    def test_a_non_public_dataset_and_a_disabled_one(self, admin_client, make_dataset):
        closed = make_dataset("geojson", "closed", GOOD, access=Dataset.RESTRICTED)
        page = page_of(admin_client, closed)
        src = attribute(page, "koop-preview-map", "src")
        preview = admin_client.get(src)  # the admin's session reads it: it draws features
        text = preview.content.decode()
        assert preview.status_code == 200 and 'id="koop-map"' in text
        assert 'class="preview embed"' in text and 'id="preview-url"' not in text  # map only
        full = admin_client.get(src.split("?")[0]).content.decode()
        assert 'class="preview"' in full and 'id="preview-url"' in full
        assert preview["X-Frame-Options"] == "SAMEORIGIN"  # the admin page may frame it
        assert admin_client.get(change_url(closed))["X-Frame-Options"] == "DENY"
        # others get the refusal page, framed as well
        refused = Client().get(src)
        assert refused.status_code in (401, 403) and refused["X-Frame-Options"] == "SAMEORIGIN"
        off = make_dataset("geojson", "off", GOOD, enabled=False)
        page = page_of(admin_client, off)
        assert 'id="koop-preview-map"' not in page and "is disabled" in page
        assert 'id="koop-feature-server-url"' in page

    def test_view_only_staff_see_no_buttons(self, client, make_dataset):
        dataset = make_dataset("geojson", "parks", GOOD)
        client.force_login(staff("viewer", "view_dataset"))
        page = page_of(client, dataset)
        assert 'id="koop-feature-server-url"' in page
        assert 'id="koop-refresh-now"' not in page and 'id="koop-clear-cache"' not in page

    def test_the_add_page_has_no_panel(self, admin_client, db):
        page = admin_client.get(reverse("admin:koop_app_dataset_add")).content.decode()
        assert 'id="koop-page"' not in page


# --- the refresh and clear views -----------------------------------------------------------

@pytest.mark.django_db
class TestRefreshAndClear:
    @pytest.fixture
    def csrf_client(self, superuser):
        client = Client(enforce_csrf_checks=True)
        client.force_login(superuser)
        return client

    @staticmethod
    def token_of(page: str) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    def test_refresh_then_clear_for_real(self, csrf_client, make_dataset):
        dataset = make_dataset("geojson", "parks", GOOD)
        page = page_of(csrf_client, dataset)
        token = self.token_of(page)
        response = csrf_client.post(reverse("admin:koop_app_dataset_refresh", args=[dataset.pk]),
                                    {"csrfmiddlewaretoken": token}, follow=True)
        assert response.redirect_chain == [(change_url(dataset), 302)]
        assert "Refreshed 1 dataset." in response.content.decode()
        dataset.refresh_from_db()
        assert dataset.feature_count == 2 and dataset.version and dataset.last_refresh
        assert dataset.refreshes.get().trigger == "admin"
        served = csrf_client.get("/geojson/rest/services/parks/FeatureServer/0/query",
                                 {"where": "1=1", "returnCountOnly": "true", "f": "json"})
        assert served.json() == {"count": 2}

        token = self.token_of(response.content.decode())
        response = csrf_client.post(
            reverse("admin:koop_app_dataset_clear_cache", args=[dataset.pk]),
            {"csrfmiddlewaretoken": token}, follow=True)
        assert "Cleared the cache of 1 dataset." in response.content.decode()
        dataset.refresh_from_db()
        assert dataset.version == ""

    def test_a_failing_refresh_says_why(self, csrf_client, make_dataset, data_dir):
        dataset = make_dataset("geojson", "broken", b"{nope")
        token = self.token_of(page_of(csrf_client, dataset))
        response = csrf_client.post(reverse("admin:koop_app_dataset_refresh", args=[dataset.pk]),
                                    {"csrfmiddlewaretoken": token}, follow=True)
        text = response.content.decode()
        assert "Refresh failed for" in text and 'id="koop-last-error"' in text
        dataset.refresh_from_db()
        assert dataset.last_error

    def test_csrf_is_enforced(self, csrf_client, make_dataset):
        dataset = make_dataset("geojson", "parks", GOOD)
        for name in ("admin:koop_app_dataset_refresh", "admin:koop_app_dataset_clear_cache"):
            response = csrf_client.post(reverse(name, args=[dataset.pk]))
            assert response.status_code == 403
        dataset.refresh_from_db()
        assert dataset.version == "" and not dataset.refreshes.exists()

    def test_only_a_post_changes_anything(self, admin_client, make_dataset):
        dataset = make_dataset("geojson", "parks", GOOD)
        response = admin_client.get(reverse("admin:koop_app_dataset_refresh", args=[dataset.pk]))
        assert response.status_code == 405
        assert not dataset.refreshes.exists()

    def test_view_only_staff_cannot_refresh_or_clear(self, client, make_dataset):
        dataset = make_dataset("geojson", "parks", GOOD)
        data.refresh(dataset)
        client.force_login(staff("viewer", "view_dataset"))
        for name in ("admin:koop_app_dataset_refresh", "admin:koop_app_dataset_clear_cache"):
            assert client.post(reverse(name, args=[dataset.pk])).status_code == 403
        # nor through the list's actions, which they are not offered
        listing = client.get(reverse("admin:koop_app_dataset_changelist")).content.decode()
        assert 'value="refresh_now"' not in listing
        response = client.post(reverse("admin:koop_app_dataset_changelist"),
                               {"action": "clear_cache", "_selected_action": [dataset.pk]})
        assert response.status_code in (200, 302)
        dataset.refresh_from_db()
        assert dataset.version and dataset.refreshes.count() == 1

    def test_staff_who_may_change_can(self, client, make_dataset):
        dataset = make_dataset("geojson", "parks", GOOD)
        client.force_login(staff("editor", "view_dataset", "change_dataset"))
        response = client.post(reverse("admin:koop_app_dataset_refresh", args=[dataset.pk]),
                               follow=True)
        assert "Refreshed 1 dataset." in response.content.decode()

    def test_an_unknown_dataset(self, admin_client, db):
        response = admin_client.post(reverse("admin:koop_app_dataset_refresh", args=[999]))
        assert response.status_code == 302 and response["Location"] == reverse("admin:index")


# --- the list ------------------------------------------------------------------------------

@pytest.mark.django_db
class TestChangeList:
    def test_columns(self, admin_client, make_dataset, data_dir):
        ok = make_dataset("geojson", "parks", GOOD, name="City parks")
        data.refresh(ok)
        make_dataset("geojson", "quiet", GOOD, enabled=False, access=Dataset.SIGNED_IN)
        broken = make_dataset("geojson", "broken", b"{nope")
        with pytest.raises(Exception):  # noqa: B017
            data.refresh(broken)
        broken.refresh_from_db()
        page = admin_client.get(reverse("admin:koop_app_dataset_changelist")).content.decode()
        headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
        assert headers == ["dataset_label", "access_label", "cache_state", "service_links"]
        assert "City parks" in page and "geojson/parks" in page  # name, route under it
        assert 'koop-badge-ok">cached</span>' in page and "2 features" in page
        assert 'koop-badge-off"' in page and "signed-in" in page
        badge = re.search(r'koop-badge-error">failed</span> <span class="koop-error-line" '
                          r'title="([^"]*)">([^<]*)</span>', page)
        assert badge, "a failing dataset has a red badge with its error"
        assert html.unescape(badge.group(1)) == broken.last_error
        assert html.unescape(badge.group(2)) == first_line(broken.last_error)
        assert 'href="/geojson/rest/services/parks/FeatureServer?f=html"' in page
        assert 'data-copy-url="/geojson/rest/services/parks/FeatureServer"' in page
        assert 'href="/geojson/preview/parks/FeatureServer"' in page
        assert 'value="refresh_now"' in page and 'value="clear_cache"' in page

    def test_first_line(self):
        assert first_line("\n  boom: no file\nTraceback...") == "boom: no file"
        long = first_line("x" * 500)
        assert len(long) == 120 and long.endswith("…")
        assert first_line("") == ""


# --- with a Celery worker ------------------------------------------------------------------

@pytest.fixture
def celery_worker(request, transactional_db, settings, tmp_path):
    """A real worker (solo pool) on the embedded filesystem broker, as tests/test_celery_live."""
    from tests.test_celery_live import live_worker

    yield from live_worker(request, settings, tmp_path, "filesystem", ("--pool", "solo"))


@pytest.mark.slow
def test_the_page_queues_the_refresh_when_a_worker_answers(celery_worker, admin_client,
                                                           make_dataset):
    from tests.test_celery_live import wait_for

    dataset = make_dataset("geojson", "queued", GOOD, ttl=3600)
    response = admin_client.post(reverse("admin:koop_app_dataset_refresh", args=[dataset.pk]),
                                 follow=True)
    assert "Queued the refresh of 1 dataset for the Celery workers." in \
        response.content.decode()

    def refreshed_by_the_worker() -> bool:
        return dataset.refreshes.filter(trigger="admin", ok=True).exclude(worker="").exists()

    wait_for(refreshed_by_the_worker, what="the worker's refresh")
    dataset.refresh_from_db()
    assert dataset.feature_count == 2
