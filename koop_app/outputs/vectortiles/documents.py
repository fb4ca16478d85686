"""The JSON documents of vector tiles: ArcGIS's service, style and tile map; TileJSON 3.0."""

from __future__ import annotations

from typing import Any

from koop_app.data import LayerSet
from koop_app.data.hot import LayerTable
from koop_app.data.schema import DATE, DOUBLE, STRING
from koop_app.models import Dataset
from koop_app.outputs.geoservices.serializers import CURRENT_VERSION, SIMPLE_SYMBOLS
from koop_app.outputs.vectortiles.tiles import (
    DPI,
    EXTENT,
    MAX_ZOOM,
    ORIGIN,
    TILE_PIXELS,
    Tile,
    lods,
    lonlat_to_mercator,
    mvt_names,
    tile_range,
    tiled_layers,
)

WEB_MERCATOR = {"wkid": 102100, "latestWkid": 3857}
WORLD_LONLAT = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)


def data_bounds(layers: LayerSet) -> tuple[float, float, float, float] | None:
    """The lon/lat box of every tiled layer's features (None: no geometries)."""
    extents = [t.schema.extent for t in tiled_layers(layers) if t.schema.extent]
    if not extents:
        return None
    return (max(min(e[0] for e in extents), -180.0), max(min(e[1] for e in extents), -85.0511),
            min(max(e[2] for e in extents), 180.0), min(max(e[3] for e in extents), 85.0511))


def _mercator_envelope(bounds: tuple[float, float, float, float] | None) -> dict[str, Any]:
    xmin, ymin = lonlat_to_mercator(*(bounds or WORLD_LONLAT)[:2])
    xmax, ymax = lonlat_to_mercator(*(bounds or WORLD_LONLAT)[2:])
    if xmax - xmin < 1.0 and ymax - ymin < 1.0:  # a single point: a box clients can zoom to
        xmin, ymin, xmax, ymax = xmin - 500, ymin - 500, xmax + 500, ymax + 500
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax,
            "spatialReference": dict(WEB_MERCATOR)}


def service_json(dataset: Dataset, layers: LayerSet, name: str) -> dict[str, Any]:
    """The VectorTileServer resource, as ArcGIS Server and hosted services describe one."""
    levels = lods()
    extent = _mercator_envelope(data_bounds(layers))
    return {
        "currentVersion": CURRENT_VERSION,
        "name": name,
        "copyrightText": _first(layers, "copyrightText"),
        "capabilities": "TilesOnly",
        "type": "indexedVector",
        "defaultStyles": "resources/styles",
        "tiles": ["tile/{z}/{y}/{x}.pbf"],
        "exportTilesAllowed": False,
        "initialExtent": extent,
        "fullExtent": extent,
        "minScale": levels[0]["scale"],
        "maxScale": levels[-1]["scale"],
        "tileInfo": {
            "rows": TILE_PIXELS,
            "cols": TILE_PIXELS,
            "dpi": DPI,
            "format": "pbf",
            "origin": {"x": -ORIGIN, "y": ORIGIN},
            "spatialReference": dict(WEB_MERCATOR),
            "lods": levels,
        },
        "maxzoom": MAX_ZOOM,
        "minLOD": 0,
        "maxLOD": MAX_ZOOM,
        "resourceInfo": {"styleVersion": 8, "tileCompression": "none",
                         "cacheInfo": {"storageInfo": {"packetSize": 128,
                                                       "storageFormat": "compactV2"}}},
        "serviceItemId": "",
    }


def _first(layers: LayerSet, key: str) -> str:
    for table in layers.layers:
        value = table.schema.metadata.get(key)
        if value:
            return str(value)
    return ""


def _rgba(color: Any, fallback: list[int]) -> tuple[str, float]:
    """An Esri [r, g, b, a] color as a CSS rgb() and an opacity."""
    values = color if isinstance(color, list) and len(color) >= 3 else fallback
    try:
        r, g, b = (max(0, min(255, int(v))) for v in values[:3])
        alpha = float(values[3]) / 255 if len(values) > 3 else 1.0
    except (TypeError, ValueError):
        return _rgba(fallback, fallback)
    return f"rgb({r}, {g}, {b})", round(max(0.0, min(1.0, alpha)), 3)


def _symbol(table: LayerTable) -> dict[str, Any]:
    """The layer's symbol: its drawingInfo's simple renderer's, else the FeatureServer's
    default for its geometry type."""
    default = SIMPLE_SYMBOLS[table.schema.geometry_type or "esriGeometryPoint"]
    drawing = table.schema.metadata.get("drawingInfo")
    renderer = drawing.get("renderer") if isinstance(drawing, dict) else None
    symbol = renderer.get("symbol") if isinstance(renderer, dict) else None
    if isinstance(symbol, dict) and symbol.get("type") == default["type"]:
        return symbol
    return default


def _points_to_pixels(value: Any, fallback: float) -> float:
    """Esri symbol sizes are points; style sizes are pixels at 96 dpi."""
    try:
        return round(float(value) * 4 / 3, 2)
    except (TypeError, ValueError):
        return fallback


