"""GeoServices JSON documents: service, layer info, and query answers.

Feature arrays are written by DuckDB itself (``to_json`` over the engine's Page), and embedded
into the answer as an ``orjson.Fragment``: no Python loop touches each feature.
"""

from __future__ import annotations

from typing import Any

import orjson

from koop_app.data.duck import quote_ident, quote_string
from koop_app.data.hot import LayerTable
from koop_app.data.normalize import GEOMETRY_COLUMN
from koop_app.data.schema import DATE, OID, SQL_TYPES, STRING, Field
from koop_app.query import Page, Result, execute

CURRENT_VERSION = 11.3
WGS84 = {"wkid": 4326, "latestWkid": 4326}
_G = quote_ident(GEOMETRY_COLUMN)

# Esri JSON geometry per layer geometry type, from the stored RFC 7946 geometry. Esri rings are
# clockwise outside and counter-clockwise inside: the reverse of RFC 7946, hence ST_Reverse.
ESRI_GEOMETRY_SQL = {
    "esriGeometryPoint": f"{{'x': ST_X({_G}), 'y': ST_Y({_G})}}",
    "esriGeometryMultipoint": (
        f"{{'points': CAST(json_extract(ST_AsGeoJSON(ST_Multi({_G})), '$.coordinates') "
        f"AS DOUBLE[][])}}"
    ),
    "esriGeometryPolyline": (
        f"{{'paths': CAST(json_extract(ST_AsGeoJSON(ST_Multi({_G})), '$.coordinates') "
        f"AS DOUBLE[][][])}}"
    ),
    "esriGeometryPolygon": (
        f"{{'rings': flatten(CAST(json_extract(ST_AsGeoJSON(ST_Multi(ST_Reverse({_G}))), "
        f"'$.coordinates') AS DOUBLE[][][][]))}}"
    ),
}

SIMPLE_SYMBOLS = {
    "esriGeometryPoint": {
        "type": "esriSMS", "style": "esriSMSCircle", "color": [0, 112, 255, 200], "size": 6,
        "angle": 0, "xoffset": 0, "yoffset": 0,
        "outline": {"color": [255, 255, 255, 255], "width": 0.75},
    },
    "esriGeometryMultipoint": {
        "type": "esriSMS", "style": "esriSMSCircle", "color": [0, 112, 255, 200], "size": 6,
        "angle": 0, "xoffset": 0, "yoffset": 0,
        "outline": {"color": [255, 255, 255, 255], "width": 0.75},
    },
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
    if field.length is not None:
        out["length"] = field.length
    elif field.type == STRING:
        out["length"] = 256
    if field.type == DATE:
        out["length"] = 8
    return out


def extent_json(table: LayerTable) -> dict[str, Any]:
    extent = table.schema.extent
    if extent is None:
        return {"xmin": None, "ymin": None, "xmax": None, "ymax": None, "spatialReference": WGS84}
    xmin, ymin, xmax, ymax = extent
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "spatialReference": WGS84}


def layer_name(table: LayerTable, fallback: str) -> str:
    return table.schema.metadata.get("name") or fallback


def layer_json(table: LayerTable, layer_id: int, *, name: str, max_records: int) -> dict[str, Any]:
    """Layer (or table) info, as ArcGIS clients read it; advertises only what is implemented."""
    schema = table.schema
    geometry_type = schema.geometry_type
    info: dict[str, Any] = {
        "currentVersion": CURRENT_VERSION,
        "id": layer_id,
        "name": layer_name(table, name),
        "type": "Feature Layer" if geometry_type else "Table",
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
        "relationships": [],
        "maxRecordCount": max_records,
        "standardMaxRecordCount": max_records,
        "supportedQueryFormats": "JSON,geoJSON",
        "capabilities": "Query",
        "useStandardizedQueries": True,
        "supportsAdvancedQueries": True,
        "advancedQueryCapabilities": {
            "useStandardizedQueries": True,
            "supportsStatistics": False,
            "supportsHavingClause": False,
            "supportsOrderBy": False,
            "supportsDistinct": False,
            "supportsCountDistinct": False,
            "supportsPagination": True,
            "supportsPaginationOnAggregatedQueries": False,
            "supportsTrueCurve": False,
            "supportsReturningQueryExtent": False,
            "supportsQueryWithDistance": False,
            "supportsSqlExpression": False,
            "supportsQueryWithResultType": False,
        },
        "dateFieldsTimeReference": {"timeZone": "UTC", "respectsDaylightSaving": False},
        "hasZ": False,
        "hasM": False,
        "allowGeometryUpdates": False,
        "supportsRollbackOnFailureParameter": False,
        "supportsStatistics": False,
        "supportsCoordinatesQuantization": False,
    }
    if geometry_type:
        info["geometryType"] = geometry_type
        info["extent"] = extent_json(table)
        info["spatialReference"] = WGS84
        info["drawingInfo"] = {
            "renderer": {"type": "simple", "symbol": SIMPLE_SYMBOLS[geometry_type],
                         "label": "", "description": ""},
            "transparency": 0,
            "labelingInfo": None,
        }
    return info


