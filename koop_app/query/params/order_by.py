"""orderByFields: ``field [ASC|DESC], ...``, whitespace-tolerant, case-insensitive names."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from koop_app.conf import koop_settings
from koop_app.errors import InvalidParameterError


def parse_order_by(raw: Mapping[str, str], resolve: Callable[[str], str | None]
                   ) -> tuple[tuple[str, bool], ...]:
    """(name, descending) pairs; ``resolve`` maps a requested name to the real one or None."""
    text = (raw.get("orderByFields") or "").strip()
    out: list[tuple[str, bool]] = []
    parts = text.split(",")
    limit = int(koop_settings.MAX_ORDER_BY_FIELDS)
    if len(parts) > limit and sum(1 for part in parts if part.strip()) > limit:
        raise InvalidParameterError("orderByFields", f"at most {limit} fields are allowed")
    for part in parts:
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise InvalidParameterError("orderByFields", f"cannot read {part.strip()!r}")
        name = resolve(words[0].strip('"'))
        if name is None:
            raise InvalidParameterError("orderByFields", f"{words[0]!r} is not a field")
        out.append((name, len(words) == 2 and words[1].upper() == "DESC"))
    return tuple(out)
