"""Hot tables: decoded layers ready to query, keyed by (cache key, version).

A stored layer is materialised once per host into a DuckDB database file (hotfiles.py) that
every process attaches read-only into its own DuckDB, so ``gunicorn -w 4`` reads one copy from
the page cache instead of decoding four: ``LayerTable.table_name`` is then the qualified name
``h_<n>.layer``. Pass-through answers (one request's rows) and KOOP['HOT_DIR'] = False keep
in-memory tables as before. Least recently used tables are detached (or dropped) beyond
KOOP['HOT_TABLES_MAX_BYTES']. Queries use ``cursor()``: one DuckDB cursor per call, safe across
threads.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from koop_app.conf import koop_settings
from koop_app.data import duck, hotfiles
from koop_app.data.hotfiles import HotFile
from koop_app.data.normalize import BBOX_COLUMNS, GEOMETRY_COLUMN, SourceAnswers
from koop_app.data.schema import LayerSchema

# The table inside every hot file; its comment holds the LayerTable fields as JSON.
FILE_TABLE = "layer"


@dataclass(frozen=True)
class LayerTable:
    """A layer ready to query: its DuckDB table name and schema."""

    key: str
    version: str
    table_name: str
    schema: LayerSchema
    count: int
    fetched_at: float
    nbytes: int
    answers: SourceAnswers | None = None  # pass-through providers only
    layer_id: int = 0
    kind: str = "layer"  # "layer" or "table"
    # Every geometry is NULL or a non-empty point equal to its box's corner: queries build
    # the point from the box columns rather than read the geometry column (see point_boxes).
    point_boxes: bool = False

    @property
    def is_table(self) -> bool:
        return self.kind == "table" or self.schema.geometry_type is None


# A table no longer served (replaced by a new version, or evicted) is dropped or detached once
# nobody has asked for it this long: a query starts within milliseconds of getting its table,
# and DuckDB lets a query already running finish after a DROP.
RETIRE_SECONDS = 5.0


@dataclass
class _Attached:
    """A hot file attached here: its alias, and the shared lock saying this process uses it."""

    hot: HotFile
    alias: str
    use_fd: int


@dataclass
class _Retired:
    entry: LayerTable
    last_used: float
    attached: _Attached | None = None
    superseded: bool = True  # replaced: its file may go once nobody uses it

    @property
    def nbytes(self) -> int:
        return self.entry.nbytes


class DamagedFile(Exception):
    """A hot file that cannot be attached or does not hold what it should: rebuilt."""


class HotTables:
    """This process's hot tables, least recently used first, within one memory budget.

    The budget (KOOP['HOT_TABLES_MAX_BYTES']) counts every table still held, the retired
    ones included, by its decoded size. Beyond it, tables unused for RETIRE_SECONDS are let
    go, least recently used first; tables used more recently stay until they are idle that
    long, so the budget may be exceeded for a few seconds rather than failing a running
    request. An attached file's memory is DuckDB's buffer pool (KOOP['DUCKDB_MEMORY_LIMIT']).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tables: OrderedDict[str, LayerTable] = OrderedDict()
        self._used: dict[str, float] = {}
        self._attached: dict[str, _Attached] = {}  # by table name
        self._retired: list[_Retired] = []
        self._names = itertools.count(1)
        self._tidied = 0.0
        self._over_budget = False
        self._swept: set[Path] = set()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            con = duck.connect()
            limit = koop_settings.DUCKDB_MEMORY_LIMIT
            if limit:
                con.execute(f"SET memory_limit = {duck.quote_string(str(limit))}")
            if koop_settings.DUCKDB_THREADS:
                con.execute(f"SET threads = {int(koop_settings.DUCKDB_THREADS)}")
            # What this connection writes: hot files. Set either way: a DuckDB setting may
            # outlive the connection that set it in this process.
            disabled = "" if koop_settings.HOT_COMPRESS else "alp,alprd,fsst"
            con.execute(f"SET disabled_compression_methods = '{disabled}'")
            self._con = con
        return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._connection().cursor()

    def get(self, key: str, version: str) -> LayerTable | None:
        """``key``'s table at ``version`` if this process has it, or a file on this host has.

        A file is attached here only when it is newer than the version this process serves
        of ``key`` (a request holding an older pointer gets None, as before files).
        """
        return self._find(key, version, replace=False)

    def _find(self, key: str, version: str, replace: bool) -> LayerTable | None:
        with self._lock:
            now = time.monotonic()
            if (self._retired or self._over_budget) and now - self._tidied > 1.0:
                self._tidy(now)
            served = self._tables.get(key)
            if served is not None and served.version == version:
                self._tables.move_to_end(key)
                self._used[key] = now
                return served
            if served is None or replace:
                revived = self._revive(key, version)
                if revived is not None:
                    return revived
            mine = self._attached.get(served.table_name) if served is not None else None
        root = hotfiles.folder()
        if root is None:
            return None
        hot = HotFile.of(root, key, version)
        try:
            built = hot.path.stat().st_mtime
            if served is not None and not replace and (
                    mine is None or mine.hot.path.stat().st_mtime >= built):
                return None
        except FileNotFoundError:  # not built yet; or the one served was deleted: replaced
            if not hot.path.exists():
                return None
        with hotfiles.build_lock(hot):
            mine_now = self._already(key, version)
            if mine_now is not None:  # another thread attached it meanwhile
                return mine_now
            try:
                return self._attach(key, version, hot)
            except DamagedFile:
                hotfiles.delete_now(hot)
                return None

    def _already(self, key: str, version: str) -> LayerTable | None:
        """``key`` at ``version`` if this process serves it or still holds it retired."""
        with self._lock:
            served = self._tables.get(key)
            if served is not None and served.version == version:
                return served
            return self._revive(key, version)

    def put(
        self, key: str, version: str, rows: pa.Table | pa.RecordBatchReader, schema: LayerSchema,
        fetched_at: float, answers: SourceAnswers | None = None, layer_id: int = 0,
        kind: str = "layer", shared: bool | None = None,
    ) -> LayerTable:
        """Load ``rows`` as the hot copy of ``key``, replacing an older version.

        ``shared`` (default: unless ``answers`` are given, i.e. a pass-through answer) builds
        the version's file on this host once, or attaches the file another process built
        (blocking while it builds). ``rows`` may be a stream of record batches (from the
        cache's IPC blob): DuckDB copies it batch by batch, so the decoded layer is never held
        twice. The load runs on its own cursor, outside the lock: queries on other tables, and
        on the version being replaced, go on meanwhile.
        """
        current = self._find(key, version, replace=True)
        if current is not None:
            return current
        root = hotfiles.folder() if (answers is None if shared is None else shared) else None
        if root is None:
            return self._put_in_memory(key, version, rows, schema, fetched_at, answers,
                                       layer_id, kind)
        self._sweep_once(root)
        hot = HotFile.of(root, key, version)
        with hotfiles.build_lock(hot):
            entry = self._already(key, version)
            if entry is not None:  # another thread's
                return entry
            if hot.path.exists():
                try:
                    return self._attach(key, version, hot)
                except DamagedFile:
                    hotfiles.delete_now(hot)
            self._build(hot, key, version, rows, schema, fetched_at, layer_id, kind)
            entry = self._attach(key, version, hot)
        with self._lock:
            own = {a.hot.path for a in self._attached.values()}
        hotfiles.sweep(root, keep=own)
        return entry

    def prebuild(self, key: str, version: str, rows: pa.Table | pa.RecordBatchReader,
                 schema: LayerSchema, fetched_at: float, layer_id: int = 0,
                 kind: str = "layer") -> bool:
        """Build the version's file for this host's web processes without serving it here.

        A refresh worker calls it after storing a new version: the web processes then attach
        the file at once instead of building it on a request. False when there is nothing to
        do (no hot folder, or the file exists already).
        """
        root = hotfiles.folder()
        if root is None:
            return False
        self._sweep_once(root)
        self._bound_builds(root)
        hot = HotFile.of(root, key, version)
        with hotfiles.build_lock(hot):
            if hot.path.exists():
                return False
            self._build(hot, key, version, rows, schema, fetched_at, layer_id, kind)
        with self._lock:
            own = {a.hot.path for a in self._attached.values()}
        hotfiles.sweep(root, keep=own)
        return True

    def _bound_builds(self, root: Path) -> None:
        """In a process that serves nothing (a refresh worker), builds spill beyond a bound.

        Reordering a large layer (HOT_ORDER) sorts whole rows: 10M points took 5 GB unbounded.
        Not in a web process, whose limit (DUCKDB_MEMORY_LIMIT) is its queries' too.
        """
        with self._lock:
            if self._tables or self._attached or koop_settings.DUCKDB_MEMORY_LIMIT:
                return
            con = self._connection()
            con.execute(f"SET memory_limit = {duck.quote_string(PREBUILD_MEMORY_LIMIT)}")
            con.execute(f"SET temp_directory = {duck.quote_string(str(root / '.spill'))}")

    def _put_in_memory(self, key: str, version: str, rows: pa.Table | pa.RecordBatchReader,
                       schema: LayerSchema, fetched_at: float, answers: SourceAnswers | None,
                       layer_id: int, kind: str) -> LayerTable:
        with self._lock:
            name = f"layer_{next(self._names)}"
            con = self._connection().cursor()
        try:
            count, nbytes, names = _copy_rows(con, name, rows, schema)
            boxes = point_boxes(con, name, schema, names)
        except BaseException:
            con.execute(f"DROP TABLE IF EXISTS {name}")
            raise
        finally:
            con.close()
        entry = LayerTable(key, version, name, schema, count, fetched_at, nbytes, answers,
                           layer_id, kind, boxes)
        self._serve(entry)
        return entry

    def _build(self, hot: HotFile, key: str, version: str,
               rows: pa.Table | pa.RecordBatchReader, schema: LayerSchema, fetched_at: float,
               layer_id: int, kind: str) -> None:
        """Write the file under a temporary name, then rename it into place (atomic).

        Rows are copied as they stream in; a file to be reordered (KOOP['HOT_ORDER']) is then
        written again, sorted, into a second temporary file: the row count is known by then,
        and the first copy needed no memory beyond a batch.
        """
        partials = [hot.partial()]
        with self._lock:
            alias = f"b_{next(self._names)}"
            con = self._connection().cursor()
        try:
            con.execute(f"ATTACH {duck.quote_string(str(partials[0]))} AS {alias}")
            try:
                count, nbytes, names = _copy_rows(con, f"{alias}.{FILE_TABLE}", rows, schema)
                order = _order_sql(schema, names, count)
                if order:
                    con.execute(f"DETACH {alias}")
                    partials.append(hot.partial())
                    con.execute(f"ATTACH {duck.quote_string(str(partials[0]))} AS {alias}_in "
                                "(READ_ONLY)")
                    con.execute(f"ATTACH {duck.quote_string(str(partials[1]))} AS {alias}")
                    con.execute(f"CREATE TABLE {alias}.{FILE_TABLE} AS SELECT * FROM "
                                f"{alias}_in.{FILE_TABLE}{order}")
                    con.execute(f"DETACH {alias}_in")
                meta = {"key": key, "version": version, "schema": schema.as_dict(),
                        "count": count, "nbytes": nbytes, "fetched_at": fetched_at,
                        "layer_id": layer_id, "kind": kind,
                        "point_boxes": point_boxes(con, f"{alias}.{FILE_TABLE}", schema,
                                                  names)}
                con.execute(f"COMMENT ON TABLE {alias}.{FILE_TABLE} IS "
                            f"{duck.quote_string(orjson.dumps(meta).decode())}")
            finally:
                con.execute(f"DETACH DATABASE IF EXISTS {alias}_in")
                con.execute(f"DETACH DATABASE IF EXISTS {alias}")
            os.replace(partials[-1], hot.path)
        finally:
            con.close()
            for path in partials + [Path(f"{p}.wal") for p in partials]:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def _attach(self, key: str, version: str, hot: HotFile) -> LayerTable:
        """Attach ``hot`` read-only and serve it as ``key`` (the caller holds its build lock)."""
        with self._lock:
            alias = f"h_{next(self._names)}"
            con = self._connection().cursor()
        use_fd = hotfiles.hold_use(hot)
        try:
            con.execute(f"ATTACH {duck.quote_string(str(hot.path))} AS {alias} (READ_ONLY)")
            found = con.execute(
                "SELECT comment FROM duckdb_tables() WHERE database_name = ? "
                "AND table_name = ?", [alias, FILE_TABLE]).fetchone()
            meta = orjson.loads(found[0]) if found and found[0] else {}
            if meta.get("key") != key or meta.get("version") != version:
                raise DamagedFile(f"{hot.path} holds another layer")
            (count,) = con.execute(f"SELECT count(*) FROM {alias}.{FILE_TABLE}").fetchone()
            if count != meta["count"]:
                raise DamagedFile(f"{hot.path} holds {count} rows, not {meta['count']}")
            entry = LayerTable(key, version, f"{alias}.{FILE_TABLE}",
                               LayerSchema.from_dict(meta["schema"]), int(count),
                               float(meta["fetched_at"]), int(meta["nbytes"]), None,
                               int(meta["layer_id"]), str(meta["kind"]),
                               bool(meta.get("point_boxes", False)))
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DETACH DATABASE IF EXISTS {alias}")
            os.close(use_fd)
            if isinstance(exc, (duckdb.Error, ValueError, KeyError, TypeError)):
                raise DamagedFile(f"{hot.path}: {exc}") from exc
            raise
        finally:
            con.close()
        with self._lock:
            self._attached[entry.table_name] = _Attached(hot, alias, use_fd)
        self._serve(entry)
        return entry

    def _serve(self, entry: LayerTable) -> None:
        with self._lock:
            self.discard(entry.key)
            self._tables[entry.key] = entry
            self._used[entry.key] = time.monotonic()
            self._tidy(time.monotonic())
        # The decoded Arrow buffers are garbage now: hand their memory back to the system.
        pa.default_memory_pool().release_unused()

    def _revive(self, key: str, version: str) -> LayerTable | None:
        """A retired table of this very version (still attached) served again."""
        for item in self._retired:
            if item.entry.key == key and item.entry.version == version:
                self._retired.remove(item)
                self._serve(item.entry)
                return item.entry
        return None

    def _sweep_once(self, root: Path) -> None:
        """At a process's first use of a folder: partial and unused old files left behind."""
        if root in self._swept:
            return
        self._swept.add(root)
        with self._lock:
            own = {a.hot.path for a in self._attached.values()}
        hotfiles.sweep(root, keep=own)

    def discard(self, key: str) -> None:
        """Stop serving ``key``'s table; it goes once idle for RETIRE_SECONDS."""
        with self._lock:
            old = self._tables.pop(key, None)
            last_used = self._used.pop(key, 0.0)
            if old is not None:
                self._retired.append(_Retired(old, last_used,
                                              self._attached.get(old.table_name)))
            self._tidy(time.monotonic())

    def usage(self) -> dict[str, int]:
        """Bytes and tables held: served, and retired but not yet let go; files attached."""
        with self._lock:
            return {"tables": len(self._tables),
                    "bytes": sum(t.nbytes for t in self._tables.values()),
                    "retired_tables": len(self._retired),
                    "retired_bytes": sum(r.nbytes for r in self._retired),
                    "attached_files": len(self._attached)}

    def _tidy(self, now: float) -> None:
        """Let idle retired tables go, then idle served ones while over the budget (LRU)."""
        self._tidied = now
        if self._con is None:
            return
        for item in [r for r in self._retired if now - r.last_used > RETIRE_SECONDS]:
            self._let_go(item)
        budget = int(koop_settings.HOT_TABLES_MAX_BYTES)
        held = sum(t.nbytes for t in self._tables.values()) + sum(
            r.nbytes for r in self._retired)
        for key in list(self._tables):  # least recently used first
            if held <= budget or now - self._used.get(key, 0.0) <= RETIRE_SECONDS:
                break  # the rest were used more recently still
            entry = self._tables.pop(key)
            self._used.pop(key, None)
            # Evicted here, still current: its file stays for the other processes.
            self._let_go(_Retired(entry, 0.0, self._attached.get(entry.table_name), False))
            held -= entry.nbytes
        self._over_budget = held > budget

    def _let_go(self, item: _Retired, delete: bool = False) -> None:
        """Drop an in-memory table, or detach a file (deleted if replaced and unused)."""
        assert self._con is not None
        attached = self._attached.pop(item.entry.table_name, None)
        if attached is None:
            self._con.execute(f"DROP TABLE IF EXISTS {item.entry.table_name}")
        else:
            self._con.execute(f"DETACH DATABASE IF EXISTS {attached.alias}")
            os.close(attached.use_fd)
            if item.superseded or delete:
                hotfiles.try_delete(attached.hot)
        if item in self._retired:
            self._retired.remove(item)

    def clear(self) -> None:
        """Let every table go now, deleting files no other process uses (tests; memory)."""
        with self._lock:
            items = list(self._retired) + [
                _Retired(t, 0.0) for t in self._tables.values()]
            for item in items:
                if self._con is not None:
                    self._let_go(item, delete=True)
            self._tables.clear()
            self._used.clear()
            self._retired.clear()


