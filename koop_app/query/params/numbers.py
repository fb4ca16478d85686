"""Numeric parameters: geometryPrecision, maxAllowableOffset, maxRecordCountFactor."""

from __future__ import annotations

import math
from collections.abc import Mapping

from koop_app.errors import InvalidParameterError


def parse_float(raw: Mapping[str, str], name: str, *, minimum: float = 0.0) -> float | None:
    text = (raw.get(name) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameterError(name, f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < minimum:
        raise InvalidParameterError(name, f"must be a number of at least {minimum:g}")
    return value


def parse_int_in(raw: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    text = (raw.get(name) or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise InvalidParameterError(name, f"{text!r} is not a whole number") from None
    if not low <= value <= high:
        raise InvalidParameterError(name, f"must be between {low} and {high}")
    return value
