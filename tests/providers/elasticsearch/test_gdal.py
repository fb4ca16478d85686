"""GDAL/OGR reads an Elasticsearch layer completely from a live server (ogr2ogr), through
paging past the index's result window, with the right count, types and values."""

from __future__ import annotations

import subprocess

import orjson
import pytest

from koop_app.models import Dataset

from .conftest import PLACES

pytestmark = pytest.mark.slow


@pytest.fixture
def served(transactional_db, es_dataset):
    dataset = es_dataset("places", id_field="oid", max_result_window=250)
    Dataset.objects.filter(pk=dataset.pk).update(max_record_count=100)  # several pages


def test_ogr2ogr_reads_the_whole_elasticsearch_layer(served, live_server, tmp_path, cluster):
    cluster.requests.clear()
    url = (f"{live_server.url}/elasticsearch/rest/services/local/places/FeatureServer/0/query"
           "?where=1%3D1&outFields=*&f=json")
    target = tmp_path / "out.geojson"
    subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(target), url], check=True,
                   capture_output=True, timeout=120,
                   env={"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF", "PATH": "/usr/bin:/bin"})
    features = orjson.loads(target.read_bytes())["features"]
    assert len(features) == len(PLACES) == 600
    by_id = {f["properties"]["oid"]: f for f in features}
    assert len(by_id) == 600  # paging neither repeats nor skips
    for document in PLACES[::37]:
        got = by_id[document["oid"]]
        assert got["properties"].get("name") == document["name"], got
        assert got["properties"].get("kind") == document.get("kind")
        assert got["properties"].get("pop") == document["pop"], got
        assert got["properties"].get("active") == int(document["active"])
        if document["score"] is not None:
            assert got["properties"].get("score") == pytest.approx(document["score"])
        assert got["geometry"]["coordinates"] == pytest.approx(
            [document["location"]["lon"], document["location"]["lat"]])
    # Pages past the window (250) were read with search_after, never from+size past it.
    searches = [r["body"] for r in cluster.requests if r["path"] == "/places/_search"]
    assert any("search_after" in s for s in searches)
    assert all(s.get("from", 0) + s.get("size", 0) <= 250 for s in searches)
