"""GeoJSON checks run when KOOP['VALIDATE_GEOJSON'] (default: DEBUG) is on.

Problems are logged as warnings naming the dataset, never raised: a provider's imperfect data is
still served, the way Koop reports it outside production.
"""

from __future__ import annotations

import logging

import numpy as np
import shapely

logger = logging.getLogger(__name__)
_POLYGON_TYPES = (3, 6)
_NAMES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
          6: "MultiPolygon", 7: "GeometryCollection"}


def log_problems(geometries: np.ndarray, type_ids: np.ndarray, label: str) -> None:
    present = type_ids >= 0
    kinds = sorted({_NAMES.get(int(t), str(t)) for t in np.unique(type_ids[present])})
    if len(kinds) > 1:
        logger.warning("%s: mixed geometry types in one layer: %s", label, ", ".join(kinds))
    invalid = np.flatnonzero(present & ~shapely.is_valid(geometries))
    if len(invalid):
        reason = shapely.is_valid_reason(geometries[invalid[0]])
        logger.warning("%s: %d invalid geometr%s, e.g. feature %d: %s", label, len(invalid),
                       "y" if len(invalid) == 1 else "ies", int(invalid[0]), reason)
    polygons = np.flatnonzero(np.isin(type_ids, _POLYGON_TYPES))
    if len(polygons):
        parts, owner = shapely.get_parts(geometries[polygons], return_index=True)
        exterior_cw = ~shapely.is_ccw(shapely.get_exterior_ring(parts))
        wrong = np.unique(owner[exterior_cw])
        if len(wrong):
            logger.warning("%s: %d polygon(s) break RFC 7946's right-hand rule (exterior ring "
                           "clockwise), e.g. feature %d", label, len(wrong),
                           int(polygons[wrong[0]]))
