"""Runs a Query on a layer's hot table: ``run(query, table, limits) -> Result``.

The engine decides *which* rows, columns and geometries; it hands outputs a ``Page`` (SQL plus
bound parameters, in WGS 84 or already projected to outSR) that they render straight from
DuckDB, so no Python loop touches each feature.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from shapely.geometry import box

from koop_app.conf import koop_settings
from koop_app.data.duck import quote_ident, quote_string, time_limit
from koop_app.data.hot import LayerTable, hot_tables
from koop_app.data.normalize import BBOX_COLUMNS, GEOMETRY_COLUMN, SourceAnswers
from koop_app.data.schema import DATE, DOUBLE, INTEGER, STRING, Field
from koop_app.errors import InvalidParameterError, KoopError, QueryTimeoutError
from koop_app.query.params.geometry import SpatialFilter
from koop_app.query.params.quantization import Quantization
from koop_app.query.query import Query
from koop_app.query.sr import MERCATOR_MAX_LAT, WGS84, SpatialRef, transformer

G = quote_ident(GEOMETRY_COLUMN)
XMIN, YMIN, XMAX, YMAX = (quote_ident(c) for c in BBOX_COLUMNS)
CENTROID_COLUMN = "_koop_centroid"
POINT_TYPES = ("esriGeometryPoint", "esriGeometryMultipoint")
PREDICATES = {"contains": "ST_Contains", "within": "ST_Within", "crosses": "ST_Crosses",
              "overlaps": "ST_Overlaps", "touches": "ST_Touches", "intersects": "ST_Intersects"}
# objectIds reach DuckDB as one Arrow column under this name, not as bound values: binding
# 100,000 values one by one costs seconds, a semi-join on the column milliseconds.
OBJECT_IDS_RELATION = "_koop_request_ids"
AGGREGATE_SQL = {"count": "count", "sum": "sum", "min": "min", "max": "max", "avg": "avg",
                 "stddev": "stddev_samp", "var": "var_samp"}


@dataclass(frozen=True)
class RecordLimits:
    """A layer's record limits: default, for resultType=standard and for resultType=tile."""

    max_record_count: int
    standard: int
    tile: int

    @classmethod
    def for_layer(cls, max_record_count: int, geometry_type: str | None) -> RecordLimits:
        # ArcGIS Online's defaults: larger standard/tile pages for points than for shapes.
        cap = int(koop_settings.MAX_RESULT_RECORDS)
        points = geometry_type in POINT_TYPES
        standard = max(max_record_count, 32_000 if points else 4_000)
        tile = max(max_record_count, 8_000 if points else 4_000)
        return cls(min(max_record_count, cap), min(standard, cap), min(tile, cap))

    def for_query(self, query: Query) -> int:
        base = {"standard": self.standard, "tile": self.tile}.get(query.result_type,
                                                                   self.max_record_count)
        return min(base * query.record_count_factor, int(koop_settings.MAX_RESULT_RECORDS))


@dataclass(frozen=True)
class Page:
    """Rows of one answer. ``order`` orders them again after the page is cut, for rendering."""

    sql: str
    params: tuple[Any, ...]
    fields: tuple[Field, ...]
    geometry: bool
    order: str
    centroid: bool = False
    # Rows already computed (small aggregate answers): ``sql`` then reads them as "page_rows".
    rows: pa.Table | None = None
    # Arrow tables ``sql`` reads by name (the request's objectIds).
    relations: Mapping[str, pa.Table] = field(default_factory=dict)
    # When set, ``sql`` reads one row past the page to learn whether more exist: render only
    # the first ``more_after`` rows (in ``order``); the output reports the transfer limit.
    more_after: int | None = None
    # ArcGIS without returnExceededLimitFeatures: rows past the page mean no features at all.
    empty_if_more: bool = False
    # The most rows ``sql`` can give (None: a few, already known): large pages are streamed.
    size: int | None = None


@dataclass(frozen=True)
class Result:
    table: LayerTable
    out_sr: SpatialRef = WGS84
    count: int | None = None
    object_ids: str | None = None  # a JSON array of the ids
    extent: tuple[float, float, float, float] | None = None
    extent_only: bool = False
    page: Page | None = None
    exceeded_transfer_limit: bool = False
    statistics: bool = False
    ids: np.ndarray | None = None  # the object ids behind ``object_ids``, as int64
    # How the answer's geometries are to be snapped (quantizationParameters), if at all.
    quantization: Quantization | None = None


