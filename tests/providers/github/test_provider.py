"""The GitHub provider against a local server speaking GitHub's contents API."""

from __future__ import annotations

import logging
import time

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from koop_app.data import cache as data_cache
from koop_app.data import provider_request, refresh
from koop_app.errors import (
    OptionsError,
    SourceAuthError,
    SourceFormatError,
    SourceNotFoundError,
    SourceRateLimitedError,
    SourceTimeoutError,
)
from koop_app.models import Dataset
from koop_app.registry import registry
from tests.conftest import collection, feature, point

from .server import FakeGitHub

PARKS = collection([feature({"name": "Elm", "acres": 3}, point(-1.5, 52.1)),
                    feature({"name": "Oak", "acres": 7}, point(-1.6, 52.2))])
CSV = "name,lat,lon\nWell A,10.5,20.25\nWell B,-5,7\n"
# Two objects; quantized arcs (transform), delta-encoded. Arc 0 goes (0,0) -> (10,0) ->
# (10,10); arc 1 goes (10,10) -> (0,10) -> (0,0): together a square ring.
TOPOLOGY = {
    "type": "Topology",
    "transform": {"scale": [0.5, 0.25], "translate": [100, 40]},
    "arcs": [[[0, 0], [10, 0], [0, 10]], [[10, 10], [-10, 0], [0, -10]]],
    "objects": {
        "zones": {"type": "GeometryCollection", "geometries": [
            {"type": "Polygon", "arcs": [[0, 1]], "id": 7, "properties": {"zone": "A"}},
            {"type": "MultiPolygon", "arcs": [[[~1, ~0]]], "properties": {"zone": "B"}},
        ]},
        "stops": {"type": "GeometryCollection", "geometries": [
            {"type": "Point", "coordinates": [2, 4], "properties": {"stop": "S1"}},
            {"type": "Point", "coordinates": [20, 40], "properties": {"stop": "S2"}},
        ]},
    },
}


def query(client, host: str, dataset_id: str, layer: int = 0, **params):
    url = f"/github/rest/services/{host}/{dataset_id}/FeatureServer/{layer}/query"
    return orjson.loads(client.get(url, {"where": "1=1", "outFields": "*", "f": "json",
                                         **params}).content)


def names(body) -> list:
    return [f["attributes"].get("name") for f in body["features"]]


