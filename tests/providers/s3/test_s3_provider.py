"""The S3 provider against moto's S3 server on loopback: objects, prefixes, credentials,
conditional refreshes, and every failure with a clear message and no secret in sight."""

from __future__ import annotations

import logging
import socket
from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError

from koop_app import data
from koop_app.data import cache
from koop_app.errors import (
    OptionsError,
    SourceAuthError,
    SourceConnectError,
    SourceError,
    SourceFormatError,
    SourceNotFoundError,
    SourceRefusedError,
    SourceTimeoutError,
    SourceTooLargeError,
)
from koop_app.registry import registry
from providers.s3.client import Bucket
from tests.conftest import collection, feature, point

PARKS = collection([feature({"name": "Elm", "rank": 1, "area": 2.5}, point(4.35, 50.85)),
                    feature({"name": "Oak", "rank": 2, "area": 7.0}, point(2.35, 48.86)),
                    feature({"name": "Ash", "rank": 3, "area": 1.25}, point(13.4, 52.52))])
STATIONS = b"station;Y;X;readings\nNorth;60.1;24.9;12\nSouth;-33.9;18.4;7\n"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def s3_dataset(make_dataset, s3_server, s3_bucket):
    """``s3_dataset(dataset_id, **options)``: a dataset of the test's bucket on the store."""

    def make(dataset_id: str, *, bucket: str | None = None, ttl: int | None = None,
             **options: Any):
        options = {"endpoint": s3_server.url, "access_key_id": "seed",
                   "secret_access_key": "seed-secret", **options}
        options = {k: v for k, v in options.items() if v is not None}
        fields = {"ttl": ttl} if ttl is not None else {}
        return make_dataset("s3", dataset_id, host=bucket or s3_bucket, options=options,
                            **fields)

    return make


def query(client, dataset, layer: int = 0, **params: str) -> dict[str, Any]:
    url = f"/s3/rest/services/{dataset.host}/{dataset.dataset_id}/FeatureServer/{layer}/query"
    answer = client.get(url, {"where": "1=1", "outFields": "*", "f": "json", **params})
    assert answer.status_code == 200
    return orjson.loads(answer.content)


def failure(dataset) -> Exception:
    with pytest.raises(Exception) as raised:
        data.refresh(dataset)
    return raised.value


@pytest.mark.django_db
class TestObjects:
    def test_geojson_object_through_the_query_route(self, client, s3_server, s3_bucket,
                                                    s3_dataset):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson")
        body = query(client, dataset, where="rank >= 2", orderByFields="rank")
        assert [f["attributes"]["name"] for f in body["features"]] == ["Oak", "Ash"]
        assert body["features"][0]["attributes"]["area"] == 7.0
        assert body["geometryType"] == "esriGeometryPoint"
        assert query(client, dataset, returnCountOnly="true")["count"] == 3

    def test_csv_object_with_the_csv_options(self, client, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "stations.csv", STATIONS)
        dataset = s3_dataset("stations.csv", latitude="Y", longitude="X", delimiter=";")
        body = query(client, dataset, outSR="4326", orderByFields="station")
        rows = {f["attributes"]["station"]: f for f in body["features"]}
        assert set(rows) == {"North", "South"}
        assert rows["South"]["attributes"]["readings"] == 7
        assert rows["North"]["geometry"]["x"] == pytest.approx(24.9)
        assert rows["North"]["geometry"]["y"] == pytest.approx(60.1)

    def test_folders_in_the_id_and_the_key_option(self, client, s3_server, s3_bucket,
                                                  s3_dataset):
        s3_server.put(s3_bucket, "city/green/parks.geojson", PARKS)
        by_id = s3_dataset("city::green::parks.geojson")
        by_option = s3_dataset("parks", key="city/green/parks.geojson")
        assert query(client, by_id, returnCountOnly="true")["count"] == 3
        assert query(client, by_option, returnCountOnly="true")["count"] == 3

    def test_format_option_for_a_key_without_suffix(self, client, s3_server, s3_bucket,
                                                    s3_dataset):
        s3_server.put(s3_bucket, "export-2024", STATIONS)
        dataset = s3_dataset("export-2024", format="csv", delimiter=";")
        assert query(client, dataset, returnCountOnly="true")["count"] == 2

    def test_tab_separated_values(self, client, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "wells.tsv", b"name\tlat\tlon\nW1\t10.5\t20.25\n")
        dataset = s3_dataset("wells.tsv")
        assert query(client, dataset)["features"][0]["attributes"]["name"] == "W1"

    def test_large_geojson_object_is_streamed(self, settings, s3_server, s3_bucket, s3_dataset):
        settings.KOOP = {**settings.KOOP, "MAX_DOWNLOAD_BYTES": 16 * 1024 * 1024}
        many = collection([feature({"n": i, "label": f"feature number {i:06d}" * 3},
                                   point(i % 360 - 180, i % 180 - 90)) for i in range(30_000)])
        s3_server.put(s3_bucket, "many.geojson", many)
        layers = data.refresh(s3_dataset("many.geojson"))
        assert layers.count == 30_000


