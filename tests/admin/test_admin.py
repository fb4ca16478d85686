"""The admin: option validation with field-level messages, the list with state, actions."""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from koop_app import data
from koop_app.admin import DatasetForm
from koop_app.errors import SourceFormatError
from koop_app.models import Dataset, Provider
from tests.conftest import collection, feature, point

GOOD = collection([feature({"name": "a"}, point(1, 2))])


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "", "pw")
    client.force_login(user)
    return client


def form_data(provider: Provider, **overrides) -> dict:
    """A dataset form's POST; the source is not read (skip_check) unless a test drops it."""
    values = {"provider": provider.pk, "host": "", "dataset_id": "x", "name": "", "description": "",
              "enabled": "on", "opt_source": "x.geojson", "ttl": "", "id_field": "",
              "display_field": "", "geometry_type": "", "max_record_count": "",
              "skip_check": "on", "refreshes-TOTAL_FORMS": "0", "refreshes-INITIAL_FORMS": "0"}
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


@pytest.mark.django_db
class TestDatasetForm:
    @pytest.fixture
    def geojson(self):
        return {p.name: p for p in Provider.sync_from_registry()}["geojson"]

    def test_valid(self, geojson, data_dir):
        form = DatasetForm(data=form_data(geojson))
        assert form.is_valid(), form.errors
        assert form.save().options == {"source": "x.geojson"}

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("", "This field is required."),
            ("../x", "The path is outside the data directory."),
            ("ftp://h/x", "only http(s) URLs"),
        ],
    )
    def test_options_are_checked_against_the_provider_schema(self, geojson, source, message):
        form = DatasetForm(data=form_data(geojson, opt_source=source))
        assert not form.is_valid()
        errors = form.errors["opt_source"]
        assert len(errors) == 1 and message in errors[0], errors

    def test_csv_options(self):
        csv = {p.name: p for p in Provider.sync_from_registry()}["csv"]
        form = DatasetForm(data=form_data(csv, opt_source="a.csv", opt_delimiter="ab",
                                          opt_encoding="nope"))
        assert not form.is_valid()
        assert sorted(form.errors) == ["opt_delimiter", "opt_encoding"]

    def test_route_fields(self, geojson):
        form = DatasetForm(data=form_data(geojson, dataset_id="", host="h"))
        assert not form.is_valid()
        assert "dataset_id" in form.errors and "host" in form.errors
        form = DatasetForm(data=form_data(geojson, dataset_id="a/b"))
        assert not form.is_valid() and "dataset_id" in form.errors

    def test_duplicate_route(self, geojson, data_dir):
        assert DatasetForm(data=form_data(geojson)).save()
        form = DatasetForm(data=form_data(geojson))
        assert not form.is_valid()


@pytest.mark.django_db
class TestDatasetAdmin:
    def test_changelist_shows_state_and_link(self, admin_client, make_dataset):
        dataset = make_dataset("geojson", "listed", GOOD, name="Listed")
        data.refresh(dataset)
        page = admin_client.get(reverse("admin:koop_app_dataset_changelist")).content.decode()
        assert "Listed" in page
        assert 'href="/geojson/rest/services/listed/FeatureServer?f=html"' in page
        assert 'href="/geojson/preview/listed/FeatureServer"' in page
        assert "cached" in page

    def test_search_and_filters(self, admin_client, make_dataset):
        make_dataset("geojson", "alpha", GOOD, name="Alpha")
        make_dataset("geojson", "beta", GOOD, name="Beta")
        url = reverse("admin:koop_app_dataset_changelist")
        page = admin_client.get(url, {"q": "alph"}).content.decode()
        assert "Alpha" in page and "Beta" not in page
        page = admin_client.get(url, {"refresh_state": "never"}).content.decode()
        assert "Alpha" in page

    def test_add_page_validates_options(self, admin_client, data_dir):
        geojson = Provider.objects.get(name="geojson")
        response = admin_client.post(reverse("admin:koop_app_dataset_add"),
                                     form_data(geojson, opt_source="../../etc/passwd"))
        assert response.status_code == 200
        assert "The path is outside the data directory." in response.content.decode()
        assert not Dataset.objects.exists()

    def test_change_page_shows_the_options_as_fields(self, admin_client, make_dataset):
        dataset = make_dataset("geojson", "ref", GOOD)
        page = admin_client.get(reverse("admin:koop_app_dataset_change", args=[dataset.pk]))
        assert 'name="opt_source" value="ref.geojson"' in page.content.decode()

    def test_refresh_now_and_clear_cache(self, admin_client, make_dataset, data_dir):
        ok = make_dataset("geojson", "ok", GOOD)
        broken = make_dataset("geojson", "broken", b"{nope")
        url = reverse("admin:koop_app_dataset_changelist")
        response = admin_client.post(url, {"action": "refresh_now",
                                           "_selected_action": [ok.pk, broken.pk]}, follow=True)
        text = response.content.decode()
        assert "Refreshed 1 dataset." in text
        assert "Refresh failed for" in text
        ok.refresh_from_db()
        broken.refresh_from_db()
        assert ok.feature_count == 1 and ok.version
        assert "SourceFormatError" in broken.last_error

        response = admin_client.post(url, {"action": "clear_cache", "_selected_action": [ok.pk]},
                                     follow=True)
        assert "Cleared the cache of 1 dataset." in response.content.decode()
        ok.refresh_from_db()
        assert ok.version == ""


