"""GetCapabilities: the service, operations, and the layer tree with CRSs, boxes and styles."""

from __future__ import annotations

import orjson
import pytest
from lxml import etree

from tests.outputs.wms.conftest import WMS, wms

XLINK = "{http://www.w3.org/1999/xlink}"

pytestmark = pytest.mark.django_db


def capabilities(client, **params):
    response = wms(client, SERVICE="WMS", REQUEST="GetCapabilities", **params)
    assert response.status_code == 200, response.content[:500]
    return response, etree.fromstring(response.content)


def test_service_and_operations(client, dataset):
    response, root = capabilities(client, VERSION="1.3.0")
    assert response["Content-Type"].startswith("text/xml")
    assert root.tag == f"{WMS}WMS_Capabilities" and root.get("version") == "1.3.0"
    assert root.findtext(f"{WMS}Service/{WMS}Name") == "WMS"
    assert root.findtext(f"{WMS}Service/{WMS}Abstract") == "Places to see"
    request = root.find(f"{WMS}Capability/{WMS}Request")
    formats = {op: [f.text for f in request.findall(f"{WMS}{op}/{WMS}Format")]
               for op in ("GetCapabilities", "GetMap", "GetFeatureInfo")}
    assert formats["GetMap"] == ["image/png", "image/jpeg"]
    assert {"text/plain", "text/html", "application/json"} <= set(formats["GetFeatureInfo"])
    href = request.find(f"{WMS}GetMap/{WMS}DCPType/{WMS}HTTP/{WMS}Get/{WMS}OnlineResource")
    assert href.get(f"{XLINK}href") == "http://testserver/geojson/atlas/WMSServer?"
    exceptions = [f.text for f in root.findall(f"{WMS}Capability/{WMS}Exception/{WMS}Format")]
    assert "XML" in exceptions
    assert response["ETag"]


def test_layer_tree(client, dataset):
    _, root = capabilities(client)
    top = root.find(f"{WMS}Capability/{WMS}Layer")
    assert top.findtext(f"{WMS}Name") == "atlas"
    codes = [c.text for c in top.findall(f"{WMS}CRS")]
    assert {"EPSG:4326", "CRS:84", "EPSG:3857"} <= set(codes)
    children = top.findall(f"{WMS}Layer")
    # The table (no geometry) is no map layer.
    assert [(c.findtext(f"{WMS}Name"), c.findtext(f"{WMS}Title")) for c in children] == [
        ("0", "Spots"), ("1", "Roads"), ("2", "Parks")]
    spots = children[0]
    assert spots.get("queryable") == "1"
    assert spots.findtext(f"{WMS}Abstract") == "Places to see"
    geographic = spots.find(f"{WMS}EX_GeographicBoundingBox")
    assert [float(geographic.findtext(f"{WMS}{t}")) for t in (
        "westBoundLongitude", "eastBoundLongitude", "southBoundLatitude",
        "northBoundLatitude")] == [-30, 100, -10, 60]
    boxes = {b.get("CRS"): [float(b.get(k)) for k in ("minx", "miny", "maxx", "maxy")]
             for b in spots.findall(f"{WMS}BoundingBox")}
    assert boxes["CRS:84"] == [-30, -10, 100, 60]
    assert boxes["EPSG:4326"] == [-10, -30, 60, 100]  # latitude first in 1.3.0
    mercator = boxes["EPSG:3857"]
    assert mercator[0] == pytest.approx(-3339584.72, abs=1) and mercator[2] == pytest.approx(
        11131949.08, abs=1)
    style = spots.find(f"{WMS}Style")
    assert style.findtext(f"{WMS}Name") == "default"
    legend = style.find(f"{WMS}LegendURL/{WMS}OnlineResource").get(f"{XLINK}href")
    assert "REQUEST=GetLegendGraphic" in legend and "LAYER=0" in legend


def test_version_1_1_1(client, dataset):
    response, root = capabilities(client, VERSION="1.1.1")
    assert response["Content-Type"].startswith("application/vnd.ogc.wms_xml")
    assert root.tag == "WMT_MS_Capabilities" and root.get("version") == "1.1.1"
    assert "EPSG:4326" in [s.text for s in root.findall("Capability/Layer/SRS")]
    spots = root.find("Capability/Layer/Layer")
    box = {b.get("SRS"): [float(b.get(k)) for k in ("minx", "miny", "maxx", "maxy")]
           for b in spots.findall("BoundingBox")}
    assert box["EPSG:4326"] == [-30, -10, 100, 60]  # 1.1.1: longitude first
    assert spots.find("LatLonBoundingBox").get("minx") == "-30.0"


def test_negotiation_and_case(client, dataset):
    _, root = capabilities(client, VERSION="2.0.0")
    assert root.get("version") == "1.3.0"
    response = client.get("/geojson/atlas/WMSServer", {"service": "wms",
                                                      "request": "getcapabilities"})
    assert response.status_code == 200
    assert etree.fromstring(response.content).get("version") == "1.3.0"


def test_offered_in_the_services_directory(client, dataset):
    body = orjson.loads(client.get("/rest/services/geojson", {"f": "json"}).content)
    (entry,) = [s for s in body["services"]
                if s["name"] == "geojson/atlas" and s["type"] == "FeatureServer"]
    assert entry["offers"]["WMS"] == "http://testserver/geojson/atlas/WMSServer"
    info = orjson.loads(client.get("/rest/info", {"f": "json"}).content)
    assert "wms" in orjson.dumps(info).decode()