# Columns ``page_arrow`` adds after the attributes: the geometry as WKB, or as x and y.
WKB_COLUMN, X_COLUMN, Y_COLUMN = "_koop_wkb", "_koop_x", "_koop_y"
CENTROID_X, CENTROID_Y = "_koop_cx", "_koop_cy"


def page_arrow(page: Page, *, points_as_xy: bool) -> tuple[pa.Table, bool]:
    """The page's rows as Arrow, in order, and whether rows exist past it.

    Columns: the page's fields, then its geometry (``x``/``y`` doubles when ``points_as_xy``,
    else WKB; null for a null or empty geometry) and its centroid's ``x``/``y``.
    """
    columns = [quote_ident(f.name) for f in page.fields]
    if page.geometry:
        if points_as_xy:
            columns += [f"CASE WHEN ST_IsEmpty({G}) THEN NULL ELSE ST_X({G}) END AS {X_COLUMN}",
                        f"CASE WHEN ST_IsEmpty({G}) THEN NULL ELSE ST_Y({G}) END AS {Y_COLUMN}"]
        else:
            columns.append(f"CASE WHEN ST_IsEmpty({G}) THEN NULL ELSE ST_AsWKB({G}) END "
                           f"AS {WKB_COLUMN}")
    if page.centroid:
        centroid = quote_ident(CENTROID_COLUMN)
        columns += [f"CASE WHEN ST_IsEmpty({centroid}) THEN NULL ELSE ST_X({centroid}) END "
                    f"AS {CENTROID_X}",
                    f"CASE WHEN ST_IsEmpty({centroid}) THEN NULL ELSE ST_Y({centroid}) END "
                    f"AS {CENTROID_Y}"]
    if not columns:
        columns = ["1 AS _koop_none"]
    sql = f"SELECT {', '.join(columns)} FROM ({page.sql}) AS page ORDER BY {page.order}"
    table = execute(sql, page.params, page.rows, page.relations).to_arrow_table()
    if page.more_after is None or table.num_rows <= page.more_after:
        return table, False
    if page.empty_if_more:
        return table.slice(0, 0), True
    return table.slice(0, page.more_after), True