@pytest.mark.django_db
def test_provider_admin_lists_registered_plugins(admin_client):
    page = admin_client.get(reverse("admin:koop_app_provider_changelist")).content.decode()
    assert "geojson" in page and "csv" in page


@pytest.mark.django_db
def test_refresh_now_queues_tasks_when_a_broker_is_configured(admin_client, make_dataset,
                                                              settings, monkeypatch):
    from koop_app.tasks import refresh_dataset

    dataset = make_dataset("geojson", "queued", GOOD)
    queued = []
    monkeypatch.setattr(refresh_dataset, "delay",
                        lambda pk, trigger: queued.append((pk, trigger)))
    monkeypatch.setattr("koop_app.admin.datasets.live_workers", lambda: ["worker@test"])
    settings.CELERY_TASK_ALWAYS_EAGER = False
    response = admin_client.post(reverse("admin:koop_app_dataset_changelist"),
                                 {"action": "refresh_now", "_selected_action": [dataset.pk]},
                                 follow=True)
    assert queued == [(dataset.pk, "admin")]
    assert "Queued the refresh of 1 dataset" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.version == ""  # the worker, not the web process, refreshes


@pytest.mark.django_db
def test_change_page_shows_the_schedule(admin_client, make_dataset):
    dataset = make_dataset("geojson", "sched", GOOD, ttl=100)
    page = admin_client.get(reverse("admin:koop_app_dataset_change", args=[dataset.pk]))
    assert "every 80 s (active)" in page.content.decode()


@pytest.mark.django_db
def test_refresh_history_and_cache_usage(admin_client, make_dataset, data_dir, client):
    dataset = make_dataset("geojson", "hist", GOOD)
    data.refresh(dataset)
    (data_dir / "hist.geojson").write_bytes(b"{nope")
    with pytest.raises(SourceFormatError):
        data.refresh(dataset)
    history = list(dataset.refreshes.values_list("ok", "features"))
    assert history == [(False, None), (True, 1)]
    for _ in range(3):
        client.get("/geojson/rest/services/hist/FeatureServer/0")
    data.reset_process_state()  # as a process that hands its hit count over
    (data_dir / "hist.geojson").write_bytes(orjson.dumps(GOOD))
    dataset.refresh_from_db()
    data.clear(dataset)
    client.get("/geojson/rest/services/hist/FeatureServer/0")  # a miss: fetched again
    page = admin_client.get(reverse("admin:koop_app_dataset_change", args=[dataset.pk]))
    text = page.content.decode()
    assert "refresh history" in text.lower() and "SourceFormatError" in text
    assert "KiB in cache" in text
    import re

    hits, misses = map(int, re.search(r"(\d+) hits, (\d+) misses", text).groups())
    assert hits >= 3 and misses >= 1


