"""time: an instant or ``t1,t2`` in epoch milliseconds; ``null`` leaves an end open."""

from __future__ import annotations

import math
from collections.abc import Mapping

from koop_app.errors import InvalidParameterError

# JavaScript's Date range (100,000,000 days either side of 1970), as ArcGIS clients send.
MAX_EPOCH_MS = 8.64e15


def parse_time(raw: Mapping[str, str]) -> tuple[int | None, int | None] | None:
    text = (raw.get("time") or "").strip()
    if not text:
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > 2:
        raise InvalidParameterError("time", "expected an instant or two comma-separated times")
    values: list[int | None] = []
    for part in parts:
        if part.lower() in ("null", "none", ""):
            values.append(None)
            continue
        try:
            number = float(part)
        except ValueError:
            raise InvalidParameterError("time", f"{part[:40]!r} is not epoch milliseconds") \
                from None
        if not math.isfinite(number) or abs(number) > MAX_EPOCH_MS:
            raise InvalidParameterError("time", "epoch milliseconds must be finite and within "
                                        "JavaScript's date range")
        values.append(int(number))
    if len(values) == 1:
        return values[0], values[0]
    start, end = values
    if start is not None and end is not None and start > end:
        raise InvalidParameterError("time", "the start is after the end")
    return start, end