class Rows:
    """A statement's answer. DuckDB may compute a large answer while it is fetched, so each
    fetch runs under what is left of the statement's time limit."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, sql: str, seconds: float | None,
                 deadline: float | None) -> None:
        self._cursor, self._sql, self._seconds, self._deadline = cursor, sql, seconds, deadline

    def fetchone(self) -> Any:
        return self._fetch(lambda c: c.fetchone())

    def fetchall(self) -> list[Any]:
        return self._fetch(lambda c: c.fetchall())

    def fetchnumpy(self) -> dict[str, Any]:
        return self._fetch(lambda c: c.fetchnumpy())

    def to_arrow_table(self) -> pa.Table:
        return self._fetch(lambda c: c.to_arrow_table())

    def batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """The answer in Arrow batches of up to ``rows``, each fetched when it is wanted (an
        answer streamed to the client); the cursor closes when they are read or dropped."""
        try:
            reader = self._guarded(lambda: self._cursor.to_arrow_reader(rows))
            while True:
                try:
                    batch = self._guarded(reader.read_next_batch)
                except StopIteration:
                    return
                yield batch
        finally:
            self._cursor.close()

    def _guarded(self, step: Callable[[], Any]) -> Any:
        left = None if self._deadline is None else max(self._deadline - time.monotonic(), 1e-3)
        try:
            with time_limit(self._cursor, left):
                return step()
        except duckdb.InterruptException as exc:
            raise _timeout(self._seconds, self._sql) from exc
        except duckdb.Error as exc:
            raise _mapped(exc) from exc

    def _fetch(self, read: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        try:
            return self._guarded(lambda: read(self._cursor))
        finally:
            self._cursor.close()


def execute(sql: str, params: tuple[Any, ...] | list[Any] = (),
            rows: pa.Table | None = None,
            relations: Mapping[str, pa.Table] | None = None) -> Rows:
    """Run SQL on the hot tables, mapping DuckDB's errors on bad input to 400s.

    ``rows``, when given, is readable in ``sql`` as the table ``page_rows``, and each of
    ``relations`` under its name. The statement, and fetching its answer (once), is interrupted
    after KOOP['QUERY_TIMEOUT_SECONDS'] in all: QueryTimeoutError.
    """
    cursor = hot_tables.cursor()
    if rows is not None:
        cursor.register("page_rows", rows)
    for name, table in (relations or {}).items():
        cursor.register(name, table)
    seconds = koop_settings.QUERY_TIMEOUT_SECONDS
    deadline = time.monotonic() + seconds if seconds else None
    try:
        with time_limit(cursor, seconds):
            cursor.execute(sql, list(params))
    except duckdb.InterruptException as exc:
        cursor.close()
        raise _timeout(seconds, sql) from exc
    except duckdb.Error as exc:
        cursor.close()
        raise _mapped(exc) from exc
    return Rows(cursor, sql, seconds, deadline)


def _timeout(seconds: float | None, sql: str) -> QueryTimeoutError:
    return QueryTimeoutError(
        f"The query took longer than the allowed {seconds:g} seconds and was stopped.",
        details=["Narrow the query: fewer ids, a simpler where, a smaller geometry."],
        log_message=f"query interrupted after {seconds:g} s: {sql[:500]}")


# What a client reads when DuckDB refuses a statement on the values it met: our words, never
# the engine's (its message goes to the log). where.py checks kinds before a clause runs, so
# these are left to values: an overflow, the logarithm of zero, a date past the calendar.
_REFUSALS: tuple[tuple[type[duckdb.Error], str], ...] = (
    (duckdb.OutOfRangeException, "a value computed by the clause is out of range (an overflow, "
                                 "the logarithm of zero or of a negative number, ...)"),
    (duckdb.ConversionException, "a value in the clause cannot be converted to the type it is "
                                 "used as"),
    (duckdb.BinderException, "the clause cannot be evaluated on this layer's fields"),
    (duckdb.InvalidInputException, "the clause holds a value that cannot be used"),
)


def _mapped(exc: duckdb.Error) -> KoopError:
    for kind, problem in _REFUSALS:
        if isinstance(exc, kind):
            error = InvalidParameterError("where", problem)
            error.log_message = f"query refused: {_first_line(exc)}"
            return error
    return KoopError(log_message=f"query failed: {exc}")


def object_ids_relation(object_ids: Sequence[int]) -> dict[str, pa.Table]:
    """The request's ids as the one-column table OBJECT_IDS_RELATION (column ``id``)."""
    return {OBJECT_IDS_RELATION: pa.table({"id": pa.array(object_ids, type=pa.int64())})}


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.split(": ", 1)[-1]


# --- filters --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """The WHERE clause (with a leading space, or empty), its parameters and relations."""

    sql: str = ""
    params: tuple[Any, ...] = ()
    relations: Mapping[str, pa.Table] = field(default_factory=dict)


def _filters(query: Query, table: LayerTable) -> Filters:
    schema = table.schema
    parts: list[str] = []
    params: list[Any] = []
    relations: dict[str, pa.Table] = {}
    if query.where is not None:
        parts.append(query.where.sql)
        params.extend(query.where.params)
    if query.object_ids is not None:
        oid = quote_ident(schema.object_id_field)
        ids = object_ids_relation(query.object_ids)
        if len(query.object_ids):
            # The range first: hot tables are kept in object id order (or ascending within
            # spatial cells), so the row groups' min/max skip most rows before the semi-join.
            column = ids[OBJECT_IDS_RELATION]["id"]
            parts.append(f"{oid} BETWEEN ? AND ?")
            params.extend((pc.min(column).as_py(), pc.max(column).as_py()))
        parts.append(f"{oid} IN (SELECT id FROM {OBJECT_IDS_RELATION})")
        relations.update(ids)
    if query.spatial is not None:
        if schema.geometry_type is None:
            raise InvalidParameterError("geometry", "this layer has no geometry")
        sql, spatial_params = _spatial(query.spatial, schema.geometry_type,
                                       source_geometry(table))
        parts.append(sql)
        params.extend(spatial_params)
    if query.time is not None:
        sql, time_params = _time(query.time, schema.metadata.get("timeInfo"), table)
        if sql:
            parts.append(sql)
            params.extend(time_params)
    if not parts:
        return Filters()
    return Filters(" WHERE " + " AND ".join(f"({p})" for p in parts), tuple(params), relations)


