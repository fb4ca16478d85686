"""Web Mercator tiles: addresses, bounds, levels of detail, and a dataset's tile as MVT bytes.

A tile is built from the same request path as ``/query``: each layer with geometries is asked
for the features in the tile's envelope (GeoServices parameters, so a pass-through provider
filters at its source), in Web Mercator, simplified to the tile's resolution, and the engine
encodes them (``koop_app.query.engine.mvt_layer``). One MVT layer per dataset layer, named as
the layer; tables without geometry are not tiled.

Big tiles: each layer gives at most its tile record limit (``resultType=tile``: 8,000 points or
4,000 shapes by default, more when the dataset's maxRecordCount is larger), the features with
the smallest object ids. Object ids are not ordered in space, so at low zooms a dense layer is
thinned evenly, and a feature drawn at one zoom is drawn at every higher zoom (a smaller tile
keeps the smallest ids of fewer features).

Built tiles are kept in a bounded in-process LRU keyed by (dataset key, data version, z, x, y):
a refreshed dataset has a new version, so its new tiles are served at once.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import orjson
from django.http import HttpRequest

from koop_app.conf import koop_settings
from koop_app.data import LayerSet
from koop_app.data.hot import LayerTable
from koop_app.errors import NotFoundError
from koop_app.models import Dataset
from koop_app.outputs import serving
from koop_app.outputs.geoservices.serializers import layer_name
from koop_app.query.engine import mvt_layer

# The Web Mercator square (EPSG:3857), as ArcGIS's tiling scheme states its origin.
ORIGIN = 20037508.342787
WORLD = 2 * ORIGIN
# The highest level served (ArcGIS Online's vector tile services list levels 0..22).
MAX_ZOOM = 22
EXTENT = 4096  # MVT grid units across a tile
BUFFER = 64  # grid units kept around a tile for lines and polygons (strokes across edges)
TILE_PIXELS = 512  # ArcGIS's and MapLibre's vector tile size
DPI = 96
# ArcGIS's scale of level 0 for 512-pixel vector tiles at 96 dpi (resolution 78271.517 m).
SCALE_0 = 295828763.7957775
POINT_TYPES = ("esriGeometryPoint", "esriGeometryMultipoint")


@dataclass(frozen=True)
class Tile:
    z: int
    x: int  # column, from the west
    y: int  # row, from the north

    @classmethod
    def checked(cls, z: str | int, x: str | int, y: str | int) -> Tile:
        """The tile at ``z/x/y``; NotFoundError when no such tile exists in the scheme."""
        try:
            level, column, row = int(z), int(x), int(y)
        except ValueError:
            raise NotFoundError("Tile not found.") from None
        if not 0 <= level <= MAX_ZOOM:
            raise NotFoundError("Tile not found.",
                                details=[f"Levels go from 0 to {MAX_ZOOM}."])
        size = 1 << level
        if not (0 <= column < size and 0 <= row < size):
            raise NotFoundError("Tile not found.",
                                details=[f"Level {level} has rows and columns 0 to {size - 1}."])
        return cls(level, column, row)

    @property
    def span(self) -> float:
        return WORLD / (1 << self.z)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """The tile's envelope in Web Mercator metres."""
        span = self.span
        xmin = -ORIGIN + self.x * span
        ymax = ORIGIN - self.y * span
        return xmin, ymax - span, xmin + span, ymax


def resolution(level: int) -> float:
    return WORLD / TILE_PIXELS / (1 << level)


def lods() -> list[dict[str, float | int]]:
    return [{"level": level, "resolution": resolution(level), "scale": SCALE_0 / (1 << level)}
            for level in range(MAX_ZOOM + 1)]


def lonlat_to_mercator(lon: float, lat: float) -> tuple[float, float]:
    lat = max(min(lat, 85.0511287798066), -85.0511287798066)
    x = lon * ORIGIN / 180.0
    y = math.log(math.tan((90.0 + lat) * math.pi / 360.0)) * ORIGIN / math.pi
    return x, y


def tile_range(bounds: tuple[float, float, float, float], z: int
               ) -> tuple[int, int, int, int]:
    """The columns and rows (min x, min y, max x, max y) at ``z`` a lon/lat box touches."""
    xmin, ymin = lonlat_to_mercator(bounds[0], bounds[1])
    xmax, ymax = lonlat_to_mercator(bounds[2], bounds[3])
    size = 1 << z
    span = WORLD / size

    def clamp(value: float) -> int:
        return max(0, min(size - 1, int(math.floor(value))))

    return (clamp((xmin + ORIGIN) / span), clamp((ORIGIN - ymax) / span),
            clamp((xmax + ORIGIN) / span), clamp((ORIGIN - ymin) / span))


