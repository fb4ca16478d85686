"""objectIds: a comma-separated list of integers."""

from __future__ import annotations

from collections.abc import Mapping

from koop_app.errors import InvalidParameterError

MAX_IDS = 100_000
MAX_ID = 2**63 - 1  # object ids are 64-bit integers in the tables


def parse_object_ids(raw: Mapping[str, str]) -> tuple[int, ...] | None:
    text = (raw.get("objectIds") or "").strip()
    if not text:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) > MAX_IDS:
        raise InvalidParameterError("objectIds", f"at most {MAX_IDS} ids")
    try:
        ids = tuple(dict.fromkeys(int(part) for part in parts))
    except ValueError:  # also "²" and numbers of more than 4,300 digits
        raise InvalidParameterError("objectIds", "expected comma-separated integers") from None
    if any(not -MAX_ID <= oid <= MAX_ID for oid in ids):
        raise InvalidParameterError("objectIds", "ids must be 64-bit integers")
    return ids
