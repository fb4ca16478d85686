"""The WFS endpoint: one URL per dataset answering every operation, KVP or XML.

GetFeature reads each query's type, turns its FILTER/BBOX/RESOURCEID/SORTBY/PROPERTYNAME/
SRSNAME/COUNT/STARTINDEX into GeoServices query parameters and runs them through the shared
path (``serving.run_query``): the FeatureServer's checks, engine and record limits. Matches
are counted first (the count of an unfiltered layer is known without a query), so
``numberMatched``/``numberReturned`` and the next/previous links are exact and the page can be
streamed as it is encoded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import quoteattr

import orjson
import pyarrow as pa
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from koop_app import data
from koop_app.encoders.geojson import geojson_features
from koop_app.encoders.text import StreamedArray
from koop_app.models import Dataset
from koop_app.outputs import serving
from koop_app.outputs.wfs import documents
from koop_app.outputs.wfs.crs import CRS, DEFAULT_CRS, WGS84_LATLON, parse_crs
from koop_app.outputs.wfs.errors import WFSError, exception_report, invalid, missing
from koop_app.outputs.wfs.filters import selection
from koop_app.outputs.wfs.gml import GML_32, GML_311, GeometryWriter, GMLFormat, members
from koop_app.outputs.wfs.requests import (
    GET_FEATURE_BY_ID,
    Query,
    WFSRequest,
    from_kvp,
    from_xml,
)
from koop_app.outputs.wfs.types import PREFIX, FeatureType, feature_types, find_type
from koop_app.query.engine import page_arrow

STREAM_ROWS = 2000  # pages larger than this are sent while they are encoded
GEOJSON = "geojson"
FORMATS: dict[str, str | GMLFormat] = {
    "application/gml+xml; version=3.2": GML_32, "text/xml; subtype=gml/3.2": GML_32,
    "application/gml+xml": GML_32, "gml32": GML_32, "gml3.2": GML_32,
    "text/xml; subtype=gml/3.1.1": GML_311, "text/xml; subtype=\"gml/3.1.1\"": GML_311,
    "application/gml+xml; version=3.1": GML_311, "gml3": GML_311, "gml311": GML_311,
    "text/xml": GML_311,
    "application/json": GEOJSON, "application/geo+json": GEOJSON, "json": GEOJSON,
    "geojson": GEOJSON,
}


def output_format(text: str | None, version: str, parameter: str = "OUTPUTFORMAT"
                  ) -> str | GMLFormat:
    if not text or not text.strip():
        return GML_32 if version == "2.0.0" else GML_311
    key = " ".join(text.strip().lower().replace(";", "; ").split()).replace(" ;", ";")
    found = FORMATS.get(key)
    if found is None:
        raise invalid(parameter, f"unsupported output format {text.strip()[:80]!r}")
    return found


@csrf_exempt
@serving.answering_errors(exception_report)
def wfs_server(request: HttpRequest, provider: str, host: str | None = None,
               id: str | None = None) -> HttpResponseBase:
    dataset = serving.find_dataset(provider, host, id)
    content_type = request.content_type or ""
    if request.method == "POST" and "form" not in content_type:
        wfs = from_xml(request.body)
        cache_params = {"body": hashlib.sha256(request.body).hexdigest()}
    else:
        params = serving.request_params(request)
        wfs = from_kvp(params)
        cache_params = params
    request.wfs_version = wfs.version  # type: ignore[attr-defined] - read by errors
    service = Service(request, dataset, wfs, cache_params)
    return service.answer()


@dataclass
class Service:
    request: HttpRequest
    dataset: Dataset
    wfs: WFSRequest
    cache_params: dict[str, str]

    def __post_init__(self) -> None:
        self.url = self.request.build_absolute_uri(self.request.path)
        self.namespace = self.url
        self.layers = serving.open_layers(self.request, self.dataset)
        self.types = feature_types(self.layers, self.name)

    @property
    def name(self) -> str:
        return self.dataset.name or self.dataset.dataset_id or self.dataset.provider.name

    def answer(self) -> HttpResponseBase:
        operation = self.wfs.operation
        if operation == "GetCapabilities":
            return self.xml(self.capabilities())
        if operation == "DescribeFeatureType":
            return self.describe_feature_type()
        if operation == "ListStoredQueries":
            return self.xml(documents.list_stored_queries(self.types, self.namespace))
        if operation == "DescribeStoredQueries":
            for stored in self.wfs.stored_query_ids:
                if stored != GET_FEATURE_BY_ID:
                    raise invalid("STOREDQUERY_ID", f"unknown stored query {stored[:100]!r}")
            return self.xml(documents.describe_stored_queries(self.types, self.namespace))
        return self.get_feature()

    def xml(self, text: str, content_type: str = "application/xml; charset=utf-8"
            ) -> HttpResponseBase:
        response = HttpResponse(text.encode(), content_type=content_type)
        return serving.cacheable(self.request, response, self.dataset, self.layers,
                                 self.cache_params)

    def capabilities(self) -> str:
        count_default = min((serving.limits_of(self.dataset, t.table).max_record_count
                             for t in self.types), default=0)
        root = self.request.build_absolute_uri("/")
        return documents.capabilities(
            self.wfs.version, url=self.url, root_url=root, namespace=self.namespace,
            title=self.name, abstract=self.dataset.description or "", types=self.types,
            count_default=count_default)

    def describe_feature_type(self) -> HttpResponseBase:
        types = [find_type(self.types, n, "TYPENAMES") for n in self.wfs.typenames] or \
            self.types
        gml = output_format(self.wfs.output_format, self.wfs.version)
        if gml == GEOJSON or not isinstance(gml, GMLFormat):
            raise invalid("OUTPUTFORMAT", "DescribeFeatureType answers XML Schema only")
        text = documents.feature_type_schema(types, self.namespace, gml)
        return self.xml(text, "text/xml; subtype=gml/" + ("3.2" if gml.is_32 else "3.1.1"))

    # --- GetFeature ------------------------------------------------------------------------
    def get_feature(self) -> HttpResponseBase:
        wfs = self.wfs
        by_id = False
        if wfs.stored_query_id is not None:
            self._stored_query()
            by_id = True
        fmt = output_format(wfs.output_format, wfs.version)
        if wfs.extra.get("typenames_from_ids"):  # ids of types we lack match nothing
            wfs.queries = [q for q in wfs.queries if self._knows(q.typename)]
        plans = [self._plan(q) for q in wfs.queries]
        self._reopen_for_source(plans)
        matched = 0
        for plan in plans:
            plan.matched = self._count(plan)
            matched += plan.matched
        # Paging over the queries in order, each capped by its layer's record limits.
        skip, want = wfs.start_index, wfs.count
        returned = 0
        for plan in plans:
            plan.offset = min(skip, plan.matched)
            skip -= plan.offset
            room = plan.matched - plan.offset
            if want is not None:
                room = min(room, max(want - returned, 0))
            plan.take = 0 if wfs.hits else min(room, plan.cap)
            returned += plan.take
            if plan.take < room:  # a layer's limit cut the page: later queries wait
                want = returned
        if by_id:
            return self._feature_by_id(plans[0], fmt)
        links = self._links(matched, returned) if wfs.version == "2.0.0" and not wfs.hits \
            else {}
        if fmt == GEOJSON:
            return self._geojson(plans, matched, returned, links)
        assert isinstance(fmt, GMLFormat)
        return self._gml(plans, matched, returned, links, fmt)

    def _knows(self, typename: str) -> bool:
        try:
            find_type(self.types, typename)
        except WFSError:
            return False
        return True

    def _stored_query(self) -> None:
        wfs = self.wfs
        if wfs.stored_query_id != GET_FEATURE_BY_ID:
            raise invalid("STOREDQUERY_ID", f"unknown stored query "
                          f"{(wfs.stored_query_id or '')[:100]!r}")
        identifier = wfs.stored_query_params.get("ID")
        if not identifier:
            raise missing("ID")
        typename = identifier.strip().rpartition(".")[0]
        if not typename:
            raise WFSError("NotFound", f"No feature {identifier[:100]!r}.", "ID", status=404)
        srs = wfs.extra.get("srs_name")
        wfs.queries = [Query(typename, resource_ids=[identifier.strip()], srs_name=srs)]
        wfs.count, wfs.start_index, wfs.hits = 1, 0, False

    def _plan(self, query: Query) -> Plan:
        try:
            feature_type = find_type(self.types, query.typename)
        except WFSError:
            if self.wfs.stored_query_id is not None:
                raise WFSError("NotFound", "No such feature.", "ID", status=404) from None
            raise
        crs = parse_crs(query.srs_name, "SRSNAME") if query.srs_name else WGS84_LATLON
        params: dict[str, str] = {"returnExceededLimitFeatures": "true"}
        params.update(selection(query, feature_type))
        fields = ["*"]
        geometry = feature_type.geometry_property is not None
        if query.property_names is not None:
            fields, geometry = [], False
            for name in query.property_names:
                if name == "*":
                    fields, geometry = ["*"], feature_type.geometry_property is not None
                    break
                if feature_type.is_geometry(name):
                    geometry = True
                    continue
                field = feature_type.field_of(name)
                if field is None:
                    raise invalid("PROPERTYNAME", f"{name[:80]!r} is not a property of "
                                  f"{feature_type.qname}")
                fields.append(field.name)
        order = []
        for name, descending in query.sort_by:
            field = feature_type.field_of(name)
            if field is None:
                raise invalid("SORTBY", f"{name[:80]!r} is not a property of "
                              f"{feature_type.qname}")
            order.append(f"{field.name} {'DESC' if descending else 'ASC'}")
        params["outFields"] = ",".join(fields) if fields else \
            feature_type.table.schema.object_id_field
        params["returnGeometry"] = "true" if geometry else "false"
        if order:
            params["orderByFields"] = ",".join(order)
        if geometry and crs.epsg != 4326:
            params["outSR"] = crs.wkid
        cap = serving.limits_of(self.dataset, feature_type.table).max_record_count
        return Plan(feature_type, params, crs, geometry, cap)

    def _reopen_for_source(self, plans: list[Plan]) -> None:
        """A pass-through source is asked again with the query's parameters (it filters at
        the source what it can), as the FeatureServer does."""
        if not self.layers.pass_through or len(plans) != 1:
            return
        plan = plans[0]
        self.layers = serving.open_layers(self.request, self.dataset,
                                          layer=plan.feature_type.table.layer_id,
                                          method="query", params=plan.params)
        plan.table = self.layers.layer(plan.feature_type.table.layer_id)

    def _count(self, plan: Plan) -> int:
        params = {**plan.params, "returnCountOnly": "true"}
        params.pop("orderByFields", None)
        _, result = serving.run_query(self.dataset, plan.table, params)
        return int(result.count or 0)

    def _page(self, plan: Plan) -> tuple[pa.Table | None, Any]:
        if plan.take <= 0:
            return None, None
        params = {**plan.params, "resultOffset": str(plan.offset),
                  "resultRecordCount": str(plan.take)}
        _, result = serving.run_query(self.dataset, plan.table, params)
        return result.page, result

    def _links(self, matched: int, returned: int) -> dict[str, str]:
        wfs = self.wfs
        kvp = dict(wfs.kvp) if wfs.kvp is not None else self._kvp_of_xml()
        if kvp is None:
            return {}
        for key in ("STARTINDEX", "COUNT", "MAXFEATURES"):
            kvp.pop(key, None)
        size = wfs.count if wfs.count is not None else max(returned, 1)
        out = {}
        if wfs.start_index + returned < matched and returned > 0:
            out["next"] = self._url({**kvp, "STARTINDEX": str(wfs.start_index + returned),
                                     "COUNT": str(size)})
        if wfs.start_index > 0:
            out["previous"] = self._url({**kvp, "STARTINDEX": str(max(
                wfs.start_index - size, 0)), "COUNT": str(size)})
        return out

    def _kvp_of_xml(self) -> dict[str, str] | None:
        """A POST request as KVP, for its next/previous links (one query's worth)."""
        from lxml import etree

        wfs = self.wfs
        if len(wfs.queries) != 1:
            return None
        query = wfs.queries[0]
        kvp = {"SERVICE": "WFS", "VERSION": wfs.version, "REQUEST": "GetFeature",
               "TYPENAMES": query.typename}
        if wfs.output_format:
            kvp["OUTPUTFORMAT"] = wfs.output_format
        if query.filter is not None:
            kvp["FILTER"] = etree.tostring(query.filter).decode()
        if query.property_names:
            kvp["PROPERTYNAME"] = ",".join(query.property_names)
        if query.sort_by:
            kvp["SORTBY"] = ",".join(f"{n} {'DESC' if d else 'ASC'}" for n, d in query.sort_by)
        if query.srs_name:
            kvp["SRSNAME"] = query.srs_name
        return kvp

    def _url(self, kvp: dict[str, str]) -> str:
        return f"{self.url}?{urlencode(kvp)}"

    # --- encodings -------------------------------------------------------------------------
    def _respond(self, chunks: Iterator[bytes], content_type: str, stream: bool
                 ) -> HttpResponseBase:
        response: HttpResponseBase
        if stream:
            response = StreamingHttpResponse(chunks, content_type=content_type)
        else:
            response = HttpResponse(b"".join(chunks), content_type=content_type)
        return serving.cacheable(self.request, response, self.dataset, self.layers,
                                 self.cache_params)

    def _gml(self, plans: list[Plan], matched: int, returned: int, links: dict[str, str],
             fmt: GMLFormat) -> HttpResponseBase:
        pages = [(plan, *self._page(plan)) for plan in plans]
        v2 = self.wfs.version == "2.0.0"
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        gml_ns = fmt.namespace
        if v2:
            wfs_ns = ('xmlns:wfs="http://www.opengis.net/wfs/2.0" '
                      'xsi:schemaLocation="http://www.opengis.net/wfs/2.0 '
                      'http://schemas.opengis.net/wfs/2.0/wfs.xsd"')
            counts = f'numberMatched="{matched}" numberReturned="{returned}"'
            counts += "".join(f" {k}={quoteattr(v)}" for k, v in links.items())
            member = "wfs:member"
        else:
            wfs_ns = ('xmlns:wfs="http://www.opengis.net/wfs" '
                      'xsi:schemaLocation="http://www.opengis.net/wfs '
                      'http://schemas.opengis.net/wfs/1.1.0/wfs.xsd"')
            counts = f'numberOfFeatures="{matched if self.wfs.hits else returned}"'
            member = "gml:featureMember"
        head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection {wfs_ns} '
                f'xmlns:gml="{gml_ns}" xmlns:{PREFIX}={quoteattr(self.namespace)} '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'timeStamp="{stamp}" {counts}>')
        if v2 and fmt.is_32 and not returned:
            head += ""  # an empty collection: no members (boundedBy is optional)

        def chunks() -> Iterator[bytes]:
            yield head.encode()
            for plan, page, _result in pages:
                if page is None:
                    continue
                table, _more = page_arrow(page, points_as_xy=False)
                writer = GeometryWriter(fmt, plan.feature_type.table.schema.geometry_type,
                                        _srs_name(plan.crs), plan.crs.swap)
                yield from members(table, plan.feature_type, writer, member,
                                   geometry=plan.geometry)
            yield b"</wfs:FeatureCollection>"

        return self._respond(chunks(), fmt.mime, stream=returned > STREAM_ROWS)

    def _feature_by_id(self, plan: Plan, fmt: str | GMLFormat) -> HttpResponseBase:
        page, _result = self._page(plan)
        if page is None:
            raise WFSError("NotFound", "No such feature.", "ID", status=404)
        table, _more = page_arrow(page, points_as_xy=False)
        if table.num_rows == 0:
            raise WFSError("NotFound", "No such feature.", "ID", status=404)
        if fmt == GEOJSON:
            oid = plan.table.schema.object_id_field
            features, _ = geojson_features(page, oid)
            text = b"".join(_array_chunks(features))
            feature = orjson.loads(text)[0]
            return self._respond(iter([orjson.dumps(feature)]), "application/geo+json",
                                 stream=False)
        assert isinstance(fmt, GMLFormat)
        writer = GeometryWriter(fmt, plan.table.schema.geometry_type, _srs_name(plan.crs),
                                plan.crs.swap)
        body = b"".join(members(table, plan.feature_type, writer, "koop_member",
                                geometry=plan.geometry))
        body = body.replace(b"<koop_member>", b"").replace(b"</koop_member>", b"")
        # The feature alone, with its namespaces on it.
        tag = f"<{PREFIX}:{plan.feature_type.name} ".encode()
        declared = (f'<{PREFIX}:{plan.feature_type.name} xmlns:{PREFIX}='
                    f'{quoteattr(self.namespace)} xmlns:gml="{fmt.namespace}" '
                    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ').encode()
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.replace(tag, declared, 1)
        return self._respond(iter([body]), fmt.mime, stream=False)

    def _geojson(self, plans: list[Plan], matched: int, returned: int,
                 links: dict[str, str]) -> HttpResponseBase:
        pages = [(plan, *self._page(plan)) for plan in plans]
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        head = {"type": "FeatureCollection", "numberMatched": matched,
                "numberReturned": returned, "timeStamp": stamp}
        extra = [{"href": v, "rel": k, "type": "application/geo+json"}
                 for k, v in links.items()]
        if extra:
            head["links"] = extra

        def chunks() -> Iterator[bytes]:
            yield orjson.dumps(head)[:-1] + b',"features":['
            first = True
            for plan, page, _result in pages:
                if page is None:
                    continue
                oid = plan.table.schema.object_id_field
                features, _more = geojson_features(page, oid)
                body = b"".join(_array_chunks(features))[1:-1]
                if body:
                    yield (b"" if first else b",") + body
                    first = False
            yield b"]}"

        return self._respond(chunks(), "application/geo+json", stream=returned > STREAM_ROWS)


def _array_chunks(features: Any) -> Iterator[bytes]:
    if isinstance(features, StreamedArray):
        yield from features.chunks()
    else:
        yield bytes(orjson.dumps(features))


def _srs_name(crs: CRS) -> str:
    return crs.name if crs is not WGS84_LATLON else DEFAULT_CRS


@dataclass
class Plan:
    """One query's work: the type, its GeoServices parameters, and its share of the page."""

    feature_type: FeatureType
    params: dict[str, str]
    crs: CRS
    geometry: bool
    cap: int
    matched: int = 0
    offset: int = 0
    take: int = 0
    table: data.LayerTable | None = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.table is None:
            self.table = self.feature_type.table
