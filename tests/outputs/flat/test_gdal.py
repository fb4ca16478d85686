"""GDAL's CSV driver (ogrinfo from Debian) reads the downloaded exports: counts, types, values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import body_of
from tests.outputs.flat.test_flat import NAMES, export, points_document, polygons_document


def ogrinfo(path: Path, *options: str) -> str:
    return subprocess.run(["ogrinfo", "-ro", "-al", *options, str(path)], check=True,
                          capture_output=True, text=True, timeout=60).stdout


@pytest.mark.django_db
def test_ogrinfo_reads_a_points_export(client, make_dataset, tmp_path):
    make_dataset("geojson", "stations", points_document())
    path = tmp_path / "stations.csv"
    path.write_bytes(body_of(export(client, {"bom": "true"}, "csv")))  # Excel's BOM too
    out = ogrinfo(path, "-oo", "X_POSSIBLE_NAMES=x", "-oo", "Y_POSSIBLE_NAMES=y",
                  "-oo", "AUTODETECT_TYPE=YES")
    assert "Feature Count: 10" in out
    for declared in ("OBJECTID: Integer", "n: Integer", "kind: String", "name: String",
                     "value: Real", "when: DateTime", "x: Real", "y: Real"):
        assert declared in out, declared
    first = out.split("OGRFeature(stations):1\n")[1].split("\n\n")[0]
    assert "  name (String) = plain" in first
    assert "  when (DateTime) = 2024/01/02 03:04:05+00" in first
    assert first.rstrip().endswith("POINT (-100 40)")
    second = out.split("OGRFeature(stations):2\n")[1].split("\n\n")[0]
    assert f"  name (String) = {NAMES[1]}" in second  # quotes and a comma, unquoted again
    assert "  when (DateTime) = 2024/01/02 03:04:05.250+00" in second
    assert f"  name (String) = {NAMES[5]}" in out  # UTF-8
    assert "  name (String) = line\nbreak\nend\n" in out  # (text mode reads CRLF as LF)
    fifth = out.split("OGRFeature(stations):5\n")[1].split("\n\n")[0]
    assert "POINT" not in fifth  # the null geometry: no x/y


@pytest.mark.django_db
def test_ogrinfo_reads_polygons_from_the_wkt_column(client, make_dataset, tmp_path):
    make_dataset("geojson", "squares", polygons_document())
    path = tmp_path / "squares.csv"
    path.write_bytes(body_of(export(client, {"outSR": "3857"}, "csv", dataset="squares")))
    out = ogrinfo(path)  # a column named WKT is the geometry, whatever its case
    assert "Feature Count: 4" in out and "Geometry: Unknown (any)" in out
    # GDAL parsed the full-precision WKT (it prints 15 digits)
    assert "  wkt (String) = POLYGON ((111319.49079327357 111325.1428663851, " in out
    assert "  POLYGON ((111319.490793274 111325.142866385,222638.981586547 111325.142866385," \
        in out
