"""The route's dataset and options, remembered per process: changes saved here are seen at once."""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from koop_app import lookup
from koop_app.models import Dataset
from tests.conftest import collection, feature, point

URL = "/geojson/rest/services/d/FeatureServer/0"


def layer(client) -> dict:
    return orjson.loads(client.get(URL, {"f": "json"}).content)


@pytest.fixture
def dataset(make_dataset):
    return make_dataset("geojson", "d", collection([feature({"n": 1}, point(1, 2))]))


@pytest.mark.django_db
def test_the_same_row_each_time_as_a_copy(dataset):
    first = lookup.find_dataset("geojson", "", "d")
    first.name = "changed by one request"
    first.provider.cache_policy = "changed too"
    second = lookup.find_dataset("geojson", "", "d")
    assert second.pk == dataset.pk and second.name == dataset.name
    assert second.provider.cache_policy == dataset.provider.cache_policy


@pytest.mark.django_db
def test_a_missing_dataset_stays_missing_until_one_is_saved(make_dataset):
    with pytest.raises(Dataset.DoesNotExist):
        lookup.find_dataset("geojson", "", "d")
    make_dataset("geojson", "d", collection([feature({"n": 1}, point(1, 2))]))
    assert lookup.find_dataset("geojson", "", "d").dataset_id == "d"


@pytest.mark.django_db
def test_a_saved_change_is_seen_at_once(client, dataset):
    assert "error" not in layer(client)
    dataset.enabled = False
    dataset.save()
    assert layer(client)["error"]["code"] == 404


@pytest.mark.django_db
def test_access_changes_are_seen_at_once(client, dataset):
    assert "error" not in layer(client)
    dataset.access = Dataset.RESTRICTED
    dataset.save()
    assert layer(client)["error"]["code"] == 499
    lookup.find_dataset("geojson", "", "d")
    dataset.allowed_users.add(User.objects.create_user("reader", password="pw-123456789"))
    assert lookup._rows == {}  # who may read it changed: nothing remembered


@pytest.mark.django_db
def test_changes_from_elsewhere_are_seen_after_the_interval(client, dataset):
    assert "error" not in layer(client)
    Dataset.objects.filter(pk=dataset.pk).update(enabled=False)  # no signal: another process
    assert "error" not in layer(client)  # remembered for DATASET_LOOKUP_SECONDS
    with override_settings(KOOP={"DATASET_LOOKUP_SECONDS": 0}):
        assert layer(client)["error"]["code"] == 404


@pytest.mark.django_db
def test_options_that_fail_are_not_remembered(dataset, monkeypatch):
    calls = []
    plugin = dataset.provider.plugin

    def failing(options):
        calls.append(options)
        raise ValueError("bad options")

    monkeypatch.setattr(plugin, "clean_options", failing)
    for _ in range(2):
        with pytest.raises(ValueError):
            lookup.clean_options(dataset)
    assert len(calls) == 2
    monkeypatch.undo()
    assert lookup.clean_options(dataset) == lookup.clean_options(dataset)