@pytest.mark.django_db
class TestPrefixes:
    def seed(self, s3_server, s3_bucket) -> None:
        s3_server.put(s3_bucket, "data/parks.geojson", PARKS)
        s3_server.put(s3_bucket, "data/stations.csv", STATIONS.replace(b";", b","))
        s3_server.put(s3_bucket, "data/README.txt", b"not data")
        s3_server.put(s3_bucket, "other/x.geojson", PARKS)

    def test_each_data_object_is_a_layer(self, client, s3_server, s3_bucket, s3_dataset):
        self.seed(s3_server, s3_bucket)
        dataset = s3_dataset("data::", latitude="Y", longitude="X")
        service = orjson.loads(client.get(
            f"/s3/rest/services/{s3_bucket}/data::/FeatureServer", {"f": "json"}).content)
        assert [(layer["id"], layer["name"]) for layer in service["layers"]] == [
            (0, "parks"), (1, "stations")]
        assert query(client, dataset, 0, returnCountOnly="true")["count"] == 3
        stations = query(client, dataset, 1, where="readings > 10")["features"]
        assert [f["attributes"]["station"] for f in stations] == ["North"]

    def test_list_prefix_option_and_whole_bucket(self, s3_server, s3_bucket, s3_dataset):
        self.seed(s3_server, s3_bucket)
        assert len(data.refresh(s3_dataset("d", key="data", list_prefix=True,
                                           latitude="Y", longitude="X")).layers) == 2
        assert len(data.refresh(s3_dataset("::", latitude="Y", longitude="X")).layers) == 3

    def test_listing_pages_through_continuation_tokens(self, s3_server, s3_bucket, s3_dataset,
                                                       monkeypatch):
        from providers.s3 import client as s3_client

        monkeypatch.setattr(s3_client, "LIST_PAGE", 2)
        for n in range(5):
            s3_server.put(s3_bucket, f"many/{n}.geojson", PARKS)
        layers = data.refresh(s3_dataset("many::"))
        assert len(layers.layers) == 5
        assert len(s3_server.lists(s3_bucket)) == 3
        assert "continuation-token=" in s3_server.lists(s3_bucket)[-1].query

    def test_more_objects_than_max_objects_is_refused(self, s3_server, s3_bucket, s3_dataset):
        self.seed(s3_server, s3_bucket)
        error = failure(s3_dataset("data::", max_objects=1))
        assert isinstance(error, SourceError)
        assert "more than 1 GeoJSON/CSV objects" in error.message

    def test_prefix_without_data_objects(self, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "docs/a.txt", b"x")
        error = failure(s3_dataset("docs::"))
        assert isinstance(error, SourceFormatError)
        assert "holds no GeoJSON or CSV object (1 other keys)" in error.message


