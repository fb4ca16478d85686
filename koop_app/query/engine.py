"""Runs a Query on a layer's hot table: ``run(query, table, max_records) -> Result``.

The engine decides *which* rows and columns; it hands outputs a ``Page`` (SQL plus bound
parameters) that they render straight from DuckDB, so no Python loop touches each feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from koop_app.data.duck import quote_ident
from koop_app.data.hot import LayerTable, hot_tables
from koop_app.data.normalize import GEOMETRY_COLUMN
from koop_app.data.schema import Field
from koop_app.errors import BadRequestError, InvalidParameterError, KoopError
from koop_app.query.query import Query


@dataclass(frozen=True)
class Page:
    """The rows of one answer: ``sql`` selects the fields (and geometry) in object-id order."""

    sql: str
    params: tuple[Any, ...]
    fields: tuple[Field, ...]
    geometry: bool


@dataclass(frozen=True)
class Result:
    table: LayerTable
    count: int | None = None
    object_ids: list[int] | None = None
    page: Page | None = None
    exceeded_transfer_limit: bool = False


def execute(sql: str, params: tuple[Any, ...] = ()) -> duckdb.DuckDBPyConnection:
    """Run SQL on the hot tables, mapping DuckDB's errors on bad input to 400s."""
    cursor = hot_tables.cursor()
    try:
        return cursor.execute(sql, list(params))
    except (duckdb.ConversionException, duckdb.BinderException,
            duckdb.InvalidInputException, duckdb.OutOfRangeException) as exc:
        cursor.close()
        raise InvalidParameterError("where", _first_line(exc)) from exc
    except duckdb.Error as exc:
        cursor.close()
        raise KoopError(log_message=f"query failed: {exc}") from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.split(": ", 1)[-1]


def run(query: Query, table: LayerTable, max_records: int) -> Result:
    schema = table.schema
    oid = quote_ident(schema.object_id_field)
    source = table.table_name
    where_sql, params = ("", ())
    if query.where is not None:
        where_sql, params = f" WHERE {query.where.sql}", query.where.params

    if query.count_only:
        (count,) = execute(f"SELECT count(*) FROM {source}{where_sql}", params).fetchone()
        return Result(table, count=int(count))
    if query.ids_only:
        rows = execute(f"SELECT {oid} FROM {source}{where_sql} ORDER BY {oid}", params)
        return Result(table, object_ids=[int(r[0]) for r in rows.fetchall()])

    if query.limit is not None and query.limit < 1:
        raise BadRequestError("resultRecordCount must be at least 1.",
                              details=["'resultRecordCount' parameter is invalid"])
    limit = min(query.limit or max_records, max_records)
    fields = _selected_fields(query, table)
    geometry = query.return_geometry and schema.geometry_type is not None
    columns = [quote_ident(f.name) for f in fields]
    if geometry:
        columns.append(quote_ident(GEOMETRY_COLUMN))
    page_sql = (f"SELECT {', '.join(columns)} FROM {source}{where_sql} ORDER BY {oid} "
                f"LIMIT {int(limit)} OFFSET {int(query.offset)}")
    more = execute(
        f"SELECT 1 FROM {source}{where_sql} LIMIT 1 OFFSET {int(query.offset) + int(limit)}",
        params,
    ).fetchone()
    return Result(table, page=Page(page_sql, params, fields, geometry),
                  exceeded_transfer_limit=more is not None)


def _selected_fields(query: Query, table: LayerTable) -> tuple[Field, ...]:
    schema = table.schema
    if query.out_fields is None:
        return schema.fields
    wanted = {name.lower() for name in query.out_fields}
    # ArcGIS always returns the object id, first.
    wanted.add(schema.object_id_field.lower())
    return tuple(f for f in schema.fields if f.name.lower() in wanted)
