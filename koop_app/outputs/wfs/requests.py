"""WFS requests, KVP (GET or form POST) and XML (POST), read into one shape.

Parameter names are case-insensitive in KVP. Lists of per-query values may be written in
parentheses (``TYPENAMES=(a)(b)&FILTER=(<f1>)(<f2>)``); a plain comma list of type names is
read as one query per name (we do not join). XML bodies are parsed with entities and network
access off: a request body never makes us read a file or a URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from koop_app.outputs.wfs.errors import WFSError, invalid, missing

VERSIONS = ("2.0.0", "1.1.0")
WFS20 = "http://www.opengis.net/wfs/2.0"
WFS11 = "http://www.opengis.net/wfs"
FES20 = "http://www.opengis.net/fes/2.0"
OGC = "http://www.opengis.net/ogc"
OPERATIONS = ("GetCapabilities", "DescribeFeatureType", "GetFeature", "ListStoredQueries",
              "DescribeStoredQueries")
GET_FEATURE_BY_ID = "urn:ogc:def:query:OGC-WFS::GetFeatureById"
MAX_BODY_BYTES = 1024 * 1024

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                              huge_tree=False, remove_comments=True)


@dataclass
class Query:
    """One query of a GetFeature: a feature type and what to take from it."""

    typename: str
    filter: etree._Element | None = None
    bbox: tuple[list[str], str | None] | None = None  # four numbers as text, and a CRS name
    resource_ids: list[str] | None = None
    property_names: list[str] | None = None
    sort_by: list[tuple[str, bool]] = field(default_factory=list)  # (property, descending)
    srs_name: str | None = None


@dataclass
class WFSRequest:
    operation: str
    version: str
    kvp: dict[str, str] | None = None  # the KVP parameters (upper case), None for XML
    queries: list[Query] = field(default_factory=list)
    count: int | None = None
    start_index: int = 0
    hits: bool = False
    output_format: str | None = None
    typenames: list[str] = field(default_factory=list)  # DescribeFeatureType
    stored_query_id: str | None = None
    stored_query_params: dict[str, str] = field(default_factory=dict)
    stored_query_ids: list[str] = field(default_factory=list)  # DescribeStoredQueries
    extra: dict[str, Any] = field(default_factory=dict)


def version_named(text: str, parameter: str = "VERSION") -> str:
    value = text.strip()
    if re.fullmatch(r"2\.0(\.\d+)?", value):
        return "2.0.0"
    if re.fullmatch(r"1\.1(\.\d+)?", value):
        return "1.1.0"
    raise invalid(parameter, f"version {value[:20]!r} is not supported (2.0.0, 1.1.0)")


def negotiate(accept_versions: str | None, version: str | None) -> str:
    """The GetCapabilities version: the first of ACCEPTVERSIONS we speak, else VERSION, else
    2.0.0 (OWS Common's negotiation)."""
    if accept_versions:
        for item in accept_versions.split(","):
            try:
                return version_named(item)
            except WFSError:
                continue
        raise WFSError("VersionNegotiationFailed",
                       f"None of the versions {accept_versions[:100]!r} is supported; this "
                       "service speaks 2.0.0 and 1.1.0.", "AcceptVersions")
    if version:
        try:
            return version_named(version)
        except WFSError:
            return "2.0.0"  # OWS 1.0: an unknown version gets the highest one we speak
    return "2.0.0"


def operation_named(text: str) -> str:
    for name in OPERATIONS:
        if name.lower() == text.strip().lower():
            return name
    if text.strip().lower() in ("getpropertyvalue", "transaction", "lockfeature",
                                "getfeaturewithlock", "getgmlobject", "createstoredquery",
                                "dropstoredquery"):
        raise WFSError("OperationNotSupported", f"{text.strip()} is not supported.", "request")
    raise WFSError("OperationNotSupported" if text.strip() else "MissingParameterValue",
                   f"Unknown operation {text.strip()[:50]!r}.", "request")


# --- KVP ---------------------------------------------------------------------------------

def _groups(value: str | None) -> list[str] | None:
    """``(a)(b)`` as ["a", "b"]; anything else as [value]."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("(") and text.endswith(")"):
        parts, depth, current = [], 0, []
        for char in text:
            if char == "(":
                depth += 1
                if depth == 1:
                    current = []
                    continue
            elif char == ")":
                depth -= 1
                if depth == 0:
                    parts.append("".join(current))
                    continue
            if depth >= 1:
                current.append(char)
        if depth == 0 and parts:
            return parts
    return [value]


def _per_query(value: str | None, count: int, parameter: str) -> list[str | None]:
    groups = _groups(value)
    if groups is None:
        return [None] * count
    if len(groups) == 1:
        return groups * count
    if len(groups) != count:
        raise invalid(parameter, f"{len(groups)} lists for {count} queries")
    return list(groups)


def non_negative(text: str | None, parameter: str) -> int | None:
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not re.fullmatch(r"\+?[0-9]{1,30}", value):
        raise invalid(parameter, f"{value[:30]!r} is not a non-negative integer")
    return int(value)


def sort_keys(text: str | None) -> list[tuple[str, bool]]:
    keys = []
    for item in (text or "").split(","):
        words = item.strip().split()
        if not words:
            continue
        if len(words) > 2:
            raise invalid("SORTBY", f"{item.strip()[:60]!r} is not 'property [ASC|DESC]'")
        order = words[1].upper() if len(words) == 2 else "ASC"
        if order not in ("ASC", "DESC", "A", "D"):
            raise invalid("SORTBY", f"unknown sort order {words[1][:20]!r}")
        keys.append((words[0], order in ("DESC", "D")))
    return keys


def parse_filter_text(text: str, parameter: str = "FILTER") -> etree._Element:
    try:
        root = etree.fromstring(text.strip().encode(), SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise invalid(parameter, f"not well-formed XML: {str(exc)[:150]}") from None
    if etree.QName(root).localname != "Filter":
        raise invalid(parameter, "expected a fes:Filter (or ogc:Filter) element")
    return root


def from_kvp(params: dict[str, str]) -> WFSRequest:
    kvp = {key.upper(): value for key, value in params.items()}
    if "REQUEST" not in kvp:
        raise missing("REQUEST")
    operation = operation_named(kvp["REQUEST"])
    service = kvp.get("SERVICE")
    if service is None and operation != "GetCapabilities":
        raise missing("SERVICE")
    if service is not None and service.strip().upper() != "WFS":
        raise invalid("SERVICE", f"{service[:20]!r}: this is a WFS")
    if operation == "GetCapabilities":
        version = negotiate(kvp.get("ACCEPTVERSIONS"), kvp.get("VERSION"))
        return WFSRequest(operation, version, kvp)
    version = version_named(kvp["VERSION"]) if kvp.get("VERSION") else "2.0.0"
    request = WFSRequest(operation, version, kvp, output_format=kvp.get("OUTPUTFORMAT"))
    if operation == "DescribeFeatureType":
        names = kvp.get("TYPENAMES") or kvp.get("TYPENAME") or ""
        request.typenames = [n for n in re.split(r"[,()]", names) if n.strip()]
    elif operation == "DescribeStoredQueries":
        ids = kvp.get("STOREDQUERY_ID") or ""
        request.stored_query_ids = [i.strip() for i in ids.split(",") if i.strip()]
    elif operation == "GetFeature":
        _get_feature_kvp(request, kvp)
    return request


def _get_feature_kvp(request: WFSRequest, kvp: dict[str, str]) -> None:
    request.count = non_negative(kvp.get("COUNT") or kvp.get("MAXFEATURES"),
                                 "COUNT" if "COUNT" in kvp else "MAXFEATURES")
    request.start_index = non_negative(kvp.get("STARTINDEX"), "STARTINDEX") or 0
    request.hits = _hits(kvp.get("RESULTTYPE"))
    stored = kvp.get("STOREDQUERY_ID")
    if stored is not None:
        request.stored_query_id = stored.strip()
        known = {"SERVICE", "VERSION", "REQUEST", "STOREDQUERY_ID", "OUTPUTFORMAT", "SRSNAME",
                 "COUNT", "STARTINDEX", "RESULTTYPE"}
        request.stored_query_params = {k: v for k, v in kvp.items() if k not in known}
        request.extra["srs_name"] = kvp.get("SRSNAME")
        return
    ids = kvp.get("RESOURCEID") or kvp.get("FEATUREID")
    typenames_text = kvp.get("TYPENAMES") or kvp.get("TYPENAME")
    if not typenames_text:
        if not ids:
            raise missing("TYPENAMES")
        # Resource ids alone: their type names say which types (koop:places.3 -> places).
        names = list(dict.fromkeys(i.strip().rpartition(".")[0] for i in ids.split(",")
                                   if "." in i))
        if not names:
            raise invalid("RESOURCEID", "resource ids are written <typename>.<id>")
        typenames_text = ",".join(names)
        request.extra["typenames_from_ids"] = True
    groups = _groups(typenames_text) or []
    names = [n.strip() for g in groups for n in g.split(",") if n.strip()] if len(
        groups) == 1 else [g.strip() for g in groups]
    if not names:
        raise missing("TYPENAMES")
    count = len(names)
    filters = _per_query(kvp.get("FILTER") or _xml_query(kvp.get("QUERY")), count, "FILTER")
    boxes = _per_query(kvp.get("BBOX"), count, "BBOX")
    properties = _per_query(kvp.get("PROPERTYNAME"), count, "PROPERTYNAME")
    sorts = _per_query(kvp.get("SORTBY"), count, "SORTBY")
    srs = kvp.get("SRSNAME")
    for i, name in enumerate(names):
        query = Query(name, srs_name=srs.strip() if srs else None)
        if filters[i]:
            query.filter = parse_filter_text(str(filters[i]))
        if boxes[i]:
            query.bbox = _bbox(str(boxes[i]))
        if ids:
            query.resource_ids = [v.strip() for v in ids.split(",") if v.strip()]
        if properties[i]:
            query.property_names = [p.strip() for p in str(properties[i]).split(",")
                                    if p.strip()]
        query.sort_by = sort_keys(sorts[i])
        request.queries.append(query)


def _xml_query(value: str | None) -> str | None:
    # OWSLib sends a GET request's filter as QUERY=<Filter...>.
    return value if value and value.lstrip().startswith("<") else None


def _hits(value: str | None) -> bool:
    kind = (value or "results").strip().lower()
    if kind not in ("results", "hits"):
        raise invalid("RESULTTYPE", f"{kind[:20]!r} is neither 'results' nor 'hits'")
    return kind == "hits"


def _bbox(text: str) -> tuple[list[str], str | None]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) in (5, 7) or (len(parts) > 4 and not _is_number(parts[4])):
        crs = parts[-1]
        numbers = parts[:-1]
    else:
        crs, numbers = None, parts
    if len(numbers) == 6:  # 3D: minx, miny, minz, maxx, maxy, maxz
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(_is_number(n) for n in numbers):
        raise invalid("BBOX", "expected minx,miny,maxx,maxy[,crs]")
    return numbers, crs


def _is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return value == value and abs(value) != float("inf")


# --- XML ---------------------------------------------------------------------------------

def _attr(element: etree._Element, name: str) -> str | None:
    """An attribute, its name matched without case (OWSLib writes ``outputformat``)."""
    found = element.get(name)
    if found is not None:
        return found
    wanted = name.lower()
    return next((v for k, v in element.attrib.items() if str(k).lower() == wanted), None)


def from_xml(body: bytes) -> WFSRequest:
    if len(body) > MAX_BODY_BYTES:
        raise WFSError("OperationParsingFailed", "The request body is too large.")
    try:
        root = etree.fromstring(body, SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise WFSError("OperationParsingFailed",
                       f"The request body is not well-formed XML: {str(exc)[:150]}") from None
    operation = operation_named(etree.QName(root).localname)
    if (root.get("service") or "WFS").upper() != "WFS":
        raise invalid("service", "this is a WFS")
    if operation == "GetCapabilities":
        accepted = [v.text or "" for v in root.iter() if etree.QName(v).localname == "Version"]
        version = negotiate(",".join(accepted) or None, root.get("version"))
        return WFSRequest(operation, version)
    namespace = etree.QName(root).namespace
    default = "1.1.0" if namespace == WFS11 else "2.0.0"
    version = version_named(root.get("version") or default)
    request = WFSRequest(operation, version, output_format=_attr(root, "outputFormat"))
    children = [c for c in root if isinstance(c.tag, str)]
    if operation == "DescribeFeatureType":
        request.typenames = [(c.text or "").strip() for c in children
                             if etree.QName(c).localname == "TypeName"]
    elif operation == "DescribeStoredQueries":
        request.stored_query_ids = [(c.text or "").strip() for c in children
                                    if etree.QName(c).localname == "StoredQueryId"]
    elif operation == "GetFeature":
        request.count = non_negative(_attr(root, "count") or _attr(root, "maxFeatures"),
                                     "count")
        request.start_index = non_negative(_attr(root, "startIndex"), "startIndex") or 0
        request.hits = _hits(_attr(root, "resultType"))
        for child in children:
            kind = etree.QName(child).localname
            if kind == "Query":
                request.queries.extend(_xml_queries(child))
            elif kind == "StoredQuery":
                request.stored_query_id = child.get("id")
                for parameter in child:
                    if isinstance(parameter.tag, str) and parameter.get("name"):
                        request.stored_query_params[parameter.get("name").upper()] = (
                            parameter.text or "").strip()
        if not request.queries and request.stored_query_id is None:
            raise missing("Query")
    return request


def _xml_queries(element: etree._Element) -> list[Query]:
    names = (_attr(element, "typeNames") or _attr(element, "typeName") or "").strip()
    if not names:
        raise missing("typeNames")
    out = []
    for name in re.split(r"[\s,()]+", names):
        if not name:
            continue
        query = Query(name, srs_name=_attr(element, "srsName"))
        for child in element:
            if not isinstance(child.tag, str):
                continue
            kind = etree.QName(child).localname
            if kind == "PropertyName":
                query.property_names = [*(query.property_names or []),
                                        (child.text or "").strip()]
            elif kind == "Filter":
                query.filter = child
            elif kind == "SortBy":
                for prop in child:
                    if not isinstance(prop.tag, str):
                        continue
                    parts = {etree.QName(p).localname: (p.text or "").strip()
                             for p in prop if isinstance(p.tag, str)}
                    name_of = parts.get("ValueReference") or parts.get("PropertyName") or ""
                    order = parts.get("SortOrder", "ASC").upper()
                    query.sort_by.append((name_of, order in ("DESC", "D")))
        out.append(query)
    return out
