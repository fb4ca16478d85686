"""Map styles from a layer's drawing info: Esri renderers and symbols as drawing instructions.

A layer's ``default`` style is its own renderer (``metadata["drawingInfo"]["renderer"]``:
simple, uniqueValue or classBreaks, with esriSMS/esriSLS/esriSFS symbols) when it has one, else
the FeatureServer's default symbol for its geometry type; a layer with a renderer of its own
also offers ``simple``, the default symbol. Sizes in Esri JSON are points: 1 pt = 4/3 px at the
96 dpi that ArcGIS and WMS's 0.28 mm pixel (OGC 06-042, 7.2.4.6.9) about agree on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from koop_app.data.hot import LayerTable
from koop_app.data.schema import STRING
from koop_app.outputs.geoservices.serializers import SIMPLE_SYMBOLS

PX_PER_PT = 4 / 3
Color = tuple[int, int, int, int]
MARKER_SHAPES = {"esrismscircle": "circle", "esrismssquare": "square",
                 "esrismsdiamond": "diamond", "esrismscross": "cross", "esrismsx": "x",
                 "esrismstriangle": "triangle"}


@dataclass(frozen=True)
class Symbol:
    """How one class of features is drawn, in pixels and RGBA."""

    fill: Color | None = None
    stroke: Color | None = None
    stroke_width: float = 1.0
    size: float = 8.0  # markers: the symbol's width
    shape: str = "circle"
    label: str = ""


@dataclass(frozen=True)
class Style:
    """A named way to draw a layer: symbols, and how features pick one (-1: not drawn)."""

    name: str
    title: str
    symbols: tuple[Symbol, ...]
    kind: str = "simple"  # simple, uniqueValue, classBreaks
    fields: tuple[str, ...] = ()  # the layer's fields the renderer reads
    values: tuple[str, ...] = ()  # uniqueValue: the value of each class (symbol i)
    delimiter: str = ","
    breaks: tuple[float, ...] = ()  # classBreaks: each class's maximum (symbol i)
    min_value: float | None = None
    default: int = -1  # the symbol of features no class takes
    extra: dict[str, Any] = field(default_factory=dict)

    def classify(self, rows: pa.Table) -> np.ndarray:
        """The symbol index of each row (vectorised over Arrow columns)."""
        count = rows.num_rows
        if self.kind == "uniqueValue" and self.fields:
            keys = _joined_keys(rows, self.fields, self.delimiter)
            index = pc.index_in(keys, value_set=pa.array(list(self.values), pa.string()))
            found = index.to_numpy(zero_copy_only=False)
            out = np.where(index.is_null().to_numpy(zero_copy_only=False), self.default,
                           np.nan_to_num(found.astype(float), nan=-1)).astype(np.int64)
            return out
        if self.kind == "classBreaks" and self.fields:
            column = rows.column(self.fields[0])
            values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
            values = np.asarray(values, dtype=float)
            out = np.searchsorted(np.asarray(self.breaks, dtype=float), values, side="left")
            out = out.astype(np.int64)
            low = self.min_value if self.min_value is not None else -np.inf
            bad = ~np.isfinite(values) | (values < low) | (out >= len(self.breaks))
            out[bad] = self.default
            return out
        return np.zeros(count, dtype=np.int64)


def _joined_keys(rows: pa.Table, fields: Sequence[str], delimiter: str) -> pa.Array:
    parts = []
    for name in fields:
        column = rows.column(name).combine_chunks()
        if pa.types.is_floating(column.type):
            # 3.0 is "3" in a uniqueValueInfos list: compare integral floats as integers.
            numbers = column.to_numpy(zero_copy_only=False)
            integral = np.isfinite(numbers) & (np.floor(numbers) == numbers)
            text = pc.cast(column, pa.string())
            as_int = pc.cast(pc.cast(pc.if_else(pa.array(integral), column, 0.0), pa.int64()),
                             pa.string())
            column = pc.if_else(pa.array(integral), as_int, text)
        elif pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            column = pc.cast(pc.cast(column, pa.timestamp("ms")), pa.int64())
        parts.append(pc.cast(column, pa.string()))
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, delimiter)


def _color(value: Any, alpha: float) -> Color | None:
    if not isinstance(value, (list, tuple)) or not 3 <= len(value) <= 4:
        return None
    try:
        channels = [min(255, max(0, int(round(float(c))))) for c in value]
    except (TypeError, ValueError):
        return None
    a = channels[3] if len(channels) == 4 else 255
    return channels[0], channels[1], channels[2], int(round(a * alpha))


def _width(value: Any, default: float) -> float:
    try:
        width = float(value)
    except (TypeError, ValueError):
        return default
    return min(max(width * PX_PER_PT, 0.0), 64.0) if np.isfinite(width) else default


def symbol_of(data: Any, geometry_type: str, alpha: float = 1.0, label: str = "") -> Symbol:
    """A drawing symbol from an Esri JSON symbol (unknown kinds: the layer's default)."""
    if not isinstance(data, Mapping):
        data = SIMPLE_SYMBOLS[geometry_type]
    kind = data.get("type")
    if kind == "esriSLS":
        style = str(data.get("style") or "esriSLSSolid")
        stroke = None if style == "esriSLSNull" else _color(data.get("color"), alpha)
        return Symbol(stroke=stroke, stroke_width=_width(data.get("width"), 1.0), label=label)
    if kind == "esriSFS":
        style = str(data.get("style") or "esriSFSSolid")
        fill = None if style in ("esriSFSNull", "esriSFSHollow") else _color(
            data.get("color"), alpha)
        outline = data.get("outline") if isinstance(data.get("outline"), Mapping) else {}
        stroke = None if outline.get("style") == "esriSLSNull" else _color(
            outline.get("color"), alpha)
        return Symbol(fill=fill, stroke=stroke, stroke_width=_width(outline.get("width"), 1.0),
                      label=label)
    if kind == "esriSMS":
        outline = data.get("outline") if isinstance(data.get("outline"), Mapping) else {}
        shape = MARKER_SHAPES.get(str(data.get("style") or "").lower(), "circle")
        fill = _color(data.get("color"), alpha)
        stroke = _color(outline.get("color"), alpha)
        if shape in ("cross", "x"):  # drawn as lines: in the marker's colour
            stroke, fill = fill or stroke, None
        return Symbol(fill=fill, stroke=stroke, stroke_width=_width(outline.get("width"), 1.0),
                      size=max(_width(data.get("size"), 8.0), 1.0), shape=shape, label=label)
    if kind == "esriPMS":  # picture markers: their size, drawn as the default marker
        base = symbol_of(SIMPLE_SYMBOLS["esriGeometryPoint"], geometry_type, alpha, label)
        return Symbol(base.fill, base.stroke, base.stroke_width,
                      size=max(_width(data.get("width"), 8.0), 1.0), label=label)
    if data is SIMPLE_SYMBOLS.get(geometry_type):  # a type we do not draw: never loop
        return Symbol(fill=(0, 112, 255, 200), stroke=(0, 80, 180, 255), label=label)
    return symbol_of(SIMPLE_SYMBOLS[geometry_type], geometry_type, alpha, label)


def simple_style(geometry_type: str, name: str = "default") -> Style:
    return Style(name, "Default", (symbol_of(SIMPLE_SYMBOLS[geometry_type], geometry_type),))


def drawing_info(table: LayerTable) -> Mapping[str, Any] | None:
    info = table.schema.metadata.get("drawingInfo")
    if isinstance(info, Mapping) and isinstance(info.get("renderer"), Mapping):
        return info
    return None


def _field(table: LayerTable, name: Any) -> str | None:
    found = table.schema.field(str(name)) if isinstance(name, str) and name else None
    return found.name if found else None


def renderer_style(table: LayerTable, info: Mapping[str, Any]) -> Style | None:
    """The ``default`` style from a drawing info's renderer; None when it cannot be read."""
    geometry_type = str(table.schema.geometry_type)
    renderer = info["renderer"]
    try:
        transparency = float(info.get("transparency") or 0)
    except (TypeError, ValueError):
        transparency = 0.0
    alpha = 1 - min(max(transparency, 0.0), 100.0) / 100
    kind = renderer.get("type")
    title = str(renderer.get("label") or "Layer's drawing info")
    default_symbol = renderer.get("defaultSymbol")
    if kind == "simple":
        return Style("default", title, (symbol_of(renderer.get("symbol"), geometry_type, alpha,
                                                  str(renderer.get("label") or "")),))
    if kind == "uniqueValue":
        fields = [_field(table, renderer.get(k)) for k in ("field1", "field2", "field3")
                  if renderer.get(k)]
        infos = [i for i in renderer.get("uniqueValueInfos") or [] if isinstance(i, Mapping)]
        if not fields or None in fields:
            return None
        symbols = [symbol_of(i.get("symbol"), geometry_type, alpha,
                             str(i.get("label") or i.get("value") or "")) for i in infos]
        values = tuple(str(i.get("value")) for i in infos)
        default = -1
        if isinstance(default_symbol, Mapping):
            default = len(symbols)
            symbols.append(symbol_of(default_symbol, geometry_type, alpha,
                                     str(renderer.get("defaultLabel") or "Other")))
        return Style("default", title, tuple(symbols), "uniqueValue",
                     tuple(f for f in fields if f), values,
                     str(renderer.get("fieldDelimiter") or ","), default=default)
    if kind == "classBreaks":
        name = _field(table, renderer.get("field"))
        if name is None or table.schema.field(name).type == STRING:
            return None
        infos = [i for i in renderer.get("classBreakInfos") or [] if isinstance(i, Mapping)]
        try:
            breaks = tuple(float(i.get("classMaxValue")) for i in infos)
            low = renderer.get("minValue")
            min_value = float(low) if low is not None else None
        except (TypeError, ValueError):
            return None
        symbols = [symbol_of(i.get("symbol"), geometry_type, alpha, str(i.get("label") or ""))
                   for i in infos]
        default = -1
        if isinstance(default_symbol, Mapping):
            default = len(symbols)
            symbols.append(symbol_of(default_symbol, geometry_type, alpha,
                                     str(renderer.get("defaultLabel") or "Other")))
        return Style("default", title, tuple(symbols), "classBreaks", (name,),
                     breaks=breaks, min_value=min_value, default=default)
    return None


def layer_styles(table: LayerTable) -> list[Style]:
    """The styles of a map layer, ``default`` first."""
    geometry_type = str(table.schema.geometry_type)
    info = drawing_info(table)
    own = renderer_style(table, info) if info is not None else None
    if own is None:
        return [simple_style(geometry_type)]
    return [own, simple_style(geometry_type, "simple")]


def find_style(table: LayerTable, name: str) -> Style | None:
    wanted = name.strip().lower() or "default"
    return next((s for s in layer_styles(table) if s.name == wanted), None)