@pytest.mark.django_db
class TestCredentials:
    @pytest.fixture
    def user(self, s3_server):
        return s3_server.user(f"u{id(self)}")

    def test_from_options(self, client, s3_server, s3_bucket, s3_dataset, user):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson", access_key_id=user[0],
                             secret_access_key=user[1])
        with s3_server.authenticating():
            assert query(client, dataset, returnCountOnly="true")["count"] == 3
        sent = s3_server.gets(s3_bucket, "parks.geojson")[-1]
        assert sent.headers["authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={user[0]}/")

    def test_from_environment_variables(self, monkeypatch, s3_server, s3_bucket, s3_dataset,
                                        user):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", user[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", user[1])
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        dataset = s3_dataset("parks.geojson", access_key_id=None, secret_access_key=None)
        with s3_server.authenticating():
            assert data.refresh(dataset).count == 3
        sent = s3_server.gets(s3_bucket, "parks.geojson")[-1].headers["authorization"]
        assert f"Credential={user[0]}/" in sent and "/eu-west-1/s3/aws4_request" in sent

    def test_from_a_profile_of_the_credentials_file(self, tmp_path, s3_server, s3_bucket,
                                                    s3_dataset, user):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        (tmp_path / "aws-credentials").write_text(
            f"[gis]\naws_access_key_id = {user[0]}\naws_secret_access_key = {user[1]}\n")
        dataset = s3_dataset("parks.geojson", access_key_id=None, secret_access_key=None,
                             profile="gis")
        with s3_server.authenticating():
            assert data.refresh(dataset).count == 3

    def test_session_token_is_sent(self, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson", access_key_id="ASIATEMP",
                             secret_access_key=SECRET, session_token="token-123")
        data.refresh(dataset)
        assert s3_server.gets(s3_bucket, "parks.geojson")[-1].headers[
            "x-amz-security-token"] == "token-123"

    def test_public_bucket_anonymously(self, monkeypatch, s3_server, s3_bucket, s3_dataset):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson", anonymous=True, access_key_id=None,
                             secret_access_key=None)
        error = failure(dataset)  # a private bucket refuses unsigned requests
        assert isinstance(error, SourceAuthError)
        assert "no credentials were sent (anonymous access)" in error.message
        s3_server.make_public(s3_bucket)
        assert data.refresh(dataset).count == 3
        assert "authorization" not in s3_server.gets(s3_bucket, "parks.geojson")[-1].headers

    def test_wrong_secret_is_a_clear_error_without_the_secret(
            self, client, caplog, s3_server, s3_bucket, s3_dataset, user):
        caplog.set_level(logging.DEBUG)
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson", access_key_id=user[0],
                             secret_access_key=SECRET)
        with s3_server.authenticating():
            body = orjson.loads(client.get(
                f"/s3/rest/services/{s3_bucket}/parks.geojson/FeatureServer/0/query",
                {"where": "1=1", "f": "json"}).content)
            error = failure(dataset)
        assert body["error"]["code"] == 502
        assert "SignatureDoesNotMatch" in body["error"]["message"]
        assert "secret access key" in body["error"]["message"]
        assert isinstance(error, SourceAuthError)
        signature = s3_server.gets(s3_bucket, "parks.geojson")[-1].headers[
            "authorization"].rsplit("Signature=", 1)[1]
        dataset.refresh_from_db()
        # Every log line of this process but the store's own (moto runs in it, as a server).
        ours = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}"
                         for r in caplog.records if not r.name.startswith("moto"))
        assert "botocore" in ours or "koop_app" in ours
        for text in (orjson.dumps(body).decode(), error.message, error.log_message,
                     ours, dataset.last_error):
            assert SECRET not in text and signature not in text
        assert "SignatureDoesNotMatch" in dataset.last_error

    def test_unknown_access_key(self, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson", access_key_id="AKIAUNKNOWN0000",
                             secret_access_key=SECRET)
        with s3_server.authenticating():
            error = failure(dataset)
        assert isinstance(error, SourceAuthError)
        assert "InvalidAccessKeyId" in error.message

    def test_options_must_pair(self):
        plugin = registry.get("s3")
        for given, wrong in [({"access_key_id": "AKIA"}, "secret_access_key"),
                             ({"secret_access_key": SECRET}, "access_key_id"),
                             ({"access_key_id": "A", "secret_access_key": "B",
                               "anonymous": True}, "anonymous")]:
            with pytest.raises(OptionsError) as bad:
                plugin.clean_options(given)
            assert wrong in bad.value.errors
            assert SECRET not in str(bad.value.errors)

    def test_secrets_are_secret_options(self):
        kinds = {o.name: o.kind for o in registry.get("s3").options_schema}
        assert kinds["secret_access_key"] == kinds["session_token"] == "secret"
        assert kinds["access_key_id"] == ""


