"""DuckDB helpers: the statement time limit."""

from __future__ import annotations

import time

import duckdb
import pytest

from koop_app.data import duck

SLOW = ("SELECT count(*) FROM range(3000) a, range(3000) b, range(3000) c "
        "WHERE a.range + b.range * c.range = -1")


@pytest.fixture
def con():
    connection = duck.connect()
    yield connection
    connection.close()


def test_a_slow_statement_is_interrupted_and_the_database_stays_usable(con):
    con.execute("CREATE TABLE t AS SELECT range AS n FROM range(10)")
    cursor = con.cursor()
    started = time.monotonic()
    with pytest.raises(duckdb.InterruptException), duck.time_limit(cursor, 0.2):
        cursor.execute(SLOW)
    assert time.monotonic() - started < 3.0
    assert con.cursor().execute("SELECT count(*) FROM t").fetchone() == (10,)
    assert cursor.execute("SELECT 1").fetchone() == (1,)


def test_statements_in_time_are_left_alone(con):
    for _ in range(200):
        cursor = con.cursor()
        with duck.time_limit(cursor, 0.05):
            assert cursor.execute("SELECT 42").fetchone() == (42,)
    time.sleep(0.1)  # past every deadline: nothing is interrupted late
    assert con.cursor().execute("SELECT 1").fetchone() == (1,)
    assert not duck._watchdog._live


def test_no_limit(con):
    cursor = con.cursor()
    with duck.time_limit(cursor, None):
        assert cursor.execute("SELECT 1").fetchone() == (1,)


def test_a_missing_pandas_is_known_without_a_search(con):
    """DuckDB tries ``import pandas`` for each bound value: without pandas that must not search
    sys.path each time (it did: 6 s for 100,000 values)."""
    import importlib
    import sys

    if not any(isinstance(finder, duck._PandasAbsent) for finder in sys.meta_path):
        pytest.skip("pandas is installed")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pandas")
    values = list(range(5_000))
    placeholders = ", ".join(["?"] * len(values))
    assert con.execute(f"SELECT count(*) FROM range(10) WHERE range IN ({placeholders})",
                       values).fetchone() == (10,)
