"""``quantizationParameters``: the integer grid answers' coordinates are snapped to.

    {"mode": "view", "originPosition": "upperLeft", "tolerance": 1.0583,
     "extent": {"xmin": ..., "ymin": ..., "xmax": ..., "ymax": ..., "spatialReference": {...}}}

``tolerance`` is the size of one grid cell in the units of the answer's spatial reference; the
grid's origin is the extent's upper-left (y grows downwards) or lower-left corner. In ``view``
mode vertices that fall on the cell of the one before are dropped (and parts left too short to
draw), which is what makes map tiles small; ``edit`` mode keeps every vertex.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from koop_app.errors import InvalidParameterError
from koop_app.query.sr import SpatialRef, parse_sr

PARAMETER = "quantizationParameters"
MODES = ("view", "edit")
ORIGINS = {"upperleft": "upperLeft", "upper-left": "upperLeft",
           "lowerleft": "lowerLeft", "lower-left": "lowerLeft"}


@dataclass(frozen=True)
class Quantization:
    mode: str = "edit"  # "view" | "edit"
    origin: str = "upperLeft"  # "upperLeft" | "lowerLeft"
    tolerance: float | None = None  # None: the answer's default resolution
    # (xmin, ymin, xmax, ymax) and their reference; None: the grid starts at (0, 0).
    extent: tuple[float, float, float, float] | None = None
    extent_sr: SpatialRef | None = None

    @property
    def view(self) -> bool:
        return self.mode == "view"


def parse_quantization(raw: Any) -> Quantization | None:
    text = (raw.get(PARAMETER) or "").strip() if hasattr(raw, "get") else ""
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidParameterError(PARAMETER, "expected a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidParameterError(PARAMETER, "expected a JSON object")
    mode = str(value.get("mode") or "view").strip().lower()
    if mode not in MODES:
        raise InvalidParameterError(PARAMETER, f"mode {mode!r} is not view or edit")
    origin_text = str(value.get("originPosition") or "upperLeft").strip().lower()
    if origin_text not in ORIGINS:
        raise InvalidParameterError(PARAMETER, f"originPosition {origin_text!r} is not "
                                    "upperLeft or lowerLeft")
    tolerance = _number(value.get("tolerance"), "tolerance") if value.get("tolerance") \
        is not None else None
    if tolerance is not None and tolerance <= 0:
        raise InvalidParameterError(PARAMETER, "tolerance must be greater than 0")
    extent, extent_sr = _extent(value.get("extent"))
    return Quantization(mode, ORIGINS[origin_text], tolerance, extent, extent_sr)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidParameterError(PARAMETER, f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(PARAMETER, f"{name} must be a number") from None
    if not math.isfinite(number):
        raise InvalidParameterError(PARAMETER, f"{name} must be a finite number")
    return number


def _extent(value: Any) -> tuple[tuple[float, float, float, float] | None, SpatialRef | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise InvalidParameterError(PARAMETER, "extent must be an envelope object")
    bounds = tuple(_number(value.get(key), f"extent.{key}")
                   for key in ("xmin", "ymin", "xmax", "ymax"))
    if bounds[0] > bounds[2] or bounds[1] > bounds[3]:
        raise InvalidParameterError(PARAMETER, "extent has its minimum past its maximum")
    sr = parse_sr(value.get("spatialReference"), PARAMETER)
    return bounds, sr  # type: ignore[return-value]
