"""GeoServices JSON documents: the service and its layers' info (query answers: encoders)."""

from __future__ import annotations

from typing import Any

from koop_app.data import LayerSet
from koop_app.data.hot import LayerTable
from koop_app.encoders.fields import envelope_json, field_json
from koop_app.query import RecordLimits
from koop_app.query.engine import time_extent
from koop_app.query.sr import WGS84

CURRENT_VERSION = 11.3
# Every query answer can be encoded in each (koop_app.encoders.formats).
QUERY_FORMATS = "JSON, geoJSON, PBF"


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
    low, high = time_extent(table, start.name, end.name)
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
        "supportedQueryFormats": QUERY_FORMATS,
        "capabilities": "Query",
        "useStandardizedQueries": True,
        "supportsAdvancedQueries": True,
        "supportsQueryRelatedRecords": bool(related),
        "supportsStatistics": True,
        "supportsCoordinatesQuantization": True,
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
        own = schema.metadata.get("drawingInfo")
        if isinstance(own, dict):  # the provider's symbology, kept by normalize
            info["drawingInfo"] = {**info["drawingInfo"], **own}
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
        "supportedQueryFormats": QUERY_FORMATS,
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


