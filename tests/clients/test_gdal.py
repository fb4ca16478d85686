"""GDAL/OGR reads every demo layer completely, through paging, with the right types and values.

Uses Debian's gdal-bin (``make test`` installs it when missing) against a live server.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import orjson
import pytest
from django.core.management import call_command

from koop_app.models import Dataset
from tests.conftest import body_of

pytestmark = pytest.mark.slow

LAYERS = [("geojson", "places"), ("geojson", "regions"), ("csv", "stations"), ("csv", "zones")]
PAGE = 30  # small pages, so every layer needs several


@pytest.fixture
def demo(transactional_db, data_dir):
    call_command("koop_demo", stdout=io.StringIO())
    Dataset.objects.update(max_record_count=PAGE)


def ogr_to_geojson(url: str, target: Path) -> dict:
    subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(target), url], check=True,
                   capture_output=True, timeout=120,
                   env={"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF", "PATH": "/usr/bin:/bin"})
    return orjson.loads(target.read_bytes())


@pytest.mark.parametrize(("provider", "dataset_id"), LAYERS)
def test_ogr2ogr_reads_the_whole_layer(demo, live_server, client, tmp_path, provider,
                                       dataset_id):
    layer = f"/{provider}/rest/services/{dataset_id}/FeatureServer/0"
    expected = orjson.loads(body_of(client.get(layer + "/query", {  # large answers stream
        "where": "1=1", "outFields": "*", "resultType": "standard", "f": "json"})))
    url = f"{live_server.url}{layer}/query?where=1%3D1&outFields=*&f=json"
    read = ogr_to_geojson(url, tmp_path / "out.geojson")
    features = read["features"]
    assert len(features) == len(expected["features"]) > PAGE
    by_id = {f["properties"]["OBJECTID"]: f for f in features}
    assert len(by_id) == len(features)  # paging neither repeats nor skips
    for source in expected["features"][:: max(1, len(features) // 50)]:
        attributes = source["attributes"]
        got = by_id[attributes["OBJECTID"]]["properties"]
        for name, value in attributes.items():
            if isinstance(value, float):
                assert got[name] == pytest.approx(value), name
            elif name in _date_fields(expected):
                assert got[name] is not None or value is None
            else:
                assert got[name] == value, name


def test_ogrinfo_reports_types(demo, live_server):
    url = (f"{live_server.url}/csv/rest/services/stations/FeatureServer/0/query"
           "?where=1%3D1&outFields=*&f=json")
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", url], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    assert "Geometry: Point" in out
    assert "Feature Count: 500" in out
    assert "station: String" in out
    assert "elevation_m: Real" in out
    assert "readings: Integer" in out
    # GDAL 3.6 (Debian 12) reads esriFieldTypeDate as String, newer GDAL as DateTime.
    assert "installed: DateTime" in out or "installed: String" in out


def _date_fields(body: dict) -> set[str]:
    return {f["name"] for f in body["fields"] if f["type"] == "esriFieldTypeDate"}


GENERATED_PAGE = 700  # maxRecordCount of the generated layers: GDAL must page through them


@pytest.mark.parametrize(("kind", "count"), [("points", 5000), ("lines", 1500),
                                             ("polygons", 2500)])
def test_ogr2ogr_pages_through_a_layer_larger_than_max_record_count(serve_generated, tmp_path,
                                                                     server_requests, kind,
                                                                     count):
    # The ESRIJSON driver named explicitly, paging asked for, as the GDAL docs show it.
    data, url = serve_generated(kind, count, GENERATED_PAGE, size=1.5)
    source = f"ESRIJSON:{url}/query?where=1%3D1&outFields=*&orderByFields=rank&f=json"
    target = tmp_path / "out.geojson"
    subprocess.run(["ogr2ogr", "-f", "GeoJSON", "-oo", "FEATURE_SERVER_PAGING=YES",
                    str(target), source], check=True, capture_output=True, timeout=300,
                   env={"GDAL_HTTP_TIMEOUT": "60", "PATH": "/usr/bin:/bin"})
    features = orjson.loads(target.read_bytes())["features"]
    assert count > GENERATED_PAGE
    ranks = sorted(f["properties"]["rank"] for f in features)
    assert ranks == data.rank.tolist()  # every feature once: paging neither repeats nor skips
    offsets = {int(v) for r in server_requests if r.path.endswith("/query")
               for k, v in parse_qsl(r.query) if k == "resultOffset"}
    assert len(offsets) >= count // GENERATED_PAGE  # page after page, not one big answer
    for feature in features:
        props = feature["properties"]
        i = props["rank"]
        assert (props["name"], props["value"]) == (data.name[i], data.value[i])
        geometry = feature["geometry"]
        assert geometry["type"] == {"points": "Point", "lines": "LineString",
                                    "polygons": "Polygon"}[kind]
        want = data.vertices[i]
        if kind == "points":
            np.testing.assert_allclose(geometry["coordinates"], want[0], rtol=0, atol=1e-9)
        elif kind == "lines":
            np.testing.assert_allclose(geometry["coordinates"], want, rtol=0, atol=1e-9)
        else:  # the same ring; Esri JSON winds it the other way, GDAL back again
            (ring,) = geometry["coordinates"]
            assert len(ring) == len(want) and ring[0] == ring[-1]
            np.testing.assert_allclose(sorted(map(tuple, ring[:-1])),
                                       sorted(map(tuple, want[:-1].tolist())), rtol=0,
                                       atol=1e-9)


def test_ogrinfo_counts_and_filters_a_paged_layer(serve_generated):
    data, url = serve_generated("polygons", 2500, GENERATED_PAGE, size=1.5)
    source = f"ESRIJSON:{url}/query?where=1%3D1&outFields=*&f=json"
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", "-oo", "FEATURE_SERVER_PAGING=YES",
                          source], check=True, capture_output=True, text=True,
                         timeout=300).stdout
    assert "Geometry: Polygon" in out
    assert f"Feature Count: {len(data)}" in out
    assert "name: String" in out and "rank: Integer" in out and "value: Real" in out
    where = f"{url}/query?where=name%3D%27gamma%27+AND+value+%3E+50&outFields=*&f=json"
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", "-oo", "FEATURE_SERVER_PAGING=YES",
                          f"ESRIJSON:{where}"], check=True, capture_output=True, text=True,
                         timeout=300).stdout
    assert f"Feature Count: {int(data.where('gamma', 50).sum())}" in out
