"""One small parser per GeoServices query parameter; ``parse_query`` builds the Query.

Empty strings mean "absent"; booleans accept true/false in any case. A bad value raises
InvalidParameterError naming the parameter. Parameters that ArcGIS clients send but that change
nothing here (sqlFormat, datumTransformation, gdbVersion, historicMoment, cacheHint,
featureEncoding, returnTrueCurves, timeReferenceUnknownClient, returnAllRecords, returnZ,
returnM) are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from koop_app.data.schema import LayerSchema
from koop_app.errors import InvalidParameterError
from koop_app.query.params.flags import parse_bool
from koop_app.query.params.geometry import parse_spatial_filter
from koop_app.query.params.numbers import parse_float, parse_int_in
from koop_app.query.params.object_ids import parse_object_ids
from koop_app.query.params.order_by import parse_order_by
from koop_app.query.params.out_fields import parse_out_fields
from koop_app.query.params.paging import parse_non_negative_int
from koop_app.query.params.quantization import parse_quantization
from koop_app.query.params.statistics import parse_group_by, parse_statistics
from koop_app.query.params.time import parse_time
from koop_app.query.query import Query
from koop_app.query.sr import parse_sr
from koop_app.query.where import compile_where

RESULT_TYPES = ("", "none", "standard", "tile")


def _field_resolver(schema: LayerSchema):
    def resolve(name: str) -> str | None:
        found = schema.field(name)
        return found.name if found else None

    return resolve


def parse_common(raw: Mapping[str, str]) -> Query:
    """The parameters whose meaning does not depend on the layer's fields: what a pass-through
    provider is given (``ProviderRequest.parsed``) before there is a schema to check against.
    ``where``, ``outFields``, ordering and statistics are left for ``parse_query``."""
    result_type = (raw.get("resultType") or "").strip().lower()
    if result_type not in RESULT_TYPES:
        raise InvalidParameterError("resultType", "expected standard or tile")
    precision = parse_int_in(raw, "geometryPrecision", 0, 17)
    quantization = parse_quantization(raw)
    max_allowable_offset = parse_float(raw, "maxAllowableOffset")
    if (max_allowable_offset is None and quantization is not None and quantization.view
            and result_type == "tile" and quantization.tolerance):
        # Tile queries in view mode: generalise lines and polygons to the grid's cell, as
        # ArcGIS does; vertices closer than a cell would be dropped by the grid anyway.
        max_allowable_offset = quantization.tolerance
    return Query(
        object_ids=parse_object_ids(raw),
        spatial=parse_spatial_filter(raw),
        time=parse_time(raw),
        return_geometry=parse_bool(raw, "returnGeometry", default=True),
        out_sr=parse_sr(raw.get("outSR"), "outSR"),
        geometry_precision=precision,
        max_allowable_offset=max_allowable_offset,
        quantization=quantization,
        return_centroid=parse_bool(raw, "returnCentroid", default=False),
        count_only=parse_bool(raw, "returnCountOnly", default=False),
        ids_only=parse_bool(raw, "returnIdsOnly", default=False),
        extent_only=parse_bool(raw, "returnExtentOnly", default=False),
        distinct=parse_bool(raw, "returnDistinctValues", default=False),
        offset=parse_non_negative_int(raw, "resultOffset") or 0,
        limit=parse_non_negative_int(raw, "resultRecordCount"),
        result_type="" if result_type == "none" else result_type,
        record_count_factor=parse_int_in(raw, "maxRecordCountFactor", 1, 5) or 1,
        return_exceeded_limit_features=parse_bool(raw, "returnExceededLimitFeatures",
                                                  default=True),
    )


def parse_query(raw: Mapping[str, str], schema: LayerSchema, *,
                case_sensitive: bool = False) -> Query:
    """Every parameter, checked against the layer's ``schema``; text in ``where`` and
    ``havingClause`` compares without case unless ``case_sensitive``
    (``Dataset.case_sensitive_strings``)."""
    common = parse_common(raw)
    resolve = _field_resolver(schema)
    statistics = parse_statistics(raw, resolve)
    group_by = parse_group_by(raw, resolve)
    if group_by and not statistics:
        raise InvalidParameterError("groupByFieldsForStatistics", "needs outStatistics")
    outputs = {s.out_name.lower(): s.out_name for s in statistics}
    outputs.update({name.lower(): name for name in group_by})

    def resolve_order(name: str) -> str | None:
        # Statistics answers are ordered by their own columns; features by the layer's fields.
        return outputs.get(name.lower()) if statistics else resolve(name)

    having_text = raw.get("havingClause")
    if having_text and having_text.strip() and not statistics:
        raise InvalidParameterError("havingClause", "needs outStatistics")
    return replace(
        common,
        where=compile_where(raw.get("where"), schema, case_sensitive=case_sensitive),
        out_fields=parse_out_fields(raw.get("outFields"), schema),
        statistics=statistics,
        group_by=group_by,
        having=compile_where(having_text, schema, parameter="havingClause", aggregates=True,
                             groups=group_by, case_sensitive=case_sensitive),
        order_by=parse_order_by(raw, resolve_order),
    )
