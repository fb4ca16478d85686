"""Queryables (Part 3): a JSON Schema of the properties a filter may name, with their types."""

from __future__ import annotations

from typing import Any

from koop_app.data import LayerTable
from koop_app.data.schema import DATE, DOUBLE, STRING, Field
from koop_app.outputs.geoservices.serializers import layer_name

GEOMETRY_FORMATS = {
    "esriGeometryPoint": "geometry-point",
    "esriGeometryMultipoint": "geometry-multipoint",
    "esriGeometryPolyline": "geometry-multilinestring",
    "esriGeometryPolygon": "geometry-multipolygon",
}
GEOMETRY_PROPERTY = "geometry"


def property_schema(field: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"title": field.alias or field.name}
    if field.boolean:
        out["type"] = "boolean"
    elif field.type == STRING:
        out["type"] = "string"
        if field.length:
            out["maxLength"] = field.length
    elif field.type == DATE:
        out.update({"type": "string", "format": "date-time"})
    elif field.type == DOUBLE:
        out["type"] = "number"
    else:
        out["type"] = "integer"
    return out


def queryables_schema(table: LayerTable, url: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if not table.is_table and table.schema.geometry_type:
        properties[GEOMETRY_PROPERTY] = {
            "title": "Geometry", "x-ogc-role": "primary-geometry",
            "format": GEOMETRY_FORMATS.get(table.schema.geometry_type, "geometry-any")}
    for field in table.schema.fields:
        properties[field.name] = property_schema(field)
        if field.name == table.schema.object_id_field:
            properties[field.name]["x-ogc-role"] = "id"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": layer_name(table, f"Layer {table.layer_id}"),
        "properties": properties,
        "additionalProperties": False,
    }
