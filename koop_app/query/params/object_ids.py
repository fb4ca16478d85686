"""objectIds: a comma-separated list of integers."""

from __future__ import annotations

from collections.abc import Mapping

from koop_app.errors import InvalidParameterError

MAX_IDS = 100_000


def parse_object_ids(raw: Mapping[str, str]) -> tuple[int, ...] | None:
    text = (raw.get("objectIds") or "").strip()
    if not text:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) > MAX_IDS:
        raise InvalidParameterError("objectIds", f"at most {MAX_IDS} ids")
    try:
        return tuple(dict.fromkeys(int(part) for part in parts))
    except ValueError:
        raise InvalidParameterError("objectIds", "expected comma-separated integers") from None
