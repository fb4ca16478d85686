"""PostGIS, passed through: each query becomes one SQL statement run by the database.

``/postgis/rest/services/<connection>/<schema.table | named query>/FeatureServer/0/query``

The request's parameters are checked as for any layer (same 400s), against the table's
fields read from the catalog; then every step is written into one statement with bound
parameters and reported in ``filtersApplied``, so the engine only encodes what comes back:
where, geometry (+ distance), objectIds, time, ordering, paging, outSR (ST_Transform),
returnCountOnly, returnExtentOnly, returnIdsOnly, returnDistinctValues, outStatistics with
groupByFieldsForStatistics and havingClause.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import shapely

from koop_app.errors import InvalidParameterError
from koop_app.provider import Provider, ProviderRequest
from koop_app.query.engine import POINT_TYPES, RecordLimits
from koop_app.query.params import parse_query
from koop_app.query.params.geometry import UNITS_IN_METERS, parse_spatial_filter
from koop_app.query.query import Query
from koop_app.query.sr import MERCATOR_MAX_LAT
from koop_app.query.where import checked_tree, tree_of_checked

from . import catalog, pools
from .catalog import Column, LayerInfo, ident
from .where import Sql, emit_condition

GEOMETRY_DIGITS = 15  # ST_AsGeoJSON's decimals: past a double's precision for degrees and metres
AGGREGATE_SQL = {"count": "count", "sum": "sum", "min": "min", "max": "max", "avg": "avg",
                 "stddev": "stddev_samp", "var": "var_samp"}


@dataclass
class Statement:
    """A WHERE clause being built: its parts and their parameters, in order."""

    parts: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, sql: str, *params: Any) -> None:
        self.parts.append(sql)
        self.params.extend(params)

    @property
    def sql(self) -> str:
        return (" WHERE " + " AND ".join(f"({p})" for p in self.parts)) if self.parts else ""


def _utc(ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)


class PostGISProvider(Provider):
    """``/postgis/rest/services/<connection>/<schema.table>/FeatureServer``: a PostGIS table,
    view or named query, asked on every request with the query pushed down into SQL."""

    name = "postgis"
    title = "PostGIS table or query (pass-through)"
    description = ("A table, view or named query of a configured PostgreSQL/PostGIS "
                   "connection (Host: the connection's name; Id: schema.table or the query's "
                   "name). Every query runs in the database: nothing is copied.")
    version = "1.0.0"
    hosts = True
    connection_hosts = True  # the host names a server of KOOP["CONNECTIONS"]["postgis"]
    cache_policy = "pass-through"

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        server = pools.server(request.host)
        dataset = request.dataset
        info = catalog.describe(server, request.id or "",
                                getattr(dataset, "id_field", "") or "")
        method = request.params.get("method")
        if method == "query":
            return QueryAnswer(server, info, request).answer()
        if method == "feature":
            found = _feature_id(request)
            if found is not None:
                return QueryAnswer(server, info, request).one(found)
        return self.info_answer(info)

    @staticmethod
    def info_answer(info: LayerInfo) -> dict[str, Any]:
        """The layer without rows: fields, geometry type, id field and extent, from the
        catalog (service and layer info, the admin's preview)."""
        metadata = _metadata(info)
        if info.extent is not None:
            metadata["extent"] = list(info.extent)
        answer: dict[str, Any] = {"type": "FeatureCollection", "features": [],
                                  "metadata": metadata}
        if info.count_estimate is not None:
            answer["count"] = info.count_estimate  # the planner's estimate, for info only
        return answer


def _feature_id(request: ProviderRequest) -> int | None:
    match = getattr(request.http_request, "resolver_match", None)
    text = str((match.kwargs if match else {}).get("object_id") or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else None


def _metadata(info: LayerInfo) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": info.name, "fields": info.fields_metadata()}
    if info.geometry_type:
        metadata["geometryType"] = info.geometry_type
    if info.id_column:
        metadata["idField"] = info.id_column
    return metadata


class QueryAnswer:
    """One query request, answered by one statement."""

    def __init__(self, server: pools.Server, info: LayerInfo, request: ProviderRequest
                 ) -> None:
        self.server, self.info, self.request = server, info, request
        self.dataset = request.dataset
        self.case_sensitive = bool(getattr(self.dataset, "case_sensitive_strings", False))
        self.schema = info.schema()
        self.raw = request.query
        # Every parameter checked as the engine checks it, against the catalog's fields.
        self.query: Query = parse_query(self.raw, self.schema,
                                        case_sensitive=self.case_sensitive)
        self.columns = {c.name: c for c in info.columns}

    # --- the pieces --------------------------------------------------------------------------

    def filters(self, *, scan: bool = False) -> Statement:
        """The WHERE clause. ``scan``: the statement reads every match (a count, statistics,
        ids), so points in a box are selected the fastest way, whatever the estimates."""
        q, info = self.query, self.info
        out = Statement()
        if q.where is not None:
            tree = checked_tree(self.raw.get("where"), self.schema,
                                case_sensitive=self.case_sensitive)
            if tree is not None:
                clause = emit_condition(tree, self.columns, case_sensitive=self.case_sensitive)
                out.add(clause.text, *clause.params)
        if q.object_ids is not None:
            if info.id_column is None:
                raise InvalidParameterError(
                    "objectIds", "this PostgreSQL layer has no integer key to select by: give "
                    "the table a primary key, or set the dataset's id field")
            out.add(f"{ident(info.id_column)} = ANY(%s)", list(q.object_ids))
        if q.spatial is not None:
            if info.geometry_column is None:
                raise InvalidParameterError("geometry", "this layer has no geometry")
            self._spatial(out, scan)
        if q.time is not None:
            self._time(out)
        return out

    def _query_geometry(self, geometry: shapely.Geometry) -> Sql:
        wkb = shapely.to_wkb(geometry)
        if self.info.srid == 4326:
            return Sql("ST_GeomFromWKB(%s, 4326)", (wkb,))
        # The query's geometry is moved to the column's reference, never the column: the
        # table's GiST index then serves the predicate.
        return Sql(f"ST_Transform(ST_GeomFromWKB(%s, 4326), {int(self.info.srid)})", (wkb,))

    def _spatial(self, out: Statement, scan: bool) -> None:
        spatial = self.query.spatial
        assert spatial is not None
        g = ident(self.info.geometry_column or "")
        relation = spatial.relation
        meters = self._buffer_meters()
        if meters and relation in ("intersects", "envelope"):
            # Within a distance: the buffered outline's box on the index, then the exact
            # geodesic distance to the unbuffered geometry.
            bare = parse_spatial_filter({**self.raw, "distance": ""})
            assert bare is not None
            box = self._query_geometry(shapely.box(*spatial.bbox))
            target = self._query_geometry(bare.geometry)
            column = g if self.info.srid == 4326 else f"ST_Transform({g}, 4326)"
            target_4326 = Sql("ST_GeomFromWKB(%s, 4326)", (shapely.to_wkb(bare.geometry),))
            out.add(f"{g} && {box.text} AND ST_DWithin(CAST({column} AS geography), "
                    f"CAST({target_4326.text} AS geography), %s)",
                    *box.params, *target_4326.params, meters)
            del target
            return
        if (scan and relation in ("envelope", "intersects") and spatial.is_box
                and self.info.srid == 4326 and self.info.geometry_type == "esriGeometryPoint"):
            # Points in a box: the index's && (boxes rounded outward to float4) and the exact
            # coordinates; 4-5x faster than ST_Intersects over millions of rows. Not for pages:
            # the planner underestimates the BETWEENs and would sort every match, where with
            # ST_Intersects (estimated from the column's statistics) it walks the key's order.
            xmin, ymin, xmax, ymax = spatial.bbox
            out.add(f"{g} && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND ST_X({g}) BETWEEN %s "
                    f"AND %s AND ST_Y({g}) BETWEEN %s AND %s",
                    xmin, ymin, xmax, ymax, xmin, xmax, ymin, ymax)
            return
        if relation == "envelope":
            box = self._query_geometry(shapely.box(*spatial.bbox))
            out.add(f"{g} && {box.text} AND ST_Intersects(ST_Envelope({g}), {box.text})",
                    *box.params, *box.params)
            return
        query_geometry = self._query_geometry(spatial.geometry)
        if relation == "intersects":
            out.add(f"ST_Intersects({g}, {query_geometry.text})", *query_geometry.params)
            return
        # The query geometry is the first argument, as ArcGIS reads spatialRel: "within"
        # selects features the query geometry lies within.
        function = {"contains": "ST_Contains", "within": "ST_Within", "crosses": "ST_Crosses",
                    "overlaps": "ST_Overlaps", "touches": "ST_Touches"}[relation]
        out.add(f"{function}({query_geometry.text}, {g})", *query_geometry.params)

    def _buffer_meters(self) -> float:
        text = (self.raw.get("distance") or "").strip()
        if not text:
            return 0.0
        unit = (self.raw.get("units") or "esriSRUnit_Meter").strip().lower()
        return float(text) * UNITS_IN_METERS[unit]

    def _time(self, out: Statement) -> None:
        assert self.query.time is not None
        start_name = getattr(self.dataset, "start_time_field", "") or ""
        end_name = getattr(self.dataset, "end_time_field", "") or start_name
        start, end = self.info.column(start_name), self.info.column(end_name)
        if start is None or end is None:
            return  # no timeInfo: no time filter, as the engine does
        low, high = self.query.time
        for column, bound, operator in ((start, high, "<="), (end, low, ">=")):
            if bound is None:
                continue
            if column.temporal:
                out.add(f"{ident(column.name)} {operator} %s", _utc(bound))
            else:
                out.add(f"{column.value_sql()} {operator} %s", bound)

    def limit(self) -> int:
        limits = RecordLimits.for_layer(
            self.dataset.effective_max_record_count if self.dataset else 1000,
            self.info.geometry_type)
        most = limits.for_query(self.query)
        return min(self.query.limit or most, most)

    def order(self) -> str:
        """ORDER BY keys: the asked ones, NULLs as ArcGIS puts them, the id last."""
        keys = []
        for name, descending in self.query.order_by:
            column = self.info.column(name)
            if column is not None:
                keys.append(_key(column.order_sql(), descending))
        if self.info.id_column:
            keys.append(ident(self.info.id_column))
        return ", ".join(keys)

    def selected(self) -> list[Column]:
        """The answer's columns: outFields, the id, and the ordering's fields (the engine
        orders the page again)."""
        q = self.query
        if q.out_fields is None:
            return list(self.info.columns)
        wanted = {name.lower() for name in q.out_fields}
        wanted |= {name.lower() for name, _ in q.order_by}
        if self.info.id_column:
            wanted.add(self.info.id_column.lower())
        return [c for c in self.info.columns if c.name.lower() in wanted]

    def distinct_columns(self) -> list[Column]:
        """returnDistinctValues: the outFields alone (no id is added to distinct rows)."""
        wanted = {n.lower() for n in self.query.out_fields or ()}
        return [c for c in self.info.columns if not wanted or c.name.lower() in wanted]

    def out_srid(self) -> int | None:
        """The outSR as an SRID PostGIS knows, when the answer is to be projected."""
        out_sr = self.query.out_sr
        if out_sr is None or out_sr.is_wgs84 or not out_sr.crs.startswith("EPSG:"):
            return None
        srid = int(out_sr.crs.removeprefix("EPSG:"))
        if srid not in self.server.srids:
            rows = self.server.rows("SELECT count(*) FROM spatial_ref_sys WHERE srid = %s",
                                    (srid,))
            self.server.srids[srid] = bool(rows[0][0])
        return srid if self.server.srids[srid] else None

    def geometry_out(self, column: str, srid: int | None) -> str:
        """The output geometry from ``column``: 2D, in outSR (or WGS 84), simplified."""
        info = self.info
        expression = column
        target = srid or 4326
        if info.srid != target:
            wgs84 = column if info.srid == 4326 else f"ST_Transform({column}, 4326)"
            if target == 3857:
                # Web Mercator is undefined at the poles: clip what reaches past its latitude,
                # as the engine does.
                limit = MERCATOR_MAX_LAT
                wgs84 = (f"CASE WHEN ST_YMax({wgs84}) > {limit} OR ST_YMin({wgs84}) < -{limit} "
                         f"THEN ST_Intersection({wgs84}, ST_MakeEnvelope(-180, -{limit}, 180, "
                         f"{limit}, 4326)) ELSE {wgs84} END")
            expression = wgs84 if target == 4326 else f"ST_Transform({wgs84}, {int(target)})"
        expression = f"ST_Force2D({expression})"
        offset = self.query.max_allowable_offset
        if offset and info.geometry_type not in POINT_TYPES:
            expression = f"ST_SimplifyPreserveTopology({expression}, {float(offset)!r})"
        return expression

    # --- the answers -------------------------------------------------------------------------

    def base(self, applied: dict[str, bool], **members: Any) -> dict[str, Any]:
        return {"type": "FeatureCollection", "features": members.pop("features", []),
                "metadata": {**_metadata(self.info), **members.pop("metadata", {})},
                "filtersApplied": applied, **members}

    def answer(self) -> dict[str, Any]:
        q = self.query
        filters = self.filters(scan=bool(q.statistics or q.count_only or q.extent_only
                                         or q.ids_only))
        applied = {"where": True, "geometry": True, "objectIds": True, "time": True}
        if q.statistics:
            return self.base(applied, statistics=self.statistics(filters))
        if q.count_only or q.extent_only:
            return self.count_and_extent(filters, applied)
        if q.ids_only:
            return self.ids(filters, applied)
        if q.distinct:
            return self.distinct(filters, applied)
        return self.page(filters, applied)

    def count_and_extent(self, filters: Statement, applied: dict[str, bool]) -> dict[str, Any]:
        q, info = self.query, self.info
        source = info.source_sql
        if q.distinct:
            columns = ", ".join(c.select_sql() for c in self.distinct_columns())
            sql = (f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM {source}"
                   f"{filters.sql}) AS d")
            (count,), = self.server.rows(sql, filters.params)
            return self.base(applied, count=int(count))
        if not q.extent_only or info.geometry_column is None:
            (count,), = self.server.rows(f"SELECT count(*) FROM {source}{filters.sql}",
                                         filters.params)
            return self.base(applied, count=int(count))
        g = ident(info.geometry_column)
        row = self.server.rows(
            f"SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT count(*) "
            f"AS n, ST_Extent({g}) AS e FROM {source}{filters.sql}) AS x", filters.params)[0]
        members: dict[str, Any] = {"count": int(row[0])}
        if row[1] is not None:
            members["extent"] = list(catalog.to_wgs84_box(tuple(float(v) for v in row[1:]),
                                                          info.srid))
        return self.base(applied, **members)

    def ids(self, filters: Statement, applied: dict[str, bool]) -> dict[str, Any]:
        info = self.info
        if info.id_column is None:
            raise InvalidParameterError(
                "returnIdsOnly", "this PostgreSQL layer has no integer key: give the table "
                "a primary key, or set the dataset's id field")
        columns = [info.column(info.id_column)] + [
            c for name, _ in self.query.order_by
            if (c := info.column(name)) is not None and c.name != info.id_column]
        sql = (f"SELECT {', '.join(f'{c.select_sql()} AS {ident(c.name)}' for c in columns)} "
               f"FROM {info.source_sql}{filters.sql} ORDER BY {self.order()}")
        with self.server.cursor() as cur:
            cur.execute(sql, filters.params)
            names = [c.name for c in columns]
            features = [{"type": "Feature", "properties": dict(zip(names, row, strict=True)),
                         "geometry": None} for row in cur]
        return self.base(applied, features=features)

    def distinct(self, filters: Statement, applied: dict[str, bool]) -> dict[str, Any]:
        q, info = self.query, self.info
        columns = self.distinct_columns()
        limit = self.limit()
        chosen = {c.name.lower() for c in columns}
        keys = [(n, d) for n, d in q.order_by if n.lower() in chosen] or [
            (c.name, False) for c in columns]
        order = ", ".join(_key(_named(n, info.column(n)), d) for n, d in keys)
        inner = ", ".join(f"{c.select_sql()} AS {ident(c.name)}" for c in columns)
        sql = (f"SELECT * FROM (SELECT DISTINCT {inner} FROM {info.source_sql}{filters.sql}) "
               f"AS d ORDER BY {order} LIMIT %s OFFSET %s")
        rows = self.server.rows(sql, [*filters.params, limit + 1, q.offset], parallel=False)
        names = [c.name for c in columns]
        # Distinct rows are no features: numbered here, so that no ids are assigned for them.
        number = "_koop_row" if info.id_column is None or info.id_column.lower() in chosen \
            else info.id_column
        features = [{"type": "Feature", "geometry": None,
                     "properties": {**dict(zip(names, row, strict=True)),
                                    **({number: i + 1} if number.lower() not in chosen
                                       else {})}}
                    for i, row in enumerate(rows[:limit])]
        metadata = {"limitExceeded": len(rows) > limit}
        if number == "_koop_row":
            metadata["idField"] = number
        return self.base({**applied, "offset": True, "limit": True}, features=features,
                         metadata=metadata)

    def page(self, filters: Statement, applied: dict[str, bool]) -> dict[str, Any]:
        q, info = self.query, self.info
        columns = self.selected()
        limit = self.limit()
        geometry = q.return_geometry and info.geometry_column is not None
        inner_columns = [ident(c.name) for c in columns]
        if geometry:
            inner_columns.append(f"{ident(info.geometry_column or '')} AS _koop_g")
        order = self.order()
        inner = (f"SELECT {', '.join(inner_columns) or '1'} FROM {info.source_sql}"
                 f"{filters.sql}{' ORDER BY ' + order if order else ''} LIMIT %s OFFSET %s")
        params = [*filters.params, limit + 1, q.offset]
        srid = self.out_srid() if geometry else None
        outputs = [f"{c.select_sql()} AS {ident(c.name)}" for c in columns]
        points = info.geometry_type == "esriGeometryPoint"
        if geometry and points:
            # Points as two doubles: exact, and no text to parse.
            outputs += ["_koop_x", "_koop_y"]
            shaped = self.geometry_out("p._koop_g", srid)
            mid = ", ".join([*(ident(c.name) for c in columns),
                             "CASE WHEN ST_IsEmpty(_koop_e) THEN NULL ELSE ST_X(_koop_e) END "
                             "AS _koop_x",
                             "CASE WHEN ST_IsEmpty(_koop_e) THEN NULL ELSE ST_Y(_koop_e) END "
                             "AS _koop_y"])
            sql = (f"SELECT {', '.join(outputs)} FROM (SELECT {mid} FROM (SELECT p.*, {shaped} "
                   f"AS _koop_e FROM ({inner}) AS p OFFSET 0) AS e) AS o")
        elif geometry:
            digits = GEOMETRY_DIGITS if q.geometry_precision is None else min(
                GEOMETRY_DIGITS, q.geometry_precision + 1)
            outputs.append(f"ST_AsGeoJSON({self.geometry_out('p._koop_g', srid)}, {digits})")
            sql = f"SELECT {', '.join(outputs)} FROM ({inner}) AS p"
        else:
            sql = f"SELECT {', '.join(outputs) or '1'} FROM ({inner}) AS p"
        names = [c.name for c in columns]
        count = len(names)
        features = []
        with self.server.cursor(parallel=False) as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        for row in rows[:limit]:
            shape = None
            if geometry and points:
                if row[count] is not None:
                    shape = {"type": "Point", "coordinates": [row[count], row[count + 1]]}
            elif geometry and row[count] is not None:
                shape = _loads(row[count])
            features.append({"type": "Feature", "properties": dict(zip(names, row[:count],
                                                                      strict=True)),
                             "geometry": shape})
        applied = {**applied, "offset": True, "limit": True}
        if srid is not None:
            applied["projection"] = True
        # Columns the engine may type itself (faster): those of a self-evident type with a
        # value in this answer (a column of nulls alone must be declared).
        inferred = frozenset(
            c.name for i, c in enumerate(columns)
            if c.pg_type in catalog.INFERRED_AS_DECLARED
            and any(row[i] is not None for row in rows))
        return self.base(applied, features=features,
                         metadata={"limitExceeded": len(rows) > limit,
                                   "fields": info.fields_metadata(inferred)})

    def one(self, object_id: int) -> dict[str, Any]:
        """``/FeatureServer/0/<id>``: the feature by its key (the engine selects it again)."""
        info = self.info
        if info.id_column is None:
            return PostGISProvider.info_answer(info)
        filters = Statement()
        filters.add(f"{ident(info.id_column)} = %s", object_id)
        self.query = Query(out_sr=self.query.out_sr)
        answer = self.page(filters, {})
        answer["filtersApplied"] = {}
        return answer

    def statistics(self, filters: Statement) -> list[dict[str, Any]]:
        q, info = self.query, self.info
        selected: list[str] = []
        names: list[str] = []
        for name in q.group_by:
            column = info.column(name)
            assert column is not None
            selected.append(f"{column.select_sql()} AS {ident(column.name)}")
            names.append(column.name)
        for stat in q.statistics:
            column = info.column(stat.field) if stat.field != "*" else None
            selected.append(f"{_statistic_sql(stat, column)} AS {ident(stat.out_name)}")
            names.append(stat.out_name)
        params = list(filters.params)
        group = ""
        if q.group_by:
            group = " GROUP BY " + ", ".join(str(i + 1) for i in range(len(q.group_by)))
        having = ""
        if q.having is not None:
            text = self.raw.get("havingClause") or ""
            tree = tree_of_checked(text)  # checked as the Query's having
            clause = emit_condition(tree, self.columns, case_sensitive=self.case_sensitive,
                                    parameter="havingClause", aggregates=True)
            having = f" HAVING {clause.text}"
            params.extend(clause.params)
        outputs = {n.lower(): n for n in names}
        grouped = {n.lower() for n in q.group_by}
        keys = []
        for name, descending in q.order_by:
            found = outputs.get(name.lower())
            if found is not None:
                column = info.column(found) if found.lower() in grouped else None
                keys.append(_key(_named(found, column), descending))
        keys += [_key(_named(n, info.column(n)), False) for n in q.group_by]
        limit = self.limit()
        sql = (f"SELECT * FROM (SELECT {', '.join(selected)} FROM {info.source_sql}"
               f"{filters.sql}{group}{having}) AS s"
               f"{' ORDER BY ' + ', '.join(keys) if keys else ''} LIMIT %s OFFSET %s")
        rows = self.server.rows(sql, [*params, limit, q.offset])
        return [dict(zip(names, row, strict=True)) for row in rows]


def _key(expression: str, descending: bool) -> str:
    """An ORDER BY key with NULLs where ArcGIS puts them: first ascending, last descending."""
    return f"{expression} DESC NULLS LAST" if descending else f"{expression} ASC NULLS FIRST"


def _named(name: str, column: Column | None) -> str:
    """An output column by its name, text in code point order."""
    text = column is not None and column.esri == "esriFieldTypeString"
    return ident(name) + (' COLLATE "C"' if text else "")


def _statistic_sql(stat: Any, column: Column | None) -> str:
    if column is None:
        return "count(*)"
    if column.temporal:
        value = f"(extract(epoch FROM {ident(column.name)}) * 1000)"
    elif column.esri == "esriFieldTypeDouble":
        value = f"CAST({ident(column.name)} AS double precision)"
    else:
        value = column.value_sql()
    text = column.esri == "esriFieldTypeString"
    if stat.kind == "count":
        return f"count({value})"
    if stat.kind in ("min", "max"):
        if text:
            return f'{stat.kind}({value} COLLATE "C")'
        expression = f"{stat.kind}({value})"
        return f"CAST(round({expression}) AS bigint)" if column.temporal else expression
    if stat.kind.startswith("percentile"):
        share = 1 - stat.percentile if stat.descending else stat.percentile
        function = "percentile_cont" if stat.kind == "percentile_cont" else "percentile_disc"
        collate = ' COLLATE "C"' if text else ""
        expression = (f"{function}({float(share)!r}) WITHIN GROUP (ORDER BY {value}{collate})")
        if column.temporal:
            return f"CAST(round({expression}) AS bigint)"
        return expression if text or stat.kind == "percentile_disc" else \
            f"CAST({expression} AS double precision)"
    expression = f"{AGGREGATE_SQL[stat.kind]}({value})"
    if column.temporal and stat.kind == "avg":
        return f"CAST(round({expression}) AS bigint)"
    return f"CAST({expression} AS double precision)"


def _loads(text: str) -> Any:
    import orjson

    return orjson.loads(text)
