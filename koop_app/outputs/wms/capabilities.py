"""The capabilities document (WMS 1.3.0, OGC 06-042 section 7.2.4; and WMS 1.1.1).

One root layer (the dataset) groups a named layer per layer with geometry; a layer's Name is
its id (as ArcGIS Server's WMS names them), its Title its name. Every layer lists the
advertised CRSs and a BoundingBox in each, in that CRS's axis order.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote
from xml.etree import ElementTree as ET

from koop_app.data import LayerSet
from koop_app.data.hot import LayerTable
from koop_app.outputs.geoservices.serializers import layer_name
from koop_app.outputs.wms import crs as wms_crs
from koop_app.outputs.wms.styles import layer_styles

WMS_NS = "http://www.opengis.net/wms"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SLD_NS = "http://www.opengis.net/sld"
# The largest GetMap image, each side (MaxWidth/MaxHeight): 4096 x 4096 RGBA is 64 MB.
MAX_SIZE = 4096
LEGEND_WIDTH = 220
LEGEND_ROW = 20
MAP_FORMATS = ("image/png", "image/jpeg")
INFO_FORMATS = ("text/plain", "text/html", "application/json", "application/geo+json",
                "text/xml")
WORLD = (-180.0, -90.0, 180.0, 90.0)

ET.register_namespace("", WMS_NS)
ET.register_namespace("xlink", XLINK_NS)
ET.register_namespace("xsi", XSI_NS)
ET.register_namespace("sld", SLD_NS)


def _number(value: float) -> str:
    return repr(round(float(value), 9))


class _Builder:
    def __init__(self, version: str) -> None:
        self.version = version
        self.ns = f"{{{WMS_NS}}}" if version == "1.3.0" else ""

    def element(self, parent: ET.Element | None, tag: str, text: str | None = None,
                **attributes: str) -> ET.Element:
        name = self.ns + tag
        node = ET.Element(name, attributes) if parent is None else ET.SubElement(
            parent, name, attributes)
        if text is not None:
            node.text = text
        return node

    def link(self, parent: ET.Element, tag: str, href: str) -> ET.Element:
        return self.element(parent, tag, **{f"{{{XLINK_NS}}}type": "simple",
                                            f"{{{XLINK_NS}}}href": href})


def _extent(tables: Sequence[LayerTable]) -> tuple[float, float, float, float]:
    extents = [t.schema.extent for t in tables if t.schema.extent]
    if not extents:
        return WORLD
    xmin = max(-180.0, min(e[0] for e in extents))
    ymin = max(-90.0, min(e[1] for e in extents))
    xmax = min(180.0, max(e[2] for e in extents))
    ymax = min(90.0, max(e[3] for e in extents))
    if xmin > xmax or ymin > ymax:
        return WORLD
    return xmin, ymin, xmax, ymax


def map_tables(layers: LayerSet) -> list[LayerTable]:
    return [t for t in layers.layers if not t.is_table]


def document(layers: LayerSet, *, version: str, url: str, title: str, abstract: str,
             root_name: str, legend: bool = True) -> bytes:
    """The capabilities XML; ``url`` is the service's absolute URL (DCP links)."""
    b = _Builder(version)
    if version == "1.3.0":
        root = b.element(None, "WMS_Capabilities", version="1.3.0", updateSequence=layers.version,
                         **{f"{{{XSI_NS}}}schemaLocation":
                            f"{WMS_NS} http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd"})
    else:
        root = b.element(None, "WMT_MS_Capabilities", version="1.1.1",
                         updateSequence=layers.version)
    service = b.element(root, "Service")
    b.element(service, "Name", "WMS" if version == "1.3.0" else "OGC:WMS")
    b.element(service, "Title", title)
    if abstract:
        b.element(service, "Abstract", abstract)
    b.link(service, "OnlineResource", url)
    b.element(service, "Fees", "none")
    b.element(service, "AccessConstraints", "none")
    if version == "1.3.0":
        b.element(service, "MaxWidth", str(MAX_SIZE))
        b.element(service, "MaxHeight", str(MAX_SIZE))

    capability = b.element(root, "Capability")
    request = b.element(capability, "Request")
    online = url + "?"
    operations = [("GetCapabilities", ("text/xml",) if version == "1.3.0"
                   else ("application/vnd.ogc.wms_xml",)),
                  ("GetMap", MAP_FORMATS), ("GetFeatureInfo", INFO_FORMATS)]
    if legend:
        operations.append(("sld:GetLegendGraphic" if version == "1.3.0" else "GetLegendGraphic",
                           ("image/png",)))
    for name, formats in operations:
        if name.startswith("sld:"):
            # An extension operation (SLD 1.1 profile): outside the WMS schema's namespace.
            op = ET.SubElement(request, f"{{{SLD_NS}}}GetLegendGraphic")
        else:
            op = b.element(request, name)
        for fmt in formats:
            b.element(op, "Format", fmt)
        dcp = b.element(b.element(op, "DCPType"), "HTTP")
        b.link(b.element(dcp, "Get"), "OnlineResource", online)
        b.link(b.element(dcp, "Post"), "OnlineResource", online)
    exception = b.element(capability, "Exception")
    for fmt in (("XML", "INIMAGE", "BLANK") if version == "1.3.0"
                else ("application/vnd.ogc.se_xml", "application/vnd.ogc.se_inimage",
                      "application/vnd.ogc.se_blank")):
        b.element(exception, "Format", fmt)

    tables = map_tables(layers)
    top = b.element(capability, "Layer", queryable="1" if tables else "0")
    if tables:
        b.element(top, "Name", root_name)
    b.element(top, "Title", title)
    if abstract:
        b.element(top, "Abstract", abstract)
    codes = list(wms_crs.ADVERTISED)
    for code in codes:
        b.element(top, "CRS" if version == "1.3.0" else "SRS", code)
    whole = _extent(tables)
    _bounds(b, top, whole, codes)
    for table in tables:
        node = b.element(top, "Layer", queryable="1", opaque="0")
        b.element(node, "Name", str(table.layer_id))
        b.element(node, "Title", layer_name(table, title))
        description = table.schema.metadata.get("description") or ""
        if description:
            b.element(node, "Abstract", description)
        keywords = b.element(node, "KeywordList")
        b.element(keywords, "Keyword", str(table.schema.geometry_type).removeprefix(
            "esriGeometry"))
        _bounds(b, node, _extent([table]), codes)
        _style_list(b, node, table, url, legend, str(table.layer_id))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _bounds(b: _Builder, node: ET.Element, extent: tuple[float, float, float, float],
            codes: Sequence[str]) -> None:
    xmin, ymin, xmax, ymax = extent
    if b.version == "1.3.0":
        box = b.element(node, "EX_GeographicBoundingBox")
        for tag, value in (("westBoundLongitude", xmin), ("eastBoundLongitude", xmax),
                           ("southBoundLatitude", ymin), ("northBoundLatitude", ymax)):
            b.element(box, tag, _number(value))
    else:
        b.element(node, "LatLonBoundingBox", minx=_number(xmin), miny=_number(ymin),
                  maxx=_number(xmax), maxy=_number(ymax))
    for code in codes:
        target = wms_crs.parse_crs(code, b.version)
        bounds = wms_crs.extent_in(extent, target)
        if bounds is None:
            continue
        minx, miny, maxx, maxy = wms_crs.axis_ordered(bounds, target)
        b.element(node, "BoundingBox", **{"CRS" if b.version == "1.3.0" else "SRS": code},
                  minx=_number(minx), miny=_number(miny), maxx=_number(maxx),
                  maxy=_number(maxy))


def _style_list(b: _Builder, node: ET.Element, table: LayerTable, url: str, legend: bool,
                layer: str) -> None:
    for name, title in [(s.name, s.title) for s in layer_styles(table)]:
        style = b.element(node, "Style")
        b.element(style, "Name", name)
        b.element(style, "Title", title)
        if legend:
            legend_node = b.element(style, "LegendURL", width=str(LEGEND_WIDTH),
                                    height=str(LEGEND_ROW))
            b.element(legend_node, "Format", "image/png")
            href = (f"{url}?SERVICE=WMS&REQUEST=GetLegendGraphic&VERSION={b.version}"
                    f"&FORMAT=image/png&LAYER={quote(layer)}&STYLE={quote(name)}")
            b.link(legend_node, "OnlineResource", href)