@pytest.mark.django_db
class TestFiles:
    def test_geojson_file_through_the_contents_api(self, client, github, github_dataset):
        github.write("data/parks.geojson", PARKS)
        github_dataset("octo::maps", "data::parks.geojson")
        body = query(client, "octo::maps", "data::parks.geojson")
        assert names(body) == ["Elm", "Oak"]
        sent = github.requests[-1]
        assert sent["path"] == "/repos/octo/maps/contents/data/parks.geojson"
        assert sent["query"] == ""  # no ref: GitHub's default branch
        assert sent["accept"] == "application/vnd.github.raw+json"
        assert sent["x-github-api-version"] == "2022-11-28"
        assert "authorization" not in sent

    def test_service_and_layer_info(self, client, github, github_dataset):
        github.write("parks.geojson", PARKS)
        github_dataset("octo::maps", "parks.geojson")
        layer = orjson.loads(client.get(
            "/github/rest/services/octo::maps/parks.geojson/FeatureServer/0").content)
        assert layer["geometryType"] == "esriGeometryPoint"
        assert {f["name"] for f in layer["fields"]} >= {"name", "acres"}

    def test_topojson_objects_become_layers(self, client, github, github_dataset):
        github.write("zones.topojson", TOPOLOGY)
        github_dataset("octo::maps", "zones.topojson")
        service = orjson.loads(client.get(
            "/github/rest/services/octo::maps/zones.topojson/FeatureServer").content)
        assert [layer["name"] for layer in service["layers"]] == ["zones", "stops"]
        zones = query(client, "octo::maps", "zones.topojson", 0, f="geojson")
        square, reversed_square = zones["features"]
        assert square["properties"]["zone"] == "A"
        ring = square["geometry"]["coordinates"][0]
        assert sorted(map(tuple, ring[:-1])) == [(100, 40), (100, 42.5), (105, 40),
                                                 (105, 42.5)]
        assert reversed_square["properties"]["zone"] == "B"
        stops = query(client, "octo::maps", "zones.topojson", 1, f="geojson")
        assert [f["geometry"]["coordinates"] for f in stops["features"]] == [
            [101, 41], [110, 50]]

    def test_csv_file_reuses_the_csv_reader(self, client, github, github_dataset):
        github.write("wells.csv", CSV)
        github.write("wells.tsv", CSV.replace(",", "\t"))
        github_dataset("octo::maps", "wells.csv")
        github_dataset("octo::maps", "wells.tsv")
        for name in ("wells.csv", "wells.tsv"):
            body = query(client, "octo::maps", name, f="geojson")
            assert [f["geometry"]["coordinates"] for f in body["features"]] == [
                [20.25, 10.5], [7, -5]]

    def test_csv_options(self, github, github_dataset):
        github.write("odd.csv", "label;north;east\nX;1;2\n")
        dataset = github_dataset("octo::maps", "odd.csv", latitude="north", longitude="east",
                                 delimiter=";")
        layers = refresh(dataset)
        assert layers.count == 1

    def test_file_over_one_megabyte_is_read_raw_and_streamed(self, client, settings, github,
                                                             github_dataset):
        settings.KOOP = {**settings.KOOP, "MAX_DOWNLOAD_BYTES": 16_000_000}
        big = collection([feature({"name": f"park {i}", "note": "x" * 40},
                                  point(i % 180, (i % 170) - 85)) for i in range(25_000)])
        raw = orjson.dumps(big)
        assert len(raw) > 2_500_000  # above 1 MB (inline limit) and the streaming threshold
        github.write("big.geojson", raw)
        github_dataset("octo::maps", "big.geojson")
        count = query(client, "octo::maps", "big.geojson", returnCountOnly="true")
        assert count == {"count": 25_000}
        assert github.full_answers["/repos/octo/maps/contents/big.geojson"] == 1

    def test_a_ref_picks_a_branch_tag_or_commit(self, client, github, github_dataset):
        github.write("parks.geojson", PARKS)
        github.write("parks.geojson", collection([feature({"name": "New"}, point(0, 0))]),
                     ref="release/2024")
        github_dataset("octo::maps@release::2024", "parks.geojson")
        assert names(query(client, "octo::maps@release::2024", "parks.geojson")) == ["New"]
        assert github.requests[-1]["query"] == "ref=release%2F2024"

    def test_a_file_that_is_not_geojson(self, github, github_dataset):
        github.write("notes.json", {"hello": "world"})
        with pytest.raises(SourceFormatError, match="notes.json"):
            refresh(github_dataset("octo::maps", "notes.json"))


FOLDER_FILES = {
    "data/a_parks.geojson": PARKS,
    "data/b_wells.csv": CSV,
    "data/c_zones.topojson": TOPOLOGY,
    "data/package.json": {"name": "not geodata"},
    "data/README.md": "# data",
    "data/sub/deep.geojson": PARKS,
}


