"""Hot tables: one budget for every decoded table in memory, replaced versions included."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from koop_app.data import hot
from koop_app.data.hot import HotTables
from koop_app.data.normalize import normalize
from tests.conftest import collection, feature, point

LAYER = normalize(collection([feature({"n": i}, point(i, i)) for i in range(500)]),
                  label="hot", assign_ids=lambda keys: pa.array(range(1, len(keys) + 1)))


@pytest.fixture
def tables():
    found = HotTables()
    yield found
    found.clear()


def put(tables: HotTables, key: str, version: str = "v1"):
    return tables.put(key, version, LAYER.table, LAYER.schema, 0.0)


def duckdb_tables(tables: HotTables) -> set[str]:
    rows = tables.cursor().execute("SELECT table_name FROM duckdb_tables()").fetchall()
    return {name for (name,) in rows}


def budget_of(settings, n_tables: float) -> None:
    settings.KOOP = {**settings.KOOP, "HOT_TABLES_MAX_BYTES": int(n_tables * LAYER.table.nbytes)}


def test_a_replaced_version_is_counted_until_it_is_dropped(tables, monkeypatch):
    first = put(tables, "a", "v1")
    second = put(tables, "a", "v2")
    assert tables.get("a", "v1") is None and tables.get("a", "v2") == second
    usage = tables.usage()
    assert (usage["tables"], usage["retired_tables"]) == (1, 1)
    assert usage["retired_bytes"] == first.nbytes > 0
    assert first.table_name in duckdb_tables(tables)  # a query begun on it may still run
    monkeypatch.setattr(hot, "RETIRE_SECONDS", 0.0)
    tables.discard("none")  # any change tidies
    assert tables.usage()["retired_tables"] == 0
    assert first.table_name not in duckdb_tables(tables)


def test_idle_tables_are_dropped_least_recently_used_first(tables, settings, monkeypatch):
    budget_of(settings, 2.5)
    monkeypatch.setattr(hot, "RETIRE_SECONDS", 0.0)
    a, b = put(tables, "a"), put(tables, "b")
    tables.get("a", "v1")  # b is now the least recently used
    put(tables, "c")
    assert tables.get("b", "v1") is None
    assert tables.get("a", "v1") == a and tables.get("c", "v1") is not None
    assert b.table_name not in duckdb_tables(tables)
    assert tables.usage()["bytes"] <= 2.5 * LAYER.table.nbytes


def test_retired_tables_take_room_from_served_ones(tables, settings, monkeypatch):
    budget_of(settings, 2.5)
    put(tables, "a", "v1")
    put(tables, "a", "v2")  # v1 retired, still in memory
    monkeypatch.setattr(hot, "RETIRE_SECONDS", 0.0)
    put(tables, "b")
    usage = tables.usage()
    assert usage["bytes"] + usage["retired_bytes"] <= 2.5 * LAYER.table.nbytes
    assert usage["retired_tables"] == 0  # the idle retired copy went first
    assert tables.get("a", "v2") is not None and tables.get("b", "v1") is not None


def test_tables_in_use_are_kept_over_budget_until_idle(tables, settings, monkeypatch):
    budget_of(settings, 1.5)
    put(tables, "a")
    put(tables, "b")  # a was used a moment ago: a request may be about to query it
    assert tables.get("a", "v1") is not None
    assert tables.usage()["bytes"] > 1.5 * LAYER.table.nbytes
    monkeypatch.setattr(hot, "RETIRE_SECONDS", 0.5)
    time.sleep(1.1)  # idle, and past the once-a-second tidy of get()
    assert tables.get("a", "v1") is not None  # tidies first: b is the least recently used
    assert tables.get("b", "v1") is None and tables.usage()["tables"] == 1


def test_a_failed_load_leaves_nothing_behind(tables):
    def broken():
        yield LAYER.table.to_batches()[0]
        raise OSError("blob truncated")

    stream = pa.RecordBatchReader.from_batches(LAYER.table.schema, broken())
    before = duckdb_tables(tables)
    with pytest.raises(Exception, match="blob truncated"):
        tables.put("a", "v1", stream, LAYER.schema, 0.0)
    assert duckdb_tables(tables) == before and tables.get("a", "v1") is None
