"""resultOffset and resultRecordCount."""

from __future__ import annotations

from collections.abc import Mapping

from koop_app.errors import InvalidParameterError

MAX_INT = 2**53


def parse_non_negative_int(raw: Mapping[str, str], name: str) -> int | None:
    value = (raw.get(name) or "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidParameterError(name, f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise InvalidParameterError(name, "must not be negative")
    return min(number, MAX_INT)
