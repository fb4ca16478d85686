"""Route segments for GitHub names: owner::repo[@ref] and paths with ~ for /."""

from __future__ import annotations

import pytest

from providers.github.names import (
    GitHubNameError,
    Repository,
    parse_host,
    parse_path,
    route_host,
    route_id,
)


def test_hosts():
    assert parse_host("octo::maps") == Repository("octo", "maps")
    assert parse_host("octo::maps@v1.2") == Repository("octo", "maps", "v1.2")
    assert parse_host("octo::my.repo@feature::x") == Repository("octo", "my.repo", "feature/x")
    assert parse_host("octo/maps@main") == Repository("octo", "maps", "main")
    assert route_host(Repository("octo", "maps", "feature/x")) == "octo::maps@feature::x"


@pytest.mark.parametrize("host", ["octo", "octo::", "::maps", "octo::maps::x", "octo::..",
                                  "octo::maps@", "octo::maps@a..b", "octo::maps@a b",
                                  "oc to::maps", "octo::maps@-x"])
def test_bad_hosts(host):
    with pytest.raises(GitHubNameError) as caught:
        parse_host(host)
    assert caught.value.status == 400


def test_paths():
    assert parse_path("data::parks.geojson") == "data/parks.geojson"
    assert parse_path("::") == parse_path(".") == ""
    assert parse_path("::data::::x.csv::") == "data/x.csv"
    assert route_id("data/parks.geojson") == "data::parks.geojson"
    assert route_id("") == "::"
    with pytest.raises(GitHubNameError):
        parse_path("data::..::secret")


def test_api_paths_are_encoded():
    repository = Repository("octo", "maps")
    assert repository.api_path("a b/c#d.csv") == "/repos/octo/maps/contents/a%20b/c%23d.csv"
