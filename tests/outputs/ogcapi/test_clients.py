"""Real clients read the OGC API: GDAL's OAPIF driver (Debian's ogrinfo/ogr2ogr) and OWSLib,
against a live server, paging through next links, with bbox and filters."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
import pytest
from owslib.ogcapi.features import Features

from koop_app.models import Dataset
from tests.outputs.ogcapi.conftest import ROOT, dataset_document

pytestmark = pytest.mark.slow
PAGE = 7  # the max record count: every layer needs several pages
ENV = {"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF", "PATH": "/usr/bin:/bin",
       "GDAL_HTTP_UNSAFESSL": "NO"}


@pytest.fixture
def served(transactional_db, make_dataset, live_server):
    make_dataset("geojson", "ogc", dataset_document())
    Dataset.objects.update(max_record_count=PAGE)
    return f"{live_server.url}{ROOT}"


def ogr(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=180,
                          env=ENV).stdout


def test_ogrinfo_lists_the_collections(served):
    out = ogr("ogrinfo", "-ro", "-q", f"OAPIF:{served}")
    for cid in ("0", "1", "2", "3"):
        assert f": {cid} (" in out or f": {cid}" in out, out


def test_ogr2ogr_reads_every_feature_through_next_links(served, tmp_path: Path,
                                                         server_requests):
    target = tmp_path / "places.geojson"
    ogr("ogr2ogr", "-f", "GeoJSON", str(target), f"OAPIF:{served}", "0")
    features = orjson.loads(target.read_bytes())["features"]
    expected = {f["properties"]["code"]: f for f in dataset_document()["layers"][0]["features"]}
    assert sorted(f["properties"]["code"] for f in features) == sorted(expected)
    for feature in features:
        source = expected[feature["properties"]["code"]]
        assert feature["properties"]["name"] == source["properties"]["name"]
        assert feature["properties"]["pop"] == source["properties"]["pop"]
        assert feature["geometry"]["coordinates"] == pytest.approx(
            source["geometry"]["coordinates"])
    offsets = {int(v) for r in server_requests if r.path.endswith("/items")
               for k, v in parse_qsl(r.query) if k == "offset"}
    assert len(offsets) >= 25 // PAGE  # page after page


def test_ogr2ogr_reads_a_table_and_polygons(served, tmp_path: Path):
    for cid, count in (("3", 3), ("2", 4)):
        target = tmp_path / f"{cid}.geojson"
        ogr("ogr2ogr", "-f", "GeoJSON", str(target), f"OAPIF:{served}", cid)
        assert len(orjson.loads(target.read_bytes())["features"]) == count


def test_ogr2ogr_spatial_and_attribute_filters(served, tmp_path: Path, server_requests):
    target = tmp_path / "filtered.geojson"
    ogr("ogr2ogr", "-f", "GeoJSON", "-spat", "-10.5", "39.5", "0", "60",
        "-where", "pop >= 500", str(target), f"OAPIF:{served}", "0")
    codes = sorted(f["properties"]["code"] for f in orjson.loads(target.read_bytes())[
        "features"])
    assert codes == [6, 7, 8, 9, 10]  # x <= 0 and pop >= 500 (code 4, 11 have no pop)
    sent = [dict(parse_qsl(r.query)) for r in server_requests if r.path.endswith("/items")]
    assert any("bbox" in q for q in sent)
    assert any("filter" in q for q in sent)  # GDAL passed -where on as CQL2 (our conformance)


def test_owslib_reads_collections_and_items(served):
    api = Features(served)
    assert api.conformance()["conformsTo"]
    ids = [c["id"] for c in api.collections()["collections"]]
    assert ids == ["0", "1", "2", "3"]
    page = api.collection_items("0", limit=5)
    assert page["numberMatched"] == 25 and len(page["features"]) == 5
    boxed = api.collection_items("0", bbox=[-10.5, 39.5, -7.5, 41.5])
    assert sorted(f["properties"]["code"] for f in boxed["features"]) == [1, 2, 3]
    filtered = api.collection_items("0", filter="code BETWEEN 3 AND 5")
    assert sorted(f["properties"]["code"] for f in filtered["features"]) == [3, 4, 5]
    queryables = api.collection_queryables("0")
    assert queryables["properties"]["name"]["type"] == "string"
    item = api.collection_item("0", "2")
    assert item["properties"]["code"] == 2
