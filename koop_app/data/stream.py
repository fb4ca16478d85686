"""A GeoJSON features array on disk -> one normalised layer, in DuckDB, batch by batch.

The same typing rules as ``normalize`` (which handles dicts), applied in SQL over the whole
file, so that memory is bounded by a batch and not by the file:

    raw     read_json of the array: id, geometry and properties kept as JSON text
    keys    property names in order of first appearance, renamed as normalize does
    kinds   per name, which JSON types its values have (one parse of each properties object)
    typed   properties parsed once into a STRUCT typed from those kinds, geometry parsed
    stats   min/max, ISO-date checks, lengths, distinct counts -> Esri types and the schema
    out     typed columns, object ids, WKB and bounding boxes, streamed as Arrow batches

Everything lives in an in-memory DuckDB database with a memory limit and a spill directory:
large files spill to disk instead of growing the process (an on-disk database would write
every staged table to disk, small files included).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from koop_app.data import duck, ids
from koop_app.data import geometry_sql as geom
from koop_app.data.columns import (
    ISO_SQL,
    KIND_BOOL,
    KIND_CODE,
    KIND_FLOAT,
    KIND_INT,
    KIND_TEXT,
    Column,
    value_sql,
)
from koop_app.data.normalize import (
    BBOX_COLUMNS,
    ENUM_MAX_VALUES,
    ENUM_MIN_ROWS,
    GEOMETRY_COLUMN,
    MIN_STRING_LENGTH,
    Overrides,
    _column_name,
    _declared_fields,
    _layer_metadata,
)
from koop_app.data.progress import Progress
from koop_app.data.schema import (
    ARROW_TYPES,
    DATE,
    DOUBLE,
    INTEGER,
    OID,
    SMALL_INTEGER,
    STRING,
    Field,
    LayerSchema,
)
from koop_app.data.values import INT32_MAX, INT32_MIN
from koop_app.errors import SourceFormatError

logger = logging.getLogger(__name__)
q = duck.quote_ident
s = duck.quote_string

BATCH_ROWS = 100_000
MEMORY_LIMIT = "500MB"
MAX_OBJECT_BYTES = 64 * 1024 * 1024  # one feature's JSON text (DuckDB buffers twice that)
class Workspace:
    """A DuckDB database spilling to a temporary directory; both gone on exit."""

    def __init__(self, prefix: str = "koop-ingest-") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.con = duck.connect()
        self.con.execute(f"SET memory_limit = {s(MEMORY_LIMIT)}")
        self.con.execute(f"SET temp_directory = {s(str(self.dir / 'spill'))}")
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute("SET TimeZone = 'UTC'")
        # query_progress() (polled by ingest.reading) needs progress tracking on, not printed.
        self.con.execute("SET enable_progress_bar = true")
        self.con.execute("SET enable_progress_bar_print = false")

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def stage_features(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Load the features array at ``path`` into table raw; return the feature count."""
    columns = "{'id': 'JSON', 'geometry': 'JSON', 'properties': 'JSON'}"
    try:
        con.execute(f"""
            CREATE OR REPLACE TABLE raw AS
            SELECT id, geometry, properties FROM read_json({s(str(path))}, format = 'array',
                columns = {columns}, maximum_object_size = {MAX_OBJECT_BYTES})
        """)
    except duckdb.Error as exc:
        raise SourceFormatError("The GeoJSON source is not valid JSON.",
                                log_message=f"invalid GeoJSON features: {exc}") from None
    (count,) = con.execute("SELECT count(*) FROM raw").fetchone()
    return int(count)


