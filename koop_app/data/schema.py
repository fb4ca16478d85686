"""Field types and the schema of a normalised layer.

Types are Esri's (``esriFieldTypeInteger`` ...). Providers and administrators may also name them
plainly ("Integer", "Double", "String", "Date", "Boolean"); ``esri_type`` maps those.
Booleans have no GeoServices type: they are served as ``esriFieldTypeSmallInteger`` 0/1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

OID = "esriFieldTypeOID"
SMALL_INTEGER = "esriFieldTypeSmallInteger"
INTEGER = "esriFieldTypeInteger"
DOUBLE = "esriFieldTypeDouble"
STRING = "esriFieldTypeString"
DATE = "esriFieldTypeDate"

ARROW_TYPES: dict[str, pa.DataType] = {
    OID: pa.int64(),
    SMALL_INTEGER: pa.int16(),
    INTEGER: pa.int32(),
    DOUBLE: pa.float64(),
    STRING: pa.string(),
    DATE: pa.int64(),  # UTC epoch milliseconds, as GeoServices serves dates
}

SQL_TYPES = {
    OID: "sqlTypeInteger",
    SMALL_INTEGER: "sqlTypeSmallInt",
    INTEGER: "sqlTypeInteger",
    DOUBLE: "sqlTypeDouble",
    STRING: "sqlTypeNVarchar",
    DATE: "sqlTypeTimestamp2",
}

_PLAIN_NAMES = {
    "oid": OID,
    "objectid": OID,
    "integer": INTEGER,
    "int": INTEGER,
    "long": INTEGER,
    "biginteger": DOUBLE,
    "smallinteger": SMALL_INTEGER,
    "boolean": SMALL_INTEGER,
    "bool": SMALL_INTEGER,
    "double": DOUBLE,
    "float": DOUBLE,
    "single": DOUBLE,
    "number": DOUBLE,
    "string": STRING,
    "text": STRING,
    "date": DATE,
    "datetime": DATE,
}

GEOMETRY_TYPES = {
    "Point": "esriGeometryPoint",
    "MultiPoint": "esriGeometryMultipoint",
    "LineString": "esriGeometryPolyline",
    "MultiLineString": "esriGeometryPolyline",
    "Polygon": "esriGeometryPolygon",
    "MultiPolygon": "esriGeometryPolygon",
}


def esri_type(name: str) -> str:
    """Map a plain or Esri field type name to the Esri one; raise ValueError if unknown."""
    if name in ARROW_TYPES:
        return name
    key = name.lower().removeprefix("esrifieldtype")
    if key in _PLAIN_NAMES:
        return _PLAIN_NAMES[key]
    raise ValueError(f"unknown field type {name!r}")


def esri_geometry_type(name: str) -> str:
    """Map a GeoJSON or Esri geometry type name to the Esri one; raise ValueError if unknown."""
    if name in GEOMETRY_TYPES.values():
        return name
    for geojson_name, esri_name in GEOMETRY_TYPES.items():
        if name.lower() in (geojson_name.lower(), esri_name.lower().removeprefix("esrigeometry")):
            return esri_name
    raise ValueError(f"unknown geometry type {name!r}")


@dataclass(frozen=True)
class Field:
    """One attribute column as GeoServices describes it."""

    name: str
    type: str
    alias: str = ""
    length: int | None = None
    # Boolean columns are SMALL_INTEGER 0/1; remembered so outputs can say so.
    boolean: bool = False
    # The sorted values of a few-valued text column in a large layer: hot tables keep such a
    # column as a DuckDB ENUM (grouping and filtering on small integers).
    enum_values: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.enum_values is not None:
            out["enum_values"] = list(self.enum_values)
        return out


@dataclass(frozen=True)
class LayerSchema:
    """Everything about a layer except its rows."""

    fields: tuple[Field, ...]
    object_id_field: str
    geometry_type: str | None
    extent: tuple[float, float, float, float] | None
    metadata: dict[str, Any] = field(default_factory=dict)

    def field(self, name: str) -> Field | None:
        lowered = name.lower()
        for item in self.fields:
            if item.name.lower() == lowered:
                return item
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fields": [item.as_dict() for item in self.fields],
            "object_id_field": self.object_id_field,
            "geometry_type": self.geometry_type,
            "extent": list(self.extent) if self.extent else None,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerSchema:
        return cls(
            fields=tuple(Field(**{**item, "enum_values": tuple(item["enum_values"])})
                         if item.get("enum_values") is not None else Field(**item)
                         for item in data["fields"]),
            object_id_field=data["object_id_field"],
            geometry_type=data["geometry_type"],
            extent=tuple(data["extent"]) if data["extent"] else None,
            metadata=data.get("metadata") or {},
        )
