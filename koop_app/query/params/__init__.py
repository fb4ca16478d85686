"""One small parser per GeoServices query parameter; ``parse_query`` builds the Query.

Empty strings mean "absent"; booleans accept true/false in any case. A bad value raises
InvalidParameterError naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping

from koop_app.data.schema import LayerSchema
from koop_app.query.params.flags import parse_bool
from koop_app.query.params.out_fields import parse_out_fields
from koop_app.query.params.paging import parse_non_negative_int
from koop_app.query.query import Query
from koop_app.query.where import compile_where


def parse_query(raw: Mapping[str, str], schema: LayerSchema) -> Query:
    return Query(
        where=compile_where(raw.get("where"), schema),
        out_fields=parse_out_fields(raw.get("outFields"), schema),
        return_geometry=parse_bool(raw, "returnGeometry", default=True),
        offset=parse_non_negative_int(raw, "resultOffset") or 0,
        limit=parse_non_negative_int(raw, "resultRecordCount"),
        count_only=parse_bool(raw, "returnCountOnly", default=False),
        ids_only=parse_bool(raw, "returnIdsOnly", default=False),
    )