def normalize_staged(
    con: duckdb.DuckDBPyConnection,
    *,
    count: int,
    members: dict[str, Any],
    label: str,
    ids_key: str,
    overrides: Overrides | None,
    check_geojson: bool,
    sink: Callable[[pa.Schema], Any],
    progress: Progress | None = None,
    csv_columns: list[Column] | None = None,
) -> tuple[LayerSchema, int]:
    """Normalise table raw (or, for ``csv_columns``, table typed) into Arrow batches.

    ``sink`` is called once with the Arrow schema and returns an object with
    ``write_batch``. Returns the layer's schema and row count.
    """
    overrides = overrides or Overrides()
    metadata = dict(members.get("metadata") or {}) if isinstance(
        members.get("metadata"), dict) else {}
    report = progress or (lambda *args: None)
    columns = _columns(con) if csv_columns is None else csv_columns
    declared = _declared_fields(metadata, overrides, label)
    for column in columns:
        spec = declared.get(column.name.lower(), {})
        column.alias = spec.get("alias") or column.name
        if spec.get("type"):
            column.declared, column.esri = True, spec["type"]
            column.boolean = spec.get("boolean", False)
    report("normalise", None, None, 0)
    if csv_columns is None:
        names = {c.name.lower() for c in columns}
        wanted = str(overrides.id_field or metadata.get("idField") or "objectid").lower()
        _stage_typed(con, columns, keep_raw=wanted in names)
    _type_columns(con, columns, count, label)
    report("normalise", None, None, count)
    fields = [Field(c.name, c.esri, c.alias, c.length, c.boolean, c.enum_values)
              for c in columns]
    oid_name, oid_sql, joined = _object_ids(con, columns, fields, metadata, overrides, label,
                                            ids_key, report)
    geometry_type, geometry_sql = geom.geometries(con, metadata, overrides, label,
                                                  check_geojson)
    extent = geom.extent(con, geometry_sql)

    arrow_fields = []
    selects = []
    for f in fields:
        column = next((c for c in columns if c.name == f.name), None)
        expression = oid_sql if f.name == oid_name else value_sql(column)
        arrow_fields.append(pa.field(f.name, ARROW_TYPES[f.type]))
        selects.append(f"{expression} AS {q(f.name)}")
    arrow_fields += [pa.field(GEOMETRY_COLUMN, pa.binary()),
                     *(pa.field(name, pa.float64()) for name in BBOX_COLUMNS)]
    selects += [f"CAST(ST_AsWKB({geometry_sql}) AS BLOB) AS {q(GEOMETRY_COLUMN)}",
                *(f"{fn}({geometry_sql}) AS {q(name)}" for fn, name in zip(
                    ("ST_XMin", "ST_YMin", "ST_XMax", "ST_YMax"), BBOX_COLUMNS, strict=True))]
    schema = pa.schema(arrow_fields)
    source = "typed POSITIONAL JOIN _oids" if joined else "typed"
    writer = sink(schema)
    written = 0
    report("store", None, None, 0)
    polygons = geometry_type == "esriGeometryPolygon"
    problems = geom.Problems() if check_geojson and polygons else None
    for batch in con.execute(f"SELECT {', '.join(selects)} FROM {source}").to_arrow_reader(
            BATCH_ROWS):
        if geometry_type == "esriGeometryPolygon":
            batch = geom.wind_polygons(batch, problems, written)
        writer.write_batch(batch.cast(schema) if batch.schema != schema else batch)
        written += batch.num_rows
        report("store", None, None, written)
    if problems is not None:
        problems.log(label)
    layer_schema = LayerSchema(
        fields=tuple(fields),
        object_id_field=oid_name,
        geometry_type=geometry_type,
        extent=extent,
        metadata=_layer_metadata(metadata, overrides, fields),
    )
    return layer_schema, written


def _columns(con: duckdb.DuckDBPyConnection) -> list[Column]:
    """Property names in order of first appearance, with the JSON kinds of their values."""
    names = [row[0] for row in con.execute("""
        SELECT key FROM (
            SELECT unnest(k) AS key, unnest(generate_series(1, len(k))) AS i, pos
            FROM (SELECT rowid AS pos, json_keys(properties) AS k FROM raw
                  WHERE json_type(properties) = 'OBJECT'))
        GROUP BY key ORDER BY min(pos * 1000000 + i)
    """).fetchall()]
    canonical: dict[str, str] = {}
    columns = [Column(name, _column_name(name, canonical), index)
               for index, name in enumerate(names)]
    if not columns:
        return []
    lowered = [c.source.lower() for c in columns]
    for column in columns:
        column.by_pointer = lowered.count(column.source.lower()) > 1
    paths = ", ".join(s(_pointer(c.source)) for c in columns)
    codes = ", ".join(f"bit_or({KIND_CODE.format(f't[{i + 1}]')})"
                      for i in range(len(columns)))
    row = con.execute(f"SELECT {codes} FROM (SELECT json_type(properties, [{paths}]) AS t "
                      f"FROM raw WHERE json_type(properties) = 'OBJECT')").fetchone()
    for column, kinds in zip(columns, row, strict=True):
        column.kinds = int(kinds or 0)
    return columns


