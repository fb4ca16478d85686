"""GDAL/OGR reads an S3 layer (a CSV object in moto's S3 on loopback) completely, through
paging, from a live server: the issue's client proof for the S3 provider."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.slow

PAGE = 25


def ogr_to_geojson(url: str, target: Path) -> dict:
    subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(target), url], check=True,
                   capture_output=True, timeout=120,
                   env={"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF", "PATH": "/usr/bin:/bin"})
    return orjson.loads(target.read_bytes())


def test_ogr2ogr_reads_an_s3_layer(transactional_db, make_dataset, live_server, s3_server,
                                   s3_bucket, tmp_path):
    rows = ["site,lat,lon,depth_m,kind"] + [
        f"W{n:03d},{40 + n / 100:.2f},{-3 + n / 50:.2f},{n * 1.5},{'deep' if n % 3 else 'shallow'}"
        for n in range(103)]
    s3_server.put(s3_bucket, "survey/wells.csv", "\n".join(rows).encode())
    make_dataset("s3", "survey::wells.csv", host=s3_bucket, max_record_count=PAGE,
                 options={"endpoint": s3_server.url, "access_key_id": "seed",
                          "secret_access_key": "seed-secret"})
    layer = f"{live_server.url}/s3/rest/services/{s3_bucket}/survey::wells.csv/FeatureServer/0"
    read = ogr_to_geojson(f"{layer}/query?where=1%3D1&outFields=*&f=json",
                          tmp_path / "wells.geojson")
    features = read["features"]
    assert len(features) == 103 > PAGE
    by_site = {f["properties"]["site"]: f for f in features}
    assert len(by_site) == 103  # paging neither repeats nor skips
    w42 = by_site["W042"]
    assert w42["properties"]["depth_m"] == pytest.approx(63.0)
    assert w42["properties"]["kind"] == "shallow"
    assert w42["geometry"]["coordinates"] == pytest.approx([-3 + 42 / 50, 40.42])
    assert sum(f["properties"]["kind"] == "deep" for f in features) == 68
