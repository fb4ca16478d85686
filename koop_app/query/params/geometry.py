"""The spatial filter: geometry (+ geometryType, inSR, spatialRel, distance, units).

Accepted forms: Esri JSON point / multipoint / polyline / polygon / envelope, the short
``xmin,ymin,xmax,ymax`` and ``x,y`` forms, and GeoJSON geometries. The geometry is turned into
a shapely geometry in the layer's reference (WGS 84), buffered when ``distance`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyproj
import shapely
from shapely.geometry import box

from koop_app.conf import koop_settings
from koop_app.errors import InvalidParameterError
from koop_app.query.sr import WGS84, SpatialRef, parse_sr, transformer

RELATIONS = {
    "esrispatialrelintersects": "intersects",
    "esrispatialrelenvelopeintersects": "envelope",
    "esrispatialrelindexintersects": "envelope",
    "esrispatialrelcontains": "contains",
    "esrispatialrelwithin": "within",
    "esrispatialrelcrosses": "crosses",
    "esrispatialreloverlaps": "overlaps",
    "esrispatialreltouches": "touches",
}
UNITS_IN_METERS = {
    "esrisrunit_meter": 1.0,
    "esrisrunit_kilometer": 1000.0,
    "esrisrunit_foot": 0.3048,
    "esrisrunit_surveyfoot": 1200 / 3937,
    "esrisrunit_statutemile": 1609.344,
    "esrisrunit_internationalmile": 1609.344,
    "esrisrunit_nauticalmile": 1852.0,
    "esrisrunit_usnauticalmile": 1853.248,
    "9001": 1.0,
    "9036": 1000.0,
    "9002": 0.3048,
    "9093": 1609.344,
    "9030": 1852.0,
}
# No spatial reference has coordinates this large; larger ones only overflow projections.
MAX_COORDINATE = 1e15
# Half the Earth's circumference: a buffer this wide covers the whole globe.
WHOLE_EARTH_METERS = 20_037_508.0
EARTH_RADIUS_METERS = 6_371_008.8
GEOMETRY_TYPES = ("esriGeometryEnvelope", "esriGeometryPoint", "esriGeometryMultipoint",
                  "esriGeometryPolyline", "esriGeometryPolygon")


@dataclass(frozen=True)
class SpatialFilter:
    geometry: shapely.Geometry  # in WGS 84
    relation: str  # intersects, envelope, contains, within, crosses, overlaps, touches
    bbox: tuple[float, float, float, float]
    is_box: bool  # an axis-aligned rectangle: bounding-box columns answer it exactly


def _bad(problem: str) -> InvalidParameterError:
    return InvalidParameterError("geometry", problem)


def _numbers(values: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise _bad(f"{what} must hold numbers") from None
    if not np.isfinite(array).all() or (np.abs(array) > MAX_COORDINATE).any():
        raise _bad(f"{what} must hold finite numbers below {MAX_COORDINATE:g}")
    return array


def _coords(values: Any, what: str, minimum: int) -> np.ndarray:
    array = _numbers(values, what)
    if array.ndim != 2 or array.shape[1] < 2 or len(array) < minimum:
        raise _bad(f"{what} needs at least {minimum} [x, y] positions")
    return array[:, :2]


def _polygon_from_rings(rings: Any) -> shapely.Geometry:
    """Esri rings: clockwise outer rings, counter-clockwise holes, in any order."""
    if not isinstance(rings, list) or not rings:
        raise _bad("'rings' must be a non-empty list")
    shells, holes = [], []
    for ring in rings:
        ring_coords = _coords(ring, "a ring", 3)
        linear = shapely.linearrings(ring_coords)
        (holes if shapely.is_ccw(linear) else shells).append(ring_coords)
    if not shells:  # wound the other way round: take every ring as an outer ring
        shells, holes = holes, []
    polygons = [shapely.Polygon(shell) for shell in shells]
    hole_lists: list[list[np.ndarray]] = [[] for _ in polygons]
    if holes:
        # Each hole goes to the first outer ring holding its first vertex: one indexed query,
        # not outer rings x holes tests in Python.
        starts = shapely.points(np.array([hole[0] for hole in holes]))
        pairs = shapely.STRtree(polygons).query(starts, predicate="within")
        owner: dict[int, int] = {}
        for hole_index, polygon_index in zip(pairs[0].tolist(), pairs[1].tolist(),
                                             strict=True):
            owner[hole_index] = min(owner.get(hole_index, polygon_index), polygon_index)
        for hole_index, polygon_index in sorted(owner.items()):
            hole_lists[polygon_index].append(holes[hole_index])
    parts = [shapely.Polygon(shell, hole_lists[i]) for i, shell in enumerate(shells)]
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _check_size(vertices: int, parts: int) -> None:
    """KOOP['MAX_GEOMETRY_VERTICES'] and 'MAX_GEOMETRY_PARTS', checked before building."""
    max_vertices = int(koop_settings.MAX_GEOMETRY_VERTICES)
    if vertices > max_vertices:
        raise _bad(f"{vertices} vertices; at most {max_vertices} are allowed")
    max_parts = int(koop_settings.MAX_GEOMETRY_PARTS)
    if parts > max_parts:
        raise _bad(f"{parts} rings or paths; at most {max_parts} are allowed")


def _esri_size(data: Mapping[str, Any]) -> None:
    for key in ("rings", "paths"):
        parts = data.get(key)
        if isinstance(parts, list):
            _check_size(sum(len(p) for p in parts if isinstance(p, list)), len(parts))
    points = data.get("points")
    if isinstance(points, list):
        _check_size(len(points), 1)


def _from_esri(data: Mapping[str, Any]) -> shapely.Geometry:
    _esri_size(data)
    if "rings" in data:
        return _polygon_from_rings(data["rings"])
    if "paths" in data:
        if not isinstance(data["paths"], list) or not data["paths"]:
            raise _bad("'paths' must be a non-empty list")
        paths = [_coords(path, "a path", 2) for path in data["paths"]]
        return shapely.LineString(paths[0]) if len(paths) == 1 else shapely.MultiLineString(paths)
    if "points" in data:
        return shapely.MultiPoint(_coords(data["points"], "'points'", 1))
    if "xmin" in data:
        values = _numbers([data.get(k) for k in ("xmin", "ymin", "xmax", "ymax")], "an envelope")
        return _envelope(values)
    if "x" in data and "y" in data:
        return shapely.Point(_numbers([data["x"], data["y"]], "a point"))
    raise _bad("not an Esri or GeoJSON geometry")


def _envelope(values: np.ndarray) -> shapely.Geometry:
    xmin, ymin, xmax, ymax = (float(v) for v in values)
    if xmin > xmax or ymin > ymax:
        raise _bad("an envelope needs xmin <= xmax and ymin <= ymax")
    return box(xmin, ymin, xmax, ymax)


def _from_text(text: str, geometry_type: str) -> tuple[shapely.Geometry, Any]:
    """The geometry and the SR JSON it carries (None when it carries none)."""
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _bad("not valid JSON") from None
        if not isinstance(data, dict):
            raise _bad("not a geometry object")
        if "type" in data and "coordinates" in data:
            try:
                geom = shapely.from_geojson(orjson.dumps(data))
            except (shapely.errors.GEOSException, ValueError):
                raise _bad("not a valid GeoJSON geometry") from None
            parts = shapely.get_num_geometries(geom) + int(
                np.sum(shapely.get_num_interior_rings(shapely.get_parts(geom))))
            _check_size(int(shapely.get_num_coordinates(geom)), int(parts))
            return geom, None
        return _from_esri(data), data.get("spatialReference")
    values = _numbers([part for part in text.split(",")], "the geometry") if text else None
    if values is None or len(values) not in (2, 4):
        raise _bad("expected x,y or xmin,ymin,xmax,ymax or a JSON geometry")
    if len(values) == 2:
        return shapely.Point(values), None
    if geometry_type == "esriGeometryPoint":
        raise _bad("a point takes x,y")
    return _envelope(values), None


def _buffer(geom: shapely.Geometry, meters: float, sr: SpatialRef) -> shapely.Geometry:
    """Buffer by meters: in an equidistant projection centred on the geometry.

    A buffer that reaches a pole has no faithful outline in longitude and latitude: it becomes
    the band of latitudes it reaches, all longitudes (more features, never fewer).
    """
    in_wgs84 = _to_wgs84(geom, sr)
    reach = np.degrees(meters / EARTH_RADIUS_METERS)
    south, north = in_wgs84.bounds[1] - reach, in_wgs84.bounds[3] + reach
    if meters >= WHOLE_EARTH_METERS or south <= -90 or north >= 90:
        return box(-180.0, max(south, -90.0), 180.0, min(north, 90.0))
    centre = shapely.centroid(in_wgs84)
    local = pyproj.CRS.from_proj4(
        f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 +units=m")
    to_local = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(sr.crs), local,
                                           always_xy=True)
    projected = shapely.transform(geom, lambda xy: np.column_stack(to_local.transform(*xy.T)))
    buffered = shapely.buffer(projected, meters, quad_segs=16)
    back = pyproj.Transformer.from_crs(local, pyproj.CRS.from_user_input(WGS84.crs),
                                       always_xy=True)
    out = shapely.transform(buffered, lambda xy: np.column_stack(back.transform(*xy.T)))
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise InvalidParameterError("distance", "the buffer cannot be drawn on the globe")
    return out if out.is_valid else shapely.make_valid(out)


def _to_wgs84(geom: shapely.Geometry, sr: SpatialRef) -> shapely.Geometry:
    if sr.is_wgs84:
        return geom
    # Densify first so that straight edges in the input reference stay close to it.
    span = max(geom.bounds[2] - geom.bounds[0], geom.bounds[3] - geom.bounds[1])
    if span > 0 and shapely.get_type_id(geom) not in (0, 4):
        geom = shapely.segmentize(geom, span / 64)
    moved = transformer(sr.crs, WGS84.crs)
    out = shapely.transform(geom, lambda xy: np.column_stack(moved.transform(*xy.T)))
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise _bad("the geometry cannot be projected to the layer's spatial reference")
    return out


def parse_spatial_filter(raw: Mapping[str, str]) -> SpatialFilter | None:
    text = (raw.get("geometry") or "").strip()
    if not text:
        return None
    geometry_type = (raw.get("geometryType") or "esriGeometryEnvelope").strip()
    if geometry_type not in GEOMETRY_TYPES:
        raise InvalidParameterError("geometryType", f"{geometry_type!r} is not supported")
    relation_name = (raw.get("spatialRel") or "esriSpatialRelIntersects").strip()
    relation = RELATIONS.get(relation_name.lower())
    if relation is None:
        raise InvalidParameterError("spatialRel", f"{relation_name!r} is not supported")
    geom, carried = _from_text(text, geometry_type)
    sr = parse_sr(raw.get("inSR"), "inSR") or (
        parse_sr(orjson.dumps(carried).decode(), "geometry") if carried else None) or WGS84
    if geom.is_empty:
        raise _bad("the geometry is empty")
    distance = (raw.get("distance") or "").strip()
    if distance:
        try:
            amount = float(distance)
        except ValueError:
            raise InvalidParameterError("distance", f"{distance!r} is not a number") from None
        if not np.isfinite(amount) or amount < 0:
            raise InvalidParameterError("distance", "must be a non-negative number")
        amount = min(amount, WHOLE_EARTH_METERS)  # in any unit: the whole globe, no overflow
        unit_name = (raw.get("units") or "esriSRUnit_Meter").strip()
        factor = UNITS_IN_METERS.get(unit_name.lower())
        if factor is None:
            raise InvalidParameterError("units", f"{unit_name!r} is not supported")
        if amount > 0:
            geom = _buffer(geom, amount * factor, sr)
            sr = WGS84
    geom = _to_wgs84(geom, sr)
    bounds = tuple(float(v) for v in geom.bounds)
    is_box = bool(shapely.get_type_id(geom) == 3 and shapely.equals(geom, box(*bounds)))
    return SpatialFilter(geom, relation, bounds, is_box)  # type: ignore[arg-type]