@pytest.mark.django_db
class TestFolders:
    def test_a_folder_serves_its_data_files_as_layers(self, client, github, github_dataset):
        for path, data in FOLDER_FILES.items():
            github.write(path, data)
        github_dataset("octo::maps", "data")
        service = orjson.loads(client.get(
            "/github/rest/services/octo::maps/data/FeatureServer").content)
        assert [(layer["id"], layer["name"]) for layer in service["layers"]] == [
            (0, "a_parks"), (1, "b_wells"), (2, "c_zones/zones"), (3, "c_zones/stops")]
        assert names(query(client, "octo::maps", "data", 0)) == ["Elm", "Oak"]
        assert len(query(client, "octo::maps", "data", 1)["features"]) == 2
        assert len(query(client, "octo::maps", "data", 3)["features"]) == 2

    def test_the_root_folder_and_the_files_bound(self, client, github, github_dataset,
                                                 caplog):
        for index in range(4):
            github.write(f"f{index}.geojson", PARKS)
        github_dataset("octo::maps", "::", max_files=3)
        with caplog.at_level(logging.WARNING):
            service = orjson.loads(client.get(
                "/github/rest/services/octo::maps/::/FeatureServer").content)
        assert [layer["name"] for layer in service["layers"]] == ["f0", "f1", "f2"]
        assert "4 data files, the first 3 served" in caplog.text
        assert github.requests[0]["path"] == "/repos/octo/maps/contents/"

    def test_an_empty_folder(self, github, github_dataset):
        github.write("docs/README.md", "# nothing here")
        with pytest.raises(SourceNotFoundError, match="holds no .geojson"):
            refresh(github_dataset("octo::maps", "docs"))

    def test_the_catalog_lists_files_folders_and_services(self, client, github,
                                                          github_dataset):
        for path, data in FOLDER_FILES.items():
            github.write(path, data)
        github_dataset("octo::maps", "data")
        github_dataset("octo::maps", "data::a_parks.geojson")
        body = orjson.loads(client.get("/github/catalog/octo::maps/data").content)
        assert body["repository"] == "octo/maps" and body["path"] == "data"
        assert [(f["name"], f["id"]) for f in body["files"]] == [
            ("a_parks.geojson", "data::a_parks.geojson"), ("b_wells.csv", "data::b_wells.csv"),
            ("c_zones.topojson", "data::c_zones.topojson"), ("package.json", "data::package.json")]
        assert body["files"][0]["service"] == (
            "http://testserver/github/rest/services/octo::maps/data::a_parks.geojson/FeatureServer")
        assert body["files"][1]["service"] is None
        assert [s["url"] for s in body["services"]] == [
            "http://testserver/github/rest/services/octo::maps/data/FeatureServer",
            "http://testserver/github/rest/services/octo::maps/data::a_parks.geojson/FeatureServer"]
        assert body["folders"] == [{"name": "sub", "path": "data/sub", "id": "data::sub",
                                    "catalog": None}]

    def test_the_catalog_needs_a_registered_readable_folder(self, client, github,
                                                            github_dataset):
        github.write("data/a.geojson", PARKS)
        missing = client.get("/github/catalog/octo::maps/data")
        assert missing.status_code == 404
        assert "No such folder" in missing.content.decode()
        dataset = github_dataset("octo::maps", "data")
        Dataset.objects.filter(pk=dataset.pk).update(access=Dataset.SIGNED_IN)
        refused = client.get("/github/catalog/octo::maps/data")
        assert refused.status_code == 401
        assert github.requests == []  # refused before asking GitHub


@pytest.mark.django_db
class TestConditionalRefresh:
    def test_a_304_keeps_the_stored_copy(self, github, github_dataset, caplog):
        github.write("parks.geojson", PARKS)
        dataset = github_dataset("octo::maps", "parks.geojson")
        path = "/repos/octo/maps/contents/parks.geojson"
        first = refresh(dataset)
        assert github.full_answers[path] == 1
        time.sleep(0.01)
        with caplog.at_level(logging.INFO):
            second = refresh(dataset)
        assert github.full_answers[path] == 1 and github.not_modified[path] == 1
        assert github.requests[-1]["if-none-match"]
        assert second.version == first.version and second.fetched_at > first.fetched_at
        assert len(second.layers) == 1 and second.count == 2
        assert "source unchanged, kept" in caplog.text
        dataset.refresh_from_db()
        assert dataset.version == first.version
        # The file changes: read in full, a new version.
        github.write("parks.geojson", collection([feature({"name": "Ash"}, point(0, 0))]))
        third = refresh(dataset)
        assert github.full_answers[path] == 2 and third.version != first.version
        assert third.count == 1

    def test_a_changed_dataset_or_a_cleared_cache_reads_in_full(self, github,
                                                               github_dataset):
        github.write("wells.csv", "name,lat,lon,alt_lat,alt_lon\nA,1,2,3,4\n")
        dataset = github_dataset("octo::maps", "wells.csv")
        path = "/repos/octo/maps/contents/wells.csv"
        refresh(dataset)
        dataset.options = {**dataset.options, "latitude": "alt_lat", "longitude": "alt_lon"}
        dataset.save()
        refresh(Dataset.objects.get(pk=dataset.pk))
        assert github.full_answers[path] == 2 and github.not_modified[path] == 0
        data_cache.clear(registry.get("github").create_key(provider_request(dataset)))
        refresh(Dataset.objects.get(pk=dataset.pk))
        assert github.full_answers[path] == 3 and github.not_modified[path] == 0

    def test_a_folder_whose_listing_answers_304_reads_no_file(self, github, github_dataset):
        for path, data in FOLDER_FILES.items():
            github.write(path, data)
        dataset = github_dataset("octo::maps", "data")
        first = refresh(dataset)
        served = sum(github.full_answers.values())
        second = refresh(dataset)
        assert sum(github.full_answers.values()) == served  # no body at all
        assert github.not_modified["/repos/octo/maps/contents/data"] == 1
        assert second.version == first.version
        github.write("data/b_wells.csv", CSV + "Well C,1,1\n")
        third = refresh(dataset)
        assert third.version != first.version


