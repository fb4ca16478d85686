"""Reading sources: a real HTTP server on 127.0.0.1 (good, slow, broken, huge) and local files."""

from __future__ import annotations

import os

import pytest

from koop_app.errors import (
    SourceAccessError,
    SourceConnectError,
    SourceError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceTooLargeError,
)
from koop_app.sources import check_location, local_path, read_source, source_file

LIMIT = 1_000_000  # tests/settings.py MAX_DOWNLOAD_BYTES


def test_good_response(source_server):
    url = source_server.route("/good.json", body=b'{"ok": true}')
    assert read_source(url) == b'{"ok": true}'


def test_redirect_is_followed(source_server):
    target = source_server.route("/target", body=b"here")
    url = source_server.route("/moved", status=302, headers={"Location": target})
    assert read_source(url) == b"here"


def test_http_error(source_server):
    url = source_server.route("/fail", status=500, body=b"boom")
    with pytest.raises(SourceError) as error:
        read_source(url)
    assert error.value.status == 502
    assert "500" in error.value.message
    assert url in error.value.log_message and url not in error.value.message


def test_not_found(source_server):
    with pytest.raises(SourceNotFoundError):
        read_source(source_server.url("/missing"))


def test_no_answer_in_time_reads_as_could_not_connect(source_server):
    # Silence before the status line reads like a refused or reset connection (issue 8): an
    # accepting but silent port must not be told apart from a closed one.
    url = source_server.route("/slow", body=b"{}", delay=3)
    with pytest.raises(SourceConnectError) as error:
        read_source(url)
    assert error.value.status == 502
    assert error.value.message == "Could not connect to the data source."
    assert "timed out" in error.value.log_message


def test_dripping_body_times_out(source_server):
    url = source_server.route("/drip", chunks=lambda: iter([b"x"] * 100), chunk_delay=0.1)
    with pytest.raises(SourceTimeoutError) as error:
        read_source(url)
    assert error.value.status == 504


def test_declared_oversize_is_refused(source_server):
    url = source_server.route("/huge", body=b"x" * (LIMIT + 1))
    with pytest.raises(SourceTooLargeError):
        read_source(url)


def test_streamed_oversize_is_refused(source_server):
    url = source_server.route("/huge-stream", chunks=lambda: iter([b"x" * 65536] * 40))
    with pytest.raises(SourceTooLargeError):
        read_source(url)


def test_unreachable_host():
    with pytest.raises(SourceError) as error:
        read_source("http://127.0.0.1:9/nothing")  # the discard port: refused
    assert error.value.message == "Could not connect to the data source."


@pytest.mark.parametrize("location", ["../outside.geojson", "/etc/passwd", "a/../../b"])
def test_paths_outside_the_data_dir_are_refused(data_dir, location):
    with pytest.raises(SourceAccessError):
        read_source(location)
    with pytest.raises(ValueError, match="outside"):
        check_location(location)


def test_symlink_out_of_the_data_dir_is_refused(data_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    os.symlink(secret, data_dir / "link.geojson")
    with pytest.raises(SourceAccessError):
        read_source("link.geojson")


def test_files_inside_the_data_dir(data_dir):
    (data_dir / "sub").mkdir()
    (data_dir / "sub" / "a.json").write_bytes(b"[]")
    assert read_source("sub/a.json") == b"[]"
    assert local_path("sub/a.json") == (data_dir / "sub" / "a.json").resolve()
    with pytest.raises(SourceNotFoundError):
        read_source("sub/missing.json")
    with pytest.raises(SourceNotFoundError):
        read_source("sub")


def test_oversize_file(data_dir):
    (data_dir / "big.json").write_bytes(b"x" * (LIMIT + 1))
    with pytest.raises(SourceTooLargeError):
        read_source("big.json")  # read into memory: bounded like a download
    path, temporary = source_file("big.json")  # read in a stream: the file itself, any size
    assert (path, temporary) == (data_dir / "big.json", False)


@pytest.mark.parametrize("location", ["ftp://host/x", "file:///etc/passwd", "http://"])
def test_other_schemes_are_rejected(location):
    with pytest.raises(ValueError):
        check_location(location)


def test_source_file_streams_a_download_to_a_temporary_file(source_server, tmp_path,
                                                             monkeypatch):
    import gzip
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    body = b'{"type": "FeatureCollection", "features": []}' * 1000
    url = source_server.route("/big.json", body=gzip.compress(body),
                              headers={"Content-Encoding": "gzip"})
    path, temporary = source_file(url)
    assert temporary and path.read_bytes() == body
    path.unlink()
    too_big = source_server.route("/huge.json", body=b"x" * (LIMIT + 1))
    with pytest.raises(SourceTooLargeError):
        source_file(too_big)
    assert not list(tmp_path.iterdir())  # the partial download was removed


def test_source_file_of_a_data_directory_file_is_the_file_itself(data_dir):
    (data_dir / "here.csv").write_text("a\n1\n")
    assert source_file("here.csv") == ((data_dir / "here.csv").resolve(), False)
    with pytest.raises(SourceNotFoundError):
        source_file("missing.csv")


def test_local_file_messages_name_the_file(data_dir):
    with pytest.raises(SourceNotFoundError) as error:
        read_source("sub/none.geojson")
    assert error.value.message == "The data file 'sub/none.geojson' does not exist."
    assert str(data_dir / "sub" / "none.geojson") in error.value.admin_message
    (data_dir / "folder").mkdir()
    with pytest.raises(SourceNotFoundError, match="'folder' is a directory"):
        source_file("folder")