def service_json(table: LayerTable, *, name: str, description: str,
                 max_records: int) -> dict[str, Any]:
    schema = table.schema
    entry = {"id": 0, "name": layer_name(table, name), "parentLayerId": -1,
             "defaultVisibility": True, "subLayerIds": None, "minScale": 0, "maxScale": 0}
    layers, tables = [], []
    if schema.geometry_type:
        layers.append({**entry, "geometryType": schema.geometry_type})
    else:
        tables.append(entry)
    extent = extent_json(table)
    return {
        "currentVersion": CURRENT_VERSION,
        "serviceDescription": description or schema.metadata.get("description", ""),
        "description": description or schema.metadata.get("description", ""),
        "copyrightText": schema.metadata.get("copyrightText", ""),
        "hasVersionedData": False,
        "supportsDisconnectedEditing": False,
        "hasStaticData": True,
        "maxRecordCount": max_records,
        "supportedQueryFormats": "JSON,geoJSON",
        "capabilities": "Query",
        "spatialReference": WGS84,
        "initialExtent": extent,
        "fullExtent": extent,
        "allowGeometryUpdates": False,
        "units": "esriDecimalDegrees",
        "syncEnabled": False,
        "supportsApplyEditsWithGlobalIds": False,
        "layers": layers,
        "tables": tables,
    }


def _attributes_sql(fields: tuple[Field, ...]) -> str:
    return "{" + ", ".join(f"{quote_string(f.name)}: {quote_ident(f.name)}" for f in fields) + "}"


def _aggregate(page: Page, row_sql: str, object_id_field: str) -> orjson.Fragment:
    oid = quote_ident(object_id_field)
    sql = (f"SELECT '[' || coalesce(string_agg(to_json({row_sql})::VARCHAR, ',' "
           f"ORDER BY {oid}), '') || ']' FROM ({page.sql}) AS page")
    (text,) = execute(sql, page.params).fetchone()
    return orjson.Fragment(text)


def esri_features(page: Page, geometry_type: str | None, object_id_field: str) -> orjson.Fragment:
    parts = [f"'attributes': {_attributes_sql(page.fields)}"]
    if page.geometry and geometry_type:
        parts.append(
            f"'geometry': CASE WHEN {_G} IS NULL OR ST_IsEmpty({_G}) THEN NULL "
            f"ELSE {ESRI_GEOMETRY_SQL[geometry_type]} END"
        )
    return _aggregate(page, "{" + ", ".join(parts) + "}", object_id_field)


def geojson_features(page: Page, object_id_field: str) -> orjson.Fragment:
    properties = _attributes_sql(page.fields)
    geometry = f"ST_AsGeoJSON({_G})::JSON" if page.geometry else "NULL::JSON"
    row = (f"{{'type': 'Feature', 'id': {quote_ident(object_id_field)}, "
           f"'properties': {properties}, 'geometry': {geometry}}}")
    return _aggregate(page, row, object_id_field)


def esri_query_json(result: Result) -> dict[str, Any]:
    schema = result.table.schema
    if result.count is not None:
        return {"count": result.count}
    if result.object_ids is not None:
        return {"objectIdFieldName": schema.object_id_field, "objectIds": result.object_ids}
    page = result.page
    assert page is not None
    out: dict[str, Any] = {
        "objectIdFieldName": schema.object_id_field,
        "uniqueIdField": {"name": schema.object_id_field, "isSystemMaintained": True},
        "globalIdFieldName": "",
        "fields": [field_json(f) for f in page.fields],
    }
    if schema.geometry_type:
        out["geometryType"] = schema.geometry_type
        out["spatialReference"] = WGS84
        out["hasZ"] = False
        out["hasM"] = False
    out["features"] = esri_features(page, schema.geometry_type, schema.object_id_field)
    out["exceededTransferLimit"] = result.exceeded_transfer_limit
    return out


def geojson_query_json(result: Result) -> dict[str, Any]:
    if result.count is not None or result.object_ids is not None:
        return esri_query_json(result)
    page = result.page
    assert page is not None
    out: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": geojson_features(page, result.table.schema.object_id_field),
    }
    if result.exceeded_transfer_limit:
        out["properties"] = {"exceededTransferLimit": True}
    return out