def _pointer(key: str) -> str:
    """A JSON pointer (RFC 6901) to a top-level key: works for any characters in it."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


_DIGEST = ("md5(coalesce(CAST(properties AS VARCHAR), 'null') || '|' "
           "|| coalesce(CAST(geometry AS VARCHAR), 'null'))")


def _stage_typed(con: duckdb.DuckDBPyConnection, columns: list[Column], keep_raw: bool) -> None:
    """Table typed: each property parsed once into its staged type, the geometry parsed.

    Table raw is dropped unless ``keep_raw`` (an id field that may prove unusable): content
    keys are digests of its text, computed here when there is no id field to key on.
    """
    structure = orjson.dumps({c.source: c.staged for c in columns
                              if not c.by_pointer}).decode()
    selects = [f"(properties -> {s(_pointer(c.source))}) AS {c.sql}" if c.by_pointer
               else f"p.{q(c.source)} AS {c.sql}" for c in columns]
    digest = "CAST(NULL AS VARCHAR)" if keep_raw else _DIGEST
    transform = (f"json_transform(properties, {s(structure)})" if structure != "{}"
                 else "NULL")
    con.execute(f"""
        CREATE OR REPLACE TABLE typed AS
        SELECT {"".join(x + ", " for x in selects)} id, {digest} AS digest,
               TRY(ST_GeomFromGeoJSON(geometry)) AS g,
               geometry IS NOT NULL AND json_type(geometry) <> 'NULL' AS given
        FROM (SELECT *, {transform} AS p FROM raw)
    """)
    if not keep_raw:
        con.execute("DROP TABLE raw")


def _type_columns(con: duckdb.DuckDBPyConnection, columns: list[Column], count: int,
                  label: str) -> None:
    """Esri types of inferred columns, lost values of declared ones, lengths and enums."""
    stats: list[str] = []
    for i, c in enumerate(columns):
        if c.declared or c.mixed or c.csv:
            continue
        number = f"TRY_CAST({c.sql} AS DOUBLE)" if c.by_pointer else c.sql
        text = f"({c.sql} ->> '$')" if c.by_pointer else c.sql
        if c.kinds == KIND_INT:
            stats += [f"min({number}) AS lo{i}", f"max({number}) AS hi{i}"]
        elif c.kinds == KIND_TEXT:
            stats.append(f"bool_and(substr({text}, 5, 1) = '-' AND regexp_full_match({text}, "
                         f"{ISO_SQL})) AS iso{i}")
    found = dict(zip([x.rsplit(" AS ", 1)[1] for x in stats],
                     con.execute(f"SELECT {', '.join(stats)} FROM typed").fetchone(),
                     strict=True)) if stats else {}
    for i, c in enumerate(columns):
        if c.declared or c.csv:
            continue
        if c.mixed or not c.kinds:
            c.esri = STRING
        elif c.kinds & KIND_FLOAT:
            c.esri = DOUBLE
        elif c.kinds == KIND_INT:
            lo, hi = found.get(f"lo{i}"), found.get(f"hi{i}")
            c.esri = INTEGER if lo is not None and INT32_MIN <= lo and hi <= INT32_MAX \
                else DOUBLE
        elif c.kinds == KIND_BOOL:
            c.esri, c.boolean = SMALL_INTEGER, True
        else:
            c.esri = DATE if found.get(f"iso{i}") else STRING
    # Values that could not be converted (declared types, dates): null, and said so.
    checks = [(c, f"count({c.sql}) - count({value_sql(c)})") for c in columns
              if c.declared or c.esri == DATE]
    if checks:
        lost = con.execute(f"SELECT {', '.join(x for _, x in checks)} FROM typed").fetchone()
        for (c, _), n in zip(checks, lost, strict=True):
            if n:
                logger.warning("%s: %d value(s) of field %r are not %s and were set to null",
                               label, n, c.name, c.esri.removeprefix("esriFieldType"))
    strings = [c for c in columns if c.esri == STRING]
    if not strings:
        for c in columns:
            c.length = 8 if c.esri == DATE else None
        return
    parts = []
    for c in strings:
        parts += [f"max(length({value_sql(c)}))",
                  f"approx_count_distinct({value_sql(c)})" if count >= ENUM_MIN_ROWS
                  else "NULL"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM typed").fetchone()
    for index, c in enumerate(strings):
        longest, distinct = row[2 * index], row[2 * index + 1]
        c.length = max(MIN_STRING_LENGTH, int(longest or 0))
        if distinct is not None and 0 < distinct <= ENUM_MAX_VALUES * 1.2:
            values = [r[0] for r in con.execute(
                f"SELECT DISTINCT {value_sql(c)} AS v FROM typed WHERE v IS NOT NULL "
                f"ORDER BY v LIMIT {ENUM_MAX_VALUES + 1}").fetchall()]
            if 0 < len(values) <= ENUM_MAX_VALUES:
                c.enum_values = tuple(sorted(values))
    for c in columns:
        if c.esri == DATE:
            c.length = 8


def _object_ids(con, columns, fields, metadata, overrides, label, ids_key, report):
    """(oid column name, its SQL, whether table _oids must be joined); may rename a field."""
    names = {f.name.lower(): f.name for f in fields}
    wanted = overrides.id_field or metadata.get("idField") or ""
    candidate = names.get(str(wanted).lower()) if wanted else names.get("objectid")
    column = next((c for c in columns if c.name == candidate), None)
    if column is not None and column.esri in (INTEGER, SMALL_INTEGER, DATE) \
            and not column.boolean:
        value = value_sql(column)
        usable = con.execute(f"""
            SELECT count(*) = count({value}) AND coalesce(min({value}) > 0, true)
                   AND coalesce(max({value}) <= {INT32_MAX}, true)
                   AND count(DISTINCT {value}) = count(*)
            FROM typed
        """).fetchone()[0]
        if usable:
            con.execute("DROP TABLE IF EXISTS raw")
            index = next(i for i, f in enumerate(fields) if f.name == candidate)
            fields[index] = Field(candidate, OID, fields[index].alias or candidate)
            return candidate, f"CAST({value} AS BIGINT)", False
    if wanted and column is None:
        logger.warning("%s: idField %r is not a field; assigning object ids", label, wanted)
    elif wanted:
        logger.warning("%s: idField %r is not unique positive 32-bit integers; assigning object "
                       "ids keyed on it", label, wanted)
    feature_id = ("CASE json_type(id) WHEN 'VARCHAR' THEN id ->> '$' "
                  "WHEN 'BOOLEAN' THEN CASE WHEN CAST(id AS BOOLEAN) THEN 'True' ELSE 'False' "
                  "END ELSE CAST(id AS VARCHAR) END")
    key = (f"CASE WHEN id IS NOT NULL AND json_type(id) <> 'NULL' THEN 'i:' || {feature_id} "
           f"ELSE 'h:' || left(digest, 24) END")
    if column is not None and wanted:
        value = value_sql(column)
        key = f"CASE WHEN {value} IS NOT NULL THEN 'f:' || CAST({value} AS VARCHAR) ELSE {key} END"
    report("ids", None, None, 0)
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'raw'").fetchone()[0]:
        # The id field proved unusable: its missing values are keyed on content digests.
        con.execute(f"UPDATE typed SET digest = d FROM (SELECT rowid AS pos, {_DIGEST} AS d "
                    f"FROM raw) r WHERE typed.rowid = r.pos")
        con.execute("DROP TABLE raw")
    con.execute(f"CREATE OR REPLACE TEMP TABLE keyed AS "
                f"SELECT rowid AS pos, {key} AS key FROM typed")
    # Repeated keys (identical features) get an occurrence suffix, as normalize gives them.
    con.execute("""
        UPDATE keyed SET key = keyed.key || '#' || r.n
        FROM (SELECT pos, row_number() OVER (PARTITION BY key ORDER BY pos) - 1 AS n
              FROM keyed SEMI JOIN (SELECT key FROM keyed GROUP BY key HAVING count(*) > 1) d
              USING (key)) r
        WHERE keyed.pos = r.pos AND r.n > 0
    """)
    ids.assign_in(con, ids_key, "keyed",
                  progress=lambda written: report("ids", None, None, written))
    con.execute("DROP TABLE keyed")
    name, n = "OBJECTID", 0
    while name.lower() in names:
        n += 1
        name = f"OBJECTID_{n}"
    fields.insert(0, Field(name, OID, name))
    return name, "oid", True


