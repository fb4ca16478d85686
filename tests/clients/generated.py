"""Layers generated for the client tests: points, lines or polygons with known attributes.

Written as GeoJSON with numpy and orjson (100k features in well under a second), and kept as
arrays so that a test can compute the right answer to a count, extent or statistics query
itself instead of trusting the server. Coordinates are rounded to 6 decimals, so the text the
server reads is exactly the numbers held here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

NAMES = ("alpha", "beta", "gamma", "delta")
GEOMETRY = {"points": "Point", "lines": "LineString", "polygons": "Polygon"}
ESRI_GEOMETRY = {"points": "esriGeometryPoint", "lines": "esriGeometryPolyline",
                 "polygons": "esriGeometryPolygon"}


@dataclass(frozen=True)
class GeneratedLayer:
    """Features ``i`` = 0..n-1: ``rank`` i, a ``name`` of NAMES, a ``value``, and vertices."""

    kind: str  # points | lines | polygons
    name: np.ndarray  # (n,) str
    rank: np.ndarray  # (n,) int64
    value: np.ndarray  # (n,) float64, 2 decimals
    vertices: np.ndarray  # (n, V, 2) lon, lat; polygons: a closed ring, counter-clockwise

    def __len__(self) -> int:
        return len(self.rank)

    @property
    def bounds(self) -> np.ndarray:
        """(n, 4): xmin, ymin, xmax, ymax of each feature."""
        return np.concatenate([self.vertices.min(axis=1), self.vertices.max(axis=1)], axis=1)

    def geometry(self, i: int) -> dict:
        """Feature ``i``'s GeoJSON geometry."""
        coords = self.vertices[i].tolist()
        if self.kind == "points":
            return {"type": "Point", "coordinates": coords[0]}
        if self.kind == "lines":
            return {"type": "LineString", "coordinates": coords}
        return {"type": "Polygon", "coordinates": [coords]}

    def document(self) -> bytes:
        names = self.name.tolist()
        ranks = self.rank.tolist()
        values = self.value.tolist()
        features = [{"type": "Feature", "properties": {"name": names[i], "rank": ranks[i],
                                                       "value": values[i]},
                     "geometry": self.geometry(i)} for i in range(len(self))]
        return orjson.dumps({"type": "FeatureCollection", "features": features})

    def write(self, path: Path) -> Path:
        path.write_bytes(self.document())
        return path

    def where(self, name: str | None = None, value_above: float | None = None) -> np.ndarray:
        """The mask of ``name = '<name>' AND value > <value_above>`` (either may be left out)."""
        mask = np.ones(len(self), dtype=bool)
        if name is not None:
            mask &= self.name == name
        if value_above is not None:
            mask &= self.value > value_above
        return mask

    def extent(self, mask: np.ndarray) -> tuple[float, float, float, float]:
        b = self.bounds[mask]
        return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
                float(b[:, 3].max()))

    def statistics(self, mask: np.ndarray) -> dict[str, dict[str, float]]:
        """Per name: count, sum and avg of ``value`` over the features in ``mask``."""
        out = {}
        for name in NAMES:
            chosen = self.value[mask & (self.name == name)]
            if len(chosen):
                out[name] = {"count": len(chosen), "sum": float(chosen.sum()),
                             "avg": float(chosen.mean())}
        return out

    def within(self, box: tuple[float, float, float, float]) -> np.ndarray:
        """The mask of the features wholly inside ``box`` (xmin, ymin, xmax, ymax)."""
        b = self.bounds
        return ((b[:, 0] >= box[0]) & (b[:, 1] >= box[1]) & (b[:, 2] <= box[2])
                & (b[:, 3] <= box[3]))


def generate(kind: str, count: int, *, seed: int = 10, area: tuple[float, float, float, float]
             = (-170.0, -70.0, 170.0, 70.0), size: float = 1.0) -> GeneratedLayer:
    """``count`` features of ``kind`` spread uniformly over ``area`` (lon/lat, inside Web
    Mercator); lines and polygons about ``size`` degrees across, each a different shape."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = area
    centre = np.column_stack([rng.uniform(xmin, xmax, count), rng.uniform(ymin, ymax, count)])
    if kind == "points":
        vertices = centre[:, None, :]
    elif kind == "lines":  # three vertices, a bent stroke
        turn = rng.uniform(0, 2 * np.pi, (count, 1)) + [[0.0, 0.9]]
        steps = np.stack([np.cos(turn), np.sin(turn)], axis=2) * (size / 2)
        vertices = np.concatenate([centre[:, None, :],
                                   centre[:, None, :] + np.cumsum(steps, axis=1)], axis=1)
    elif kind == "polygons":  # a convex quadrilateral around the centre, closed, CCW
        start = rng.uniform(0, np.pi / 2, (count, 1))
        angles = start + np.array([0, 0.5, 1.0, 1.5, 2.0]) * np.pi
        radius = rng.uniform(0.3, 0.5, (count, 1)) * size
        vertices = centre[:, None, :] + np.stack([np.cos(angles), np.sin(angles)], axis=2) \
            * radius[:, :, None]
        vertices[:, -1] = vertices[:, 0]
    else:
        raise ValueError(kind)
    vertices = np.round(vertices, 6)
    if kind == "polygons":
        vertices[:, -1] = vertices[:, 0]
    names = np.array(NAMES, dtype=object)[rng.integers(0, len(NAMES), count)]
    value = np.round(rng.uniform(0, 100, count), 2)
    return GeneratedLayer(kind, names.astype(str), np.arange(count, dtype=np.int64), value,
                          vertices)