def _copy_rows(con: duckdb.DuckDBPyConnection, target: str,
               rows: pa.Table | pa.RecordBatchReader, schema: LayerSchema
               ) -> tuple[int, int, list[str]]:
    """CREATE TABLE ``target`` from ``rows``: its row count, the decoded bytes, the columns."""
    reader = rows.to_reader() if isinstance(rows, pa.Table) else rows
    nbytes = 0
    names = reader.schema.names
    columns = ", ".join(_column_sql(schema, c) for c in names)
    view = f"incoming_{threading.get_ident()}"
    # A statement at a time per COPY_ROWS: DuckDB keeps the Arrow batches a statement read
    # until it ends, so one statement over a 10M-row stream held all of them (+1.5 GB).
    statement = f"CREATE TABLE {target} AS SELECT {columns} FROM {view}"
    for chunk in _chunks(reader, COPY_ROWS):
        nbytes += chunk.nbytes
        con.register(view, chunk)
        try:
            con.execute(statement)
        finally:
            con.unregister(view)
        statement = f"INSERT INTO {target} SELECT {columns} FROM {view}"
    (count,) = con.execute(f"SELECT count(*) FROM {target}").fetchone()
    return int(count), nbytes, names


# Rows copied into a hot table per statement (see _copy_rows).
COPY_ROWS = 1_000_000


