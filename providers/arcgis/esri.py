"""Esri JSON (a FeatureServer's ``f=json`` answers) read as GeoJSON, and its field types.

Geometries follow the GeoServices REST specification's geometry objects: a point ``{x, y}``,
a multipoint ``{points}``, a polyline ``{paths}``, a polygon ``{rings}`` and an envelope
``{xmin, ymin, xmax, ymax}``. Z and M values are dropped (our layers are 2D). Polygon rings
are not grouped: Esri marks exterior rings clockwise and holes counter-clockwise, so each hole
is given to the smallest exterior ring that contains it (GeoJSON, RFC 7946, nests them).
"""

from __future__ import annotations

import math
from typing import Any

# Esri field type -> the plain type our schema takes; None: not an attribute we serve.
FIELD_TYPES: dict[str, str | None] = {
    "esriFieldTypeOID": "Integer",
    "esriFieldTypeSmallInteger": "SmallInteger",
    "esriFieldTypeInteger": "Integer",
    # 64-bit integers do not fit our Integer (32-bit): served as Double, exact up to 2**53.
    "esriFieldTypeBigInteger": "Double",
    "esriFieldTypeSingle": "Double",
    "esriFieldTypeDouble": "Double",
    "esriFieldTypeString": "String",
    "esriFieldTypeDate": "Date",
    "esriFieldTypeDateOnly": "Date",  # "2024-05-01": read as that day, 00:00 UTC
    "esriFieldTypeTimestampOffset": "Date",  # ISO text with an offset: read as its UTC instant
    "esriFieldTypeTimeOnly": "String",
    "esriFieldTypeGUID": "String",
    "esriFieldTypeGlobalID": "String",
    "esriFieldTypeXML": "String",
    "esriFieldTypeGeometry": None,
    "esriFieldTypeBlob": None,
    "esriFieldTypeRaster": None,
}


def field_type(esri: Any) -> str | None:
    """The plain type of an Esri field type; String for a type this table does not know."""
    return FIELD_TYPES.get(str(esri), "String")


def to_geojson(geometry: Any) -> dict[str, Any] | None:
    """An Esri JSON geometry as a GeoJSON geometry; None for an empty or unreadable one."""
    if not isinstance(geometry, dict):
        return None
    if "x" in geometry:
        xy = _xy([geometry.get("x"), geometry.get("y")])
        return {"type": "Point", "coordinates": xy} if xy else None
    if "points" in geometry:
        points = _positions(geometry.get("points"))
        return {"type": "MultiPoint", "coordinates": points} if points else None
    if "paths" in geometry or "curvePaths" in geometry:
        paths = [p for p in (_positions(path) for path in _parts(geometry, "paths"))
                 if len(p) >= 2]
        if not paths:
            return None
        if len(paths) == 1:
            return {"type": "LineString", "coordinates": paths[0]}
        return {"type": "MultiLineString", "coordinates": paths}
    if "rings" in geometry or "curveRings" in geometry:
        return _polygon([_positions(ring) for ring in _parts(geometry, "rings")])
    if "xmin" in geometry:
        low, high = _xy([geometry.get("xmin"), geometry.get("ymin")]), _xy(
            [geometry.get("xmax"), geometry.get("ymax")])
        if not low or not high:
            return None
        (x0, y0), (x1, y1) = low, high
        return {"type": "Polygon",
                "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    return None


def _parts(geometry: dict[str, Any], name: str) -> list[Any]:
    # curvePaths/curveRings come only when a client asks for true curves (we never do); their
    # plain vertices are kept and the arcs' control points skipped.
    parts = geometry.get(name)
    if parts is None:
        parts = geometry.get("curve" + name[0].upper() + name[1:])
    return parts if isinstance(parts, list) else []


def _xy(position: Any) -> list[float] | None:
    if not isinstance(position, (list, tuple)) or len(position) < 2:
        return None
    x, y = position[0], position[1]
    if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, (int, float)) or \
            not isinstance(y, (int, float)):
        return None  # also "NaN" text: ArcGIS's empty point
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return [float(x), float(y)]


def _positions(values: Any) -> list[list[float]]:
    if not isinstance(values, list):
        return []
    out = []
    for value in values:
        xy = _xy(value)
        if xy is not None:
            out.append(xy)
    return out


def _signed_area(ring: list[list[float]]) -> float:
    """Twice the signed area (shoelace): negative for a clockwise ring (y up)."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False):
        total += x0 * y1 - x1 * y0
    return total


def _contains(ring: list[list[float]], point: list[float]) -> bool:
    """Whether ``point`` is inside ``ring`` (ray casting; a point on an edge may go either way)."""
    x, y = point
    inside = False
    for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False):
        if (y0 > y) != (y1 > y) and x < (x1 - x0) * (y - y0) / (y1 - y0) + x0:
            inside = not inside
    return inside


def _polygon(rings: list[list[list[float]]]) -> dict[str, Any] | None:
    closed = []
    for ring in rings:
        if len(ring) >= 3 and ring[0] != ring[-1]:
            ring = [*ring, ring[0]]
        if len(ring) >= 4:
            closed.append(ring)
    outers: list[list[list[list[float]]]] = []
    areas: list[float] = []
    holes = []
    for ring in closed:
        area = _signed_area(ring)
        if area < 0:  # clockwise: an exterior ring
            outers.append([ring])
            areas.append(-area)
        elif area > 0:
            holes.append(ring)
    for hole in holes:
        owners = [i for i, polygon in enumerate(outers) if _contains(polygon[0], hole[0])]
        if owners:
            outers[min(owners, key=lambda i: areas[i])].append(hole)
        else:  # wound the wrong way by its writer: an exterior ring of its own
            outers.append([hole])
            areas.append(_signed_area(hole))
    if not outers:
        return None
    if len(outers) == 1:
        return {"type": "Polygon", "coordinates": outers[0]}
    return {"type": "MultiPolygon", "coordinates": outers}
