"""outFields: ``*``, or a comma-separated list of field names (case-insensitive)."""

from __future__ import annotations

from koop_app.conf import koop_settings
from koop_app.data.schema import LayerSchema
from koop_app.errors import InvalidParameterError


def parse_out_fields(value: str | None, schema: LayerSchema) -> tuple[str, ...] | None:
    """The layer's names of the asked fields, in the asked order; None means all."""
    names = [part.strip() for part in (value or "").split(",") if part.strip()]
    limit = int(koop_settings.MAX_OUT_FIELDS)
    if len(names) > limit:
        raise InvalidParameterError("outFields",
                                    f"{len(names)} fields; at most {limit} are allowed")
    if not names or "*" in names:
        return None
    out: list[str] = []
    for name in names:
        found = schema.field(name)
        if found is None:
            raise InvalidParameterError("outFields", f"{name!r} is not a field of this layer")
        if found.name not in out:
            out.append(found.name)
    return tuple(out)
