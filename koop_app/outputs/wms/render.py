"""Drawing map images with aggdraw (Anti-Grain Geometry) on Pillow images.

aggdraw draws antialiased paths, polylines and markers from flat coordinate sequences, so a
layer is drawn with one call per symbol class (polygons: one path of every ring; markers: one
``symbol`` call for every point of a class) or per line part, never per vertex: the world to
pixel transform is numpy over all coordinates at once. Polygons are filled with the non-zero
rule, so rings are oriented first (shells one way, holes the other).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import aggdraw
import numpy as np
import shapely
from PIL import Image, ImageDraw

from koop_app.outputs.wms.styles import Symbol

# Geometries reaching further than this many pixels past the image are clipped first: AGG's
# fixed-point rasteriser overflows on coordinates in the millions of pixels.
CLIP_MARGIN = 256
KAPPA = 0.5522847498  # cubic Bezier handles of a quarter circle


@dataclass(frozen=True)
class Frame:
    """A map's box (x/y in its CRS) and its image size."""

    bbox: tuple[float, float, float, float]
    width: int
    height: int

    @property
    def pixel_size(self) -> float:
        minx, miny, maxx, maxy = self.bbox
        return max((maxx - minx) / self.width, (maxy - miny) / self.height)

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        minx, miny, maxx, maxy = self.bbox
        out = np.empty_like(xy, dtype=float)
        out[:, 0] = (xy[:, 0] - minx) * (self.width / (maxx - minx))
        out[:, 1] = (maxy - xy[:, 1]) * (self.height / (maxy - miny))
        return out

    def clip_box(self) -> tuple[float, float, float, float]:
        minx, miny, maxx, maxy = self.bbox
        dx = CLIP_MARGIN * (maxx - minx) / self.width
        dy = CLIP_MARGIN * (maxy - miny) / self.height
        return minx - dx, miny - dy, maxx + dx, maxy + dy


def blank(frame: Frame, transparent: bool, background: tuple[int, int, int]) -> Image.Image:
    color = (*background, 0 if transparent else 255)
    return Image.new("RGBA", (frame.width, frame.height), color)


def _pen(symbol: Symbol) -> aggdraw.Pen | None:
    if symbol.stroke is None or symbol.stroke[3] == 0 or symbol.stroke_width <= 0:
        return None
    return aggdraw.Pen(symbol.stroke[:3], max(symbol.stroke_width, 0.5), symbol.stroke[3])


def _brush(symbol: Symbol) -> aggdraw.Brush | None:
    if symbol.fill is None or symbol.fill[3] == 0:
        return None
    return aggdraw.Brush(symbol.fill[:3], symbol.fill[3])


def _clipped(geoms: np.ndarray, frame: Frame) -> np.ndarray:
    """Geometries reaching far past the image, clipped to it plus a margin (vectorised)."""
    xmin, ymin, xmax, ymax = frame.clip_box()
    bounds = shapely.bounds(geoms)
    far = (bounds[:, 0] < xmin) | (bounds[:, 1] < ymin) | (bounds[:, 2] > xmax) | (
        bounds[:, 3] > ymax)
    if far.any():
        geoms = geoms.copy()
        geoms[far] = shapely.clip_by_rect(geoms[far], xmin, ymin, xmax, ymax)
    return geoms


def _marker_path(symbol: Symbol) -> str:
    """The marker as an SVG path around (0, 0), for ``aggdraw.Symbol``."""
    r = symbol.size / 2
    if symbol.shape == "square":
        return f"M {-r} {-r} L {r} {-r} L {r} {r} L {-r} {r} Z"
    if symbol.shape == "diamond":
        return f"M 0 {-r} L {r} 0 L 0 {r} L {-r} 0 Z"
    if symbol.shape == "triangle":
        h = r * math.sqrt(3) / 2
        return f"M 0 {-r} L {h} {r / 2} L {-h} {r / 2} Z"
    if symbol.shape == "cross":
        return f"M {-r} 0 L {r} 0 M 0 {-r} L 0 {r}"
    if symbol.shape == "x":
        d = r * math.sqrt(0.5)
        return f"M {-d} {-d} L {d} {d} M {-d} {d} L {d} {-d}"
    k = r * KAPPA
    return (f"M {-r} 0 C {-r} {-k} {-k} {-r} 0 {-r} C {k} {-r} {r} {-k} {r} 0 "
            f"C {r} {k} {k} {r} 0 {r} C {-k} {r} {-r} {k} {-r} 0 Z")


def draw_layer(image: Image.Image, geoms: np.ndarray, classes: np.ndarray,
               symbols: tuple[Symbol, ...], frame: Frame) -> None:
    """Draw ``geoms`` (shapely, in the map's CRS) with ``symbols[classes[i]]``."""
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & (classes >= 0)
    geoms, classes = geoms[keep], classes[keep]
    if not len(geoms):
        return
    types = shapely.get_type_id(geoms)
    draw = aggdraw.Draw(image)
    draw.setantialias(True)
    polygons = np.isin(types, (3, 6))
    lines = np.isin(types, (1, 2, 5))
    points = np.isin(types, (0, 4))
    for index in np.unique(classes):
        symbol = symbols[int(index)]
        chosen = classes == index
        if (chosen & polygons).any():
            _draw_polygons(draw, geoms[chosen & polygons], symbol, frame)
        if (chosen & lines).any():
            _draw_lines(draw, geoms[chosen & lines], symbol, frame)
        if (chosen & points).any():
            _draw_points(draw, geoms[chosen & points], symbol, frame)
    draw.flush()


