"""The GeoJSON provider, from files and from a local HTTP server, including every failure."""

from __future__ import annotations

import orjson
import pytest

from koop_app.data import provider_request
from koop_app.errors import (
    SourceConnectError,
    SourceError,
    SourceFormatError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceTooLargeError,
)
from koop_app.registry import registry
from tests.conftest import collection, feature, point

GOOD = orjson.dumps(collection([feature({"name": "a"}, point(1, 2)),
                                feature({"name": "b"}, point(3, 4))]))


def data_of(dataset):
    return registry.get("geojson").get_data(provider_request(dataset))


@pytest.fixture
def remote(make_dataset, source_server):
    def make(path: str, **script):
        url = source_server.route(path, **script)
        return make_dataset("geojson", path.strip("/").replace("/", "-"),
                            options={"source": url})

    return make


@pytest.mark.django_db
class TestGeoJSONProvider:
    def test_file(self, make_dataset):
        dataset = make_dataset("geojson", "f", GOOD)
        assert [f["properties"]["name"] for f in data_of(dataset)["features"]] == ["a", "b"]

    def test_url(self, remote):
        assert len(data_of(remote("/good.geojson", body=GOOD))["features"]) == 2

    def test_single_feature_is_wrapped(self, make_dataset):
        dataset = make_dataset("geojson", "one", feature({"a": 1}, point(0, 0)))
        assert data_of(dataset)["type"] == "FeatureCollection"

    @pytest.mark.parametrize(
        ("script", "error"),
        [
            ({"status": 500, "body": b"oops"}, SourceError),
            ({"status": 503}, SourceError),
            ({"status": 404}, SourceNotFoundError),
            ({"body": b"{broken"}, SourceFormatError),
            ({"body": b'{"type": "Topology"}'}, SourceFormatError),
            ({"body": b"[1, 2]"}, SourceFormatError),
            # no status line in time reads "could not connect", like refused (issue 8)
            ({"body": GOOD, "delay": 3}, SourceConnectError),
            ({"chunks": lambda: iter([b" "] * 100), "chunk_delay": 0.1}, SourceTimeoutError),
            ({"body": b"x" * 1_000_001}, SourceTooLargeError),
        ],
        ids=["500", "503", "404", "bad-json", "not-a-collection", "array", "slow", "drip",
             "huge"],
    )
    def test_failures(self, remote, script, error):
        dataset = remote(f"/case-{error.__name__}-{script.get('status', 200)}", **script)
        with pytest.raises(error):
            data_of(dataset)

    def test_missing_file(self, make_dataset):
        with pytest.raises(SourceNotFoundError):
            data_of(make_dataset("geojson", "gone", None))

    @pytest.mark.parametrize(
        ("script", "code"),
        [({"status": 500}, 502), ({"body": b"{broken"}, 502), ({"body": GOOD, "delay": 3}, 502),
         ({"chunks": lambda: iter([b" "] * 100), "chunk_delay": 0.1}, 504), ({"status": 404}, 404)],
        ids=["500", "bad-json", "slow", "drip", "404"],
    )
    def test_failures_reach_clients_as_geoservices_errors(self, client, remote, script, code):
        dataset = remote(f"/http-{code}-{len(script)}", **script)
        body = orjson.loads(client.get(
            f"/geojson/rest/services/{dataset.dataset_id}/FeatureServer/0/query").content)
        assert body["error"]["code"] == code
        assert "127.0.0.1" not in body["error"]["message"]  # upstream URLs stay in the log