def source_geometry(table: LayerTable) -> str:
    """The SQL of a row's geometry: the stored column, or for a layer of plain points
    (``LayerTable.point_boxes``) the point made from its box, which reads two doubles and no
    geometry blob."""
    return f"ST_Point({XMIN}, {YMIN})" if table.point_boxes else G


def _spatial(spatial: SpatialFilter, geometry_type: str, geometry: str = G
             ) -> tuple[str, list[Any]]:
    xmin, ymin, xmax, ymax = spatial.bbox
    relation = spatial.relation
    if relation == "within":  # the query geometry within the feature: feature box holds it
        bbox = f"{XMIN} <= ? AND {YMIN} <= ? AND {XMAX} >= ? AND {YMAX} >= ?"
    elif relation == "contains":  # the query geometry contains the feature
        bbox = f"{XMIN} >= ? AND {YMIN} >= ? AND {XMAX} <= ? AND {YMAX} <= ?"
    else:
        bbox = f"{XMAX} >= ? AND {YMAX} >= ? AND {XMIN} <= ? AND {YMIN} <= ?"
    params: list[Any] = [xmin, ymin, xmax, ymax]
    exact_by_box = relation == "envelope" or (
        relation == "intersects" and spatial.is_box and geometry_type == "esriGeometryPoint")
    if exact_by_box:
        return bbox, params
    predicate = PREDICATES[relation]
    params.append(shapely.to_wkb(spatial.geometry))
    return f"{bbox} AND {predicate}(ST_GeomFromWKB(?), {geometry})", params


def _time(window: tuple[int | None, int | None], time_info: Any, table: LayerTable
          ) -> tuple[str, list[Any]]:
    """Features whose [start, end] overlaps the window; no timeInfo means no time filter."""
    if not isinstance(time_info, dict):
        return "", []
    start_field = table.schema.field(str(time_info.get("startTimeField") or ""))
    end_field = table.schema.field(str(time_info.get("endTimeField") or "")) or start_field
    if start_field is None:
        return "", []
    start, end = window
    parts, params = [], []
    if end is not None:
        parts.append(f"{quote_ident(start_field.name)} <= ?")
        params.append(end)
    if start is not None:
        parts.append(f"{quote_ident(end_field.name)} >= ?")
        params.append(start)
    return " AND ".join(parts), params


# --- geometry out ---------------------------------------------------------------------------

def _geometry_sql(query: Query, table: LayerTable) -> str:
    expression = geometry = source_geometry(table)
    out_sr = query.out_sr or WGS84
    if not out_sr.is_wgs84 and not projected_at_source(table):
        if out_sr.is_web_mercator:
            # Web Mercator is undefined at the poles: clip what reaches past its latitude.
            limit = MERCATOR_MAX_LAT
            expression = (f"CASE WHEN {YMAX} > {limit} OR {YMIN} < -{limit} THEN "
                          f"ST_Intersection({geometry}, ST_MakeEnvelope(-180, -{limit}, 180, "
                          f"{limit})) ELSE {geometry} END")
        expression = (f"ST_Transform({expression}, 'EPSG:4326', {quote_string(out_sr.crs)}, "
                      f"always_xy := true)")
    offset = query.max_allowable_offset
    if offset and table.schema.geometry_type not in POINT_TYPES:
        expression = f"ST_SimplifyPreserveTopology({expression}, {float(offset)!r})"
    return expression


def _out_extent(bounds: tuple[float, float, float, float], out_sr: SpatialRef
                ) -> tuple[float, float, float, float]:
    if out_sr.is_wgs84:
        return bounds
    xmin, ymin, xmax, ymax = bounds
    if out_sr.is_web_mercator:
        ymin, ymax = max(ymin, -MERCATOR_MAX_LAT), min(ymax, MERCATOR_MAX_LAT)
    outline = shapely.segmentize(box(xmin, ymin, xmax, ymax), max(xmax - xmin, ymax - ymin,
                                                                   1e-9) / 32)
    moved = transformer(WGS84.crs, out_sr.crs)
    xy = shapely.get_coordinates(outline)
    x, y = moved.transform(xy[:, 0], xy[:, 1])
    return float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))


# --- run ------------------------------------------------------------------------------------

