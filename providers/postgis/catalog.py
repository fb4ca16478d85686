"""What a layer is, read from PostgreSQL's catalog: fields, geometry, id, extent, count.

``describe(server, id, id_field)`` answers for a table or view (``schema.table``) or a named
query of the connection, and keeps the answer briefly in this process (metadata only, never
rows): clients ask for a layer's info and its first query together, again and again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import box

from koop_app.data.schema import (
    DATE,
    DOUBLE,
    INTEGER,
    OID,
    SMALL_INTEGER,
    STRING,
    Field,
    LayerSchema,
)
from koop_app.errors import KoopError, NotFoundError
from koop_app.query.sr import WGS84, transformer

from .pools import Server

METADATA_SECONDS = 30.0
INT32_MAX = 2**31 - 1

# PostgreSQL type name -> Esri field type (booleans are SmallInteger 0/1, flagged boolean).
TYPES = {
    "int2": SMALL_INTEGER, "int4": INTEGER, "int8": DOUBLE, "oid": DOUBLE,
    "float4": DOUBLE, "float8": DOUBLE, "numeric": DOUBLE, "money": DOUBLE,
    "bool": SMALL_INTEGER,
    "date": DATE, "timestamp": DATE, "timestamptz": DATE,
    "text": STRING, "varchar": STRING, "bpchar": STRING, "name": STRING, "citext": STRING,
    "uuid": STRING, "json": STRING, "jsonb": STRING, "time": STRING, "timetz": STRING,
    "interval": STRING, "inet": STRING, "cidr": STRING, "macaddr": STRING, "xml": STRING,
}
# Column types whose non-null values normalize() types as declared when left to infer them:
# int4 -> Integer, float8/float4/numeric (sent as doubles) -> Double, bool -> boolean
# SmallInteger. Text is always declared (text that looks like dates would be read as dates).
INFERRED_AS_DECLARED = {"int4", "float4", "float8", "numeric", "money", "bool"}
TEXT_TYPES = {"text", "varchar", "bpchar", "name", "citext"}
TEMPORAL = {"date", "timestamp", "timestamptz"}
SKIPPED = {"bytea", "geography", "raster", "box2d", "box3d"}
GEOMETRY_TYPES = {
    "POINT": "esriGeometryPoint", "MULTIPOINT": "esriGeometryMultipoint",
    "LINESTRING": "esriGeometryPolyline", "MULTILINESTRING": "esriGeometryPolyline",
    "POLYGON": "esriGeometryPolygon", "MULTIPOLYGON": "esriGeometryPolygon",
}


def ident(name: str) -> str:
    """A quoted identifier: names come from the catalog, quoting keeps any spelling intact."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # the type's name in pg_type (int4, text, timestamptz, ...)
    esri: str

    @property
    def boolean(self) -> bool:
        return self.pg_type == "bool"

    @property
    def temporal(self) -> bool:
        return self.pg_type in TEMPORAL

    def select_sql(self) -> str:
        """The column as the answer carries it (dates as UTC epoch ms, numbers as doubles)."""
        col = ident(self.name)
        if self.temporal:
            return (f"CASE WHEN isfinite({col}) THEN CAST(extract(epoch FROM {col}) * 1000 "
                    f"AS bigint) END")
        if self.pg_type in ("numeric", "money", "int8", "oid") and self.esri == DOUBLE:
            return f"CAST({col} AS double precision)"
        if self.esri == STRING and self.pg_type not in TEXT_TYPES:
            return f"CAST({col} AS text)"
        return col

    def value_sql(self) -> str:
        """The column in a where clause, as the value where.py's kinds expect (dates stay
        timestamps: compared with bound timestamps, the table's indexes serve them)."""
        col = ident(self.name)
        if self.boolean:
            return f"CAST({col} AS integer)"
        if self.esri == STRING and self.pg_type not in TEXT_TYPES:
            return f"CAST({col} AS text)"
        return col

    def order_sql(self) -> str:
        """The column as an ORDER BY key: text in code point order, as the cached engine."""
        col = ident(self.name)
        if self.esri == STRING:
            return f'{self.value_sql()} COLLATE "C"'
        return col


