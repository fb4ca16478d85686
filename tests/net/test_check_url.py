"""Sources are checked when saved too: model, admin form, koop_dataset, every provider option."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from koop_app.models import Dataset, Provider
from koop_app.net import check_url
from koop_app.sources import check_location
from tests.admin.test_admin import form_data

NAMES = {"internal.test": ["10.0.0.1"], "mixed.test": ["93.184.216.34", "fd00::1"],
         "public.test": ["93.184.216.34", "2606:4700::1111"]}


@pytest.fixture
def names(strict, dns):
    return dns(NAMES)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x.csv", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/",
    "http://127.1/", "http://0.0.0.0/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/", "http://[fd00::1]/", "http://100.64.0.1/",
])
def test_literal_addresses_are_refused_at_once(names, connects, url):
    with pytest.raises(ValueError, match="refused by policy"):
        check_location(url)
    assert connects == [] and names.lookups == {}


@pytest.mark.parametrize("url", ["http://internal.test/a.csv", "http://mixed.test/a.csv"])
def test_names_resolving_to_a_refused_address_are_refused(names, connects, url):
    with pytest.raises(ValueError, match="resolves to an address refused by policy"):
        check_location(url)
    assert connects == []


def test_public_and_unresolvable_names_are_accepted(names, connects):
    # Unresolvable now: accepted, as DNS may be down; every fetch checks again.
    assert check_url("https://public.test/a.csv") == "https://public.test/a.csv"
    assert check_url("https://not-yet.test/a.csv") == "https://not-yet.test/a.csv"
    assert connects == []


def test_odd_urls_are_explained(names):
    for url, message in [("http://evil@example.com/", "credentials"),
                         ("http://%31%32%37.0.0.1/", "not a valid IPv4"),
                         ("http://exa_mple..com/", "not a valid host")]:
        with pytest.raises(ValueError, match=message):
            check_location(url)


@pytest.mark.django_db
def test_the_model_refuses_the_source(names, connects):
    Provider.sync_from_registry()
    geojson = Provider.objects.get(name="geojson")
    dataset = Dataset(provider=geojson, dataset_id="meta",
                      options={"source": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(ValidationError, match="refused by policy"):
        dataset.full_clean()
    records = Dataset(provider=Provider.objects.get(name="records"), dataset_id="api",
                      options={"url": "http://internal.test/records"})
    with pytest.raises(ValidationError, match="refused by policy"):
        records.full_clean()
    assert connects == []


@pytest.mark.django_db
def test_the_admin_form_refuses_the_source(names, admin_client, connects):
    Provider.sync_from_registry()
    csv = Provider.objects.get(name="csv")
    response = admin_client.post(reverse("admin:koop_app_dataset_add"),
                                 form_data(csv, opt_source="http://0x7f000001:6379/"))
    assert response.status_code == 200
    assert "refused by policy" in response.content.decode()
    assert not Dataset.objects.exists() and connects == []


@pytest.mark.django_db
def test_the_command_refuses_the_source(names, connects):
    with pytest.raises(CommandError, match="refused by policy"):
        call_command("koop_dataset", "geojson", "x", "--option",
                     "source=http://[::ffff:10.0.0.1]/x.geojson", stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert not Dataset.objects.exists() and connects == []