def _skip_applied(query: Query, answers: SourceAnswers | None) -> Query:
    """Drop the steps a pass-through provider says it did (Koop's filtersApplied keys)."""
    if answers is None or not answers.filters_applied:
        return query
    applied = answers.filters_applied
    if "all" in applied:
        applied = applied | {"where", "geometry", "objectids", "projection", "offset", "limit",
                             "time"}
    changes: dict[str, Any] = {}
    if "where" in applied:
        changes["where"] = None
    if "geometry" in applied:
        changes["spatial"] = None
    if "objectids" in applied:
        changes["object_ids"] = None
    if "time" in applied:
        changes["time"] = None
    # "projection": the source answered in outSR already. The query keeps its out_sr, which
    # labels the answer (spatialReference, quantization); the geometries are not moved again
    # (see projected_at_source).
    if applied & {"offset", "resultoffset"}:
        changes["offset"] = 0
    if applied & {"limit", "resultrecordcount"}:
        changes["limit"] = None
    return replace(query, **changes)


APPLIED_PARAMETERS = {
    "where": ("where",),
    "geometry": ("geometry", "geometryType", "spatialRel", "inSR", "distance", "units"),
    "objectids": ("objectIds",),
    "time": ("time",),
    # outSR stays: the answer is labelled with it (its coordinates are not moved again).
    "projection": (),
    "outsr": (),
    "offset": ("resultOffset",),
    "resultoffset": ("resultOffset",),
    "limit": ("resultRecordCount",),
    "resultrecordcount": ("resultRecordCount",),
}


def without_applied(params: dict[str, str], table: LayerTable) -> dict[str, str]:
    """The request's parameters less those a pass-through source already applied.

    They are not even parsed: the source's answer may lack the fields they name.
    """
    answers = table.answers
    if answers is None or not answers.filters_applied:
        return params
    applied = answers.filters_applied
    names = set(APPLIED_PARAMETERS) if "all" in applied else applied
    dropped = {p for name in names for p in APPLIED_PARAMETERS.get(name, ())}
    return {key: value for key, value in params.items() if key not in dropped}


def projected_at_source(table: LayerTable) -> bool:
    """Whether a pass-through source answered in the query's outSR ("projection" applied):
    its rows' coordinates, and so their boxes, are in outSR already."""
    answers = table.answers
    return bool(answers and answers.filters_applied & {"projection", "outsr", "all"})


def _precomputed(query: Query, table: LayerTable) -> Result | None:
    """A provider's own count, extent or statistics answer the query without the table."""
    answers = table.answers
    if answers is None:
        return None
    out_sr = query.out_sr or WGS84
    if query.extent_only and answers.extent is not None and (
            not query.count_only or answers.count is not None):
        return Result(table, out_sr, count=answers.count if query.count_only else None,
                      extent=_out_extent(answers.extent, out_sr), extent_only=True)
    if query.count_only and not query.extent_only and answers.count is not None:
        return Result(table, out_sr, count=answers.count)
    if query.statistics and answers.statistics is not None:
        rows = pa.Table.from_pylist([dict(row) for row in answers.statistics])
        fields = tuple(Field(name, DOUBLE if pa.types.is_floating(rows.schema.field(name).type)
                             else INTEGER if pa.types.is_integer(rows.schema.field(name).type)
                             else STRING, name) for name in rows.column_names)
        page = Page("SELECT * FROM page_rows", (), fields, False, "1", rows=rows)
        return Result(table, out_sr, page=page, statistics=True)
    return None


