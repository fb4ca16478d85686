"""The API definition (OpenAPI 3.0) of one dataset: its real paths, collections and fields.

Each collection gets its own paths (``/collections/0/items``...) so that each lists the
property filters of its own fields, as Part 1 asks of an API whose collections differ.
"""

from __future__ import annotations

from typing import Any

from koop_app.data import LayerTable
from koop_app.outputs.geoservices.serializers import layer_name
from koop_app.outputs.ogcapi.crs import ADVERTISED, CRS84
from koop_app.outputs.ogcapi.queryables import property_schema

PROBLEM = {"description": "A problem (RFC 7807)", "content": {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/problem"}}}}
JSON_OK = {"application/json": {"schema": {"type": "object"}},
           "text/html": {"schema": {"type": "string"}}}
GEOJSON_OK = {"application/geo+json": {"schema": {"type": "object"}},
              "text/html": {"schema": {"type": "string"}}}


def _parameter(name: str, description: str, schema: dict[str, Any], *, style: str | None = None,
               explode: bool | None = None, where: str = "query", required: bool = False
               ) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "description": description,
                           "required": required, "schema": schema}
    if style:
        out["style"] = style
    if explode is not None:
        out["explode"] = explode
    return out


def _components() -> dict[str, Any]:
    crs = {"type": "string", "format": "uri", "default": CRS84}
    return {
        "schemas": {"problem": {"type": "object", "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"}}}},
        "parameters": {
            "f": _parameter("f", "The format of the answer (else the Accept header).",
                            {"type": "string", "enum": ["json", "html"]}),
            "f-items": _parameter("f", "The format of the answer (else the Accept header).",
                                  {"type": "string", "enum": ["json", "geojson", "html"]}),
            "offset": _parameter("offset", "Features to skip (paging; next links carry it).",
                                 {"type": "integer", "minimum": 0, "default": 0}),
            "bbox": _parameter(
                "bbox", "Features intersecting this box: minx,miny,maxx,maxy (or 6 numbers, "
                "heights ignored), in bbox-crs.", {"type": "array", "minItems": 4,
                                                    "maxItems": 6, "items": {"type": "number"}},
                style="form", explode=False),
            "bbox-crs": _parameter("bbox-crs", "The CRS of bbox.", crs),
            "crs": _parameter("crs", "The CRS of the geometries of the answer.", crs),
            "datetime": _parameter(
                "datetime", "An RFC 3339 instant, date or interval (start/end, '..' open), "
                "against the layer's time fields.", {"type": "string"}),
            "properties": _parameter("properties", "The properties to return.",
                                     {"type": "array", "items": {"type": "string"}},
                                     style="form", explode=False),
            "sortby": _parameter("sortby", "Sort keys: [+|-]property, comma-separated.",
                                 {"type": "array", "items": {"type": "string"}},
                                 style="form", explode=False),
            "filter": _parameter("filter", "A CQL2 filter (see filter-lang).",
                                 {"type": "string"}),
            "filter-lang": _parameter("filter-lang", "The language of filter.",
                                      {"type": "string",
                                       "enum": ["cql2-text", "cql2-json", "cql-text"],
                                       "default": "cql2-text"}),
            "filter-crs": _parameter("filter-crs", "The CRS of the filter's geometries.", crs),
            "skipGeometry": _parameter("skipGeometry", "Leave the geometries out.",
                                       {"type": "boolean", "default": False}),
        },
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _get(summary: str, operation_id: str, parameters: list[Any], content: dict[str, Any],
         tag: str, *, not_found: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": summary, "content": content},
                                 "400": PROBLEM}
    if not_found:
        responses["404"] = PROBLEM
    return {"get": {"summary": summary, "operationId": operation_id, "tags": [tag],
                    "parameters": parameters, "responses": responses}}


def document(api: Any, tables: tuple[LayerTable, ...], limits: list[int]) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/": _get("The landing page", "getLandingPage", [_ref("f")], JSON_OK, "Capabilities"),
        "/api": _get("This API definition", "getApi", [_ref("f")], {
            "application/vnd.oai.openapi+json;version=3.0": {"schema": {"type": "object"}},
            "text/html": {"schema": {"type": "string"}}}, "Capabilities"),
        "/conformance": _get("The conformance classes", "getConformance", [_ref("f")],
                             JSON_OK, "Capabilities"),
        "/collections": _get("The collections", "getCollections", [_ref("f")], JSON_OK,
                             "Capabilities"),
    }
    for table, limit in zip(tables, limits, strict=True):
        cid = str(table.layer_id)
        tag = layer_name(table, f"Layer {cid}")
        base = f"/collections/{cid}"
        paths[base] = _get(f"The collection {tag}", f"describeCollection{cid}", [_ref("f")],
                           JSON_OK, tag, not_found=True)
        paths[base + "/queryables"] = _get(
            f"The queryables of {tag}", f"getQueryables{cid}", [_ref("f")],
            {"application/schema+json": {"schema": {"type": "object"}},
             "text/html": {"schema": {"type": "string"}}}, tag, not_found=True)
        property_filters = [
            _parameter(f.name, f"Features whose {f.name} equals this value.",
                       property_schema(f)) for f in table.schema.fields]
        paths[base + "/items"] = _get(
            f"The features of {tag}", f"getFeatures{cid}", [
                _ref("f-items"),
                _parameter("limit", f"Features per page (at most {limit}; more is clamped).",
                           {"type": "integer", "minimum": 1, "maximum": limit,
                            "default": limit}),
                *(_ref(name) for name in ("offset", "bbox", "bbox-crs", "datetime",
                                          "properties", "sortby", "crs", "filter",
                                          "filter-lang", "filter-crs", "skipGeometry")),
                *property_filters], GEOJSON_OK, tag, not_found=True)
        paths[base + "/items/{featureId}"] = _get(
            f"One feature of {tag}", f"getFeature{cid}", [
                _parameter("featureId", "The feature's id (its object id).",
                           {"type": "integer"}, where="path", required=True),
                _ref("f-items"), _ref("crs"), _ref("properties"), _ref("skipGeometry")],
            GEOJSON_OK, tag, not_found=True)
    return {
        "openapi": "3.0.3",
        "info": {"title": api.title, "version": "1.0.0",
                 "description": api.dataset.description
                 or f"OGC API - Features of {api.title}. CRSs: {', '.join(ADVERTISED)} "
                    "and any EPSG code."},
        "servers": [{"url": api.root}],
        "tags": [{"name": "Capabilities"}] + [
            {"name": layer_name(t, f"Layer {t.layer_id}")} for t in tables],
        "paths": paths,
        "components": _components(),
    }


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's operations, flat, for its HTML page."""
    out = []
    for path, item in document["paths"].items():
        operation = item["get"]
        names = []
        for parameter in operation["parameters"]:
            if "$ref" in parameter:
                parameter = document["components"]["parameters"][parameter["$ref"].rsplit(
                    "/", 1)[1]]
            names.append(parameter)
        out.append({"path": path, "summary": operation["summary"], "parameters": names})
    return out
