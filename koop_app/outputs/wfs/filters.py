"""A WFS query's selection (FILTER, BBOX, RESOURCEID) as GeoServices query parameters.

The FES document is first made plain for pygeofilter: property names become the layer's field
names (unknown ones are refused here, with the WFS locator), untyped literals compared with a
number or date field get that type, and GML geometries lose their ``srsName`` after we read it
(pygml would swap the axes of some CRSs by its own rules, and of others not): the axis order is
ours to decide (``crs.py``), and ``ogc_filter.to_geoservices`` applies it to every geometry of
the filter at once. Resource ids are object ids: ``<typename>.<objectid>``.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from pygeofilter import ast
from pygeofilter.parsers.fes import parse as parse_fes

from koop_app.data.schema import DATE, DOUBLE, INTEGER, OID, SMALL_INTEGER
from koop_app.outputs.wfs.crs import CRS, WGS84_LATLON, parse_crs
from koop_app.outputs.wfs.errors import WFSError, invalid
from koop_app.outputs.wfs.requests import Query
from koop_app.outputs.wfs.types import FeatureType
from koop_app.query.ogc_filter import to_geoservices

GML_NAMESPACES = ("http://www.opengis.net/gml/3.2", "http://www.opengis.net/gml")
ID_ELEMENTS = {"ResourceId": "rid", "FeatureId": "fid", "GmlObjectId": "id"}
INTEGERS = (OID, INTEGER, SMALL_INTEGER)
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def selection(query: Query, feature_type: FeatureType) -> dict[str, str]:
    """The GeoServices ``where``/spatial/``objectIds`` parameters of ``query``."""
    nodes: list[ast.Node] = []
    crs: CRS | None = None
    ids = list(query.resource_ids or [])
    if query.filter is not None:
        element = _copy(query.filter)
        ids += _take_ids(element)
        if len(element):
            crs = _plain_filter(element, feature_type)
            try:
                nodes.append(parse_fes(element))
            except WFSError:
                raise
            except Exception as exc:  # noqa: BLE001 - the parser raises many kinds, all ours
                raise invalid("FILTER", f"cannot read the filter: {_first_line(exc)}") from None
    if query.bbox is not None:
        numbers, crs_name = query.bbox
        box_crs = parse_crs(crs_name, "BBOX") if crs_name else WGS84_LATLON
        if crs is not None and (crs.epsg, crs.swap) != (box_crs.epsg, box_crs.swap):
            raise invalid("BBOX", "the BBOX and the filter's geometries must share a CRS")
        crs = box_crs
        minx, miny, maxx, maxy = (float(n) for n in numbers)
        nodes.append(ast.BBox(ast.Attribute("geometry"), minx, miny, maxx, maxy))
    node: ast.Node | None = None
    for item in nodes:
        node = item if node is None else ast.And(node, item)
    crs = crs or WGS84_LATLON
    params = to_geoservices(node, feature_type.table.schema, parameter="FILTER",
                            in_sr=crs.wkid, swap_xy=crs.swap) if node is not None else {}
    if query.filter is not None or query.resource_ids is not None:
        if ids or query.resource_ids is not None:
            object_ids = _object_ids(ids, feature_type)
            if not object_ids:
                params["where"] = "1=0"
            else:
                params["objectIds"] = ",".join(map(str, object_ids))
    return params


def _copy(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _take_ids(root: etree._Element) -> list[str]:
    """The Filter's resource ids (removed from it); ids under other operators are refused."""
    ids = []
    for child in list(root):
        if not isinstance(child.tag, str):
            root.remove(child)
            continue
        attribute = ID_ELEMENTS.get(etree.QName(child).localname)
        if attribute is not None:
            value = child.get(attribute) or next(
                (v for k, v in child.attrib.items() if etree.QName(k).localname == attribute),
                "")
            ids.append(value)
            root.remove(child)
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname in ID_ELEMENTS:
            raise invalid("FILTER", "resource ids are only taken directly in the Filter, not "
                          "combined with other operators")
    return ids


def _object_ids(ids: list[str], feature_type: FeatureType) -> list[int]:
    out = []
    for value in ids:
        prefix, _, number = value.strip().rpartition(".")
        prefix = prefix.rpartition(":")[2]
        if prefix and prefix.lower() != feature_type.name.lower():
            continue  # an id of another feature type
        if re.fullmatch(r"[0-9]{1,18}", number):
            out.append(int(number))
    return out


def _plain_filter(root: etree._Element, feature_type: FeatureType) -> CRS | None:
    """Field names, typed literals and no srsName, in place; the geometries' CRS."""
    fields: dict[int, Any] = {}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        kind = etree.QName(element).localname
        if kind in ("ValueReference", "PropertyName"):
            name = (element.text or "").strip()
            if feature_type.is_geometry(name) or not name:
                element.text = feature_type.geometry_property or "geometry"
                continue
            field = feature_type.field_of(name)
            if field is None:
                raise invalid("FILTER", f"{name[:80]!r} is not a property of "
                              f"{feature_type.qname}")
            element.text = field.name
            parent = element.getparent()
            if parent is not None:
                fields[id(parent)] = field
        elif kind == "PropertyIsLike":
            if element.get("escapeChar") is None:
                element.set("escapeChar", element.get("escape") or "\\")
            element.attrib.pop("escape", None)
            element.set("wildCard", element.get("wildCard") or "*")
            element.set("singleChar", element.get("singleChar") or "?")
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == "Literal":
            _type_literal(element, _field_above(element, fields))
    return _strip_crs(root)


def _field_above(element: etree._Element, fields: dict[int, Any]) -> Any:
    node = element.getparent()
    while node is not None:
        if id(node) in fields:
            return fields[id(node)]
        node = node.getparent()
    return None


def _type_literal(element: etree._Element, field: Any) -> None:
    if element.text is None and not len(element):
        element.text = ""
    if element.get("type"):
        return
    text = element.text or ""
    kind = "xs:string"
    if field is not None and field.type in INTEGERS and re.fullmatch(r"\s*[-+]?\d+\s*", text):
        kind = "xs:long"
    elif field is not None and field.type in (*INTEGERS, DOUBLE) and _NUMBER.match(text):
        kind = "xs:double"
    elif field is not None and field.type == DATE and re.match(r"\s*\d{4}-\d{2}-\d{2}", text):
        kind = "xs:dateTime" if "T" in text or " " in text.strip() else "xs:date"
        element.text = text.strip()
    element.set("type", kind)


def _strip_crs(root: etree._Element) -> CRS | None:
    found: CRS | None = None
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if etree.QName(element).namespace not in GML_NAMESPACES:
            continue
        name = element.attrib.pop("srsName", None)
        if name:
            crs = parse_crs(name, "FILTER")
            if found is not None and (crs.epsg, crs.swap) != (found.epsg, found.swap):
                raise invalid("FILTER", "the filter's geometries must share one CRS")
            found = crs
    return found
