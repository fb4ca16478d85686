"""The views of OGC API - Features: one API per dataset, each layer (or table) a collection.

Each view reads the request, turns it into GeoServices query parameters (``params``), runs them
through the shared path (``koop_app.outputs.serving``: dataset, layers, engine, record limits,
HTTP caching) and answers JSON/GeoJSON or HTML, as ``f`` or the Accept header ask. Errors are
problem details (``problems``). Access was checked by the route's guard before a view runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse

from koop_app import data
from koop_app.encoders.text import StreamedArray
from koop_app.errors import InvalidParameterError, KoopError, NotFoundError
from koop_app.models import Dataset
from koop_app.outputs.geoservices.html import site_links
from koop_app.outputs.geoservices.serializers import layer_name, time_info
from koop_app.outputs.ogcapi import encoders, openapi
from koop_app.outputs.ogcapi.conformance import CONFORMANCE
from koop_app.outputs.ogcapi.crs import ADVERTISED, CRS84
from koop_app.outputs.ogcapi.params import read_feature, read_items, unknown_parameters
from koop_app.outputs.ogcapi.problems import error_response, problem
from koop_app.outputs.ogcapi.queryables import queryables_schema
from koop_app.outputs.serving import (
    answering_errors,
    cacheable,
    find_dataset,
    limits_of,
    open_layers,
    request_params,
    run_query,
)

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
TEMPLATES = "koop/ogcapi/"
LANDING_ROUTE = "ogcapi-landing"
REL_CONFORMANCE = "http://www.opengis.net/def/rel/ogc/1.0/conformance"
REL_DATA = "http://www.opengis.net/def/rel/ogc/1.0/data"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
VENDOR_FILES = ("koop_app/vendor/leaflet/leaflet.js",)
SIMPLE_PARAMETERS = frozenset({"f", "token"})


def ogc_view(formats: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view answering GET/HEAD in ``formats`` (the first is the default), errors as problems;
    the view gets the chosen format and the dataset."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @answering_errors(error_response)
        def answered(request: HttpRequest, provider: str, host: str | None = None,
                     id: str | None = None, **kwargs: Any) -> HttpResponseBase:
            if request.method not in ("GET", "HEAD"):
                response = problem(405, f"{request.method} is not allowed here; use GET.")
                response["Allow"] = "GET, HEAD"
                return response
            chosen = negotiate(request, formats)
            if isinstance(chosen, HttpResponse):
                return chosen
            api = Api(request, find_dataset(provider, host, id))
            return view(request, api, chosen, **kwargs)

        answered.__name__ = view.__name__
        answered.__doc__ = view.__doc__
        return answered

    return decorate


def negotiate(request: HttpRequest, formats: tuple[str, ...]) -> str | HttpResponse:
    """``f`` (json, geojson, html) or else the Accept header; JSON when nothing is asked."""
    asked = request.GET.get("f")
    if asked is not None:
        wanted = asked.strip().lower()
        if wanted == "geojson" and "json" in formats:
            wanted = "json"
        if wanted not in formats:
            return problem(400, f"'f' parameter is invalid: {asked[:40]!r} is not one of "
                           f"{', '.join(formats)}")
        return wanted
    accept = request.META.get("HTTP_ACCEPT", "").lower()
    if not accept.strip():
        return formats[0]
    types = [part.split(";")[0].strip() for part in accept.split(",")]
    for media in types:
        if media in (HTML, "application/xhtml+xml") and "html" in formats:
            return "html"
        if media in (JSON, GEOJSON, OPENAPI.split(";")[0], "application/*",
                     "application/schema+json", "*/*"):
            return formats[0] if formats[0] != "html" else "json"
    return problem(406, "None of the media types in Accept is served here: "
                        "application/json, application/geo+json or text/html.")


class Api:
    """The dataset's API: its URLs (absolute, the caller's token carried) and its layers."""

    def __init__(self, request: HttpRequest, dataset: Dataset) -> None:
        self.request = request
        self.dataset = dataset
        self.token = request.GET.get("token", "")
        path = reverse(f"koop:{dataset.provider.name}:{LANDING_ROUTE}",
                       kwargs=dataset.route_kwargs())
        self.root = request.build_absolute_uri(path).rstrip("/")
        self._layers: data.LayerSet | None = None

    @property
    def title(self) -> str:
        return self.dataset.name or self.dataset.route_label

    def url(self, path: str = "", **params: Any) -> str:
        query = {k: v for k, v in params.items() if v is not None}
        if self.token:
            query["token"] = self.token
        return self.root + path + ("?" + urlencode(query) if query else "")

    def layers(self, params: dict[str, str] | None = None, layer: int | None = None
               ) -> data.LayerSet:
        if self._layers is None:
            self._layers = open_layers(self.request, self.dataset, layer=layer, params=params)
        return self._layers

    def table(self, collection: str, params: dict[str, str] | None = None) -> data.LayerTable:
        """The collection's layer; with ``params``, a pass-through source is asked again with
        them (it filters at the source)."""
        if not collection.isdigit() or len(collection) > 9:
            raise NotFoundError(f"No collection {collection[:40]!r} in this dataset.")
        layer = int(collection)
        if params is not None and self._layers is not None and self._layers.pass_through:
            self._layers = open_layers(self.request, self.dataset, layer=layer, params=params)
        try:
            return self.layers(params, layer).layer(layer)
        except NotFoundError:
            raise NotFoundError(f"No collection {collection!r} in this dataset.") from None

    def links(self, path: str, formats: tuple[tuple[str, str], ...], current: str,
              **params: Any) -> list[dict[str, Any]]:
        """self + alternate links of a resource in each of its formats."""
        out = []
        for f, media in formats:
            out.append({"href": self.url(path, f=f, **params),
                        "rel": "self" if f == current else "alternate", "type": media,
                        "title": f"This document as {f.upper()}"})
        return out


def json_response(body: Any, media: str = JSON, status: int = 200, **headers: str
                  ) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type=media)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def page(request: HttpRequest, api: Api, template: str, context: dict[str, Any],
         breadcrumbs: list[tuple[str, str | None]]) -> HttpResponse:
    crumbs = [(api.title, api.url("", f="html")), *breadcrumbs]
    crumbs[-1] = (crumbs[-1][0], None)
    return render(request, TEMPLATES + template, {
        "site": site_links(), "api": api, "breadcrumbs": crumbs,
        "json_link": context.pop("json_link", None), **context})


# --- landing page, conformance, API definition ----------------------------------------------

@ogc_view(("json", "html"))
def landing(request: HttpRequest, api: Api, f: str) -> HttpResponseBase:
    unknown_parameters(request.GET, SIMPLE_PARAMETERS)
    body = {
        "title": api.title,
        "description": api.dataset.description or f"OGC API - Features of {api.title}",
        "links": [
            *api.links("", (("json", JSON), ("html", HTML)), f),
            {"href": api.url("/api", f="json"), "rel": "service-desc", "type": OPENAPI,
             "title": "The API definition (OpenAPI 3.0)"},
            {"href": api.url("/api", f="html"), "rel": "service-doc", "type": HTML,
             "title": "The API documentation"},
            {"href": api.url("/conformance", f="json"), "rel": "conformance", "type": JSON,
             "title": "Conformance classes"},
            {"href": api.url("/conformance", f="json"), "rel": REL_CONFORMANCE, "type": JSON,
             "title": "Conformance classes"},
            {"href": api.url("/collections", f="json"), "rel": "data", "type": JSON,
             "title": "Collections"},
            {"href": api.url("/collections", f="json"), "rel": REL_DATA, "type": JSON,
             "title": "Collections"},
        ],
    }
    if f == "html":
        return page(request, api, "landing.html", {
            "title": api.title, "body": body, "json_link": api.url("", f="json"),
            "collections_link": api.url("/collections", f="html"),
            "conformance_link": api.url("/conformance", f="html"),
            "api_link": api.url("/api", f="html"), "api_json_link": api.url("/api", f="json"),
        }, [])
    return json_response(body)


@ogc_view(("json", "html"))
def conformance(request: HttpRequest, api: Api, f: str) -> HttpResponseBase:
    unknown_parameters(request.GET, SIMPLE_PARAMETERS)
    body = {"conformsTo": list(CONFORMANCE)}
    if f == "html":
        return page(request, api, "conformance.html", {
            "title": "Conformance", "classes": CONFORMANCE,
            "json_link": api.url("/conformance", f="json")}, [("Conformance", None)])
    return json_response(body)


@ogc_view(("json", "html"))
def api_definition(request: HttpRequest, api: Api, f: str) -> HttpResponseBase:
    unknown_parameters(request.GET, SIMPLE_PARAMETERS)
    layers = api.layers()
    document = openapi.document(api, layers.layers, limits=[
        limits_of(api.dataset, t).max_record_count for t in layers.layers])
    if f == "html":
        response = page(request, api, "api.html", {
            "title": f"API of {api.title}", "document": document,
            "operations": openapi.operations(document),
            "json_link": api.url("/api", f="json")}, [("API", None)])
    else:
        response = json_response(document, OPENAPI)
    return cacheable(request, response, api.dataset, layers, request_params(request))


# --- collections --------------------------------------------------------------------------------

def collection_body(api: Api, table: data.LayerTable, f: str = "json") -> dict[str, Any]:
    cid = str(table.layer_id)
    path = f"/collections/{cid}"
    body: dict[str, Any] = {
        "id": cid,
        "title": layer_name(table, f"Layer {cid}"),
        "description": table.schema.metadata.get("description") or "",
        "itemType": "feature",
        "crs": list(ADVERTISED),
        "storageCrs": CRS84,
        "links": [
            *api.links(path, (("json", JSON), ("html", HTML)), f),
            {"href": api.url(path + "/items", f="json"), "rel": "items", "type": GEOJSON,
             "title": "Items as GeoJSON"},
            {"href": api.url(path + "/items", f="html"), "rel": "items", "type": HTML,
             "title": "Items as HTML"},
            {"href": api.url(path + "/queryables", f="json"), "rel": REL_QUERYABLES,
             "type": "application/schema+json", "title": "Queryables"},
        ],
    }
    extent: dict[str, Any] = {}
    if table.schema.extent is not None and not table.is_table:
        extent["spatial"] = {"bbox": [list(table.schema.extent)], "crs": CRS84}
    info = time_info(table)
    if info is not None:
        low, high = info["timeExtent"]
        extent["temporal"] = {"interval": [[_iso(low), _iso(high)]], "trs": TRS}
    if extent:
        body["extent"] = extent
    return body


def _iso(ms: Any) -> str | None:
    if ms is None:
        return None
    moment = dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@ogc_view(("json", "html"))
def collections(request: HttpRequest, api: Api, f: str) -> HttpResponseBase:
    unknown_parameters(request.GET, SIMPLE_PARAMETERS)
    layers = api.layers()
    body = {
        "links": api.links("/collections", (("json", JSON), ("html", HTML)), f),
        "collections": [collection_body(api, t) for t in layers.layers],
    }
    if f == "html":
        response = page(request, api, "collections.html", {
            "title": f"Collections of {api.title}", "collections": [
                {**c, "html_link": api.url(f"/collections/{c['id']}", f="html"),
                 "items_link": api.url(f"/collections/{c['id']}/items", f="html")}
                for c in body["collections"]],
            "json_link": api.url("/collections", f="json")}, [("Collections", None)])
    else:
        response = json_response(body)
    return cacheable(request, response, api.dataset, layers, request_params(request))


@ogc_view(("json", "html"))
def collection(request: HttpRequest, api: Api, f: str, collection: str) -> HttpResponseBase:
    unknown_parameters(request.GET, SIMPLE_PARAMETERS)
    table = api.table(collection)
    body = collection_body(api, table, f)
    if f == "html":
        response = page(request, api, "collection.html", {
            "title": body["title"], "collection": body,
            "items_link": api.url(f"/collections/{collection}/items", f="html"),
            "queryables_link": api.url(f"/collections/{collection}/queryables", f="html"),
            "json_link": api.url(f"/collections/{collection}", f="json")},
            [("Collections", api.url("/collections", f="html")), (body["title"], None)])
    else:
        response = json_response(body)
    return cacheable(request, response, api.dataset, api.layers(), request_params(request))


@ogc_view(("json", "html"))
def queryables(request: HttpRequest, api: Api, f: str, collection: str) -> HttpResponseBase:
    unknown_parameters(request.GET, SIMPLE_PARAMETERS)
    table = api.table(collection)
    schema = queryables_schema(table, api.url(f"/collections/{collection}/queryables"))
    if f == "html":
        response = page(request, api, "queryables.html", {
            "title": f"Queryables of {schema['title']}", "schema": schema,
            "json_link": api.url(f"/collections/{collection}/queryables", f="json")},
            [("Collections", api.url("/collections", f="html")),
             (schema["title"], api.url(f"/collections/{collection}", f="html")),
             ("Queryables", None)])
    else:
        response = json_response(schema, "application/schema+json")
    return cacheable(request, response, api.dataset, api.layers(), request_params(request))


# --- items ----------------------------------------------------------------------------------

@ogc_view(("json", "html"))
def items(request: HttpRequest, api: Api, f: str, collection: str) -> HttpResponseBase:
    params = request_params(request)
    table = api.table(collection)
    limits = limits_of(api.dataset, table)
    asked = read_items(params, table.schema, limits.max_record_count)
    if f == "html" and asked.crs.uri != CRS84:
        raise InvalidParameterError("crs", "HTML pages show CRS84 only")
    counting = {k: v for k, v in asked.query.items()
                if k not in ("resultOffset", "resultRecordCount", "outFields", "outSR",
                             "orderByFields", "returnGeometry")}
    counting["returnCountOnly"] = "true"
    # A pass-through source is asked for the count, then for the page (it filters at source).
    if api.layers().pass_through:
        table = api.table(collection, counting)
    _, counted = run_query(api.dataset, table, counting)
    matched = int(counted.count or 0)
    if api.layers().pass_through:
        table = api.table(collection, asked.query)
    _, result = run_query(api.dataset, table, asked.query)
    returned = max(0, min(asked.limit, matched - asked.offset))
    assert result.page is not None
    features, _more = encoders.features(result.page, table.schema.object_id_field,
                                        asked.properties, asked.crs.swap)
    path = f"/collections/{collection}/items"
    links = [
        *api.links(path, (("json", GEOJSON), ("html", HTML)), f, **_paged(asked, asked.offset)),
        {"href": api.url(f"/collections/{collection}", f="json"), "rel": "collection",
         "type": JSON, "title": "The collection"},
    ]
    if asked.offset + returned < matched:
        links.append({"href": api.url(path, f=f if f == "html" else "json",
                                      **_paged(asked, asked.offset + asked.limit)),
                      "rel": "next", "type": HTML if f == "html" else GEOJSON,
                      "title": "Next page"})
    if asked.offset > 0:
        links.append({"href": api.url(path, f=f if f == "html" else "json",
                                      **_paged(asked, max(0, asked.offset - asked.limit))),
                      "rel": "prev", "type": HTML if f == "html" else GEOJSON,
                      "title": "Previous page"})
    head = {"type": "FeatureCollection", "numberMatched": matched, "numberReturned": returned,
            "timeStamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "links": links}
    if f == "html":
        listed = _as_list(features)
        columns = [fd.name for fd in result.page.fields
                   if asked.properties is None or fd.name in asked.properties]
        response: HttpResponseBase = page(request, api, "items.html", {
            "title": f"Items of {layer_name(table, 'Layer ' + collection)}",
            "head": head, "features": listed, "map": _map_context(listed, table),
            "columns": columns,
            "rows": [{"id": x.get("id"), "link": api.url(f"{path}/{x.get('id')}", f="html"),
                      "values": [x["properties"].get(c) for c in columns]} for x in listed],
            "next_link": next((x["href"] for x in links if x["rel"] == "next"), None),
            "prev_link": next((x["href"] for x in links if x["rel"] == "prev"), None),
            "json_link": api.url(path, f="json", **_paged(asked, asked.offset))},
            [("Collections", api.url("/collections", f="html")),
             (layer_name(table, collection), api.url(f"/collections/{collection}", f="html")),
             ("Items", None)])
    else:
        response = _collection_response(head, features)
        response["Content-Crs"] = f"<{asked.crs.uri}>"
    return cacheable(request, response, api.dataset, api.layers(), params)


def _paged(asked: Any, offset: int) -> dict[str, str]:
    return {**{k: v for k, v in asked.carried.items() if k not in ("f", "token")},
            "limit": str(asked.limit), "offset": str(offset)}


def _collection_response(head: dict[str, Any], features: Any) -> HttpResponseBase:
    if not isinstance(features, StreamedArray):
        return HttpResponse(orjson.dumps({**head, "features": features}),
                            content_type=GEOJSON)
    opening = orjson.dumps(head)[:-1] + b',"features":'

    def chunks() -> Iterator[bytes]:
        yield opening
        yield from features.chunks()
        yield b"}"

    return StreamingHttpResponse(chunks(), content_type=GEOJSON)


def _as_list(features: Any) -> list[dict[str, Any]]:
    if isinstance(features, StreamedArray):
        return orjson.loads(b"".join(features.chunks()))
    return orjson.loads(orjson.dumps(features))


def _map_context(features: list[dict[str, Any]], table: data.LayerTable) -> dict[str, Any]:
    ready = all(finders.find(path) for path in VENDOR_FILES)
    drawable = [x for x in features if x.get("geometry")]
    return {"ready": ready and bool(drawable), "missing": not ready,
            "features": {"type": "FeatureCollection", "features": drawable}}


@ogc_view(("json", "html"))
def item(request: HttpRequest, api: Api, f: str, collection: str, feature: str
         ) -> HttpResponseBase:
    params = request_params(request)
    table = api.table(collection)
    read = read_feature(params, table.schema, feature)
    if read is None:
        raise NotFoundError(f"No feature {feature[:40]!r} in collection {collection!r}.")
    query, crs, properties, _skip = read
    if f == "html" and crs.uri != CRS84:
        raise InvalidParameterError("crs", "HTML pages show CRS84 only")
    if api.layers().pass_through:
        table = api.table(collection, query)
    _, result = run_query(api.dataset, table, query)
    assert result.page is not None
    found = _as_list(encoders.features(result.page, table.schema.object_id_field, properties,
                                       crs.swap)[0])
    if not found:
        raise NotFoundError(f"No feature {feature!r} in collection {collection!r}.")
    body = found[0]
    path = f"/collections/{collection}/items/{feature}"
    body["links"] = [
        *api.links(path, (("json", GEOJSON), ("html", HTML)), f),
        {"href": api.url(f"/collections/{collection}", f="json"), "rel": "collection",
         "type": JSON, "title": "The collection"},
    ]
    if f == "html":
        response: HttpResponseBase = page(request, api, "item.html", {
            "title": f"Feature {feature}", "feature": body,
            "map": _map_context([body], table),
            "json_link": api.url(path, f="json")},
            [("Collections", api.url("/collections", f="html")),
             (layer_name(table, collection), api.url(f"/collections/{collection}", f="html")),
             ("Items", api.url(f"/collections/{collection}/items", f="html")),
             (str(feature), None)])
    else:
        response = json_response(body, GEOJSON, Content_Crs=f"<{crs.uri}>")
    return cacheable(request, response, api.dataset, api.layers(), params)


__all__ = ["KoopError", "api_definition", "collection", "collections", "conformance", "item",
           "items", "landing", "queryables"]
