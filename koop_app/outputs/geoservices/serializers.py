"""GeoServices JSON documents: service, layer info, and query answers.

Feature arrays are written by DuckDB itself (``to_json`` over the engine's Page), and embedded
into the answer as an ``orjson.Fragment``: no Python loop touches each feature.
"""

from __future__ import annotations

from typing import Any

import orjson

from koop_app.data import LayerSet
from koop_app.data.duck import quote_ident, quote_string
from koop_app.data.hot import LayerTable
from koop_app.data.normalize import GEOMETRY_COLUMN
from koop_app.data.schema import DATE, OID, SQL_TYPES, STRING, Field
from koop_app.errors import NotFoundError
from koop_app.query import Page, RecordLimits, Result, execute
from koop_app.query.engine import CENTROID_COLUMN
from koop_app.query.sr import WGS84, SpatialRef

CURRENT_VERSION = 11.3
_G = quote_ident(GEOMETRY_COLUMN)


def _rounded(value: str, precision: int | None, depth: int) -> str:
    """Round every number of a DuckDB list nested ``depth`` deep (0: a plain number)."""
    return value if precision is None else _nest_round(value, precision, depth)


def _nest_round(value: str, precision: int, depth: int) -> str:
    if depth == 0:
        return f"round({value}, {int(precision)})"
    name = f"c{depth}"
    return f"list_transform({value}, {name} -> {_nest_round(name, precision, depth - 1)})"


def _coordinates(expression: str, cast: str) -> str:
    return f"CAST(json_extract(ST_AsGeoJSON({expression}), '$.coordinates') AS {cast})"


def esri_geometry_sql(geometry_type: str, column: str, precision: int | None) -> str:
    """Esri JSON geometry from a stored (RFC 7946) geometry column.

    Esri rings are clockwise outside and counter-clockwise inside: the reverse of RFC 7946,
    hence ST_Reverse for polygons.
    """
    if geometry_type == "esriGeometryPoint":
        return (f"{{'x': {_rounded(f'ST_X({column})', precision, 0)}, "
                f"'y': {_rounded(f'ST_Y({column})', precision, 0)}}}")
    if geometry_type == "esriGeometryMultipoint":
        points = _coordinates(f"ST_Multi({column})", "DOUBLE[][]")
        return f"{{'points': {_rounded(points, precision, 2)}}}"
    if geometry_type == "esriGeometryPolyline":
        paths = _coordinates(f"ST_Multi({column})", "DOUBLE[][][]")
        return f"{{'paths': {_rounded(paths, precision, 3)}}}"
    rings = f"flatten({_coordinates(f'ST_Multi(ST_Reverse({column}))', 'DOUBLE[][][][]')})"
    return f"{{'rings': {_rounded(rings, precision, 3)}}}"


_MARKER = {
    "type": "esriSMS", "style": "esriSMSCircle", "color": [0, 112, 255, 200], "size": 6,
    "angle": 0, "xoffset": 0, "yoffset": 0,
    "outline": {"color": [255, 255, 255, 255], "width": 0.75},
}
# The default renderer's symbol per geometry type (drawingInfo, generateRenderer's base).
SIMPLE_SYMBOLS = {
    "esriGeometryPoint": _MARKER,
    "esriGeometryMultipoint": _MARKER,
    "esriGeometryPolyline": {
        "type": "esriSLS", "style": "esriSLSSolid", "color": [0, 112, 255, 255], "width": 1.5,
    },
    "esriGeometryPolygon": {
        "type": "esriSFS", "style": "esriSFSSolid", "color": [0, 112, 255, 90],
        "outline": {"type": "esriSLS", "style": "esriSLSSolid", "color": [0, 80, 180, 255],
                    "width": 0.75},
    },
}


def field_json(field: Field) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": field.name,
        "type": field.type,
        "alias": field.alias or field.name,
        "sqlType": SQL_TYPES[field.type],
        "domain": None,
        "defaultValue": None,
        "nullable": field.type != OID,
        "editable": False,
    }
    if field.type == STRING:
        out["length"] = field.length or 256
    elif field.type == DATE:
        out["length"] = 8
    return out


def envelope_json(bounds: tuple[float, float, float, float] | None,
                  sr: SpatialRef = WGS84) -> dict[str, Any]:
    if bounds is None:
        return {"xmin": None, "ymin": None, "xmax": None, "ymax": None,
                "spatialReference": sr.as_json()}
    xmin, ymin, xmax, ymax = bounds
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax,
            "spatialReference": sr.as_json()}


def layer_name(table: LayerTable, fallback: str) -> str:
    return table.schema.metadata.get("name") or fallback