def _rings_in_pixels(parts: np.ndarray, frame: Frame) -> list[np.ndarray]:
    coords = shapely.get_coordinates(parts)
    counts = shapely.get_num_coordinates(parts)
    pixels = frame.to_pixels(coords)
    return np.split(pixels, np.cumsum(counts)[:-1])


def _draw_polygons(draw: aggdraw.Draw, geoms: np.ndarray, symbol: Symbol, frame: Frame) -> None:
    geoms = _clipped(geoms, frame)
    parts = shapely.get_parts(geoms)
    parts = parts[shapely.get_type_id(parts) == 3]  # clipping may leave lines or points
    if not len(parts):
        return
    # Non-zero filling: shells counter-clockwise, holes clockwise (in map coordinates).
    parts = shapely.orient_polygons(parts, exterior_cw=False)
    rings = shapely.get_rings(parts)
    brush, pen = _brush(symbol), _pen(symbol)
    if brush is None and pen is None:
        return
    path = aggdraw.Path()
    for ring in _rings_in_pixels(rings, frame):
        if len(ring) >= 3:
            path.polygon(ring.ravel().tolist())
    if brush is not None and pen is not None:
        draw.path(path, pen, brush)
    elif brush is not None:
        draw.path(path, brush)
    else:
        draw.path(path, pen)


def _draw_lines(draw: aggdraw.Draw, geoms: np.ndarray, symbol: Symbol, frame: Frame) -> None:
    pen = _pen(symbol)
    if pen is None:  # lines drawn with a fill symbol: its colour
        colour = symbol.fill
        if colour is None:
            return
        pen = aggdraw.Pen(colour[:3], max(symbol.stroke_width, 1.0), colour[3])
    geoms = _clipped(geoms, frame)
    parts = shapely.get_parts(geoms)
    kinds = shapely.get_type_id(parts)
    polygon_parts = parts[kinds == 3]
    parts = parts[np.isin(kinds, (1, 2))]
    if len(polygon_parts):  # outlines of polygons drawn with a line symbol
        parts = np.concatenate([parts, shapely.get_rings(polygon_parts)])
    for line in _rings_in_pixels(parts, frame):
        if len(line) >= 2:
            draw.line(line.ravel().tolist(), pen)


def _draw_points(draw: aggdraw.Draw, geoms: np.ndarray, symbol: Symbol, frame: Frame) -> None:
    pixels = frame.to_pixels(shapely.get_coordinates(geoms))
    reach = symbol.size + symbol.stroke_width
    inside = ((pixels[:, 0] > -reach) & (pixels[:, 0] < frame.width + reach)
              & (pixels[:, 1] > -reach) & (pixels[:, 1] < frame.height + reach))
    # Markers drawn at the same spot (to a quarter pixel) look the same drawn once: dense
    # layers at small scales draw far fewer.
    pixels = np.unique(np.round(pixels[inside] * 4), axis=0) / 4
    if not len(pixels):
        return
    marker = aggdraw.Symbol(_marker_path(symbol))
    brush, pen = _brush(symbol), _pen(symbol)
    if symbol.shape in ("cross", "x"):
        brush = None
        if pen is None and symbol.stroke is not None:
            pen = aggdraw.Pen(symbol.stroke[:3], 1.0, symbol.stroke[3])
    xy = pixels.ravel().tolist()
    if brush is not None and pen is not None:
        draw.symbol(xy, marker, pen, brush)
    elif brush is not None:
        draw.symbol(xy, marker, brush)
    elif pen is not None:
        draw.symbol(xy, marker, pen)


def message_image(frame: Frame, text: str, transparent: bool,
                  background: tuple[int, int, int]) -> Image.Image:
    """EXCEPTIONS=INIMAGE: the error's text drawn in the map image."""
    image = blank(frame, transparent, background)
    drawing = ImageDraw.Draw(image)
    width = max(8, frame.width // 7)  # Pillow's default font: about 6-7 px a character
    lines = [text[i:i + width] for i in range(0, min(len(text), width * 20), width)]
    drawing.multiline_text((4, 4), "\n".join(lines), fill=(200, 0, 0, 255))
    return image


def encode(image: Image.Image, image_format: str, transparent: bool,
           background: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    if image_format == "image/jpeg":
        flat = Image.new("RGB", image.size, background)
        flat.paste(image, mask=image.getchannel("A"))
        flat.save(out, "JPEG", quality=85)
    elif transparent:
        image.save(out, "PNG", compress_level=6)
    else:
        image.convert("RGB").save(out, "PNG", compress_level=6)
    return out.getvalue()
