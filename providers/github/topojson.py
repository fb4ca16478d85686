"""TopoJSON -> GeoJSON: every object of a topology becomes a FeatureCollection.

TopoJSON (https://github.com/topojson/topojson-specification) stores shared line work once, as
``arcs``; geometries name the arcs they follow by index (``~i``, i.e. ``-i - 1``, walks arc i
backwards). A quantized topology has a ``transform`` {scale, translate}: arc positions are then
integers, delta-encoded (each one relative to the previous position of its arc), and point
positions are integers too, but absolute. Decoding is small enough to write here; the PyPI
``topojson`` package is an encoder with a heavy dependency tree.

    layers = topology_layers(document)  # [(object name, FeatureCollection), ...]
"""

from __future__ import annotations

from typing import Any

import numpy as np

Position = list[float]


class TopologyError(ValueError):
    """The document is not a TopoJSON topology that can be decoded."""


def is_topology(document: Any) -> bool:
    return isinstance(document, dict) and document.get("type") == "Topology"


def topology_layers(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, FeatureCollection) for each object of the topology, in the document's order."""
    objects = document.get("objects")
    if not isinstance(objects, dict) or not objects:
        raise TopologyError("the topology has no objects")
    decoder = _Decoder(document)
    return [(str(name), {"type": "FeatureCollection", "features": decoder.features(obj)})
            for name, obj in objects.items()]


class _Decoder:
    def __init__(self, document: dict[str, Any]) -> None:
        transform = document.get("transform")
        if transform is not None:
            try:
                self.scale = np.asarray(transform["scale"][:2], dtype=float)
                self.translate = np.asarray(transform["translate"][:2], dtype=float)
            except (KeyError, TypeError, ValueError, IndexError):
                raise TopologyError("the topology's transform is not {scale, translate}") from None
        else:
            self.scale = self.translate = None
        arcs = document.get("arcs") or []
        if not isinstance(arcs, list):
            raise TopologyError("the topology's arcs are not a list")
        self.arcs = [self._arc(arc, index) for index, arc in enumerate(arcs)]

    def _arc(self, arc: Any, index: int) -> list[Position]:
        try:
            # Only x and y: extra dimensions (z, m) of a position are dropped, as GeoJSON
            # clients of this server expect two.
            points = np.asarray([p[:2] for p in arc], dtype=float).reshape(-1, 2)
        except (TypeError, ValueError, IndexError):
            raise TopologyError(f"arc {index} is not a list of positions") from None
        if self.scale is not None:
            points = np.cumsum(points, axis=0) * self.scale + self.translate
        return points.tolist()

    def _point(self, position: Any) -> Position:
        try:
            x, y = float(position[0]), float(position[1])
        except (TypeError, ValueError, IndexError):
            raise TopologyError(f"{position!r} is not a position") from None
        if self.scale is not None:
            return [float(x * self.scale[0] + self.translate[0]),
                    float(y * self.scale[1] + self.translate[1])]
        return [x, y]

    def _line(self, indexes: Any) -> list[Position]:
        """The positions of consecutive arcs; each next arc starts where the last one ended."""
        line: list[Position] = []
        if not isinstance(indexes, list):
            raise TopologyError("a geometry's arcs are not a list of arc indexes")
        for index in indexes:
            if not isinstance(index, int) or not -len(self.arcs) <= index < len(self.arcs):
                raise TopologyError(f"arc index {index!r} is out of range")
            arc = self.arcs[index] if index >= 0 else self.arcs[~index][::-1]
            line.extend(arc[1:] if line else arc)
        return line

    def _ring(self, indexes: Any) -> list[Position]:
        ring = self._line(indexes)
        if ring and ring[0] != ring[-1]:
            ring.append(ring[0])  # a ring of quantized arcs may miss its closing position
        return ring

    def geometry(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        kind = obj.get("type")
        if kind in (None, "null") or kind == "GeometryCollection":
            return None
        if kind == "Point":
            return {"type": kind, "coordinates": self._point(obj.get("coordinates"))}
        if kind == "MultiPoint":
            return {"type": kind, "coordinates": [self._point(p) for p in obj.get("coordinates")
                                                  or []]}
        arcs = obj.get("arcs") or []
        if kind == "LineString":
            coordinates: Any = self._line(arcs)
        elif kind == "MultiLineString":
            coordinates = [self._line(part) for part in arcs]
        elif kind == "Polygon":
            coordinates = [self._ring(ring) for ring in arcs]
        elif kind == "MultiPolygon":
            coordinates = [[self._ring(ring) for ring in polygon] for polygon in arcs]
        else:
            raise TopologyError(f"unknown geometry type {kind!r}")
        return {"type": kind, "coordinates": coordinates}

    def features(self, obj: Any) -> list[dict[str, Any]]:
        """A GeometryCollection gives one feature per member (nested ones flattened)."""
        if not isinstance(obj, dict):
            raise TopologyError("an object of the topology is not a geometry")
        if obj.get("type") == "GeometryCollection":
            return [feature for member in obj.get("geometries") or []
                    for feature in self.features(member)]
        feature: dict[str, Any] = {"type": "Feature",
                                   "properties": dict(obj.get("properties") or {}),
                                   "geometry": self.geometry(obj)}
        if obj.get("id") is not None:
            feature["id"] = obj["id"]
        return [feature]