def run(query: Query, table: LayerTable, limits: RecordLimits) -> Result:
    query = _skip_applied(query, table.answers)
    precomputed = _precomputed(query, table)
    if precomputed is not None:
        return precomputed
    schema = table.schema
    oid = quote_ident(schema.object_id_field)
    source = table.table_name
    filters = _filters(query, table)
    where_sql, params, relations = filters.sql, filters.params, filters.relations
    out_sr = query.out_sr or WGS84

    if query.statistics:
        return _statistics(query, table, filters, limits)

    if query.count_only or query.extent_only:
        count = extent = None
        selected = _selected_fields(query, table)
        if query.distinct:
            columns = ", ".join(quote_ident(f.name) for f in selected)
            (count,) = execute(f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM {source}"
                               f"{where_sql})", params, relations=relations).fetchone()
        elif query.extent_only:
            row = _extent_row(table, where_sql, params, relations)
            count = row[0]
            if row[1] is not None:
                extent = (tuple(row[1:]) if projected_at_source(table)
                          else _out_extent(tuple(row[1:]), out_sr))
        elif not where_sql:
            count = table.count  # every row: counted when the table was loaded
        else:
            (count,) = execute(f"SELECT count(*) FROM {source}{where_sql}", params,
                               relations=relations).fetchone()
        return Result(table, out_sr, count=int(count) if query.count_only else None,
                      extent=extent, extent_only=query.extent_only)

    order = _order(query, oid)
    if query.ids_only:
        ids = execute(f"SELECT {oid} FROM {source}{where_sql} ORDER BY {order}",
                      params, relations=relations).fetchnumpy()[schema.object_id_field]
        # A numpy array straight to JSON: no Python int per id (a million ids stay ~8 MB).
        text = orjson.dumps(np.asarray(ids, dtype=np.int64), option=orjson.OPT_SERIALIZE_NUMPY)
        return Result(table, out_sr, object_ids=text.decode(),
                      ids=np.asarray(ids, dtype=np.int64))

    if query.limit is not None and query.limit < 1:
        raise InvalidParameterError("resultRecordCount", "must be at least 1")
    limit = min(query.limit or limits.for_query(query), limits.for_query(query))
    fields = _selected_fields(query, table)
    columns = [quote_ident(f.name) for f in fields]
    source_limited = bool(table.answers and table.answers.limit_exceeded)
    # Whether rows exist past the page: from the table's count when nothing is filtered; else
    # from one row more read with the page itself (no second pass over the filter); only when
    # an answer over the limit must be empty (or distinct rows) with a statement first.
    more_after = None
    if not where_sql and not query.distinct:
        exceeded = source_limited or int(query.offset) + int(limit) < table.count
    elif query.object_ids is not None and len(query.object_ids) <= int(query.offset) + int(
            limit):
        exceeded = source_limited  # no more rows match than ids were asked for
    elif query.distinct:
        more_sql = (f"SELECT 1 FROM (SELECT DISTINCT {', '.join(columns)} FROM {source}"
                    f"{where_sql}) LIMIT 1 OFFSET {int(query.offset) + int(limit)}")
        exceeded = execute(more_sql, params, relations=relations).fetchone() is not None or (
            source_limited)
    else:
        # The extra row, seen by the output; over the limit without
        # returnExceededLimitFeatures (tile queries), the output then drops the page.
        exceeded = source_limited
        more_after = int(limit)
    if exceeded and not query.return_exceeded_limit_features:
        limit = 0  # ArcGIS: over the limit, no features and only the flag
    if query.distinct:
        distinct_order = ", ".join(
            _key(quote_ident(n), d) for n, d in query.order_by
            if any(f.name == n for f in fields)) or ", ".join(_key(c, False) for c in columns)
        page_sql = (f"SELECT DISTINCT {', '.join(columns)} FROM {source}{where_sql} "
                    f"ORDER BY {distinct_order} LIMIT {int(limit)} OFFSET {int(query.offset)}")
        page = Page(page_sql, params, fields, False, distinct_order, relations=relations,
                    size=int(limit))
    else:
        geometry = query.return_geometry and schema.geometry_type is not None
        centroid = (query.return_centroid and geometry
                    and schema.geometry_type == "esriGeometryPolygon")
        selected = list(columns)
        if geometry or centroid:
            expression = _geometry_sql(query, table)
            if geometry:
                selected.append(f"{expression} AS {G}")
            if centroid:
                selected.append(f"ST_Centroid({expression}) AS {quote_ident(CENTROID_COLUMN)}")
        keys = [f"{quote_ident(n)} AS {quote_ident(f'_koop_o{i}')}"
                for i, (n, _) in enumerate(query.order_by)]
        read = int(limit) + (1 if more_after is not None else 0)
        page_sql = (f"SELECT {', '.join(selected + keys)} FROM {source}{where_sql} "
                    f"ORDER BY {order} LIMIT {read} OFFSET {int(query.offset)}")
        # The same keys as the page's ORDER BY, the object id last: a total order, so the row
        # past the page is the last in it.
        render_order = ", ".join(
            [_key(quote_ident(f"_koop_o{i}"), d) for i, (_, d) in enumerate(query.order_by)]
            + [oid])
        page = Page(page_sql, params, fields, geometry, render_order, centroid,
                    relations=relations, more_after=more_after,
                    empty_if_more=not query.return_exceeded_limit_features, size=read)
    return Result(table, out_sr, page=page, exceeded_transfer_limit=exceeded,
                  quantization=query.quantization)