@pytest.mark.django_db
class TestRefusals:
    def test_token_sent_as_bearer_and_never_shown(self, client, github, github_dataset,
                                                  caplog):
        secret = "ghp_s3cretT0kenValue"
        github.token, github.private = secret, True
        github.write("parks.geojson", PARKS)
        with caplog.at_level(logging.DEBUG):
            dataset = github_dataset("octo::maps", "parks.geojson", token=secret)
            assert names(query(client, "octo::maps", "parks.geojson")) == ["Elm", "Oak"]
            assert github.requests[-1]["authorization"] == f"Bearer {secret}"
            github.token = "ghp_another"  # revoked: 401
            with pytest.raises(SourceAuthError) as caught:
                refresh(dataset)
        assert caught.value.status == 502 and "401" in caught.value.message
        assert "Bad credentials" in caught.value.details[0]
        assert secret not in str(caught.value.message) + caught.value.log_message
        assert secret not in caplog.text
        user = get_user_model().objects.create_superuser("root", "", "pw")
        client.force_login(user)
        page = client.get(reverse("admin:koop_app_dataset_change", args=[dataset.pk]))
        assert page.status_code == 200 and secret not in page.content.decode()
        dataset.refresh_from_db()
        assert secret not in (dataset.last_error or "")

    def test_a_private_repository_without_token_is_not_found(self, github, github_dataset):
        github.token, github.private = "ghp_x", True
        github.write("parks.geojson", PARKS)
        with pytest.raises(SourceNotFoundError, match="private"):
            refresh(github_dataset("octo::maps", "parks.geojson"))

    def test_environment_token_only_for_api_github_com(self, monkeypatch):
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_env")
        plugin = registry.get("github")
        assert plugin.client({"api_url": "https://api.github.com"}).token == "ghp_env"
        assert plugin.client({"api_url": "https://ghe.example.com/api/v3"}).token is None
        assert plugin.client({"api_url": "https://ghe.example.com/api/v3",
                              "token": "ghp_own"}).token == "ghp_own"

    @pytest.mark.parametrize("status", [403, 429])
    def test_rate_limit_says_when_it_resets(self, client, github, github_dataset, status):
        github.write("parks.geojson", PARKS)
        dataset = github_dataset("octo::maps", "parks.geojson")
        github.exhausted = status
        with pytest.raises(SourceRateLimitedError) as caught:
            refresh(dataset)
        message = caught.value.message
        assert caught.value.status == 503
        assert "rate limit (5000 requests an hour) is used up" in message
        assert "resets at" in message and "UTC (in about 30 minutes)" in message
        body = query(client, "octo::maps", "parks.geojson")
        assert body["error"]["code"] == 503 and "resets at" in body["error"]["message"]

    def test_refusals_read_github_words(self):
        from providers.github.api import refusal
        from providers.github.names import Repository

        repository = Repository("octo", "maps", "dev")
        huge = refusal(403, {}, b'{"message": "This file is too large to be fetched"}',
                       repository, "big.csv")
        assert "larger than GitHub serves" in huge.message
        denied = refusal(403, {}, b'{"message": "Resource not accessible"}', repository, "a")
        assert isinstance(denied, SourceAuthError) and "octo/maps@dev" in denied.message
        assert denied.details == ["GitHub: Resource not accessible"]
        broken = refusal(500, {}, b"<html>", repository, "a")
        assert broken.message == "GitHub answered HTTP 500 for octo/maps@dev:a."

    def test_secondary_rate_limit(self, github, github_dataset):
        github.write("parks.geojson", PARKS)
        github.secondary = True
        with pytest.raises(SourceRateLimitedError, match="retry after 60 seconds"):
            refresh(github_dataset("octo::maps", "parks.geojson"))

    @pytest.mark.parametrize(("host", "dataset_id", "words"), [
        ("octo::nothing", "parks.geojson", "default branch of octo/nothing"),
        ("octo::maps@v9", "parks.geojson", "ref 'v9'"),
        ("octo::maps", "gone.geojson", "'gone.geojson' at the default branch of octo/maps"),
    ])
    def test_not_found_names_repository_ref_and_path(self, client, github, github_dataset,
                                                     host, dataset_id, words):
        github.write("parks.geojson", PARKS)
        github_dataset(host, dataset_id)
        body = query(client, host, dataset_id)
        assert body["error"]["code"] == 404
        assert words in body["error"]["message"], body["error"]["message"]

    def test_the_ref_message_from_github(self, github, github_dataset):
        github.write("parks.geojson", PARKS)
        with pytest.raises(SourceNotFoundError) as caught:
            refresh(github_dataset("octo::maps@v9", "parks.geojson"))
        assert caught.value.details == ["GitHub: No commit found for the ref v9"]

    def test_a_slow_server_times_out(self, client, github, github_dataset):
        github.write("parks.geojson", PARKS)
        dataset = github_dataset("octo::maps", "parks.geojson")
        github.stall = 3.0  # the body comes after MAX_FETCH_SECONDS of the test settings
        started = time.monotonic()
        with pytest.raises(SourceTimeoutError):
            refresh(dataset)
        assert time.monotonic() - started < 3.0
        # No answer at all: "could not connect", the fetch policy's word for every silence.
        github.stall, github.delay = 0.0, 3.0
        body = query(client, "octo::maps", "parks.geojson")
        assert body["error"]["code"] == 502
        assert body["error"]["message"] == "Could not connect to the data source."

    def test_bad_host_and_options(self, client, github, github_dataset):
        with pytest.raises(OptionsError, match="max_files"):
            registry.get("github").clean_options({"max_files": 0})
        with pytest.raises(OptionsError, match="api_url"):
            registry.get("github").clean_options({"api_url": "ftp://x"})
        github_dataset("not a host", "parks.geojson")
        body = query(client, "not a host", "parks.geojson")
        assert body["error"]["code"] == 400
        assert "owner::repository" in body["error"]["details"][0]


