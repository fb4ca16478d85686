"""A refresh whose provider says "not modified" keeps the stored copy and renews its lifetime."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest

from koop_app import data
from koop_app.data import cache
from koop_app.errors import SourceError
from koop_app.models import Dataset, Provider
from koop_app.provider import NotModified, ProviderRequest
from koop_app.provider import Provider as ProviderPlugin
from tests.conftest import collection, feature, point

pytestmark = pytest.mark.usefixtures("any_cache")


class Versioned(ProviderPlugin):
    """A source with a revision number: answers NotModified while the revision stays."""

    name = "versioned"
    revision: ClassVar[int] = 1
    reads: ClassVar[list[dict[str, Any] | None]] = []  # the validators each refresh was given
    rogue: ClassVar[bool] = False  # says "not modified" without validators (a broken plugin)

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        type(self).reads.append(request.validators)
        if self.rogue or (request.validators or {}).get("rev") == self.revision:
            raise NotModified
        features = [feature({"n": i}, point(i, i)) for i in range(self.revision)]
        return {**collection(features), "validators": {"rev": self.revision}}


@pytest.fixture
def versioned(settings, db):
    settings.KOOP = {**settings.KOOP, "PROVIDERS": ["tests.data.test_not_modified.Versioned"]}
    Versioned.revision, Versioned.reads, Versioned.rogue = 2, [], False
    row = {p.name: p for p in Provider.sync_from_registry()}["versioned"]
    return Dataset.objects.create(provider=row, dataset_id="v", ttl=60)


def test_unchanged_source_keeps_the_version_and_renews_the_copy(versioned):
    first = data.refresh(versioned)
    before = cache.get_pointer("versioned::v")
    assert before.validators == {"rev": 2} and first.count == 2
    time.sleep(0.01)
    again = data.refresh(versioned)
    after = cache.get_pointer("versioned::v")
    assert Versioned.reads == [None, {"rev": 2}]
    assert after.version == before.version == again.version
    assert after.fetched_at > before.fetched_at
    assert after.expires_at == pytest.approx(after.fetched_at + 60)
    assert data.get_table(versioned, data.provider_request(versioned)).count == 2
    versioned.refresh_from_db()
    assert versioned.version == before.version and versioned.last_error == ""


def test_changed_source_is_read_again(versioned):
    first = data.refresh(versioned)
    Versioned.revision = 3
    second = data.refresh(versioned)
    assert second.version != first.version and second.count == 3
    assert cache.get_pointer("versioned::v").validators == {"rev": 3}


def test_no_validators_without_a_servable_copy(versioned):
    data.refresh(versioned)
    data.clear(versioned)
    data.refresh(versioned)
    assert Versioned.reads == [None, None]  # a cleared copy cannot be kept: full read


def test_not_modified_without_a_copy_is_a_source_error(versioned):
    Versioned.rogue = True
    with pytest.raises(SourceError) as failed:
        data.refresh(versioned)
    assert "not modified" in failed.value.message


def test_an_edited_dataset_is_read_in_full_although_the_source_is_unchanged(versioned):
    """New options over the same source (another column, another layer) need a new copy."""
    data.refresh(versioned)
    time.sleep(0.01)
    versioned.description = "edited"
    versioned.save()
    data.refresh(versioned)
    assert Versioned.reads == [None, None]  # no validators offered: a full read
    data.refresh(versioned)
    assert Versioned.reads[-1] == {"rev": 2}  # the edit is older than the new copy