@pytest.mark.django_db
class TestAccess:
    @pytest.fixture
    def rows(self):
        return {p.name: p for p in Provider.sync_from_registry()}

    def test_left_out_means_public(self, rows, data_dir):
        form = DatasetForm(data=form_data(rows["geojson"]))
        assert form.is_valid(), form.errors
        assert form.save().access == Dataset.PUBLIC

    def test_chosen_users_and_groups(self, rows, data_dir):
        from django.contrib.auth.models import Group

        user = get_user_model().objects.create_user("alice")
        group = Group.objects.create(name="readers")
        form = DatasetForm(data=form_data(rows["geojson"], access=Dataset.RESTRICTED,
                                          allowed_users=[user.pk], allowed_groups=[group.pk]))
        assert form.is_valid(), form.errors
        dataset = form.save()
        assert list(dataset.allowed_users.all()) == [user]
        assert list(dataset.allowed_groups.all()) == [group]

    def test_unknown_access_is_refused(self, rows):
        form = DatasetForm(data=form_data(rows["geojson"], access="friends"))
        assert not form.is_valid() and "access" in form.errors

    def test_list_shows_and_filters_access(self, admin_client, make_dataset):
        make_dataset("geojson", "open", GOOD)
        make_dataset("geojson", "closed", GOOD, access=Dataset.SIGNED_IN)
        url = reverse("admin:koop_app_dataset_changelist")
        page = admin_client.get(url, {"access": Dataset.SIGNED_IN}).content.decode()
        assert "closed" in page and "geojson/open" not in page
        change = admin_client.get(reverse("admin:koop_app_dataset_add")).content.decode()
        assert 'name="access"' in change and 'name="allowed_users"' in change


@pytest.mark.django_db(transaction=True)  # the refresh runs in a thread with its own connection
def test_the_progress_of_a_running_refresh_is_live_in_the_admin(admin_client, make_dataset,
                                                               source_server, settings):
    import threading
    import time

    settings.KOOP = {**settings.KOOP, "MAX_FETCH_SECONDS": 10}
    body = orjson.dumps(collection([feature({"n": i}, point(i, i)) for i in range(500)]))
    url = source_server.route_slowly("/progress.geojson", body, 2.0)
    dataset = make_dataset("geojson", "progress", options={"source": url})
    endpoint = reverse("admin:koop_app_dataset_progress") + f"?ids={dataset.pk}"
    listing = admin_client.get(reverse("admin:koop_app_dataset_changelist")).content.decode()
    assert f'data-koop-progress="{dataset.pk}"' in listing and "progress.js" in listing
    thread = threading.Thread(target=data.refresh, args=(dataset,), kwargs={"trigger": "admin"})
    thread.start()
    seen = []
    while thread.is_alive():
        answer = orjson.loads(admin_client.get(endpoint).content)["datasets"]
        if str(dataset.pk) in answer:
            seen.append(answer[str(dataset.pk)])
        time.sleep(0.1)
    thread.join()
    fetching = [p for p in seen if p["running"] and p["phase"] == "fetch" and p["bytes_read"]]
    assert fetching, seen
    assert len({p["bytes_read"] for p in fetching}) > 1  # it moved
    # Chunked: no length is announced while the download runs (the closing report, once the
    # whole body is in, may carry the final size as its total).
    final = max(p["bytes_read"] for p in fetching)
    assert all(p["bytes_total"] is None for p in fetching if p["bytes_read"] < final)
    assert "read" in fetching[-1]["text"] and "kB" in fetching[-1]["text"]
    done = orjson.loads(admin_client.get(endpoint).content)["datasets"][str(dataset.pk)]
    assert (done["running"], done["phase"]) == (False, "done")
    page = admin_client.get(reverse("admin:koop_app_dataset_change", args=[dataset.pk]))
    assert f'data-koop-progress="{dataset.pk}"' in page.content.decode()
    assert "Refresh running" in page.content.decode()


def test_the_progress_endpoint_is_for_staff_only(client, db):
    response = client.get(reverse("admin:koop_app_dataset_progress"))
    assert response.status_code == 302  # to the login page


@pytest.mark.django_db
def test_case_sensitive_text_is_a_dataset_setting(admin_client, make_dataset, data_dir):
    dataset = make_dataset("geojson", "case", GOOD)
    assert dataset.case_sensitive_strings is False  # ArcGIS Online's hosted layers ignore case
    page = admin_client.get(reverse("admin:koop_app_dataset_change", args=[dataset.pk]))
    assert 'name="case_sensitive_strings"' in page.content.decode()
    geojson = Provider.objects.get(name="geojson")
    form = DatasetForm(data=form_data(geojson, case_sensitive_strings="on"), instance=dataset)
    assert form.is_valid(), form.errors
    assert form.save().case_sensitive_strings is True
