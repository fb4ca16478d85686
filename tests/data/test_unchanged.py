"""A refresh whose provider says "unchanged" (SourceUnchanged) keeps the stored copy."""

from __future__ import annotations

import time
from typing import Any

import pytest

from koop_app import data
from koop_app.data import cache as data_cache
from koop_app.models import Dataset, Provider
from koop_app.provider import Provider as BaseProvider
from koop_app.provider import ProviderRequest, SourceUnchanged
from tests.conftest import collection, feature, point


class ConditionalProvider(BaseProvider):
    """Answers "unchanged" whenever a stored copy exists, unless told to send data."""

    name = "conditional"
    calls: list[tuple[str | None, float | None]] = []
    vanish = False  # drop the stored copy before answering "unchanged" (a cleared cache)

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        type(self).calls.append((request.stored_version, request.stored_at))
        if request.stored_at is not None:
            if type(self).vanish:
                data_cache.clear(self.create_key(request))
            raise SourceUnchanged
        return collection([feature({"n": len(type(self).calls)}, point(0, 0))])


@pytest.fixture
def dataset(settings, db) -> Dataset:
    settings.KOOP = {**settings.KOOP, "PROVIDERS": [
        *settings.KOOP["PROVIDERS"], "tests.data.test_unchanged.ConditionalProvider"]}
    ConditionalProvider.calls, ConditionalProvider.vanish = [], False
    rows = {p.name: p for p in Provider.sync_from_registry()}
    return Dataset.objects.create(provider=rows["conditional"], dataset_id="c", ttl=600)


def test_the_stored_copy_is_kept_with_a_new_lifetime(dataset):
    first = data.refresh(dataset)
    time.sleep(0.01)
    second = data.refresh(dataset)
    assert ConditionalProvider.calls == [(None, None), (first.version, first.fetched_at)]
    assert second.version == first.version and second.count == 1
    assert second.fetched_at > first.fetched_at
    assert second.expires_at - second.fetched_at == pytest.approx(600)
    assert [t.layer_id for t in second.layers] == [0]  # served hot, not an empty set
    pointer = data_cache.get_pointer(first.key)
    assert pointer.fetched_at == second.fetched_at
    dataset.refresh_from_db()
    assert dataset.version == first.version and dataset.last_error == ""


def test_a_copy_gone_meanwhile_is_read_again_in_full(dataset):
    first = data.refresh(dataset)
    ConditionalProvider.vanish = True
    second = data.refresh(dataset)
    assert ConditionalProvider.calls[1:] == [(first.version, first.fetched_at), (None, None)]
    assert second.version != first.version  # the third call's data (n = 3)
    assert data_cache.get_pointer(first.key).version == second.version


def test_a_provider_never_hears_of_a_copy_on_first_load(dataset):
    data.refresh(dataset)
    assert ConditionalProvider.calls == [(None, None)]