def tiled_layers(layers: LayerSet) -> list[LayerTable]:
    """The layers that get an MVT layer: those with geometries."""
    return [table for table in layers.layers if not table.is_table]


def mvt_name(table: LayerTable, dataset: Dataset) -> str:
    """A layer's name in tiles and styles (unique within the dataset: the id is added to a
    repeated name)."""
    return layer_name(table, service_name(dataset))


def service_name(dataset: Dataset) -> str:
    return dataset.name or dataset.dataset_id or dataset.provider.name


def mvt_names(layers: list[LayerTable], dataset: Dataset) -> dict[int, str]:
    names: dict[int, str] = {}
    for table in layers:
        name = mvt_name(table, dataset)
        if name in names.values():
            name = f"{name} ({table.layer_id})"
        names[table.layer_id] = name
    return names


def tile_params(tile: Tile, geometry_type: str | None = None) -> dict[str, str]:
    """The GeoServices query of a layer's features in ``tile``; ``geometry_type`` None: the
    widest (what a pass-through provider is asked for all layers at once)."""
    xmin, ymin, xmax, ymax = tile.bounds
    points = geometry_type in POINT_TYPES
    if not points:
        # Lines and polygons reaching into the buffer are drawn across the tile's edge; a
        # point is in the one tile it falls in.
        pad = tile.span * BUFFER / EXTENT
        xmin, ymin, xmax, ymax = xmin - pad, ymin - pad, xmax + pad, ymax + pad
    params = {
        "where": "1=1",
        "geometry": orjson.dumps({"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax,
                                  "spatialReference": {"wkid": 102100}}).decode(),
        "geometryType": "esriGeometryEnvelope",
        "inSR": "102100",
        "spatialRel": "esriSpatialRelEnvelopeIntersects",
        "outSR": "102100",
        "outFields": "*",
        "returnGeometry": "true",
        "resultType": "tile",
        "returnExceededLimitFeatures": "true",
    }
    if geometry_type is not None and not points:
        # Half a pixel of the 512-pixel tile: finer detail is lost to the MVT grid anyway.
        params["maxAllowableOffset"] = repr(tile.span / TILE_PIXELS / 2)
    return params


def open_tile_layers(request: HttpRequest, dataset: Dataset, tile: Tile) -> LayerSet:
    """The dataset's layers; a pass-through source is asked for the tile's envelope."""
    return serving.open_layers(request, dataset, params=tile_params(tile))


def build_tile(dataset: Dataset, layers: LayerSet, tile: Tile) -> bytes:
    """The MVT of ``tile``: one layer per dataset layer with features in it (none: b"")."""
    tables = tiled_layers(layers)
    names = mvt_names(tables, dataset)
    parts = []
    for table in tables:
        _, result = serving.run_query(dataset, table,
                                      tile_params(tile, table.schema.geometry_type))
        blob, _count = mvt_layer(result, names[table.layer_id], tile.bounds,
                                 extent=EXTENT, buffer=BUFFER)
        parts.append(blob)  # a tile's layers are concatenated protobuf messages
    return b"".join(parts)


class TileCache:
    """Built tiles by (dataset key, version, z, x, y), least recently used out first, within
    ``KOOP["VECTOR_TILE_CACHE_BYTES"]``."""

    def __init__(self) -> None:
        self._tiles: OrderedDict[tuple[str, str, int, int, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int, int, int]) -> bytes | None:
        with self._lock:
            found = self._tiles.get(key)
            if found is not None:
                self._tiles.move_to_end(key)
            return found

    def put(self, key: tuple[str, str, int, int, int], blob: bytes) -> None:
        budget = int(koop_settings.VECTOR_TILE_CACHE_BYTES)
        cost = len(blob) + 100  # the key and the entry's own weight
        if cost > budget:
            return
        with self._lock:
            if key in self._tiles:
                return
            self._tiles[key] = blob
            self._bytes += cost
            while self._bytes > budget:
                _, dropped = self._tiles.popitem(last=False)
                self._bytes -= len(dropped) + 100

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._tiles)


tile_cache = TileCache()


def tile_bytes(dataset: Dataset, layers: LayerSet, tile: Tile) -> bytes:
    """The tile, from the LRU when this version's was built already (pass-through data is
    built on each request: its answer may change at any time)."""
    if layers.pass_through:
        return build_tile(dataset, layers, tile)
    key = (layers.key, layers.version, tile.z, tile.x, tile.y)
    blob = tile_cache.get(key)
    if blob is None:
        blob = build_tile(dataset, layers, tile)
        tile_cache.put(key, blob)
    return blob
