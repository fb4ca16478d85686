"""Hot tables: decoded layers kept in this process's DuckDB, keyed by (cache key, version).

One in-memory DuckDB database per process holds one table per hot layer, with the geometry as
a spatial GEOMETRY column. Least recently used tables are dropped beyond
KOOP['HOT_TABLES_MAX_BYTES']. Queries use ``cursor()``: one DuckDB cursor per call, safe across
threads.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from koop_app.conf import koop_settings
from koop_app.data import duck
from koop_app.data.normalize import GEOMETRY_COLUMN, SourceAnswers
from koop_app.data.schema import LayerSchema


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

    @property
    def is_table(self) -> bool:
        return self.kind == "table" or self.schema.geometry_type is None


# A table no longer served (replaced by a new version, or evicted) is dropped once nobody has
# asked for it this long: a query starts within milliseconds of getting its table, and DuckDB
# lets a query already running finish after a DROP.
RETIRE_SECONDS = 5.0


@dataclass
class _Retired:
    name: str
    nbytes: int
    last_used: float


class HotTables:
    """This process's hot tables, least recently used first, within one memory budget.

    The budget (KOOP['HOT_TABLES_MAX_BYTES']) counts every table still in memory, the retired
    ones included. Beyond it, tables unused for RETIRE_SECONDS are dropped, least recently
    used first; tables used more recently stay until they are idle that long, so the budget
    may be exceeded for a few seconds rather than failing a running request.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._tables: OrderedDict[str, LayerTable] = OrderedDict()
        self._used: dict[str, float] = {}
        self._retired: list[_Retired] = []
        self._names = itertools.count(1)
        self._tidied = 0.0
        self._over_budget = False

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = duck.connect()
        return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._connection().cursor()

    def get(self, key: str, version: str) -> LayerTable | None:
        with self._lock:
            now = time.monotonic()
            if (self._retired or self._over_budget) and now - self._tidied > 1.0:
                self._tidy(now)
            entry = self._tables.get(key)
            if entry is None or entry.version != version:
                return None
            self._tables.move_to_end(key)
            self._used[key] = now
            return entry

    def put(
        self, key: str, version: str, rows: pa.Table | pa.RecordBatchReader, schema: LayerSchema,
        fetched_at: float, answers: SourceAnswers | None = None, layer_id: int = 0,
        kind: str = "layer",
    ) -> LayerTable:
        """Load ``rows`` as the hot copy of ``key``, replacing an older version.

        ``rows`` may be a stream of record batches (from the cache's IPC blob): DuckDB copies
        it batch by batch, so the decoded layer is never held twice. The load runs on its own
        cursor, outside the lock: queries on other tables, and on the version being replaced,
        go on meanwhile.
        """
        current = self.get(key, version)
        if current is not None:
            return current
        with self._lock:
            name = f"layer_{next(self._names)}"
            con = self._connection().cursor()
        reader = rows.to_reader() if isinstance(rows, pa.Table) else rows
        sizes = [0]

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                sizes[0] += batch.nbytes
                yield batch

        stream = pa.RecordBatchReader.from_batches(reader.schema, counted())
        columns = ", ".join(_column_sql(schema, c) for c in reader.schema.names)
        try:
            con.register("incoming_layer", stream)
            con.execute(f"CREATE TABLE {name} AS SELECT {columns} FROM incoming_layer")
            con.unregister("incoming_layer")
            (count,) = con.execute(f"SELECT count(*) FROM {name}").fetchone()
        except BaseException:
            con.execute(f"DROP TABLE IF EXISTS {name}")
            raise
        finally:
            con.close()
        entry = LayerTable(key, version, name, schema, int(count), fetched_at, sizes[0],
                           answers, layer_id, kind)
        with self._lock:
            self.discard(key)
            self._tables[key] = entry
            self._used[key] = time.monotonic()
            self._tidy(time.monotonic())
        # The decoded Arrow buffers are garbage now: hand their memory back to the system.
        pa.default_memory_pool().release_unused()
        return entry

    def discard(self, key: str) -> None:
        """Stop serving ``key``'s table; it is dropped once idle for RETIRE_SECONDS."""
        with self._lock:
            old = self._tables.pop(key, None)
            last_used = self._used.pop(key, 0.0)
            if old is not None:
                self._retired.append(_Retired(old.table_name, old.nbytes, last_used))
            self._tidy(time.monotonic())

    def usage(self) -> dict[str, int]:
        """Bytes and tables held: served, and retired but not yet dropped."""
        with self._lock:
            return {"tables": len(self._tables),
                    "bytes": sum(t.nbytes for t in self._tables.values()),
                    "retired_tables": len(self._retired),
                    "retired_bytes": sum(r.nbytes for r in self._retired)}

    def _tidy(self, now: float) -> None:
        """Drop idle retired tables, then idle served ones while over the budget (LRU)."""
        self._tidied = now
        if self._con is None:
            return
        for item in [r for r in self._retired if now - r.last_used > RETIRE_SECONDS]:
            self._drop(item)
        budget = int(koop_settings.HOT_TABLES_MAX_BYTES)
        held = sum(t.nbytes for t in self._tables.values()) + sum(
            r.nbytes for r in self._retired)
        for key in list(self._tables):  # least recently used first
            if held <= budget or now - self._used.get(key, 0.0) <= RETIRE_SECONDS:
                break  # the rest were used more recently still
            entry = self._tables.pop(key)
            self._used.pop(key, None)
            self._drop(_Retired(entry.table_name, entry.nbytes, 0.0))
            held -= entry.nbytes
        self._over_budget = held > budget

    def _drop(self, item: _Retired) -> None:
        assert self._con is not None
        self._con.execute(f"DROP TABLE IF EXISTS {item.name}")
        if item in self._retired:
            self._retired.remove(item)

    def clear(self) -> None:
        """Drop every table now (tests, and a process that must free its memory)."""
        with self._lock:
            for item in list(self._retired) + [
                    _Retired(t.table_name, t.nbytes, 0.0) for t in self._tables.values()]:
                if self._con is not None:
                    self._drop(item)
            self._tables.clear()
            self._used.clear()
            self._retired.clear()


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
        labels = ", ".join(duck.quote_string(v) for v in found.enum_values)
        return f"CAST({column} AS ENUM({labels})) AS {column}"
    return column


hot_tables = HotTables()