@pytest.mark.django_db
class TestMissing:
    def test_missing_bucket(self, client, s3_dataset):
        dataset = s3_dataset("parks.geojson", bucket="no-such-bucket-here")
        error = failure(dataset)
        assert isinstance(error, SourceNotFoundError)
        assert error.message == "The bucket 'no-such-bucket-here' does not exist."
        body = query(client, dataset)
        assert body["error"]["code"] == 404

    def test_missing_key(self, s3_bucket, s3_dataset):
        error = failure(s3_dataset("gone.geojson"))
        assert isinstance(error, SourceNotFoundError)
        assert error.message == f"The object s3://{s3_bucket}/gone.geojson does not exist."

    def test_missing_bucket_of_a_prefix(self, s3_dataset):
        error = failure(s3_dataset("data::", bucket="no-such-bucket-either"))
        assert isinstance(error, SourceNotFoundError)
        assert "no-such-bucket-either" in error.message


@pytest.mark.django_db
class TestConditionalRefresh:
    def test_unchanged_object_is_not_downloaded_again(self, client, s3_server, s3_bucket,
                                                      s3_dataset):
        etag = s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson")
        first = data.refresh(dataset)
        assert cache.get_pointer(first.key).validators["etag"] == etag
        second = data.refresh(dataset)
        gets = s3_server.gets(s3_bucket, "parks.geojson")
        assert [g.status for g in gets] == [200, 304]
        assert gets[1].headers["if-none-match"] == etag
        assert second.version == first.version and second.fetched_at > first.fetched_at
        assert query(client, dataset, returnCountOnly="true")["count"] == 3

        changed = collection([*PARKS["features"], feature({"name": "Yew", "rank": 4},
                                                           point(0, 0))])
        s3_server.put(s3_bucket, "parks.geojson", changed)
        third = data.refresh(dataset)
        assert [g.status for g in s3_server.gets(s3_bucket, "parks.geojson")] == [200, 304, 200]
        assert third.version != first.version and third.count == 4
        names = {f["attributes"]["name"] for f in query(client, dataset)["features"]}
        assert "Yew" in names

    @pytest.mark.django_db(transaction=True)  # the refresh thread reads the dataset row
    def test_expired_copy_is_revalidated_in_the_background(self, s3_server, s3_bucket,
                                                           s3_dataset):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson", ttl=0)
        request = data.provider_request(dataset)
        first = data.get_table(dataset, request)
        data.get_table(dataset, request)  # expired at once: one refresh is started
        data.wait_for_refreshes()
        assert [g.status for g in s3_server.gets(s3_bucket, "parks.geojson")] == [200, 304]
        assert data.get_table(dataset, request).version == first.version

    def test_prefix_with_unchanged_listing_downloads_nothing(self, s3_server, s3_bucket,
                                                             s3_dataset):
        s3_server.put(s3_bucket, "set/a.geojson", PARKS)
        s3_server.put(s3_bucket, "set/b.geojson", PARKS)
        dataset = s3_dataset("set::")
        first = data.refresh(dataset)
        second = data.refresh(dataset)
        assert second.version == first.version
        assert len(s3_server.gets(s3_bucket, "set/a.geojson")) == 1
        assert len(s3_server.lists(s3_bucket)) == 2
        s3_server.put(s3_bucket, "set/b.geojson", collection(PARKS["features"][:1]))
        third = data.refresh(dataset)
        assert third.version != first.version and third.count == 4
        assert len(s3_server.gets(s3_bucket, "set/b.geojson")) == 2

    def test_cleared_copy_is_read_in_full(self, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson")
        data.refresh(dataset)
        data.clear(dataset)
        data.refresh(dataset)
        gets = s3_server.gets(s3_bucket, "parks.geojson")
        assert [g.status for g in gets] == [200, 200]
        assert "if-none-match" not in gets[1].headers


@pytest.mark.django_db
class TestFailures:
    def test_unsupported_format(self, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "roads.shp", b"\0\0\x27\x0a")
        error = failure(s3_dataset("roads.shp"))
        assert isinstance(error, SourceFormatError)
        assert "roads.shp" in error.message and "format option" in error.message
        assert not s3_server.gets(s3_bucket, "roads.shp")  # refused before downloading

    def test_object_too_large(self, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "huge.geojson", b" " * 1_000_001)
        error = failure(s3_dataset("huge.geojson"))
        assert isinstance(error, SourceTooLargeError)
        assert f"s3://{s3_bucket}/huge.geojson is larger than the download limit" in \
            error.message

    def test_prefix_too_large(self, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "big/a.geojson", b" " * 600_000)
        s3_server.put(s3_bucket, "big/b.geojson", b" " * 600_000)
        error = failure(s3_dataset("big::"))
        assert isinstance(error, SourceTooLargeError)
        assert "add up to 1200000 bytes" in error.message
        assert not s3_server.gets(s3_bucket, "big/a.geojson")

    def test_broken_geojson(self, s3_server, s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "bad.geojson", b"{broken")
        assert isinstance(failure(s3_dataset("bad.geojson")), SourceFormatError)

    def test_unreachable_endpoint(self, s3_dataset):
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        error = failure(s3_dataset("parks.geojson", endpoint=f"http://127.0.0.1:{port}"))
        assert isinstance(error, SourceConnectError)
        assert error.message == "Could not connect to the S3 endpoint."

    def test_timeout(self, source_server, s3_dataset):
        source_server.route("/slow-bucket/parks.geojson",
                            chunks=lambda: iter([b" "] * 100), chunk_delay=0.1)
        error = failure(s3_dataset("parks.geojson", bucket="slow-bucket",
                                   endpoint=source_server.url("")))
        assert isinstance(error, SourceTimeoutError)

    def test_server_error_names_the_code(self, source_server, s3_dataset):
        source_server.route("/busy-bucket/parks.geojson", status=503,
                            body=b"<Error><Code>SlowDown</Code><Message>Reduce your request "
                                 b"rate.</Message></Error>")
        error = failure(s3_dataset("parks.geojson", bucket="busy-bucket",
                                   endpoint=source_server.url("")))
        assert error.status == 503 and "SlowDown" in error.message

    def test_refused_endpoint_is_not_connected_to(self, settings, monkeypatch, s3_server,
                                                  s3_bucket, s3_dataset):
        s3_server.put(s3_bucket, "parks.geojson", PARKS)
        dataset = s3_dataset("parks.geojson")  # registered while loopback was allowed
        settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": []}
        tried: list[Any] = []
        connect = socket.socket.connect

        def recording(sock: socket.socket, address: Any) -> None:
            tried.append(address)
            return connect(sock, address)

        monkeypatch.setattr(socket.socket, "connect", recording)
        before = len(s3_server.requests)
        # The saved options are checked again before use: the refresh stops there ...
        error = failure(dataset)
        assert isinstance(error, OptionsError) and "refused by policy" in error.message
        # ... and the client itself refuses the address (a name that resolves there too).
        with pytest.raises(SourceRefusedError):
            Bucket(s3_bucket, endpoint=s3_server.url).get("parks.geojson")
        with pytest.raises(SourceRefusedError):
            Bucket(s3_bucket, endpoint=s3_server.url.replace("127.0.0.1", "localhost")).get(
                "parks.geojson")
        port = int(s3_server.url.rsplit(":", 1)[1])
        assert not [a for a in tried if a[1] == port] and len(s3_server.requests) == before

    def test_refused_endpoint_cannot_be_saved(self, settings, make_dataset, s3_server,
                                              s3_bucket):
        settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": []}
        with pytest.raises(ValidationError) as bad:
            make_dataset("s3", "parks.geojson", host=s3_bucket,
                         options={"endpoint": s3_server.url})
        assert "refused by policy" in str(bad.value)

    def test_invalid_bucket_name(self, s3_dataset):
        error = failure(s3_dataset("parks.geojson", bucket="Bad!Name"))
        assert isinstance(error, SourceError) and "not a valid bucket name" in error.message
