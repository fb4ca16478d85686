"""WFS 2.0.0 / 1.1.0 requests through Django's test client: parsing, encoding, errors."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from lxml import etree
from pyproj import Transformer

from koop_app.models import Dataset
from tests.conftest import body_of, collection, feature, point
from tests.outputs.wfs.conftest import NAMES, NS, exception_code, xml

pytestmark = pytest.mark.django_db
TYPE = "koop:Swiss_places"
FES = 'xmlns:fes="http://www.opengis.net/fes/2.0" xmlns:gml="http://www.opengis.net/gml/3.2"'
OGC = 'xmlns:ogc="http://www.opengis.net/ogc" xmlns:gml="http://www.opengis.net/gml"'


def wfs(client, url: str, **params: Any) -> Any:
    return client.get(url, {"SERVICE": "WFS", "VERSION": "2.0.0", **params})


def features(root: etree._Element) -> list[dict[str, Any]]:
    """Each feature of a GML answer as {property: text, "gml:id": .., "pos": [..]}."""
    out = []
    for member in root.xpath("//wfs:member/*|//gml311:featureMember/*", namespaces=NS):
        item: dict[str, Any] = {"gml:id": member.get(f"{{{NS['gml']}}}id")
                                or member.get(f"{{{NS['gml311']}}}id")}
        for prop in member:
            name = etree.QName(prop).localname
            if name == "geometry":
                item["pos"] = [float(v) for v in " ".join(
                    prop.xpath(".//*[local-name()='pos' or local-name()='posList']/text()")
                ).split()]
            elif prop.get(f"{{{NS['xsi']}}}nil") == "true":
                item[name] = None
            else:
                item[name] = prop.text
        out.append(item)
    return out


def get_features(client, url: str, **params: Any) -> list[dict[str, Any]]:
    response = wfs(client, url, REQUEST="GetFeature", TYPENAMES=TYPE, **params)
    assert response.status_code == 200, body_of(response)[:500]
    return features(xml(response))


def ids(found: list[dict[str, Any]]) -> list[int]:
    return [int(f["id"]) for f in found]


def fes20(body: str) -> str:
    return f"<fes:Filter {FES}>{body}</fes:Filter>"


def fes11(body: str) -> str:
    return f"<ogc:Filter {OGC}>{body}</ogc:Filter>"


class TestCapabilities:
    def test_2_0_structure(self, client, wfs_data):
        response = wfs(client, wfs_data, REQUEST="GetCapabilities")
        assert response.status_code == 200
        root = xml(response)
        assert root.tag == f"{{{NS['wfs']}}}WFS_Capabilities" and root.get("version") == "2.0.0"
        names = root.xpath("//wfs:FeatureType/wfs:Name/text()", namespaces=NS)
        assert names == [TYPE]
        # The prefix resolves to the namespace of DescribeFeatureType's schema.
        assert root.nsmap["koop"] == "http://testserver/geojson/places/WFSServer"
        assert root.xpath("//wfs:FeatureType/wfs:DefaultCRS/text()", namespaces=NS) == [
            "urn:ogc:def:crs:EPSG::4326"]
        assert "urn:ogc:def:crs:EPSG::3857" in root.xpath("//wfs:OtherCRS/text()",
                                                          namespaces=NS)
        low = root.xpath("//ows:WGS84BoundingBox/ows:LowerCorner/text()", namespaces=NS)[0]
        assert [float(v) for v in low.split()] == pytest.approx([6.0, 46.0])
        operations = root.xpath("//ows:Operation/@name", namespaces=NS)
        assert set(operations) >= {"GetCapabilities", "DescribeFeatureType", "GetFeature",
                                   "ListStoredQueries", "DescribeStoredQueries"}
        get = root.xpath("//ows:Operation[@name='GetFeature']//ows:Get/@xlink:href",
                         namespaces={**NS, "xlink": "http://www.w3.org/1999/xlink"})[0]
        assert get.startswith("http://testserver/geojson/places/WFSServer")

        def constraint(name: str) -> str:
            return root.xpath(f"//ows:OperationsMetadata/ows:Constraint[@name='{name}']"
                              "/ows:DefaultValue/text()", namespaces=NS)[0]

        assert constraint("ImplementsResultPaging") == "TRUE"
        assert constraint("ImplementsTransactionalWFS") == "FALSE"
        assert constraint("CountDefault") == "5"  # the layer's maxRecordCount
        comparisons = root.xpath("//fes:ComparisonOperator/@name", namespaces=NS)
        assert {"PropertyIsLike", "PropertyIsBetween", "PropertyIsNull"} <= set(comparisons)
        assert "BBOX" in root.xpath("//fes:SpatialOperator/@name", namespaces=NS)
        assert root.xpath("//fes:Constraint[@name='ImplementsSorting']/ows:DefaultValue/text()",
                          namespaces=NS) == ["TRUE"]

    def test_1_1_when_asked_and_names_case_insensitive(self, client, wfs_data):
        response = client.get(wfs_data, {"sErViCe": "WFS", "request": "getcapabilities",
                                         "acceptversions": "1.1.0"})
        root = xml(response)
        assert root.tag == f"{{{NS['wfs11']}}}WFS_Capabilities" and root.get("version") == "1.1.0"
        assert root.xpath("//wfs11:FeatureType/wfs11:DefaultSRS/text()", namespaces=NS) == [
            "urn:ogc:def:crs:EPSG::4326"]
        assert xml(client.get(wfs_data, {"service": "WFS", "request": "GetCapabilities",
                                         "version": "1.1.0"})).get("version") == "1.1.0"
        assert xml(client.get(wfs_data, {"service": "WFS", "request": "GetCapabilities",
                                         "acceptversions": "3.0.0,2.0.2"})).get(
            "version") == "2.0.0"

    def test_version_negotiation_failure(self, client, wfs_data):
        response = client.get(wfs_data, {"service": "WFS", "request": "GetCapabilities",
                                         "acceptversions": "3.0.0"})
        assert response.status_code == 400
        assert exception_code(response) == "VersionNegotiationFailed"

    def test_multi_layer_dataset_and_table(self, client, make_dataset):
        make_dataset("geojson", "sites", {
            "layers": [collection([feature({"code": "A"}, point(1, 1))],
                                  metadata={"id": 2, "name": "Sites"}),
                       collection([feature({"code": "B"}, point(2, 2))],
                                  metadata={"id": 3, "name": "Sites"})],
            "tables": [collection([feature({"site": "A", "score": 5})],
                                  metadata={"id": 7, "name": "Inspections (2024)"})]})
        root = xml(wfs(client, "/geojson/sites/WFSServer", REQUEST="GetCapabilities"))
        names = root.xpath("//wfs:FeatureType/wfs:Name/text()", namespaces=NS)
        assert names == ["koop:Sites_2", "koop:Sites_3", "koop:Inspections_2024_"]
        table = root.xpath("//wfs:FeatureType[wfs:Name='koop:Inspections_2024_']", namespaces=NS)[0]
        assert table.xpath("wfs:NoCRS", namespaces=NS)
        got = features(xml(wfs(client, "/geojson/sites/WFSServer", REQUEST="GetFeature",
                               TYPENAMES="koop:Inspections_2024_")))
        assert [(f["site"], f["score"]) for f in got] == [("A", "5")]
        both = xml(wfs(client, "/geojson/sites/WFSServer", REQUEST="GetFeature",
                       TYPENAMES="koop:Sites_2,koop:Sites_3"))
        assert [f["code"] for f in features(both)] == ["A", "B"]
        assert both.get("numberMatched") == "2"


class TestDescribeFeatureType:
    def test_types_of_fields_and_geometry(self, client, wfs_data):
        root = xml(wfs(client, wfs_data, REQUEST="DescribeFeatureType", TYPENAMES=TYPE))
        assert root.get("targetNamespace") == "http://testserver/geojson/places/WFSServer"
        elements = {e.get("name"): e for e in root.xpath("//xsd:sequence/xsd:element",
                                                          namespaces=NS)}
        assert elements["id"].get("type") == "xsd:long"
        assert elements["pop"].get("type") == "xsd:int"
        assert elements["pop"].get("nillable") == "true"
        assert elements["score"].get("type") == "xsd:double"
        assert elements["founded"].get("type") == "xsd:dateTime"
        assert elements["name"].xpath(".//xsd:restriction/@base", namespaces=NS) == ["xsd:string"]
        assert elements["geometry"].get("type") == "gml:PointPropertyType"
        assert root.xpath("//xsd:import/@namespace", namespaces=NS) == [NS["gml"]]
        feature_element = root.xpath("/xsd:schema/xsd:element", namespaces=NS)[0]
        assert feature_element.get("substitutionGroup") == "gml:AbstractFeature"

    def test_1_1_is_gml_3_1_1_and_geometry_kinds(self, client, wfs_data):
        root = xml(client.get("/geojson/lines/WFSServer", {
            "service": "WFS", "version": "1.1.0", "request": "DescribeFeatureType"}))
        assert root.xpath("//xsd:import/@namespace", namespaces=NS) == [NS["gml311"]]
        assert root.xpath("//xsd:element[@name='geometry']/@type", namespaces=NS) == [
            "gml:MultiCurvePropertyType"]
        root = xml(wfs(client, "/geojson/areas/WFSServer", REQUEST="DescribeFeatureType"))
        assert root.xpath("//xsd:element[@name='geometry']/@type", namespaces=NS) == [
            "gml:MultiSurfacePropertyType"]


class TestGetFeature:
    def test_values_match_the_feature_server(self, client, wfs_data):
        expected = orjson.loads(client.get("/geojson/rest/services/places/FeatureServer/0/query",
                                           {"where": "1=1", "outFields": "*",
                                            "f": "json"}).content)["features"]
        found = get_features(client, wfs_data, COUNT="5")
        assert len(found) == 5
        for got, want in zip(found, expected, strict=False):
            attributes = want["attributes"]
            assert got["gml:id"] == f"Swiss_places.{attributes['id']}"
            assert got["name"] == attributes["name"]
            assert got["note"] == attributes["note"]  # escaped and read back
            assert (got["pop"] and int(got["pop"])) == attributes["pop"]
            assert (got["score"] and float(got["score"])) == attributes["score"]
            moment = dt.datetime.fromisoformat(got["founded"].replace("Z", "+00:00"))
            assert moment.timestamp() * 1000 == attributes["founded"]
            # urn EPSG::4326 is latitude, longitude.
            assert got["pos"] == pytest.approx([want["geometry"]["y"], want["geometry"]["x"]])
        assert found[0]["name"] == "Zürich" and found[3]["pop"] is None
        assert found[0]["note"] == "a < b & c"

    def test_paging_covers_every_feature_once(self, client, wfs_data):
        seen: list[int] = []
        response = wfs(client, wfs_data, REQUEST="GetFeature", TYPENAMES=TYPE, COUNT="4")
        pages = 0
        while True:
            root = xml(response)
            assert root.get("numberMatched") == "12"
            found = features(root)
            assert root.get("numberReturned") == str(len(found))
            seen += ids(found)
            pages += 1
            following = root.get("next")
            if following is None:
                break
            parts = urlsplit(following)
            response = client.get(f"{parts.path}?{parts.query}")
        assert sorted(seen) == list(range(1, 13)) and len(seen) == 12 and pages == 3
        assert root.get("previous") is not None

    def test_huge_count_is_capped_by_the_layer_limit(self, client, wfs_data):
        root = xml(wfs(client, wfs_data, REQUEST="GetFeature", TYPENAMES=TYPE,
                       COUNT="99999999999999999999", STARTINDEX="2"))
        assert root.get("numberReturned") == "5" and root.get("numberMatched") == "12"
        assert ids(features(root)) == [3, 4, 5, 6, 7]
        assert "STARTINDEX=7" in root.get("next")

    def test_hits(self, client, wfs_data):
        root = xml(wfs(client, wfs_data, REQUEST="GetFeature", TYPENAMES=TYPE,
                       RESULTTYPE="hits", FILTER=fes20(
                           "<fes:PropertyIsGreaterThan><fes:ValueReference>pop"
                           "</fes:ValueReference><fes:Literal>5000</fes:Literal>"
                           "</fes:PropertyIsGreaterThan>")))
        assert (root.get("numberMatched"), root.get("numberReturned")) == ("7", "0")
        assert not features(root)
        old = xml(client.get(wfs_data, {"service": "WFS", "version": "1.1.0",
                                        "request": "GetFeature", "typename": TYPE,
                                        "resulttype": "hits"}))
        assert old.get("numberOfFeatures") == "12"

    def test_sorting(self, client, wfs_data):
        assert ids(get_features(client, wfs_data, SORTBY="pop DESC", COUNT="3")) == [12, 11, 10]
        assert ids(get_features(client, wfs_data, SORTBY="score D,id A", COUNT="2")) == [12, 11]
        assert ids(get_features(client, wfs_data, SORTBY="name ASC", COUNT="2")) == [10, 11]

    def test_property_names(self, client, wfs_data):
        found = get_features(client, wfs_data, PROPERTYNAME="koop:name", COUNT="2")
        assert set(found[0]) == {"gml:id", "id", "name"}
        found = get_features(client, wfs_data, PROPERTYNAME="name,geometry", COUNT="1")
        assert "pos" in found[0]

    def test_srs_name_3857(self, client, wfs_data):
        found = get_features(client, wfs_data, SRSNAME="urn:ogc:def:crs:EPSG::3857", COUNT="2")
        x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(6.3, 46.1)
        assert found[1]["pos"] == pytest.approx([x, y], abs=0.01)
        lonlat = get_features(client, wfs_data, SRSNAME="EPSG:4326", COUNT="2")
        assert lonlat[1]["pos"] == pytest.approx([6.3, 46.1])

    def test_bbox_in_both_axis_orders(self, client, wfs_data):
        # Features 3-5 lie at lon 6.6-7.2, lat 46.2-46.4.
        latlon = get_features(client, wfs_data, BBOX="46.15,6.5,46.45,7.3,"
                              "urn:ogc:def:crs:EPSG::4326")
        lonlat = get_features(client, wfs_data, BBOX="6.5,46.15,7.3,46.45,EPSG:4326")
        default = get_features(client, wfs_data, BBOX="46.15,6.5,46.45,7.3")
        assert ids(latlon) == ids(lonlat) == ids(default) == [3, 4, 5]
        box = Transformer.from_crs(4326, 3857, always_xy=True).transform_bounds(
            6.5, 46.15, 7.3, 46.45)
        mercator = get_features(client, wfs_data, BBOX=",".join(map(str, box)) + ",EPSG:3857")
        assert ids(mercator) == [3, 4, 5]

    def test_resource_ids(self, client, wfs_data):
        found = wfs(client, wfs_data, REQUEST="GetFeature",
                    RESOURCEID="Swiss_places.2,Swiss_places.7,other.3")
        assert ids(features(xml(found))) == [2, 7]
        by_filter = get_features(client, wfs_data, FILTER=fes20(
            '<fes:ResourceId rid="Swiss_places.4"/><fes:ResourceId rid="Swiss_places.5"/>'))
        assert ids(by_filter) == [4, 5]
        old = client.get(wfs_data, {"service": "WFS", "version": "1.1.0",
                                    "request": "GetFeature", "typename": TYPE,
                                    "featureid": "Swiss_places.9"})
        assert ids(features(xml(old))) == [9]

    @pytest.mark.parametrize(("body", "expected"), [
        ("<fes:PropertyIsEqualTo><fes:ValueReference>koop:name</fes:ValueReference>"
         "<fes:Literal>Genève</fes:Literal></fes:PropertyIsEqualTo>", [2]),
        ("<fes:PropertyIsLessThanOrEqualTo><fes:ValueReference>score</fes:ValueReference>"
         "<fes:Literal>3</fes:Literal></fes:PropertyIsLessThanOrEqualTo>", [1, 2, 3]),
        ('<fes:PropertyIsLike wildCard="*" singleChar="?" escapeChar="\\">'
         "<fes:ValueReference>name</fes:ValueReference><fes:Literal>B*</fes:Literal>"
         "</fes:PropertyIsLike>", [3, 4, 9]),
        ("<fes:PropertyIsBetween><fes:ValueReference>pop</fes:ValueReference>"
         "<fes:LowerBoundary><fes:Literal>2000</fes:Literal></fes:LowerBoundary>"
         "<fes:UpperBoundary><fes:Literal>5000</fes:Literal></fes:UpperBoundary>"
         "</fes:PropertyIsBetween>", [2, 3, 5]),
        ("<fes:PropertyIsNull><fes:ValueReference>name</fes:ValueReference>"
         "</fes:PropertyIsNull>", [10]),
        ("<fes:Or><fes:PropertyIsEqualTo><fes:ValueReference>id</fes:ValueReference>"
         "<fes:Literal>1</fes:Literal></fes:PropertyIsEqualTo><fes:PropertyIsEqualTo>"
         "<fes:ValueReference>id</fes:ValueReference><fes:Literal>12</fes:Literal>"
         "</fes:PropertyIsEqualTo></fes:Or>", [1, 12]),
        ("<fes:Not><fes:PropertyIsGreaterThan><fes:ValueReference>id</fes:ValueReference>"
         "<fes:Literal>2</fes:Literal></fes:PropertyIsGreaterThan></fes:Not>", [1, 2]),
        ("<fes:PropertyIsGreaterThan><fes:ValueReference>founded</fes:ValueReference>"
         "<fes:Literal>2020-01-01T00:00:00Z</fes:Literal></fes:PropertyIsGreaterThan>",
         [11, 12]),
        ("<fes:BBOX><fes:ValueReference>geometry</fes:ValueReference>"
         '<gml:Envelope srsName="urn:ogc:def:crs:EPSG::4326"><gml:lowerCorner>46.15 6.5'
         "</gml:lowerCorner><gml:upperCorner>46.45 7.3</gml:upperCorner></gml:Envelope>"
         "</fes:BBOX>", [3, 4, 5]),
        ("<fes:BBOX><fes:ValueReference>geometry</fes:ValueReference>"
         '<gml:Envelope srsName="EPSG:4326"><gml:lowerCorner>6.5 46.15</gml:lowerCorner>'
         "<gml:upperCorner>7.3 46.45</gml:upperCorner></gml:Envelope></fes:BBOX>", [3, 4, 5]),
        ("<fes:And><fes:Intersects><fes:ValueReference>geometry</fes:ValueReference>"
         '<gml:Polygon gml:id="p" srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior>'
         "<gml:LinearRing><gml:posList>46.15 6.5 46.15 7.3 46.45 7.3 46.45 6.5 46.15 6.5"
         "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></fes:Intersects>"
         "<fes:PropertyIsNotEqualTo><fes:ValueReference>id</fes:ValueReference>"
         "<fes:Literal>4</fes:Literal></fes:PropertyIsNotEqualTo></fes:And>", [3, 5]),
    ])
    def test_fes_2_0_filters(self, client, wfs_data, body, expected):
        assert ids(get_features(client, wfs_data, FILTER=fes20(body))) == expected

    @pytest.mark.parametrize(("body", "expected"), [
        ("<ogc:PropertyIsEqualTo><ogc:PropertyName>name</ogc:PropertyName>"
         "<ogc:Literal>Zug</ogc:Literal></ogc:PropertyIsEqualTo>", [12]),
        ('<ogc:PropertyIsLike wildCard="%" singleChar="_" escapeChar="!">'
         "<ogc:PropertyName>name</ogc:PropertyName><ogc:Literal>%u%</ogc:Literal>"
         "</ogc:PropertyIsLike>", [5, 6, 8, 11, 12]),
        ("<ogc:And><ogc:PropertyIsNull><ogc:PropertyName>pop</ogc:PropertyName>"
         "</ogc:PropertyIsNull><ogc:Not><ogc:PropertyIsNull><ogc:PropertyName>name"
         "</ogc:PropertyName></ogc:PropertyIsNull></ogc:Not></ogc:And>", [4]),
        ("<ogc:BBOX><ogc:PropertyName>geometry</ogc:PropertyName>"
         '<gml:Envelope srsName="EPSG:4326"><gml:lowerCorner>6.5 46.15</gml:lowerCorner>'
         "<gml:upperCorner>7.3 46.45</gml:upperCorner></gml:Envelope></ogc:BBOX>", [3, 4, 5]),
        ('<ogc:FeatureId fid="Swiss_places.8"/>', [8]),
    ])
    def test_fes_1_1_filters(self, client, wfs_data, body, expected):
        response = client.get(wfs_data, {"service": "WFS", "version": "1.1.0",
                                         "request": "GetFeature", "typename": TYPE,
                                         "filter": fes11(body)})
        assert ids(features(xml(response))) == expected

    def test_geojson(self, client, wfs_data):
        for fmt in ("application/json", "application/geo+json"):
            response = wfs(client, wfs_data, REQUEST="GetFeature", TYPENAMES=TYPE, COUNT="2",
                           OUTPUTFORMAT=fmt)
            body = orjson.loads(body_of(response))
            assert body["numberMatched"] == 12 and body["numberReturned"] == 2
            assert body["features"][1]["geometry"]["coordinates"] == [6.3, 46.1]  # lon, lat
            assert body["features"][0]["properties"]["name"] == "Zürich"

    def test_post_xml(self, client, wfs_data):
        body = (f'<wfs:GetFeature service="WFS" version="2.0.0" count="2" '
                f'xmlns:wfs="http://www.opengis.net/wfs/2.0" {FES} '
                f'xmlns:koop="http://testserver/geojson/places/WFSServer">'
                f'<wfs:Query typeNames="{TYPE}">'
                "<fes:Filter><fes:PropertyIsGreaterThan><fes:ValueReference>id"
                "</fes:ValueReference><fes:Literal>6</fes:Literal></fes:PropertyIsGreaterThan>"
                "</fes:Filter><fes:SortBy><fes:SortProperty><fes:ValueReference>id"
                "</fes:ValueReference><fes:SortOrder>DESC</fes:SortOrder></fes:SortProperty>"
                "</fes:SortBy></wfs:Query></wfs:GetFeature>")
        response = client.post(wfs_data, body, content_type="application/xml")
        root = xml(response)
        assert ids(features(root)) == [12, 11] and root.get("numberMatched") == "6"
        following = urlsplit(root.get("next"))
        page = xml(client.get(f"{following.path}?{following.query}"))
        assert ids(features(page)) == [10, 9]
        capabilities = client.post(wfs_data, '<wfs:GetCapabilities service="WFS" '
                                   'xmlns:wfs="http://www.opengis.net/wfs/2.0"/>',
                                   content_type="text/xml")
        assert xml(capabilities).get("version") == "2.0.0"

    def test_stored_queries(self, client, wfs_data):
        listed = xml(wfs(client, wfs_data, REQUEST="ListStoredQueries"))
        assert listed.xpath("//wfs:StoredQuery/@id", namespaces=NS) == [
            "urn:ogc:def:query:OGC-WFS::GetFeatureById"]
        described = xml(wfs(client, wfs_data, REQUEST="DescribeStoredQueries"))
        assert described.xpath("//wfs:Parameter/@name", namespaces=NS) == ["ID"]
        one = wfs(client, wfs_data, REQUEST="GetFeature",
                  STOREDQUERY_ID="urn:ogc:def:query:OGC-WFS::GetFeatureById", ID="Swiss_places.2")
        root = xml(one)
        assert etree.QName(root).localname == "Swiss_places"
        assert root.xpath("koop:name/text()", namespaces={"koop": root.nsmap["koop"]}) == [
            "Genève"]
        missing = wfs(client, wfs_data, REQUEST="GetFeature",
                      STOREDQUERY_ID="urn:ogc:def:query:OGC-WFS::GetFeatureById",
                      ID="Swiss_places.999")
        assert missing.status_code == 404 and exception_code(missing) == "NotFound"


class TestErrors:
    @pytest.mark.parametrize(("params", "code", "locator"), [
        ({"REQUEST": "GetFeature"}, "MissingParameterValue", "TYPENAMES"),
        ({}, "MissingParameterValue", "REQUEST"),
        ({"REQUEST": "Transaction"}, "OperationNotSupported", "request"),
        ({"REQUEST": "GetFeature", "TYPENAMES": "koop:nope"}, "InvalidParameterValue",
         "TYPENAMES"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "BBOX": "1,2,x,4"},
         "InvalidParameterValue", "BBOX"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "BBOX": "1,2,3,4,EPSG:999999"},
         "InvalidParameterValue", "BBOX"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "FILTER": "<fes:Filter"},
         "InvalidParameterValue", "FILTER"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "FILTER": fes20(
            "<fes:PropertyIsEqualTo><fes:ValueReference>nope</fes:ValueReference>"
            "<fes:Literal>1</fes:Literal></fes:PropertyIsEqualTo>")},
         "InvalidParameterValue", "FILTER"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "FILTER": fes20(
            "<fes:Or><fes:BBOX><gml:Envelope><gml:lowerCorner>0 0</gml:lowerCorner>"
            "<gml:upperCorner>1 1</gml:upperCorner></gml:Envelope></fes:BBOX>"
            "<fes:PropertyIsNull><fes:ValueReference>name</fes:ValueReference>"
            "</fes:PropertyIsNull></fes:Or>")}, "InvalidParameterValue", "FILTER"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "PROPERTYNAME": "nope"},
         "InvalidParameterValue", "PROPERTYNAME"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "SORTBY": "nope DESC"},
         "InvalidParameterValue", "SORTBY"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "COUNT": "-1"},
         "InvalidParameterValue", "COUNT"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "SRSNAME": "EPSG:nope"},
         "InvalidParameterValue", "SRSNAME"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "OUTPUTFORMAT": "image/png"},
         "InvalidParameterValue", "OUTPUTFORMAT"),
        ({"REQUEST": "GetFeature", "VERSION": "1.0.0", "TYPENAMES": TYPE},
         "InvalidParameterValue", "VERSION"),
        ({"REQUEST": "GetFeature", "TYPENAMES": TYPE, "RESULTTYPE": "all"},
         "InvalidParameterValue", "RESULTTYPE"),
    ])
    def test_bad_requests(self, client, wfs_data, params, code, locator):
        response = client.get(wfs_data, {"SERVICE": "WFS", "VERSION": "2.0.0", **params}
                              if params else {})
        assert response.status_code == 400
        root = xml(response)
        assert root.tag == f"{{{NS['ows']}}}ExceptionReport"
        exception = root.xpath("ows:Exception", namespaces=NS)[0]
        assert (exception.get("exceptionCode"), exception.get("locator")) == (code, locator)

    def test_malformed_post_body(self, client, wfs_data):
        for body in ("<wfs:GetFeature", "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                     "<GetFeature service='WFS'>&e;</GetFeature>"):
            response = client.post(wfs_data, body, content_type="application/xml")
            assert response.status_code == 400
            assert exception_code(response) in ("OperationParsingFailed", "MissingParameterValue")
            assert b"root:" not in body_of(response)

    def test_1_1_errors_are_ows_1_0(self, client, wfs_data):
        response = client.get(wfs_data, {"service": "WFS", "version": "1.1.0",
                                         "request": "GetFeature", "typename": "nope"})
        assert response.status_code == 400
        assert xml(response).tag == "{http://www.opengis.net/ows}ExceptionReport"

    def test_unknown_dataset_is_404(self, client, wfs_data):
        response = wfs(client, "/geojson/nothing/WFSServer", REQUEST="GetCapabilities")
        assert response.status_code == 404 and exception_code(response) == "NotFound"

    def test_secured_dataset_refuses_anonymous_callers(self, client, make_dataset):
        make_dataset("geojson", "vault", collection([feature({"a": 1}, point(1, 1))]),
                     access=Dataset.SIGNED_IN)
        for params in ({"REQUEST": "GetCapabilities"},
                       {"REQUEST": "GetFeature", "TYPENAMES": "koop:vault"}):
            response = wfs(client, "/geojson/vault/WFSServer", **params)
            assert response.status_code == 401
            assert response["WWW-Authenticate"] == "Bearer"
            assert xml(response).tag == f"{{{NS['ows']}}}ExceptionReport"
            assert b"<koop:a>" not in body_of(response)


def test_offered_in_the_services_directory(client, wfs_data):
    body = orjson.loads(client.get("/rest/services/geojson/places/FeatureServer",
                                   {"f": "json"}).content)
    assert body  # the service answers; the directory lists the WFS beside it
    directory = orjson.loads(client.get("/rest/services/geojson", {"f": "json"}).content)
    offers = [s.get("offers", {}) for s in directory.get("services", [])]
    assert any(o.get("WFS", "").endswith("/geojson/places/WFSServer") for o in offers), offers
    assert NAMES[0] == "Zürich"


def test_large_pages_are_streamed_whole(client, make_dataset):
    make_dataset("geojson", "many", collection([
        feature({"n": i}, point(i % 100 * 0.01, i // 100 * 0.01)) for i in range(2600)]),
        max_record_count=3000)
    response = wfs(client, "/geojson/many/WFSServer", REQUEST="GetFeature",
                   TYPENAMES="koop:many", COUNT="2500", STARTINDEX="50")
    assert response.streaming
    root = xml(response)
    assert (root.get("numberMatched"), root.get("numberReturned")) == ("2600", "2500")
    assert [int(f["n"]) for f in features(root)] == list(range(50, 2550))
    geojson = wfs(client, "/geojson/many/WFSServer", REQUEST="GetFeature",
                  TYPENAMES="koop:many", OUTPUTFORMAT="application/geo+json")
    assert geojson.streaming
    assert len(orjson.loads(body_of(geojson))["features"]) == 2600