def test_server_speaks_json_media_type_too(tmp_path):
    """The fake answers the JSON form as GitHub does: base64 up to 1 MB, none above."""
    from koop_app import net

    with FakeGitHub(tmp_path) as server:
        server.write("small.csv", CSV)
        server.write("large.csv", "x" * 1_100_000)
        small = orjson.loads(net.get(f"{server.url}/repos/octo/maps/contents/small.csv").body)
        assert small["encoding"] == "base64" and small["type"] == "file"
        large = orjson.loads(net.get(f"{server.url}/repos/octo/maps/contents/large.csv",
                                     max_bytes=5_000_000).body)
        assert large["encoding"] == "none" and large["content"] == ""


@pytest.mark.django_db
def test_keeps_the_provider_contract(github, github_dataset):
    """What tests/test_provider.py checks of every provider, with a host and the fake API."""
    from koop_app.provider import contract_problems

    plugin = registry.get("github")
    assert contract_problems(type(plugin)) == []
    assert plugin.hosts and plugin.cache_policy == "cached"
    with pytest.raises(OptionsError) as bad:
        plugin.clean_options({"no_such_option": 1})
    assert "no_such_option" in bad.value.errors
    token = next(o for o in plugin.options_schema if o.name == "token")
    assert token.kind == "secret" and token.label and token.help
    github.write("sample.csv", "name,lat,lon\nA,10.5,20.25\n")
    request = provider_request(github_dataset("octo::maps", "sample.csv"))
    assert request.params == {"host": "octo::maps", "id": "sample.csv", "layer": None,
                              "method": None}
    result = plugin.get_data(request)
    assert result["features"][0]["geometry"]["coordinates"] == [20.25, 10.5]
    assert plugin.create_key(request) == "github:octo::maps:sample.csv"