def time_info(table: LayerTable) -> dict[str, Any] | None:
    """The layer's timeInfo with its real time extent, when the data has time."""
    info = table.schema.metadata.get("timeInfo")
    if not isinstance(info, dict):
        return None
    start = table.schema.field(str(info.get("startTimeField") or ""))
    if start is None:
        return None
    end = table.schema.field(str(info.get("endTimeField") or "")) or start
    low, high = execute(f"SELECT min({quote_ident(start.name)}), max({quote_ident(end.name)}) "
                        f"FROM {table.table_name}").fetchone()
    out = {"startTimeField": start.name, "endTimeField": end.name if end is not start else None,
           "trackIdField": info.get("trackIdField"), "timeExtent": [low, high],
           "timeReference": {"timeZone": "UTC", "respectsDaylightSaving": False},
           "timeInterval": info.get("timeInterval", 0),
           "timeIntervalUnits": info.get("timeIntervalUnits", "esriTimeUnitsUnknown"),
           "hasLiveData": False}
    return out


def relationships_json(table: LayerTable, relationships: tuple[dict[str, Any], ...]
                       ) -> list[dict[str, Any]]:
    """This layer's relationships, from either end (origin or destination)."""
    out = []
    for item in relationships:
        if item.get("originLayerId") == table.layer_id:
            out.append({"id": item.get("id", 0), "name": item.get("name", ""),
                        "relatedTableId": item.get("relatedTableId"),
                        "cardinality": item.get("cardinality", "esriRelCardinalityOneToMany"),
                        "role": "esriRelRoleOrigin", "keyField": item.get("keyField"),
                        "composite": False})
        elif item.get("relatedTableId") == table.layer_id:
            out.append({"id": item.get("id", 0), "name": item.get("name", ""),
                        "relatedTableId": item.get("originLayerId"),
                        "cardinality": item.get("cardinality", "esriRelCardinalityOneToMany"),
                        "role": "esriRelRoleDestination",
                        "keyField": item.get("relatedKeyField"), "composite": False})
    return out


