"""Type inference and coercion of attribute values, one column at a time.

Inference looks at every value of a column, not the first one: a column is Integer only if all
its values are integers in the 32-bit range, Date only if all are ISO 8601 strings, and so on;
anything mixed falls back to Double (numbers) or String.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any

import orjson

from koop_app.data.schema import DATE, DOUBLE, INTEGER, OID, SMALL_INTEGER, STRING

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def infer_type(values: Sequence[Any]) -> tuple[str, bool]:
    """Return (esri type, is_boolean) for a column's values; None values are ignored."""
    kinds: set[str] = set()
    in_int32 = True
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add("bool")
        elif isinstance(value, int):
            kinds.add("int")
            if in_int32 and not INT32_MIN <= value <= INT32_MAX:
                in_int32 = False
        elif isinstance(value, float):
            kinds.add("float")
        elif isinstance(value, str):
            kinds.add("date" if ISO_DATE.match(value) else "str")
        elif isinstance(value, (dt.date, dt.datetime)):
            kinds.add("date")
        else:
            kinds.add("json")
        if "str" in kinds or "json" in kinds:
            break  # nothing can narrow a column back from String
    if not kinds:
        return STRING, False
    if kinds == {"bool"}:
        return SMALL_INTEGER, True
    if kinds == {"int"}:
        return (INTEGER if in_int32 else DOUBLE), False
    if kinds <= {"int", "float"}:
        return DOUBLE, False
    if kinds == {"date"}:
        return DATE, False
    return STRING, False


def parse_date_ms(value: Any) -> int | None:
    """Epoch milliseconds (UTC) of a date value: ISO text, date/datetime, or epoch ms already."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else int(value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return int((moment - _EPOCH) / dt.timedelta(milliseconds=1))
    if isinstance(value, dt.date):
        return parse_date_ms(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        text = value.strip()
        if not ISO_DATE.match(text):
            return None
        try:
            return parse_date_ms(dt.datetime.fromisoformat(text))
        except ValueError:
            return None
    return None


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            number = _to_float(value)
            return int(number) if number is not None and number.is_integer() else None
    return None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _to_bool(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return 1
        if text in _FALSE:
            return 0
    return None


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def coerce_column(values: Sequence[Any], esri: str, boolean: bool) -> tuple[list[Any], int]:
    """Convert values to ``esri``'s Python type; return (values, how many could not be)."""
    if esri == STRING:
        return [None if v is None else _to_str(v) for v in values], 0
    if boolean:
        convert = _to_bool
    elif esri == DATE:
        convert = parse_date_ms
    elif esri in (INTEGER, SMALL_INTEGER, OID):
        convert = _to_int
    else:
        convert = _to_float
    out: list[Any] = []
    lost = 0
    for value in values:
        if value is None:
            out.append(None)
            continue
        converted = convert(value)
        if converted is None:
            lost += 1
        elif esri == INTEGER and not INT32_MIN <= converted <= INT32_MAX:
            converted, lost = None, lost + 1
        out.append(converted)
    return out, lost