def style_layers(dataset: Dataset, layers: LayerSet, source: str) -> list[dict[str, Any]]:
    """Style layers drawing each dataset layer with its drawing info's colors."""
    out: list[dict[str, Any]] = []
    tables = tiled_layers(layers)
    names = mvt_names(tables, dataset)
    for table in tables:
        name = names[table.layer_id]
        symbol = _symbol(table)
        base = {"source": source, "source-layer": name, "layout": {}}
        geometry_type = table.schema.geometry_type
        if geometry_type == "esriGeometryPolygon":
            fill, fill_opacity = _rgba(symbol.get("color"), [0, 112, 255, 90])
            outline = symbol.get("outline") or {}
            line, line_opacity = _rgba(outline.get("color"), [0, 80, 180, 255])
            out.append({**base, "id": f"{name}/fill", "type": "fill",
                        "paint": {"fill-color": fill, "fill-opacity": fill_opacity,
                                  "fill-outline-color": line}})
            out.append({**base, "id": f"{name}/outline", "type": "line",
                        "paint": {"line-color": line, "line-opacity": line_opacity,
                                  "line-width": _points_to_pixels(outline.get("width"), 1.0)}})
        elif geometry_type == "esriGeometryPolyline":
            line, line_opacity = _rgba(symbol.get("color"), [0, 112, 255, 255])
            out.append({**base, "id": f"{name}/line", "type": "line",
                        "layout": {"line-cap": "round", "line-join": "round"},
                        "paint": {"line-color": line, "line-opacity": line_opacity,
                                  "line-width": _points_to_pixels(symbol.get("width"), 2.0)}})
        else:
            fill, fill_opacity = _rgba(symbol.get("color"), [0, 112, 255, 200])
            outline = symbol.get("outline") or {}
            stroke, stroke_opacity = _rgba(outline.get("color"), [255, 255, 255, 255])
            out.append({**base, "id": f"{name}/circle", "type": "circle",
                        "paint": {"circle-color": fill, "circle-opacity": fill_opacity,
                                  "circle-radius": _points_to_pixels(symbol.get("size"), 8.0) / 2,
                                  "circle-stroke-color": stroke,
                                  "circle-stroke-opacity": stroke_opacity,
                                  "circle-stroke-width": _points_to_pixels(
                                      outline.get("width"), 1.0)}})
    return out


def style_json(dataset: Dataset, layers: LayerSet, source: dict[str, Any]) -> dict[str, Any]:
    """A Mapbox GL / MapLibre style (version 8) over ``source`` (named "esri", as ArcGIS's
    default styles name their service)."""
    return {"version": 8, "sources": {"esri": source},
            "layers": style_layers(dataset, layers, "esri")}


def tilemap_json(layers: LayerSet, level: int, row: int, col: int, width: int, height: int
                 ) -> dict[str, Any]:
    """Which tiles of the area exist: 1 for a tile in the scheme that the data's box touches.

    Tiles are built on request, so every tile of the scheme can be fetched; the map says
    where data is, so that clients skip the rest. The area is cut at the level's edge
    (``adjusted``), as ArcGIS cuts it at a bundle's.
    """
    Tile.checked(level, col, row)
    size = 1 << level
    width_in, height_in = min(width, size - col), min(height, size - row)
    bounds = data_bounds(layers)
    data: list[int] = []
    if bounds is not None:
        x0, y0, x1, y1 = tile_range(bounds, level)
    for r in range(row, row + height_in):
        for c in range(col, col + width_in):
            data.append(int(bounds is not None and x0 <= c <= x1 and y0 <= r <= y1))
    return {"adjusted": (width_in, height_in) != (width, height),
            "location": {"left": col, "top": row, "width": width_in, "height": height_in},
            "data": data}


FIELD_DESCRIPTIONS = {DOUBLE: "Number", STRING: "String", DATE: "Number"}


def tilejson(dataset: Dataset, layers: LayerSet, name: str, tiles_url: str) -> dict[str, Any]:
    """TileJSON 3.0.0 for the XYZ tiles: their URL, zooms, bounds and each layer's fields."""
    bounds = data_bounds(layers)
    tables = tiled_layers(layers)
    names = mvt_names(tables, dataset)
    vector_layers = []
    for table in tables:
        fields = {}
        for field in table.schema.fields:
            kind = FIELD_DESCRIPTIONS.get(field.type, "Number")
            if field.type == DATE:
                kind = "Number (date, epoch milliseconds)"
            fields[field.name] = kind
        vector_layers.append({
            "id": names[table.layer_id],
            "description": str(table.schema.metadata.get("description") or ""),
            "minzoom": 0, "maxzoom": MAX_ZOOM, "fields": fields,
        })
    west, south, east, north = bounds or WORLD_LONLAT
    return {
        "tilejson": "3.0.0",
        "name": name,
        "description": _first(layers, "description"),
        "attribution": _first(layers, "copyrightText"),
        "version": "1.0.0",
        "scheme": "xyz",
        "format": "pbf",
        "tiles": [tiles_url],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2, _center_zoom(bounds)],
        "vector_layers": vector_layers,
        "extent": EXTENT,
    }


def _center_zoom(bounds: tuple[float, float, float, float] | None) -> int:
    """The level at which the data's box fits about one tile."""
    if bounds is None:
        return 0
    for level in range(MAX_ZOOM, -1, -1):
        x0, y0, x1, y1 = tile_range(bounds, level)
        if x1 - x0 <= 1 and y1 - y0 <= 1:
            return min(level, 16)
    return 0