def layer_json(table: LayerTable, *, name: str, limits: RecordLimits,
               relationships: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """Layer (or table) info, as ArcGIS clients read it; advertises only what is implemented."""
    schema = table.schema
    geometry_type = None if table.is_table else schema.geometry_type
    related = relationships_json(table, relationships)
    info: dict[str, Any] = {
        "currentVersion": CURRENT_VERSION,
        "id": table.layer_id,
        "name": layer_name(table, name),
        "type": "Table" if table.is_table else "Feature Layer",
        "description": schema.metadata.get("description", ""),
        "copyrightText": schema.metadata.get("copyrightText", ""),
        "defaultVisibility": True,
        "editingInfo": {"lastEditDate": int(table.fetched_at * 1000)},
        "isDataVersioned": False,
        "hasStaticData": True,
        "hasAttachments": False,
        "htmlPopupType": "esriServerHTMLPopupTypeNone",
        "displayField": schema.metadata.get("displayField", schema.object_id_field),
        "typeIdField": None,
        "objectIdField": schema.object_id_field,
        "uniqueIdField": {"name": schema.object_id_field, "isSystemMaintained": True},
        "globalIdField": "",
        "fields": [field_json(f) for f in schema.fields],
        "types": [],
        "templates": [],
        "relationships": related,
        "maxRecordCount": limits.max_record_count,
        "standardMaxRecordCount": limits.standard,
        "tileMaxRecordCount": limits.tile,
        "maxRecordCountFactor": 5,
        "supportedQueryFormats": "JSON, geoJSON",
        "capabilities": "Query",
        "useStandardizedQueries": True,
        "supportsAdvancedQueries": True,
        "supportsQueryRelatedRecords": bool(related),
        "supportsStatistics": True,
        "supportsCoordinatesQuantization": False,
        "supportedSpatialRelationships": [
            "esriSpatialRelIntersects", "esriSpatialRelContains", "esriSpatialRelCrosses",
            "esriSpatialRelEnvelopeIntersects", "esriSpatialRelIndexIntersects",
            "esriSpatialRelOverlaps", "esriSpatialRelTouches", "esriSpatialRelWithin"],
        "advancedQueryCapabilities": {
            "useStandardizedQueries": True,
            "supportsStatistics": True,
            "supportsPercentileStatistics": True,
            "supportsHavingClause": True,
            "supportsOrderBy": True,
            "supportsDistinct": True,
            "supportsCountDistinct": True,
            "supportsPagination": True,
            "supportsPaginationOnAggregatedQueries": True,
            "supportsTrueCurve": False,
            "supportsReturningQueryExtent": True,
            "supportsQueryWithDistance": True,
            "supportsSqlExpression": False,
            "supportsQueryWithResultType": True,
            "supportsReturningGeometryCentroid": geometry_type == "esriGeometryPolygon",
            "supportsMaxRecordCountFactor": True,
        },
        "dateFieldsTimeReference": {"timeZone": "UTC", "respectsDaylightSaving": False},
        "hasZ": False,
        "hasM": False,
        "allowGeometryUpdates": False,
        "supportsRollbackOnFailureParameter": False,
    }
    if geometry_type:
        info["geometryType"] = geometry_type
        info["extent"] = envelope_json(schema.extent)
        info["spatialReference"] = WGS84.as_json()
        info["drawingInfo"] = {
            "renderer": {"type": "simple", "symbol": SIMPLE_SYMBOLS[geometry_type],
                         "label": "", "description": ""},
            "transparency": 0,
            "labelingInfo": None,
        }
    time = time_info(table)
    if time:
        info["timeInfo"] = time
    return info


def service_json(layers: LayerSet, *, name: str, description: str,
                 max_record_count: int) -> dict[str, Any]:
    entries: dict[str, list[dict[str, Any]]] = {"layers": [], "tables": []}
    extents = []
    first_description = ""
    for table in layers.layers:
        entry = {"id": table.layer_id, "name": layer_name(table, name), "parentLayerId": -1,
                 "defaultVisibility": True, "subLayerIds": None, "minScale": 0, "maxScale": 0}
        if table.is_table:
            entries["tables"].append(entry)
        else:
            entries["layers"].append({**entry, "geometryType": table.schema.geometry_type})
            if table.schema.extent:
                extents.append(table.schema.extent)
        first_description = first_description or table.schema.metadata.get("description", "")
    bounds = None
    if extents:
        bounds = (min(e[0] for e in extents), min(e[1] for e in extents),
                  max(e[2] for e in extents), max(e[3] for e in extents))
    extent = envelope_json(bounds)
    copyright_text = layers.layers[0].schema.metadata.get("copyrightText", "") \
        if layers.layers else ""
    return {
        "currentVersion": CURRENT_VERSION,
        "serviceDescription": description or first_description,
        "description": description or first_description,
        "copyrightText": copyright_text,
        "hasVersionedData": False,
        "supportsDisconnectedEditing": False,
        "hasStaticData": True,
        "maxRecordCount": max_record_count,
        "supportedQueryFormats": "JSON, geoJSON",
        "capabilities": "Query",
        "spatialReference": WGS84.as_json(),
        "initialExtent": extent,
        "fullExtent": extent,
        "allowGeometryUpdates": False,
        "units": "esriDecimalDegrees",
        "syncEnabled": False,
        "supportsApplyEditsWithGlobalIds": False,
        "layers": entries["layers"],
        "tables": entries["tables"],
    }


def _attributes_sql(fields: tuple[Field, ...]) -> str:
    return "{" + ", ".join(f"{quote_string(f.name)}: {quote_ident(f.name)}" for f in fields) + "}"


def _array_text(page: Page, row_sql: str, *, as_json: bool = True) -> tuple[str, bool]:
    """The page's rows as a JSON array (``row_sql`` per row), and whether rows exist past it.

    ``row_sql`` is a struct for ``to_json`` or, with ``as_json=False``, JSON text already.
    """
    row = f"to_json({row_sql})::VARCHAR" if as_json else row_sql
    if page.more_after is None:
        sql = (f"SELECT '[' || coalesce(string_agg({row}, ',' ORDER BY {page.order}), '') "
               f"|| ']', false FROM ({page.sql}) AS page")
    else:
        # One row past the page was read: leave it out, and say that it was there.
        limit = int(page.more_after)
        sql = (f"SELECT '[' || coalesce(string_agg({row}, ',' ORDER BY {page.order}) "
               f"FILTER (WHERE _koop_n <= {limit}), '') || ']', count(*) > {limit} "
               f"FROM (SELECT *, row_number() OVER (ORDER BY {page.order}) AS _koop_n "
               f"FROM ({page.sql}) AS page) AS page")
    text, more = execute(sql, page.params, page.rows, page.relations).fetchone()
    if more and page.empty_if_more:
        return "[]", True
    return text, bool(more)


def esri_features(page: Page, geometry_type: str | None,
                  precision: int | None = None) -> tuple[orjson.Fragment, bool]:
    """The features array, and whether features exist past the page (``Page.more_after``)."""
    text, more = _esri_features_text(page, geometry_type, precision)
    return orjson.Fragment(text), more


def _esri_features_text(page: Page, geometry_type: str | None, precision: int | None
                        ) -> tuple[str, bool]:
    if page.rows is not None and not page.geometry:
        # A few aggregate rows, already in memory: orjson writes them faster than a DuckDB
        # round trip would.
        rows = page.rows.to_pylist()
        return orjson.dumps([{"attributes": row} for row in rows]).decode(), False
    parts = [f"'attributes': {_attributes_sql(page.fields)}"]
    if page.geometry and geometry_type:
        parts.append(
            f"'geometry': CASE WHEN {_G} IS NULL OR ST_IsEmpty({_G}) THEN NULL "
            f"ELSE {esri_geometry_sql(geometry_type, _G, precision)} END"
        )
    if page.centroid:
        centroid = quote_ident(CENTROID_COLUMN)
        parts.append(f"'centroid': CASE WHEN {centroid} IS NULL OR ST_IsEmpty({centroid}) "
                     f"THEN NULL ELSE "
                     f"{esri_geometry_sql('esriGeometryPoint', centroid, precision)} END")
    return _array_text(page, "{" + ", ".join(parts) + "}")


def geojson_features(page: Page, object_id_field: str | None,
                     precision: int | None = None) -> tuple[orjson.Fragment, bool]:
    """The features array, and whether features exist past the page (``Page.more_after``).

    Each feature's text is put together from its parts: the geometry's GeoJSON goes in as
    DuckDB writes it, rather than parsed as JSON and written again (a tenth of the time).
    """
    geometry = "'null'"
    if page.geometry:
        column = _G if precision is None else f"ST_ReducePrecision({_G}, {10.0 ** -precision!r})"
        geometry = f"coalesce(ST_AsGeoJSON({column}), 'null')"
    parts = ["'{\"type\":\"Feature\",'"]
    if object_id_field:
        parts.append(f"'\"id\":' || coalesce(to_json({quote_ident(object_id_field)})::VARCHAR, "
                     "'null') || ','")
    parts.append(f"'\"properties\":' || to_json({_attributes_sql(page.fields)})::VARCHAR")
    parts.append(f"',\"geometry\":' || {geometry} || '}}'")
    text, more = _array_text(page, " || ".join(parts), as_json=False)
    return orjson.Fragment(text), more


def _has_object_ids(result: Result) -> bool:
    page = result.page
    oid = result.table.schema.object_id_field
    return page is not None and any(f.name == oid for f in page.fields)


def esri_query_json(result: Result, precision: int | None = None) -> dict[str, Any]:
    schema = result.table.schema
    if result.extent_only:
        out: dict[str, Any] = {}
        if result.count is not None:
            out["count"] = result.count
        out["extent"] = envelope_json(result.extent, result.out_sr)
        return out
    if result.count is not None:
        return {"count": result.count}
    if result.object_ids is not None:
        return {"objectIdFieldName": schema.object_id_field,
                "objectIds": orjson.Fragment(result.object_ids)}
    page = result.page
    assert page is not None
    if result.statistics or not _has_object_ids(result):
        features, more = esri_features(page, None)
        return {"displayFieldName": "", "fieldAliases": {f.name: f.alias or f.name
                                                         for f in page.fields},
                "fields": [field_json(f) for f in page.fields],
                "features": features,
                "exceededTransferLimit": result.exceeded_transfer_limit or more}
    out = {
        "objectIdFieldName": schema.object_id_field,
        "uniqueIdField": {"name": schema.object_id_field, "isSystemMaintained": True},
        "globalIdFieldName": "",
        "fields": [field_json(f) for f in page.fields],
    }
    if schema.geometry_type:
        out["geometryType"] = schema.geometry_type
        out["spatialReference"] = result.out_sr.as_json()
        out["hasZ"] = False
        out["hasM"] = False
    out["features"], more = esri_features(page, schema.geometry_type, precision)
    out["exceededTransferLimit"] = result.exceeded_transfer_limit or more
    return out


def geojson_query_json(result: Result, precision: int | None = None) -> dict[str, Any]:
    if result.extent_only:
        out: dict[str, Any] = {"type": "FeatureCollection", "features": []}
        if result.extent is not None:
            out["bbox"] = list(result.extent)
        if result.count is not None:
            out["properties"] = {"count": result.count}
        return out
    if result.count is not None or result.object_ids is not None:
        return esri_query_json(result)
    page = result.page
    assert page is not None
    oid = result.table.schema.object_id_field if _has_object_ids(result) else None
    features, more = geojson_features(page, oid, precision)
    out = {"type": "FeatureCollection", "features": features}
    if result.exceeded_transfer_limit or more:
        out["properties"] = {"exceededTransferLimit": True}
    return out


def feature_json(result: Result) -> dict[str, Any]:
    """The single-feature resource: ``{"feature": {attributes, geometry}}``."""
    page = result.page
    assert page is not None
    text, _ = _esri_features_text(page, result.table.schema.geometry_type, None)
    features = orjson.loads(text)
    if not features:
        raise NotFoundError("Feature not found.")
    return {"feature": features[0]}