# count, min x, min y, max x, max y of each hot table's every row, by (key, version, table):
# clients ask for a layer's whole extent often, and a version never changes.
_whole_extents: dict[tuple[str, str, str], tuple[Any, ...]] = {}


def _extent_row(table: LayerTable, where_sql: str, params: tuple[Any, ...],
                relations: Mapping[str, pa.Table]) -> tuple[Any, ...]:
    memo = (table.key, table.version, table.table_name)
    if not where_sql and memo in _whole_extents:
        return _whole_extents[memo]
    row = execute(f"SELECT count(*), min({XMIN}), min({YMIN}), max({XMAX}), max({YMAX}) "
                  f"FROM {table.table_name}{where_sql}", params, relations=relations).fetchone()
    if not where_sql and table.answers is None:
        if len(_whole_extents) >= 1024:
            _whole_extents.clear()
        _whole_extents[memo] = tuple(row)
    return tuple(row)


def time_extent(table: LayerTable, start: str, end: str) -> tuple[Any, Any]:
    """The earliest ``start`` and the latest ``end`` of the layer (its timeInfo's extent)."""
    low, high = execute(f"SELECT min({quote_ident(start)}), max({quote_ident(end)}) "
                        f"FROM {table.table_name}").fetchone()
    return low, high


def _key(column: str, descending: bool) -> str:
    """One ORDER BY key with NULLs as ArcGIS Online (SQL Server) puts them: first ascending,
    last descending, as the smallest value (DuckDB's default is last both ways)."""
    return f"{column} DESC NULLS LAST" if descending else f"{column} ASC NULLS FIRST"


def _order(query: Query, oid: str) -> str:
    keys = [_key(quote_ident(name), desc) for name, desc in query.order_by]
    return ", ".join(keys + [oid])


def _selected_fields(query: Query, table: LayerTable) -> tuple[Field, ...]:
    schema = table.schema
    if query.out_fields is None:
        if query.distinct:
            raise InvalidParameterError("outFields",
                                        "returnDistinctValues needs the fields to list")
        return schema.fields
    wanted = {name.lower() for name in query.out_fields}
    if not query.distinct:
        wanted.add(schema.object_id_field.lower())  # ArcGIS always returns the object id
    return tuple(f for f in schema.fields if f.name.lower() in wanted)


def _statistics(query: Query, table: LayerTable, filters: Filters,
                limits: RecordLimits) -> Result:
    schema = table.schema
    selected: list[str] = []
    fields: list[Field] = []
    for name in query.group_by:
        found = schema.field(name)
        assert found is not None
        selected.append(quote_ident(found.name))
        fields.append(found)
    for stat in query.statistics:
        source_field = schema.field(stat.field) if stat.field != "*" else None
        argument = quote_ident(source_field.name) if source_field else "*"
        if stat.kind in AGGREGATE_SQL:
            expression = f"{AGGREGATE_SQL[stat.kind]}({argument})"
        else:
            share = 1 - stat.percentile if stat.descending else stat.percentile
            function = "quantile_cont" if stat.kind == "percentile_cont" else "quantile_disc"
            expression = f"{function}({argument}, {float(share)!r})"
        kind = _statistic_type(stat.kind, source_field)
        # Plain JSON numbers out: DuckDB's sums of integers are HUGEINT, averages DOUBLE.
        if kind in (INTEGER, DATE) and stat.kind not in ("min", "max", "percentile_disc"):
            expression = f"CAST(round({expression}) AS BIGINT)"
        elif kind == DOUBLE:
            expression = f"CAST({expression} AS DOUBLE)"
        selected.append(f"{expression} AS {quote_ident(stat.out_name)}")
        fields.append(Field(stat.out_name, kind, stat.out_name,
                            source_field.length if source_field and kind == source_field.type
                            else None))
    group = ""
    if query.group_by:
        group = " GROUP BY " + ", ".join(quote_ident(n) for n in query.group_by)
    having, having_params = "", ()
    if query.having is not None:
        having, having_params = f" HAVING {query.having.sql}", query.having.params
    order = ", ".join(
        [_key(quote_ident(n), d) for n, d in query.order_by]
        + [_key(quote_ident(n), False) for n in query.group_by]) or "1"
    limit = min(query.limit or limits.for_query(query), limits.for_query(query))
    inner = f"SELECT {', '.join(selected)} FROM {table.table_name}{filters.sql}{group}{having}"
    all_params = filters.params + tuple(having_params)
    # Aggregate answers are small: compute them once, one row past the page to learn whether
    # more exist, and let the output render these rows.
    if not query.group_by and not query.having and not query.offset:
        sql = inner  # one row, whatever the page: no sort, no cut
    else:
        sql = f"{inner} ORDER BY {order} LIMIT {int(limit) + 1} OFFSET {int(query.offset)}"
    rows = execute(sql, all_params, relations=filters.relations).to_arrow_table()
    exceeded = rows.num_rows > limit
    page = Page("SELECT * FROM page_rows", (), tuple(fields), False, order,
                rows=rows.slice(0, limit))
    return Result(table, page=page, exceeded_transfer_limit=exceeded, statistics=True)


