"""The geometry of a staged layer: its type, what each row keeps, extent, polygon winding.

Rules of ``normalize._geometries``, in SQL over table ``typed`` (column ``g``, parsed by
DuckDB spatial; ``given`` when the source had a geometry that may not have parsed).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pyarrow as pa
import shapely

from koop_app.data import duck
from koop_app.data.normalize import GEOMETRY_COLUMN, declared_geometry_type
from koop_app.data.schema import GEOMETRY_TYPES

logger = logging.getLogger(__name__)
s = duck.quote_string
# ST_GeometryType names -> GeoJSON names
_DUCK_TYPES = {"POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon",
               "MULTIPOINT": "MultiPoint", "MULTILINESTRING": "MultiLineString",
               "MULTIPOLYGON": "MultiPolygon", "GEOMETRYCOLLECTION": "GeometryCollection"}


def geometries(con, metadata, overrides, label, check_geojson) -> tuple[str | None, str]:
    """The layer's geometry type and the SQL of the geometry each row keeps."""
    rows = con.execute("""
        SELECT ST_GeometryType(g) AS kind, count(*), min(rowid), bool_or(ST_HasZ(g))
        FROM typed WHERE g IS NOT NULL GROUP BY kind ORDER BY min(rowid)
    """).fetchall()
    kinds = {_DUCK_TYPES.get(str(r[0]), str(r[0])): int(r[1]) for r in rows}
    unreadable, first_bad = con.execute(
        "SELECT count(*), min(rowid) FROM typed WHERE given AND g IS NULL").fetchone()
    if unreadable:
        logger.warning("%s: %d geometr%s could not be read (bad coordinates or type) and are "
                       "null, e.g. feature %d", label, unreadable,
                       "y" if unreadable == 1 else "ies", int(first_bad))
    geometry_type = declared_geometry_type(overrides, metadata, label)
    if geometry_type is None and rows:
        first = _DUCK_TYPES.get(str(rows[0][0]), "GeometryCollection")
        geometry_type = GEOMETRY_TYPES.get(first)
        if geometry_type == "esriGeometryPoint" and "MultiPoint" in kinds:
            geometry_type = "esriGeometryMultipoint"
    if check_geojson:
        if len(kinds) > 1:
            logger.warning("%s: mixed geometry types in one layer: %s", label,
                           ", ".join(sorted(kinds)))
        invalid, first_invalid = con.execute(
            "SELECT count(*), min(rowid) FROM typed WHERE g IS NOT NULL AND NOT ST_IsValid(g)"
        ).fetchone()
        if invalid:
            logger.warning("%s: %d invalid geometr%s, e.g. feature %d", label, invalid,
                           "y" if invalid == 1 else "ies", int(first_invalid))
    has_z = any(r[3] for r in rows)
    geometry = "ST_Force2D(g)" if has_z else "g"
    if geometry_type:
        allowed = [name.upper() for name, esri in GEOMETRY_TYPES.items() if esri == geometry_type]
        if geometry_type == "esriGeometryMultipoint":
            allowed.append("POINT")
        foreign = sum(n for name, n in kinds.items() if name.upper() not in allowed)
        if foreign:
            logger.warning("%s: %d feature(s) are not %s like the layer and have no geometry",
                           label, foreign, geometry_type.removeprefix("esriGeometry"))
            listed = ", ".join(s(a) for a in allowed)
            geometry = f"CASE WHEN CAST(ST_GeometryType(g) AS VARCHAR) IN ({listed}) " \
                       f"THEN {geometry} END"
        return geometry_type, geometry
    if rows:
        logger.warning("%s: geometries are collections only; served without geometry", label)
    return None, "CAST(NULL AS GEOMETRY)"


def extent(con, geometry_sql: str) -> tuple[float, float, float, float] | None:
    row = con.execute(f"SELECT min(ST_XMin(x)), min(ST_YMin(x)), max(ST_XMax(x)), "
                      f"max(ST_YMax(x)) FROM (SELECT {geometry_sql} AS x FROM typed)").fetchone()
    if row is None or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in row):
        return None
    return tuple(float(v) for v in row)  # type: ignore[return-value]


class Problems:
    """RFC 7946 right-hand rule breaches, counted over the batches (KOOP VALIDATE_GEOJSON)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None

    def add(self, geometries: np.ndarray, offset: int) -> None:
        polygons = np.flatnonzero(shapely.get_type_id(geometries) >= 3)
        if not len(polygons):
            return
        parts, owner = shapely.get_parts(geometries[polygons], return_index=True)
        wrong = np.unique(owner[~shapely.is_ccw(shapely.get_exterior_ring(parts))])
        if len(wrong):
            self.count += len(wrong)
            if self.first is None:
                self.first = offset + int(polygons[wrong[0]])

    def log(self, label: str) -> None:
        if self.count:
            logger.warning("%s: %d polygon(s) break RFC 7946's right-hand rule (exterior ring "
                           "clockwise), e.g. feature %d", label, self.count, self.first)


def wind_polygons(batch: pa.RecordBatch, problems: Problems | None,
                   offset: int) -> pa.RecordBatch:
    """Wind polygons per RFC 7946 (exterior counter-clockwise), as normalize does."""
    index = batch.schema.get_field_index(GEOMETRY_COLUMN)
    geometries = shapely.from_wkb(np.asarray(batch.column(index).to_numpy(zero_copy_only=False),
                                             dtype=object))
    if problems is not None:
        problems.add(geometries, offset)
    wound = shapely.orient_polygons(geometries, exterior_cw=False)
    array = pa.array(shapely.to_wkb(wound), type=pa.binary())
    return batch.set_column(index, GEOMETRY_COLUMN, array)
