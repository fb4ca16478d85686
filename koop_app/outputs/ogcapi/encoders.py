"""GeoJSON features of OGC API - Features, written by DuckDB over the engine's page.

Like ``koop_app.encoders.geojson`` (each feature's text put together in SQL, no Python loop per
feature), with what OGC API asks for besides: ``id`` always the object id, dates as RFC 3339
text, booleans as booleans, only the requested properties, and coordinates in the axis order
of the response CRS (EPSG:4326 is latitude first: ST_FlipCoordinates).
"""

from __future__ import annotations

import orjson

from koop_app.data.duck import quote_ident, quote_string
from koop_app.data.normalize import GEOMETRY_COLUMN
from koop_app.data.schema import DATE, Field
from koop_app.encoders.text import StreamedArray, array_or_stream
from koop_app.query import Page

_G = quote_ident(GEOMETRY_COLUMN)


def _value(field: Field) -> str:
    column = quote_ident(field.name)
    if field.type == DATE:
        # Epoch milliseconds -> "2021-03-04T05:06:07Z" (milliseconds only when there are some).
        return (f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} % 1000 = 0 "
                f"THEN strftime(epoch_ms({column}), '%Y-%m-%dT%H:%M:%SZ') "
                f"ELSE strftime(epoch_ms({column}), '%Y-%m-%dT%H:%M:%S.%gZ') END")
    if field.boolean:
        return f"({column} <> 0)"
    return column


def features(page: Page, object_id_field: str, properties: tuple[str, ...] | None,
             swap_xy: bool) -> tuple[orjson.Fragment | StreamedArray, bool]:
    """The features array of ``page`` (a StreamedArray when large), and whether more exist."""
    wanted = None if properties is None else {p.lower() for p in properties}
    shown = [f for f in page.fields if wanted is None or f.name.lower() in wanted]
    if shown:
        attributes = "{" + ", ".join(f"{quote_string(f.name)}: {_value(f)}" for f in shown) + "}"
        properties_sql = f"to_json({attributes})::VARCHAR"
    else:
        properties_sql = "'{}'"
    geometry = "'null'"
    if page.geometry:
        column = f"ST_FlipCoordinates({_G})" if swap_xy else _G
        geometry = f"coalesce(ST_AsGeoJSON({column}), 'null')"
    row = (f"'{{\"type\":\"Feature\",\"id\":' || to_json({quote_ident(object_id_field)})"
           f"::VARCHAR || ',\"geometry\":' || {geometry} || ',\"properties\":' || "
           f"{properties_sql} || '}}'")
    return array_or_stream(page, row, as_json=False)