def _statistic_type(kind: str, field: Field | None) -> str:
    if kind == "count":
        return INTEGER
    if field is None:
        return DOUBLE
    if field.type == DATE and kind in ("min", "max", "avg", "percentile_cont",
                                       "percentile_disc"):
        return DATE
    if kind in ("min", "max", "percentile_disc"):
        return field.type if field.type != "esriFieldTypeOID" else INTEGER
    return DOUBLE


# --- vector tiles ---------------------------------------------------------------------------

MVT_FEATURE_ID = "_koop_fid"
MVT_GEOMETRY = "_koop_mvt"
# The property types ST_AsMVT encodes: every field is cast to one (dates are epoch ms).
_MVT_TYPES = {INTEGER: "BIGINT", "esriFieldTypeOID": "BIGINT", "esriFieldTypeSmallInteger":
              "BIGINT", DATE: "BIGINT", DOUBLE: "DOUBLE", STRING: "VARCHAR"}


def mvt_layer(result: Result, name: str, bounds: tuple[float, float, float, float], *,
              extent: int = 4096, buffer: int = 64) -> tuple[bytes, int]:
    """One Mapbox Vector Tile layer named ``name`` of ``result``'s features, and their count.

    ``result`` is the answer of a query with ``outSR`` Web Mercator (a tile's envelope as
    ``geometry``, ``maxAllowableOffset`` its simplification); ``bounds`` is the tile's
    envelope in Web Mercator. DuckDB clips each geometry to the tile plus ``buffer`` (in tile
    units of ``extent``), snaps it to the grid and encodes the layer (ST_AsMVTGeom,
    ST_AsMVT): no Python touches a feature. Every field is a property (nulls are left out);
    the object id is also the feature's id. No feature in the tile: ``(b"", 0)``.
    """
    page = result.page
    if page is None or not page.geometry:
        raise ValueError("mvt_layer needs a page of features with geometries")
    oid = result.table.schema.object_id_field
    properties = [f"CAST({quote_ident(f.name)} AS {_MVT_TYPES.get(f.type, 'VARCHAR')}) "
                  f"AS {quote_ident(f.name)}" for f in page.fields]
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    box = f"ST_Extent(ST_MakeEnvelope({xmin!r}, {ymin!r}, {xmax!r}, {ymax!r}))"
    cut = f" LIMIT {int(page.more_after)}" if page.more_after is not None else ""
    rows = (f"SELECT {', '.join(properties)}, CAST({quote_ident(oid)} AS BIGINT) AS "
            f"{MVT_FEATURE_ID}, ST_AsMVTGeom({G}, {box}, {int(extent)}, {int(buffer)}, true) "
            f"AS {MVT_GEOMETRY} FROM ({page.sql}) AS page ORDER BY {page.order}{cut}")
    sql = (f"SELECT ST_AsMVT(tile, {quote_string(name)}, {int(extent)}, "
           f"{quote_string(MVT_GEOMETRY)}, {quote_string(MVT_FEATURE_ID)}), count(*) "
           f"FROM ({rows}) AS tile WHERE {MVT_GEOMETRY} IS NOT NULL")
    blob, count = execute(sql, page.params, page.rows, page.relations).fetchone()
    return (bytes(blob) if count else b""), int(count)
