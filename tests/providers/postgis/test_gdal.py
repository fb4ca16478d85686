"""GDAL/OGR reads a PostGIS pass-through layer through a live server: count, values, paging."""

from __future__ import annotations

import subprocess

import orjson
import pytest

from koop_app.models import Dataset, Provider

from .conftest import rows

pytestmark = pytest.mark.slow
PAGE = 50  # maxRecordCount: GDAL must page through the 240 rows


@pytest.fixture
def places(transactional_db, connections):
    provider = {p.name: p for p in Provider.sync_from_registry()}["postgis"]
    Dataset.objects.create(provider=provider, host="gis", dataset_id="public.places",
                           options={}, max_record_count=PAGE)


def test_ogr2ogr_reads_the_postgis_layer(places, live_server, tmp_path):
    url = (f"{live_server.url}/postgis/rest/services/gis/public.places/FeatureServer/0/query"
           "?where=1%3D1&outFields=*&orderByFields=gid&f=json")
    target = tmp_path / "out.geojson"
    subprocess.run(["ogr2ogr", "-f", "GeoJSON", "-oo", "FEATURE_SERVER_PAGING=YES",
                    str(target), f"ESRIJSON:{url}"], check=True, capture_output=True,
                   timeout=300, env={"GDAL_HTTP_TIMEOUT": "60", "PATH": "/usr/bin:/bin"})
    features = orjson.loads(target.read_bytes())["features"]
    expected = {r["gid"]: r for r in rows()}
    assert len(features) == len(expected) > PAGE
    by_id = {f["properties"]["gid"]: f for f in features}
    assert set(by_id) == set(expected)  # paging neither repeats nor skips
    for gid, row in expected.items():
        props = by_id[gid]["properties"]
        # GDAL leaves null fields out of the GeoJSON it writes.
        assert (props.get("name"), props.get("kind"), props["amount"]) == (
            row["name"], row["kind"], row["amount"])
        assert props.get("value") == pytest.approx(row["value"])
        assert props["flag"] == int(row["flag"])
        assert by_id[gid]["geometry"]["coordinates"] == pytest.approx([row["x"], row["y"]])


def test_ogrinfo_counts_a_filtered_layer(places, live_server):
    url = (f"{live_server.url}/postgis/rest/services/gis/public.places/FeatureServer/0/query"
           "?where=amount%20%3E%2025&outFields=*&f=json")
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", f"ESRIJSON:{url}",
                          "-oo", "FEATURE_SERVER_PAGING=YES"], check=True,
                         capture_output=True, text=True, timeout=120,
                         env={"GDAL_HTTP_TIMEOUT": "60", "PATH": "/usr/bin:/bin"}).stdout
    wanted = sum(1 for r in rows() if r["amount"] > 25)
    assert f"Feature Count: {wanted}" in out
    assert "Geometry: Point" in out
    assert "amount: Integer" in out and "name: String" in out
