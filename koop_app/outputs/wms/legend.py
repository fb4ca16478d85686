"""GetLegendGraphic: a PNG with a swatch and a label per symbol class of a layer's style."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import shapely
from PIL import Image, ImageDraw, ImageFont

from koop_app.data.hot import LayerTable
from koop_app.outputs.wms.render import Frame, draw_layer
from koop_app.outputs.wms.styles import Style

ROW = 20
SWATCH = 16
MAX_ROWS = 200  # a renderer with more classes is cut (a legend is for reading)


def _swatch(geometry_type: str | None) -> shapely.Geometry:
    """The sample shape of a geometry type in a 0..1 frame."""
    if geometry_type in ("esriGeometryPoint", "esriGeometryMultipoint"):
        return shapely.Point(0.5, 0.5)
    if geometry_type == "esriGeometryPolyline":
        return shapely.LineString([(0.05, 0.2), (0.45, 0.75), (0.95, 0.4)])
    return shapely.box(0.1, 0.1, 0.9, 0.9)


def legend_png(entries: Sequence[tuple[LayerTable, Style]]) -> bytes:
    font = ImageFont.load_default()
    rows: list[tuple[str, LayerTable | None, Style | None, int]] = []
    for table, style in entries:
        if len(entries) > 1 or len(style.symbols) > 1:
            rows.append((style.title, None, None, -1))
        for index, symbol in enumerate(style.symbols[:MAX_ROWS]):
            rows.append((symbol.label, table, style, index))
    measure = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    width = max([SWATCH + 8 + int(measure.textlength(text, font=font))
                 for text, *_ in rows] + [SWATCH + 4])
    image = Image.new("RGBA", (min(width, 1000), max(ROW * len(rows), ROW)), (255, 255, 255, 0))
    writing = ImageDraw.Draw(image)
    for number, (text, table, style, index) in enumerate(rows):
        top = number * ROW
        if table is not None and style is not None:
            cell = Image.new("RGBA", (SWATCH, SWATCH), (255, 255, 255, 0))
            draw_layer(cell, np.array([_swatch(table.schema.geometry_type)], dtype=object),
                       np.array([index]), style.symbols, Frame((0.0, 0.0, 1.0, 1.0), SWATCH,
                                                               SWATCH))
            image.alpha_composite(cell, (2, top + (ROW - SWATCH) // 2))
            writing.text((SWATCH + 6, top + 4), text, fill=(0, 0, 0, 255), font=font)
        else:
            writing.text((2, top + 4), text, fill=(0, 0, 0, 255), font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
