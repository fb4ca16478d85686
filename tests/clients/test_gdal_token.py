"""GDAL/OGR reads a secured layer with a token from generateToken, and cannot without one.

A live server on 127.0.0.1; the token is asked for over HTTP as any client would, then passed
to GDAL in the URL (``token=``) or in a header (``GDAL_HTTP_HEADERS``), through paging.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest
from django.contrib.auth.models import User

from koop_app.models import Dataset
from tests.conftest import collection, feature, point

pytestmark = pytest.mark.slow
PASSWORD = "gdal reads secrets"
COUNT, PAGE = 25, 10


@pytest.fixture
def layer(transactional_db, make_dataset, live_server) -> str:
    User.objects.create_user("reader", password=PASSWORD)
    make_dataset("geojson", "vault", collection([
        feature({"n": i, "name": f"secret {i}"}, point(i, i / 2)) for i in range(COUNT)]),
        access=Dataset.SIGNED_IN, max_record_count=PAGE)
    return f"{live_server.url}/geojson/rest/services/vault/FeatureServer/0/query"


def generate_token(live_server) -> str:
    form = urlencode({"username": "reader", "password": PASSWORD, "client": "requestip",
                      "expiration": "5", "f": "json"}).encode()
    with urllib.request.urlopen(f"{live_server.url}/rest/generateToken", form,
                                timeout=30) as answer:
        return orjson.loads(answer.read())["token"]


def run(*command: str, headers: str = "") -> subprocess.CompletedProcess[str]:
    env = {"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF", "PATH": "/usr/bin:/bin"}
    if headers:
        env["GDAL_HTTP_HEADERS"] = headers
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_ogr2ogr_reads_every_page_with_a_token(layer, live_server, tmp_path: Path):
    url = f"{layer}?where=1%3D1&outFields=*&f=json&token={generate_token(live_server)}"
    target = tmp_path / "out.geojson"
    done = run("ogr2ogr", "-f", "GeoJSON", str(target), url)
    assert done.returncode == 0, done.stderr
    features = orjson.loads(target.read_bytes())["features"]
    assert sorted(f["properties"]["n"] for f in features) == list(range(COUNT))


def test_ogrinfo_with_the_token_in_a_header(layer, live_server):
    url = f"{layer}?where=1%3D1&outFields=*&f=json"
    done = run("ogrinfo", "-ro", "-so", "-al", url,
               headers=f"Authorization: Bearer {generate_token(live_server)}")
    assert done.returncode == 0, done.stderr
    assert f"Feature Count: {COUNT}" in done.stdout


@pytest.mark.parametrize("token", [None, "forged"])
def test_gdal_reads_nothing_without_a_valid_token(layer, token):
    url = f"{layer}?where=1%3D1&outFields=*&f=json" + (f"&token={token}" if token else "")
    done = run("ogrinfo", "-ro", "-so", "-al", url)
    assert done.returncode != 0
    assert "Feature Count" not in done.stdout
    assert "secret" not in done.stdout + done.stderr
