"""Real WFS clients against a live server on 127.0.0.1: GDAL's WFS driver (Debian's ogrinfo
and ogr2ogr, paging on) and OWSLib, in 2.0.0 and 1.1.0."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest
from owslib.fes2 import PropertyIsGreaterThan
from owslib.wfs import WebFeatureService

from tests.conftest import body_of, collection, feature, point

pytestmark = pytest.mark.slow
COUNT = 137
PAGE = 40  # the layer's maxRecordCount: clients must page
TYPE = "koop:stations"
ENV = {"PATH": "/usr/bin:/bin", "GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF",
       "OGR_WFS_PAGING_ALLOWED": "ON", "OGR_WFS_PAGE_SIZE": "25", "GDAL_HTTP_PROXY": "",
       "NO_PROXY": "127.0.0.1", "OGR_WFS_LOAD_MULTIPLE_LAYER_DEFN": "NO"}


def stations() -> dict:
    return collection([
        feature({"code": i, "label": f"Stätion {i}", "height": round(100 + i * 2.5, 1),
                 "kind": ["rain", "wind", None][i % 3]},
                point(5.0 + (i % 20) * 0.25, 45.0 + (i // 20) * 0.2))
        for i in range(COUNT)], metadata={"name": "stations", "idField": "code"})


@pytest.fixture
def wfs_url(transactional_db, make_dataset, live_server):
    assert live_server.url.startswith("http://localhost:") or "127.0.0.1" in live_server.url
    make_dataset("geojson", "stations", stations(), max_record_count=PAGE)
    host = live_server.url.replace("localhost", "127.0.0.1")
    return f"{host}/geojson/stations/WFSServer"


def expected(client) -> dict[int, dict]:
    """Every feature as the FeatureServer answers it (page by page: it has the same limit)."""
    out: dict[int, dict] = {}
    for offset in range(0, COUNT, PAGE):
        body = orjson.loads(body_of(client.get(
            "/geojson/rest/services/stations/FeatureServer/0/query",
            {"where": "1=1", "outFields": "*", "resultOffset": offset, "f": "geojson"})))
        out.update({f["properties"]["code"]: f for f in body["features"]})
    assert len(out) == COUNT
    return out


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_gdal_reads_every_feature_through_paging(wfs_url, client, tmp_path: Path, version):
    source = f"WFS:{wfs_url}?VERSION={version}"
    info = subprocess.run(["ogrinfo", "-ro", "-so", source, "stations"], check=True,
                          capture_output=True, text=True, timeout=120, env=ENV).stdout
    assert f"Feature Count: {COUNT}" in info
    assert "Geometry: Point" in info
    assert "label: String" in info and "height: Real" in info
    target = tmp_path / "out.json"
    subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(target), source, "stations"], check=True,
                   capture_output=True, timeout=180, env=ENV)
    read = orjson.loads(target.read_bytes())["features"]
    want = expected(client)
    assert sorted(f["properties"]["code"] for f in read) == sorted(want)  # each once
    for got in read:
        source_feature = want[got["properties"]["code"]]
        for name in ("label", "height", "kind"):
            assert got["properties"].get(name) == source_feature["properties"][name], name
        # GDAL swaps urn EPSG::4326 (lat, lon) back to lon, lat.
        assert got["geometry"]["coordinates"] == pytest.approx(
            source_feature["geometry"]["coordinates"])


def test_gdal_filters_with_a_where_and_a_bbox(wfs_url):
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-where", "height > 300",
                          "-spat", "5", "45", "6.1", "45.5", f"WFS:{wfs_url}", "stations"],
                         check=True, capture_output=True, text=True, timeout=120,
                         env=ENV).stdout
    matching = [i for i in range(COUNT) if 100 + i * 2.5 > 300
                and 5.0 + (i % 20) * 0.25 <= 6.1 and 45.0 + (i // 20) * 0.2 <= 45.5]
    assert f"Feature Count: {len(matching)}" in out


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_owslib_reads_contents_schema_and_features(wfs_url, version):
    service = WebFeatureService(wfs_url, version=version, timeout=60)
    assert list(service.contents) == [TYPE]
    layer = service.contents[TYPE]
    assert layer.boundingBoxWGS84 == pytest.approx((5.0, 45.0, 9.75, 46.2))
    schema = service.get_schema(TYPE)
    assert schema["properties"]["label"] == "string"
    assert schema["properties"]["height"] == "double"
    assert schema["geometry"] == "Point"
    # A bbox in the layer's default CRS (urn EPSG::4326, latitude first, as OWSLib sends it).
    answer = service.getfeature(typename=[TYPE], bbox=(5.0, 45.0, 5.6, 45.1, "EPSG:4326"),
                                outputFormat="application/json")
    found = orjson.loads(answer.read())
    assert sorted(f["properties"]["code"] for f in found["features"]) == [0, 1, 2]
    if version == "2.0.0":
        fes = PropertyIsGreaterThan(propertyname="height", literal="430")
        from owslib.etree import etree as owslib_etree
        from owslib.fes2 import Filter
        text = owslib_etree.tostring(Filter(fes).toXML()).decode()
        answer = service.getfeature(typename=[TYPE], filter=text, method="POST",
                                    outputFormat="application/json")
        found = orjson.loads(answer.read())
        assert sorted(f["properties"]["code"] for f in found["features"]) == list(
            range(133, COUNT))