@dataclass(frozen=True)
class LayerInfo:
    """One layer (table, view or named query) as the provider serves it."""

    source_sql: str  # what FROM reads: "schema"."table" or (SELECT ...) AS _koop_q
    columns: tuple[Column, ...]
    id_column: str | None  # an integer column with unique positive 32-bit values
    geometry_column: str | None
    geometry_type: str | None
    srid: int
    extent: tuple[float, float, float, float] | None  # WGS 84
    count_estimate: int | None
    name: str
    table: tuple[str, str] | None = None  # (schema, table) when it is a relation
    read_at: float = field(default_factory=time.monotonic)

    def column(self, name: str) -> Column | None:
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)

    def schema(self, dataset_metadata: dict[str, Any] | None = None) -> LayerSchema:
        """The layer's schema as where.py and the query parsers check requests against."""
        fields = tuple(Field(c.name, OID if c.name == self.id_column else c.esri, c.name,
                             256 if c.esri == STRING else None, c.boolean)
                       for c in self.columns)
        return LayerSchema(fields, self.id_column or "OBJECTID", self.geometry_type,
                           self.extent, dict(dataset_metadata or {}))

    def fields_metadata(self, inferred: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """The fields as a FeatureCollection's metadata declares them. Those in ``inferred``
        are left untyped: the engine types such a column itself, in one vectorised step, the
        same way (see INFERRED_AS_DECLARED), where a declared type converts value by value."""
        out = []
        for c in self.columns:
            kind = "Boolean" if c.boolean else c.esri
            if c.name == self.id_column:
                kind = INTEGER
            field: dict[str, Any] = {"name": c.name, "alias": c.name}
            if c.name not in inferred:
                field["type"] = kind
            out.append(field)
        return out

    def geometry_sql(self) -> str | None:
        """The geometry column as geometry (a geography column is cast)."""
        return None if self.geometry_column is None else ident(self.geometry_column)


_cache: dict[tuple[str, str, str], LayerInfo] = {}
_cache_lock = threading.Lock()


def forget() -> None:
    with _cache_lock:
        _cache.clear()


def describe(server: Server, layer_id: str, id_field: str = "") -> LayerInfo:
    """The LayerInfo of ``layer_id`` on ``server`` (NotFoundError when there is none)."""
    key = (f"{server.name}:{id(server)}", layer_id, id_field)
    with _cache_lock:
        known = _cache.get(key)
    if known is not None and time.monotonic() - known.read_at < METADATA_SECONDS:
        return known
    info = _read(server, layer_id, id_field)
    with _cache_lock:
        if len(_cache) > 512:
            _cache.clear()
        _cache[key] = info
    return info


def named_queries(server: Server) -> dict[str, dict[str, Any]]:
    """The connection's named queries: {"name": "SELECT ..."} or {"name": {"sql": ...,
    "id_field": ..., "geometry_column": ...}}."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in (server.settings.get("queries") or {}).items():
        if isinstance(value, str):
            out[str(name)] = {"sql": value}
        elif isinstance(value, dict) and isinstance(value.get("sql"), str):
            out[str(name)] = dict(value)
    return out


def _not_found(layer_id: str) -> NotFoundError:
    return NotFoundError("No such table or query on this server.",
                         details=[f"{layer_id!r}: expected schema.table or a named query"])


def _read(server: Server, layer_id: str, id_field: str) -> LayerInfo:
    queries = named_queries(server)
    if layer_id in queries:
        spec = queries[layer_id]
        sql = spec["sql"].strip().rstrip(";")
        return _read_query(server, layer_id, f"({sql}) AS _koop_q",
                           str(spec.get("id_field") or id_field),
                           str(spec.get("geometry_column") or ""))
    schema_name, dot, table = layer_id.partition(".")
    if not dot or not schema_name or not table:
        raise _not_found(layer_id)
    if server.schemas is not None and schema_name not in server.schemas:
        raise _not_found(layer_id)
    if server.schemas is None and (schema_name in ("pg_catalog", "information_schema")
                                   or schema_name.startswith("pg_")):
        raise _not_found(layer_id)
    found = server.rows(
        "SELECT c.oid, c.reltuples::bigint, c.relkind FROM pg_class c JOIN pg_namespace n ON "
        "n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN "
        "('r', 'v', 'm', 'p', 'f') AND has_table_privilege(c.oid, 'SELECT')",
        (schema_name, table))
    if not found:
        raise _not_found(layer_id)
    oid, reltuples, _ = found[0]
    attributes = server.rows(
        "SELECT a.attname, t.typname, a.attnum = ANY(coalesce(i.indkey::int2[], '{}')) "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
        "AND i.indnatts = 1 "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (oid,))
    source = f"{ident(schema_name)}.{ident(table)}"
    primary = next((name for name, _, is_pk in attributes if is_pk), None)
    info = _build(server, layer_id, source, [(n, t) for n, t, _ in attributes],
                  id_field or primary or "", "", relation=(schema_name, table))
    count = int(reltuples) if reltuples is not None and reltuples >= 0 else None
    return _replace(info, count_estimate=count)


def _read_query(server: Server, name: str, source: str, id_field: str, geometry: str
                ) -> LayerInfo:
    with server.cursor() as cur:
        cur.execute(f"SELECT * FROM {source} LIMIT 0")
        description = cur.description or []
        oids = [c.type_code for c in description]
        cur.execute("SELECT oid, typname FROM pg_type WHERE oid = ANY(%s)", (oids,))
        names = dict(cur.fetchall())
    columns = [(c.name, names.get(c.type_code, "")) for c in description]
    return _build(server, name, source, columns, id_field, geometry, relation=None)


def _replace(info: LayerInfo, **changes: Any) -> LayerInfo:
    from dataclasses import replace

    return replace(info, **changes)


def _build(server: Server, layer_id: str, source: str, attributes: list[tuple[str, str]],
           id_field: str, geometry_name: str, relation: tuple[str, str] | None) -> LayerInfo:
    geometry_columns = [n for n, t in attributes if t == "geometry"]
    geometry = next((n for n in geometry_columns if n == geometry_name),
                    geometry_columns[0] if geometry_columns else None)
    columns = tuple(Column(n, t, TYPES.get(t, STRING)) for n, t in attributes
                    if t not in SKIPPED and t != "geometry" and not t.startswith("_"))
    id_column = _id_column(server, source, columns, id_field)
    geometry_type, srid, extent = None, 4326, None
    if geometry is not None:
        geometry_type, srid = _geometry_kind(server, source, geometry, relation)
        extent = _extent(server, source, geometry, srid, relation)
    return LayerInfo(source, columns, id_column, geometry, geometry_type, srid, extent, None,
                     layer_id, relation)


def _id_column(server: Server, source: str, columns: tuple[Column, ...], wanted: str
               ) -> str | None:
    """The id column: integer, and its values positive 32-bit integers (checked once, cheap
    on a key's index); None when there is no such column."""
    found = next((c for c in columns if c.name.lower() == wanted.lower()), None) if wanted \
        else None
    if found is None or found.pg_type not in ("int2", "int4", "int8"):
        return None
    low, high = server.rows(f"SELECT min({ident(found.name)}), max({ident(found.name)}) "
                            f"FROM {source}")[0]
    if low is not None and (low < 1 or high > INT32_MAX):
        return None
    return found.name


def _geometry_kind(server: Server, source: str, column: str,
                   relation: tuple[str, str] | None) -> tuple[str | None, int]:
    kind, srid = "GEOMETRY", 0
    if relation is not None:
        rows = server.rows("SELECT type, srid FROM geometry_columns WHERE f_table_schema = %s "
                           "AND f_table_name = %s AND f_geometry_column = %s",
                           (relation[0], relation[1], column))
        if rows:
            kind, srid = str(rows[0][0]).upper(), int(rows[0][1] or 0)
    kind = kind.rstrip("M").removesuffix("Z") if kind not in GEOMETRY_TYPES else kind
    if kind not in GEOMETRY_TYPES or not srid:
        # An unconstrained column (or a query): its first geometry says.
        sample = server.rows(f"SELECT upper(GeometryType({ident(column)})), "
                             f"ST_SRID({ident(column)}) FROM {source} "
                             f"WHERE {ident(column)} IS NOT NULL LIMIT 1")
        if sample:
            if kind not in GEOMETRY_TYPES:
                kind = str(sample[0][0]).rstrip("M")
            srid = srid or int(sample[0][1] or 0)
    return GEOMETRY_TYPES.get(kind), srid or 4326


def _extent(server: Server, source: str, column: str, srid: int,
            relation: tuple[str, str] | None) -> tuple[float, float, float, float] | None:
    """The layer's extent in WGS 84: the planner's estimate when the table has statistics
    (instant), else computed."""
    row = None
    if relation is not None:
        try:
            row = server.rows(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_EstimatedExtent(%s, %s, %s) AS e) AS x", (*relation, column))[0]
        except KoopError:  # no statistics yet (never analysed): computed below
            row = None
    if row is None or row[0] is None:
        row = server.rows(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                          f"(SELECT ST_Extent({ident(column)}) AS e FROM {source}) AS x")[0]
    if row[0] is None:
        return None
    return to_wgs84_box(tuple(float(v) for v in row), srid)  # type: ignore[arg-type]


def to_wgs84_box(bounds: tuple[float, float, float, float], srid: int
                 ) -> tuple[float, float, float, float]:
    """A box in ``srid`` as a WGS 84 box (its outline densified, as the engine does)."""
    if srid == 4326:
        return bounds
    xmin, ymin, xmax, ymax = bounds
    outline = shapely.segmentize(box(xmin, ymin, xmax, ymax),
                                 max(xmax - xmin, ymax - ymin, 1e-9) / 32)
    xy = shapely.get_coordinates(outline)
    x, y = transformer(f"EPSG:{srid}", WGS84.crs).transform(xy[:, 0], xy[:, 1])
    return float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))