def _chunks(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    """The reader's batches as tables of about ``rows`` rows; one empty table if none."""
    held: list[pa.RecordBatch] = []
    count = yielded = 0
    for batch in reader:
        held.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(held, reader.schema)
            held, count, yielded = [], 0, yielded + 1
    if held or not yielded:
        yield pa.Table.from_batches(held, reader.schema)


def point_boxes(con: duckdb.DuckDBPyConnection, table: str, schema: LayerSchema,
                columns: list[str]) -> bool:
    """Whether each row's geometry is NULL or a non-empty point at its box's (xmin, ymin).

    Then a query makes the point from two doubles instead of reading the geometry column: a
    page of scattered rows (500 objectIds over 1M points) decodes no geometry blobs at all.
    """
    if schema.geometry_type != "esriGeometryPoint" or GEOMETRY_COLUMN not in columns:
        return False
    g = duck.quote_ident(GEOMETRY_COLUMN)
    xmin, ymin, xmax, ymax = (duck.quote_ident(c) for c in BBOX_COLUMNS)
    (odd,) = con.execute(
        f"SELECT count(*) FROM {table} WHERE {g} IS NOT NULL AND NOT coalesce("
        f"ST_GeometryType({g}) = 'POINT' AND NOT ST_IsEmpty({g}) AND {xmin} = ST_X({g}) "
        f"AND {ymin} = ST_Y({g}) AND {xmax} = {xmin} AND {ymax} = {ymin}, false)").fetchone()
    return odd == 0


# The memory a refresh worker's DuckDB may use to build a hot file before spilling to disk.
PREBUILD_MEMORY_LIMIT = "512MB"

# "cells": Hilbert cells hold at least this many rows (4 of DuckDB's row groups of 122,880).
CELL_ROWS = 4 * 122_880


def _order_sql(schema: LayerSchema, names: list[str], count: int) -> str:
    """The row order of a built file: the source's (ids ascending), or KOOP['HOT_ORDER'].

    DuckDB skips row groups by their min/max per column. In id order, pages (ORDER BY the
    object id LIMIT n, every query's default) stop after the first row groups; in Hilbert
    order of the features' box centres, small envelopes (map tiles) read a few row groups
    but pages read every row. "cells" is between: ids ascending within coarse Hilbert cells
    of at least CELL_ROWS rows each (4^k cells, k from the row count; one cell, i.e. id order
    and no sort, below ~2M rows), so a tile reads its cell and a page the first row groups of
    each cell. Measured in bench/RESULTS.md ("Hot files").
    """
    order = koop_settings.HOT_ORDER
    if order not in ("hilbert", "cells") or not set(BBOX_COLUMNS) <= set(names):
        return ""
    level = min(15, int(math.log(count / CELL_ROWS, 4))) if count >= CELL_ROWS else 0
    if order == "cells" and level == 0:
        return ""
    xmin, ymin, xmax, ymax = (duck.quote_ident(c) for c in BBOX_COLUMNS)
    box = schema.extent or (-180.0, -90.0, 180.0, 90.0)
    bounds = (f"{{'min_x': {float(box[0])}, 'min_y': {float(box[1])}, "
              f"'max_x': {float(box[2])}, 'max_y': {float(box[3])}}}::BOX_2D")
    curve = f"ST_Hilbert(({xmin} + {xmax}) / 2, ({ymin} + {ymax}) / 2, {bounds})"
    if order == "hilbert":
        return f" ORDER BY {curve} NULLS LAST"
    return (f" ORDER BY CAST({curve} AS UBIGINT) >> {32 - 2 * level} NULLS LAST, "
            f"{duck.quote_ident(schema.object_id_field)}")


def _column_sql(schema: LayerSchema, name: str) -> str:
    """How a column enters DuckDB: geometry parsed; few-valued text as a sorted ENUM.

    Grouping and filtering on an ENUM work on small integers (about twice as fast on a
    million rows); sorted values keep ORDER BY and <, > the same as on text.
    """
    column = duck.quote_ident(name)
    if name == GEOMETRY_COLUMN:
        return f"ST_GeomFromWKB({column}) AS {column}"
    found = schema.field(name)
    if found is not None and found.enum_values:
        return f"CAST({column} AS {duck.enum_type(found.enum_values)}) AS {column}"
    return column


hot_tables = HotTables()
