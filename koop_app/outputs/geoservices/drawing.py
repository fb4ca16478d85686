"""Renderer JSON for generateRenderer: symbols coloured along the requested colour ramp."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from koop_app.outputs.geoservices.serializers import SIMPLE_SYMBOLS
from koop_app.query.classify import ClassBreaks, UniqueValues

DEFAULT_RAMP = {"type": "algorithmic", "fromColor": [255, 255, 204, 255],
                "toColor": [189, 0, 38, 255], "algorithm": "esriHSVAlgorithm"}


def _color(value: Any, default: list[int]) -> list[int]:
    """An RGB(A) colour from the request, channels clamped to 0..255; else ``default``."""
    if not isinstance(value, list) or not 3 <= len(value) <= 4 or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in value):
        return default
    return [min(255, max(0, round(c))) for c in value] + [255] * (4 - len(value))


def _ramp_colors(ramp: Any, count: int) -> list[list[int]]:
    """``count`` colours from an algorithmic ramp (or a multipart ramp's first part).

    A ramp of another shape than ArcGIS's gets the default colours rather than an error.
    """
    if not isinstance(ramp, Mapping):
        ramp = DEFAULT_RAMP
    parts = ramp.get("colorRamps")
    if ramp.get("type") == "multipart" and isinstance(parts, list) and parts:
        ramp = parts[0] if isinstance(parts[0], Mapping) else DEFAULT_RAMP
    start = _color(ramp.get("fromColor"), DEFAULT_RAMP["fromColor"])
    end = _color(ramp.get("toColor"), DEFAULT_RAMP["toColor"])
    colors = []
    for i in range(count):
        t = i / (count - 1) if count > 1 else 0.0
        colors.append([round(a + (b - a) * t) for a, b in zip(start[:4], end[:4], strict=True)])
    return colors


def _symbol(base: Any, geometry_type: str | None, color: list[int]) -> dict[str, Any]:
    symbol = copy.deepcopy(base) if isinstance(base, Mapping) else copy.deepcopy(
        SIMPLE_SYMBOLS.get(geometry_type or "", SIMPLE_SYMBOLS["esriGeometryPolygon"]))
    symbol["color"] = color
    return symbol


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 6)


def class_breaks_json(result: ClassBreaks, definition: Mapping[str, Any],
                      geometry_type: str | None) -> dict[str, Any]:
    colors = _ramp_colors(definition.get("colorRamp"), len(result.breaks))
    infos = []
    lower = result.min_value
    for upper, color in zip(result.breaks, colors, strict=True):
        infos.append({"classMaxValue": _number(upper),
                      "label": f"{_number(lower)} - {_number(upper)}", "description": "",
                      "symbol": _symbol(definition.get("baseSymbol"), geometry_type, color)})
        lower = upper
    return {"type": "classBreaks", "field": result.field, "classificationMethod": result.method,
            "minValue": _number(result.min_value), "classBreakInfos": infos}


def unique_values_json(result: UniqueValues, definition: Mapping[str, Any],
                       geometry_type: str | None) -> dict[str, Any]:
    colors = _ramp_colors(definition.get("colorRamp"), len(result.values))
    fields = list(result.fields) + [None] * (3 - len(result.fields))
    return {
        "type": "uniqueValue", "field1": fields[0], "field2": fields[1], "field3": fields[2],
        "fieldDelimiter": result.delimiter, "defaultSymbol": None, "defaultLabel": None,
        "uniqueValueInfos": [
            {"value": value, "count": count, "label": value, "description": "",
             "symbol": _symbol(definition.get("baseSymbol"), geometry_type, color)}
            for (value, count), color in zip(result.values, colors, strict=True)
        ],
    }
