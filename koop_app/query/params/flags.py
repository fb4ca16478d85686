"""Boolean parameters (returnGeometry, returnCountOnly, ...)."""

from __future__ import annotations

from collections.abc import Mapping

from koop_app.errors import InvalidParameterError


def parse_bool(raw: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = (raw.get(name) or "").strip().lower()
    if not value:
        return default
    if value == "true":
        return True
    if value == "false":
        return False
    raise InvalidParameterError(name, f"expected true or false, got {raw.get(name)!r}")
