"""Pieces of Esri JSON documents shared by layer info and query answers."""

from __future__ import annotations

from typing import Any

from koop_app.data.schema import DATE, OID, SQL_TYPES, STRING, Field
from koop_app.query.sr import WGS84, SpatialRef


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
