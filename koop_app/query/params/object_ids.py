"""objectIds: a comma-separated list of integers, at most KOOP['MAX_OBJECT_IDS']."""

from __future__ import annotations

from collections.abc import Mapping

from koop_app.conf import koop_settings
from koop_app.errors import InvalidParameterError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_object_ids(raw: Mapping[str, str]) -> tuple[int, ...] | None:
    text = (raw.get("objectIds") or "").strip()
    if not text:
        return None
    limit = int(koop_settings.MAX_OBJECT_IDS)
    # Count before splitting: a million commas should not become a million strings first.
    if text.count(",") >= limit:
        parts_count = sum(1 for part in text.split(",") if part.strip())
        if parts_count > limit:
            raise InvalidParameterError("objectIds",
                                        f"{parts_count} ids; at most {limit} are allowed "
                                        "(KOOP['MAX_OBJECT_IDS'])")
    try:
        ids = tuple(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        raise InvalidParameterError("objectIds", "expected comma-separated integers") from None
    if ids and (min(ids) < INT64_MIN or max(ids) > INT64_MAX):
        raise InvalidParameterError("objectIds", "ids must fit in 64 bits")
    return ids
