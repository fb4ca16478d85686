"""The WFS's XML documents: capabilities (2.0.0 and 1.1.0), feature type schemas, stored
queries. Each says only what is implemented (see the constraints below)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from koop_app.data.schema import DATE, DOUBLE, INTEGER, OID, SMALL_INTEGER
from koop_app.outputs.wfs.crs import DEFAULT_CRS, OTHER_CRS
from koop_app.outputs.wfs.gml import GML32, GML311, GMLFormat
from koop_app.outputs.wfs.requests import GET_FEATURE_BY_ID
from koop_app.outputs.wfs.types import PREFIX, FeatureType

OUTPUT_FORMATS_20 = ("application/gml+xml; version=3.2", "text/xml; subtype=gml/3.2",
                     "text/xml; subtype=gml/3.1.1", "application/json", "application/geo+json")
OUTPUT_FORMATS_11 = ("text/xml; subtype=gml/3.1.1", "application/gml+xml; version=3.2",
                     "application/json", "application/geo+json")
XSD_TYPES = {OID: "xsd:long", INTEGER: "xsd:int", SMALL_INTEGER: "xsd:short",
             DOUBLE: "xsd:double", DATE: "xsd:dateTime"}
GEOMETRY_PROPERTY_TYPES = {"esriGeometryPoint": "gml:PointPropertyType",
                           "esriGeometryMultipoint": "gml:MultiPointPropertyType",
                           "esriGeometryPolyline": "gml:MultiCurvePropertyType",
                           "esriGeometryPolygon": "gml:MultiSurfacePropertyType"}
COMPARISONS_20 = ("PropertyIsEqualTo", "PropertyIsNotEqualTo", "PropertyIsLessThan",
                  "PropertyIsGreaterThan", "PropertyIsLessThanOrEqualTo",
                  "PropertyIsGreaterThanOrEqualTo", "PropertyIsLike", "PropertyIsNull",
                  "PropertyIsBetween")
COMPARISONS_11 = ("EqualTo", "NotEqualTo", "LessThan", "GreaterThan", "LessThanEqualTo",
                  "GreaterThanEqualTo", "Like", "Between", "NullCheck")
# Spatial operators the engine answers (as GeoServices spatial relations); not Disjoint,
# Equals or Beyond.
SPATIAL = ("BBOX", "Intersects", "Within", "Contains", "Touches", "Crosses", "Overlaps",
           "DWithin")
OPERANDS = ("gml:Envelope", "gml:Point", "gml:LineString", "gml:Polygon", "gml:MultiPoint",
            "gml:MultiCurve", "gml:MultiSurface", "gml:LinearRing")
CONSTRAINTS_20 = {  # WFS 2.0 table 13: what this service implements
    # Basic WFS needs GetPropertyValue, which we do not offer: only Simple WFS (+ paging etc.).
    "ImplementsBasicWFS": False, "ImplementsTransactionalWFS": False,
    "ImplementsLockingWFS": False, "KVPEncoding": True, "XMLEncoding": True,
    "SOAPEncoding": False, "ImplementsInheritance": False, "ImplementsRemoteResolve": False,
    "ImplementsResultPaging": True, "ImplementsStandardJoins": False,
    "ImplementsSpatialJoins": False, "ImplementsTemporalJoins": False,
    "ImplementsFeatureVersioning": False, "ManageStoredQueries": False,
    "PagingIsTransactionSafe": False,
}
FES_CONFORMANCE = {  # FES 2.0 table 1
    "ImplementsQuery": True, "ImplementsAdHocQuery": True, "ImplementsFunctions": False,
    "ImplementsResourceId": True, "ImplementsMinStandardFilter": True,
    "ImplementsStandardFilter": True, "ImplementsMinSpatialFilter": True,
    "ImplementsSpatialFilter": False, "ImplementsMinTemporalFilter": False,
    "ImplementsTemporalFilter": False, "ImplementsVersionNav": False,
    "ImplementsSorting": True, "ImplementsExtendedOperators": False,
    "ImplementsMinimumXPath": True, "ImplementsSchemaElementFunc": False,
}
NAMESPACES_20 = ('xmlns:wfs="http://www.opengis.net/wfs/2.0" '
                 'xmlns:ows="http://www.opengis.net/ows/1.1" '
                 'xmlns:fes="http://www.opengis.net/fes/2.0" '
                 f'xmlns:gml="{GML32}" xmlns:xlink="http://www.w3.org/1999/xlink" '
                 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')
NAMESPACES_11 = ('xmlns:wfs="http://www.opengis.net/wfs" xmlns:ows="http://www.opengis.net/ows" '
                 f'xmlns:ogc="http://www.opengis.net/ogc" xmlns:gml="{GML311}" '
                 'xmlns:xlink="http://www.w3.org/1999/xlink" '
                 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _t(text: object) -> str:
    return escape(str(text))


def _bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def _constraint(name: str, value: object, element: str = "ows:Constraint") -> str:
    shown = _bool(value) if isinstance(value, bool) else _t(value)
    return (f'<{element} name="{name}"><ows:NoValues/>'
            f"<ows:DefaultValue>{shown}</ows:DefaultValue></{element}>")


def _allowed(name: str, values: Sequence[str], element: str = "ows:Parameter") -> str:
    listed = "".join(f"<ows:Value>{_t(v)}</ows:Value>" for v in values)
    return f'<{element} name="{name}"><ows:AllowedValues>{listed}</ows:AllowedValues></{element}>'


def _allowed_11(name: str, values: Sequence[str]) -> str:
    return f'<ows:Parameter name="{name}">' + "".join(
        f"<ows:Value>{_t(v)}</ows:Value>" for v in values) + "</ows:Parameter>"


def _operation(name: str, url: str, parameters: str = "") -> str:
    return (f'<ows:Operation name="{name}"><ows:DCP><ows:HTTP>'
            f"<ows:Get xlink:href={quoteattr(url + '?')}/>"
            f"<ows:Post xlink:href={quoteattr(url)}/>"
            f"</ows:HTTP></ows:DCP>{parameters}</ows:Operation>")


def _bbox(feature_type: FeatureType) -> str:
    extent = feature_type.table.schema.extent or (-180.0, -90.0, 180.0, 90.0)
    low = f"{extent[0]!r} {extent[1]!r}"
    high = f"{extent[2]!r} {extent[3]!r}"
    return (f"<ows:WGS84BoundingBox><ows:LowerCorner>{low}</ows:LowerCorner>"
            f"<ows:UpperCorner>{high}</ows:UpperCorner></ows:WGS84BoundingBox>")


def _service(title: str, abstract: str, version: str, root_url: str) -> str:
    versions = "<ows:ServiceTypeVersion>2.0.0</ows:ServiceTypeVersion>" \
               "<ows:ServiceTypeVersion>1.1.0</ows:ServiceTypeVersion>" if version == "2.0.0" \
        else "<ows:ServiceTypeVersion>1.1.0</ows:ServiceTypeVersion>"
    return (f"<ows:ServiceIdentification><ows:Title>{_t(title)}</ows:Title>"
            f"<ows:Abstract>{_t(abstract)}</ows:Abstract>"
            f"<ows:ServiceType>WFS</ows:ServiceType>{versions}"
            "<ows:Fees>NONE</ows:Fees><ows:AccessConstraints>NONE</ows:AccessConstraints>"
            "</ows:ServiceIdentification>"
            "<ows:ServiceProvider><ows:ProviderName>Koop</ows:ProviderName>"
            f"<ows:ProviderSite xlink:href={quoteattr(root_url)}/>"
            "<ows:ServiceContact/></ows:ServiceProvider>")


def capabilities(version: str, *, url: str, root_url: str, namespace: str, title: str,
                 abstract: str, types: Sequence[FeatureType], count_default: int) -> str:
    if version == "1.1.0":
        return _capabilities_11(url=url, root_url=root_url, namespace=namespace, title=title,
                                abstract=abstract, types=types)
    formats = _allowed("outputFormat", OUTPUT_FORMATS_20)
    operations = "".join([
        _operation("GetCapabilities", url, _allowed("AcceptVersions", ("2.0.0", "1.1.0"))
                   + _allowed("AcceptFormats", ("text/xml",))
                   + _allowed("Sections", ("ServiceIdentification", "ServiceProvider",
                                           "OperationsMetadata", "FeatureTypeList",
                                           "Filter_Capabilities"))),
        _operation("DescribeFeatureType", url, _allowed(
            "outputFormat", ("application/gml+xml; version=3.2", "text/xml; subtype=gml/3.2",
                             "text/xml; subtype=gml/3.1.1"))),
        _operation("GetFeature", url, formats + _allowed("resultType", ("results", "hits"))),
        _operation("ListStoredQueries", url),
        _operation("DescribeStoredQueries", url),
    ])
    constraints = "".join(_constraint(k, v) for k, v in CONSTRAINTS_20.items())
    constraints += _constraint("CountDefault", count_default)
    constraints += _allowed("QueryExpressions", ("wfs:Query", "wfs:StoredQuery"),
                            "ows:Constraint")
    feature_types = "".join(_feature_type_20(t) for t in types)
    filter_capabilities = (
        "<fes:Filter_Capabilities><fes:Conformance>"
        + "".join(_constraint(k, v, "fes:Constraint") for k, v in FES_CONFORMANCE.items())
        + "</fes:Conformance>"
        '<fes:Id_Capabilities><fes:ResourceIdentifier name="fes:ResourceId"/>'
        "</fes:Id_Capabilities>"
        "<fes:Scalar_Capabilities><fes:LogicalOperators/><fes:ComparisonOperators>"
        + "".join(f'<fes:ComparisonOperator name="{c}"/>' for c in COMPARISONS_20)
        + "</fes:ComparisonOperators></fes:Scalar_Capabilities>"
        "<fes:Spatial_Capabilities><fes:GeometryOperands>"
        + "".join(f'<fes:GeometryOperand name="{o}"/>' for o in OPERANDS)
        + "</fes:GeometryOperands><fes:SpatialOperators>"
        + "".join(f'<fes:SpatialOperator name="{s}"/>' for s in SPATIAL)
        + "</fes:SpatialOperators></fes:Spatial_Capabilities></fes:Filter_Capabilities>")
    return (f'{XML_HEAD}<wfs:WFS_Capabilities version="2.0.0" {NAMESPACES_20} '
            f"xmlns:{PREFIX}={quoteattr(namespace)} "
            'xsi:schemaLocation="http://www.opengis.net/wfs/2.0 '
            'http://schemas.opengis.net/wfs/2.0/wfs.xsd">'
            f"{_service(title, abstract, '2.0.0', root_url)}"
            f"<ows:OperationsMetadata>{operations}{constraints}</ows:OperationsMetadata>"
            f"<wfs:FeatureTypeList>{feature_types}</wfs:FeatureTypeList>"
            f"{filter_capabilities}</wfs:WFS_Capabilities>")


def _feature_type_20(feature_type: FeatureType) -> str:
    description = feature_type.table.schema.metadata.get("description") or ""
    if feature_type.geometry_property is None:
        crs = "<wfs:NoCRS/>"
    else:
        crs = f"<wfs:DefaultCRS>{DEFAULT_CRS}</wfs:DefaultCRS>" + "".join(
            f"<wfs:OtherCRS>{c}</wfs:OtherCRS>" for c in OTHER_CRS)
    formats = "".join(f"<wfs:Format>{_t(f)}</wfs:Format>" for f in OUTPUT_FORMATS_20)
    bbox = _bbox(feature_type) if feature_type.geometry_property else ""
    return (f"<wfs:FeatureType><wfs:Name>{feature_type.qname}</wfs:Name>"
            f"<wfs:Title>{_t(feature_type.title)}</wfs:Title>"
            f"<wfs:Abstract>{_t(description)}</wfs:Abstract>{crs}"
            f"<wfs:OutputFormats>{formats}</wfs:OutputFormats>{bbox}</wfs:FeatureType>")


def _capabilities_11(*, url: str, root_url: str, namespace: str, title: str, abstract: str,
                     types: Sequence[FeatureType]) -> str:
    formats = _allowed_11("outputFormat", OUTPUT_FORMATS_11)
    operations = "".join([
        _operation("GetCapabilities", url, _allowed_11("AcceptVersions", ("1.1.0", "2.0.0"))),
        _operation("DescribeFeatureType", url, _allowed_11(
            "outputFormat", ("text/xml; subtype=gml/3.1.1",))),
        _operation("GetFeature", url, formats + _allowed_11("resultType", ("results",
                                                                            "hits"))),
    ])
    feature_types = []
    for feature_type in types:
        if feature_type.geometry_property is None:
            crs = "<wfs:NoSRS/>"
        else:
            crs = f"<wfs:DefaultSRS>{DEFAULT_CRS}</wfs:DefaultSRS>" + "".join(
                f"<wfs:OtherSRS>{c}</wfs:OtherSRS>" for c in OTHER_CRS)
        shown = "".join(f"<wfs:Format>{_t(f)}</wfs:Format>" for f in OUTPUT_FORMATS_11)
        feature_types.append(
            f"<wfs:FeatureType><wfs:Name>{feature_type.qname}</wfs:Name>"
            f"<wfs:Title>{_t(feature_type.title)}</wfs:Title>{crs}"
            f"<wfs:OutputFormats>{shown}</wfs:OutputFormats>{_bbox(feature_type)}"
            "</wfs:FeatureType>")
    operations_list = "<wfs:Operations><wfs:Operation>Query</wfs:Operation></wfs:Operations>"
    filter_capabilities = (
        "<ogc:Filter_Capabilities><ogc:Spatial_Capabilities><ogc:GeometryOperands>"
        + "".join(f"<ogc:GeometryOperand>{o}</ogc:GeometryOperand>" for o in OPERANDS)
        + "</ogc:GeometryOperands><ogc:SpatialOperators>"
        + "".join(f'<ogc:SpatialOperator name="{s}"/>' for s in SPATIAL)
        + "</ogc:SpatialOperators></ogc:Spatial_Capabilities>"
        "<ogc:Scalar_Capabilities><ogc:LogicalOperators/><ogc:ComparisonOperators>"
        + "".join(f"<ogc:ComparisonOperator>{c}</ogc:ComparisonOperator>"
                  for c in COMPARISONS_11)
        + "</ogc:ComparisonOperators></ogc:Scalar_Capabilities>"
        "<ogc:Id_Capabilities><ogc:EID/><ogc:FID/></ogc:Id_Capabilities>"
        "</ogc:Filter_Capabilities>")
    return (f'{XML_HEAD}<wfs:WFS_Capabilities version="1.1.0" {NAMESPACES_11} '
            f"xmlns:{PREFIX}={quoteattr(namespace)} "
            'xsi:schemaLocation="http://www.opengis.net/wfs '
            'http://schemas.opengis.net/wfs/1.1.0/wfs.xsd">'
            f"{_service(title, abstract, '1.1.0', root_url)}"
            f"<ows:OperationsMetadata>{operations}</ows:OperationsMetadata>"
            f"<wfs:FeatureTypeList>{operations_list}{''.join(feature_types)}"
            f"</wfs:FeatureTypeList>{filter_capabilities}</wfs:WFS_Capabilities>")


def feature_type_schema(types: Sequence[FeatureType], namespace: str, gml: GMLFormat) -> str:
    """An XML Schema of ``types``: a GML application schema (3.2 or 3.1.1)."""
    if gml.is_32:
        location = "http://schemas.opengis.net/gml/3.2.1/gml.xsd"
        base, group = "gml:AbstractFeatureType", "gml:AbstractFeature"
    else:
        location = "http://schemas.opengis.net/gml/3.1.1/base/gml.xsd"
        base, group = "gml:AbstractFeatureType", "gml:_Feature"
    parts = []
    for feature_type in types:
        oid = feature_type.table.schema.object_id_field
        elements = []
        for element, field in feature_type.properties:
            kind = XSD_TYPES.get(field.type)
            nillable = "false" if field.name == oid else "true"
            occurs = "1" if field.name == oid else "0"
            if kind is None:  # text: its length, when known, as GDAL reads it
                length = getattr(field, "length", None)
                if length:
                    elements.append(
                        f'<xsd:element name="{element}" minOccurs="{occurs}" maxOccurs="1" '
                        f'nillable="{nillable}"><xsd:simpleType><xsd:restriction '
                        f'base="xsd:string"><xsd:maxLength value="{int(length)}"/>'
                        "</xsd:restriction></xsd:simpleType></xsd:element>")
                    continue
                kind = "xsd:string"
            elements.append(f'<xsd:element name="{element}" type="{kind}" minOccurs="{occurs}" '
                            f'maxOccurs="1" nillable="{nillable}"/>')
        if feature_type.geometry_property:
            geometry_type = GEOMETRY_PROPERTY_TYPES.get(
                feature_type.table.schema.geometry_type or "", "gml:GeometryPropertyType")
            elements.append(f'<xsd:element name="{feature_type.geometry_property}" '
                            f'type="{geometry_type}" minOccurs="0" maxOccurs="1" '
                            'nillable="true"/>')
        name = feature_type.name
        parts.append(
            f'<xsd:complexType name="{name}Type"><xsd:complexContent>'
            f'<xsd:extension base="{base}"><xsd:sequence>{"".join(elements)}</xsd:sequence>'
            "</xsd:extension></xsd:complexContent></xsd:complexType>"
            f'<xsd:element name="{name}" type="{PREFIX}:{name}Type" '
            f'substitutionGroup="{group}"/>')
    return (f'{XML_HEAD}<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f'xmlns:gml="{gml.namespace}" xmlns:{PREFIX}={quoteattr(namespace)} '
            f"targetNamespace={quoteattr(namespace)} elementFormDefault=\"qualified\" "
            'version="1.0">'
            f'<xsd:import namespace="{gml.namespace}" schemaLocation="{location}"/>'
            f"{''.join(parts)}</xsd:schema>")


def list_stored_queries(types: Sequence[FeatureType], namespace: str) -> str:
    returned = "".join(f"<wfs:ReturnFeatureType>{t.qname}</wfs:ReturnFeatureType>"
                       for t in types)
    return (f'{XML_HEAD}<wfs:ListStoredQueriesResponse {NAMESPACES_20} '
            f"xmlns:{PREFIX}={quoteattr(namespace)}>"
            f'<wfs:StoredQuery id="{GET_FEATURE_BY_ID}"><wfs:Title>Get feature by identifier'
            f"</wfs:Title>{returned}</wfs:StoredQuery></wfs:ListStoredQueriesResponse>")


def describe_stored_queries(types: Sequence[FeatureType], namespace: str) -> str:
    returned = " ".join(t.qname for t in types)
    return (f'{XML_HEAD}<wfs:DescribeStoredQueriesResponse {NAMESPACES_20} '
            f"xmlns:{PREFIX}={quoteattr(namespace)}>"
            f'<wfs:StoredQueryDescription id="{GET_FEATURE_BY_ID}">'
            "<wfs:Title>Get feature by identifier</wfs:Title>"
            "<wfs:Abstract>The feature whose gml:id is ID (typename.objectid).</wfs:Abstract>"
            '<wfs:Parameter name="ID" type="xsd:string"/>'
            f'<wfs:QueryExpressionText returnFeatureTypes="{returned}" '
            'language="urn:ogc:def:queryLanguage:OGC-WFS::WFSQueryExpression" '
            'isPrivate="true"/>'
            "</wfs:StoredQueryDescription></wfs:DescribeStoredQueriesResponse>")
