"""Hot tables: one budget for every table held, replaced versions included; one file per
version shared by the processes of a host."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from koop_app.data import hot, hotfiles
from koop_app.data.hot import HotTables
from koop_app.data.normalize import GEOMETRY_COLUMN, SourceAnswers, normalize
from koop_app.data.schema import STRING, Field
from tests.conftest import collection, feature, point

LAYER = normalize(collection([feature({"n": i}, point(i, i)) for i in range(500)]),
                  label="hot", assign_ids=lambda keys: pa.array(range(1, len(keys) + 1)))


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["files", "memory"])
def tables(request, settings, tmp_path):
    """The budget tests run on both kinds of tables: attached files and in-memory ones."""
    if request.param == "memory":
        settings.KOOP = {**settings.KOOP, "HOT_DIR": False}
    else:
        settings.KOOP = {**settings.KOOP, "HOT_DIR": str(tmp_path / "hot")}
    found = HotTables()
    yield found
    found.clear()


def put(tables: HotTables, key: str, version: str = "v1"):
    return tables.put(key, version, LAYER.table, LAYER.schema, 0.0)


def duckdb_tables(tables: HotTables) -> set[str]:
    """Tables as LayerTable names them: attached files' qualified by their database."""
    rows = tables.cursor().execute(
        "SELECT database_name, table_name FROM duckdb_tables()").fetchall()
    return {name if database == "memory" else f"{database}.{name}" for database, name in rows}


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
    assert b.table_name not in duckdb_tables(tables)
    assert tables.get("a", "v1") == a and tables.get("c", "v1") is not None
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
    b = put(tables, "b")  # a was used a moment ago: a request may be about to query it
    assert tables.get("a", "v1") is not None
    assert tables.usage()["bytes"] > 1.5 * LAYER.table.nbytes
    monkeypatch.setattr(hot, "RETIRE_SECONDS", 0.5)
    time.sleep(1.1)  # idle, and past the once-a-second tidy of get()
    assert tables.get("a", "v1") is not None  # tidies first: b is the least recently used
    assert b.table_name not in duckdb_tables(tables) and tables.usage()["tables"] == 1


def test_a_failed_load_leaves_nothing_behind(tables):
    def broken():
        yield LAYER.table.to_batches()[0]
        raise OSError("blob truncated")

    stream = pa.RecordBatchReader.from_batches(LAYER.table.schema, broken())
    before = duckdb_tables(tables)
    with pytest.raises(Exception, match="blob truncated"):
        tables.put("a", "v1", stream, LAYER.schema, 0.0)
    assert duckdb_tables(tables) == before and tables.get("a", "v1") is None


# --- One file per version, shared by every process on the host -----------------------------

BUILDER = """
import sys, time
import django
django.setup()
import pyarrow as pa
from koop_app.data.hot import HotTables
from tests.data.test_hot import LAYER

def slow():
    for batch in LAYER.table.to_batches(max_chunksize=100):
        print("building", flush=True)
        time.sleep(0.3)
        yield batch

tables = HotTables()
table = tables.put("shared", "v1", pa.RecordBatchReader.from_batches(LAYER.table.schema, slow()),
                   LAYER.schema, 0.0)
print("built", table.count, flush=True)
sys.stdin.read()  # stay attached until the test is done
"""


@pytest.fixture
def hot_dir(settings, tmp_path):
    folder = tmp_path / "hot"
    settings.KOOP = {**settings.KOOP, "HOT_DIR": str(folder)}
    return folder


@pytest.fixture
def shared(hot_dir):
    found = HotTables()
    yield found
    found.clear()


def unreadable():
    """A stream that fails if read: the layer must come from the file."""
    def batches():
        raise AssertionError("the rows were decoded again")
        yield  # pragma: no cover

    return pa.RecordBatchReader.from_batches(LAYER.table.schema, batches())


def files(folder):
    return sorted(p.name for p in folder.glob("*/*.duckdb"))


def test_a_second_process_waits_on_the_build_lock_then_attaches_the_file(hot_dir, shared):
    env = {**os.environ, "KOOP_VAR_DIR": str(hot_dir.parent)}
    with subprocess.Popen([sys.executable, "-c", BUILDER], cwd=ROOT, env=env, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as builder:
        first = builder.stdout.readline().strip()
        assert first == "building", builder.stderr.read() if not first else first
        started = time.monotonic()
        table = shared.put("shared", "v1", unreadable(), LAYER.schema, 0.0)  # blocks, no poll
        waited = time.monotonic() - started
        assert builder.stdout.readline().startswith("building")  # it went on meanwhile
        assert waited > 0.6 and table.count == 500 and "." in table.table_name
        assert files(hot_dir) == ["v1.duckdb"]
        rows = shared.cursor().execute(f"SELECT count(*), sum(n) FROM {table.table_name}")
        assert rows.fetchone() == (500, sum(range(500)))
        # Both use it: the file stays while either does.
        shared.discard("shared")
        shared.clear()
        assert files(hot_dir) == ["v1.duckdb"]
        builder.stdin.close()
        assert builder.wait(timeout=30) == 0
    assert hotfiles.sweep(hot_dir, all_unused=True) == 0 and files(hot_dir) == []


def test_another_instance_attaches_without_decoding(hot_dir, shared):
    first = put(shared, "a")
    other = HotTables()
    try:
        found = other.get("a", "v1")  # no rows handed over at all
        assert found is not None and found.count == first.count
        assert found.schema == first.schema and found.nbytes == first.nbytes
        assert found.point_boxes and first.point_boxes  # kept with the file
        again = other.put("a", "v1", unreadable(), LAYER.schema, 0.0)
        assert again == found
    finally:
        other.clear()


def test_the_file_is_read_only_with_enum_and_geometry_columns(hot_dir, shared):
    schema = dataclasses.replace(LAYER.schema, fields=(
        *LAYER.schema.fields, Field("kind", STRING, enum_values=("a", "b"))))
    rows = LAYER.table.append_column("kind", pa.array(["a", "b"] * 250))
    table = shared.put("typed", "v1", rows, schema, 0.0)
    cursor = shared.cursor()
    types = dict(cursor.execute(f"SELECT column_name, column_type FROM "
                                f"(DESCRIBE {table.table_name})").fetchall())
    assert types[GEOMETRY_COLUMN] == "GEOMETRY" and types["kind"] == "ENUM('a', 'b')"
    with pytest.raises(duckdb.Error, match="read-only"):
        cursor.execute(f"DELETE FROM {table.table_name}")


def test_eviction_detaches_and_keeps_the_file(hot_dir, shared, settings, monkeypatch):
    budget_of(settings, 1.5)
    monkeypatch.setattr(hot, "RETIRE_SECONDS", 0.0)
    a = put(shared, "a")
    put(shared, "b")
    alias = a.table_name.split(".")[0]
    attached = {name for (name,) in shared.cursor().execute(
        "SELECT database_name FROM duckdb_databases()").fetchall()}
    assert alias not in attached and shared.usage()["attached_files"] == 1
    assert len(files(hot_dir)) == 2  # still current: other processes may use it
    again = shared.get("a", "v1")  # attached again from the file, nothing decoded
    assert again is not None and again.table_name != a.table_name


def test_a_replaced_version_file_goes_when_nobody_uses_it(hot_dir, shared, monkeypatch):
    first = put(shared, "a", "v1")
    user = hotfiles.hold_use(hotfiles.HotFile.of(hot_dir, "a", "v1"))  # another process's
    monkeypatch.setattr(hot, "RETIRE_SECONDS", 0.0)
    put(shared, "a", "v2")
    shared.discard("none")  # tidies: v1 detached
    assert first.table_name not in duckdb_tables(shared)
    assert files(hot_dir) == ["v1.duckdb", "v2.duckdb"]  # still in use elsewhere
    os.close(user)
    hotfiles.sweep(hot_dir, keep={hotfiles.HotFile.of(hot_dir, "a", "v2").path})
    assert files(hot_dir) == ["v2.duckdb"]
    put(shared, "a", "v3")
    shared.discard("none")
    assert files(hot_dir) == ["v3.duckdb"]  # nobody else used v2


def test_a_damaged_or_partial_file_is_rebuilt(hot_dir, shared):
    put(shared, "a")
    path = hotfiles.HotFile.of(hot_dir, "a", "v1").path
    shared.clear()
    assert not path.exists()
    put(shared, "a")
    shared.discard("a")
    shared.clear()
    # A file cut short (a full disk, a crash past the rename) and a build that died.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database" * 100)
    partial = path.with_name("v1.12345.abcd.partial")
    partial.write_bytes(b"half")
    fresh = HotTables()
    try:
        table = fresh.put("a", "v1", LAYER.table, LAYER.schema, 0.0)
        assert table.count == 500 and not partial.exists()
        assert fresh.cursor().execute(f"SELECT count(*) FROM {table.table_name}").fetchone() == (
            500,)
    finally:
        fresh.clear()


def test_pass_through_answers_stay_in_memory(hot_dir, shared):
    table = shared.put("p", "v1-x", LAYER.table, LAYER.schema, 0.0, answers=SourceAnswers())
    assert "." not in table.table_name and files(hot_dir) == []


def test_a_failed_build_leaves_no_file(hot_dir, shared):
    def broken():
        yield LAYER.table.to_batches()[0]
        raise OSError("blob truncated")

    stream = pa.RecordBatchReader.from_batches(LAYER.table.schema, broken())
    with pytest.raises(Exception, match="blob truncated"):
        shared.put("a", "v1", stream, LAYER.schema, 0.0)
    assert list(hot_dir.glob("*/*.duckdb*")) == [] and list(hot_dir.glob("*/*.partial")) == []
    assert shared.get("a", "v1") is None


def test_a_hilbert_ordered_file_answers_the_same(hot_dir, shared, settings):
    points = normalize(collection([feature({"n": i}, point((i * 37) % 100, (i * 53) % 100))
                                   for i in range(500)]), label="hilbert",
                       assign_ids=lambda keys: pa.array(range(1, len(keys) + 1)))
    settings.KOOP = {**settings.KOOP, "HOT_ORDER": "hilbert"}
    table = shared.put("h", "v1", points.table, points.schema, 0.0)
    cursor = shared.cursor()
    stored = [n for (n,) in cursor.execute(f"SELECT n FROM {table.table_name}").fetchall()]
    assert sorted(stored) == list(range(500)) and stored != list(range(500))
    inside = cursor.execute(f"SELECT n FROM {table.table_name} WHERE _koop_xmin BETWEEN 10 AND 20 "
                            "AND _koop_ymin BETWEEN 10 AND 20 ORDER BY n").fetchall()
    assert [n for (n,) in inside] == [i for i in range(500) if 10 <= (i * 37) % 100 <= 20
                                      and 10 <= (i * 53) % 100 <= 20]


def test_cells_keep_ids_ascending_within_coarse_hilbert_cells(hot_dir, shared, settings,
                                                              monkeypatch):
    points = normalize(collection([feature({"n": i}, point((i * 37) % 100, (i * 53) % 100))
                                   for i in range(500)]), label="cells",
                       assign_ids=lambda keys: pa.array(range(1, len(keys) + 1)))
    settings.KOOP = {**settings.KOOP, "HOT_ORDER": "cells"}
    monkeypatch.setattr(hot, "CELL_ROWS", 30)  # 500 rows: 4^2 cells of ~31
    table = shared.put("c", "v1", points.table, points.schema, 0.0)
    ids = [i for (i,) in shared.cursor().execute(
        f"SELECT OBJECTID FROM {table.table_name}").fetchall()]
    assert sorted(ids) == list(range(1, 501)) and ids != sorted(ids)
    runs = sum(1 for a, b in zip(ids, ids[1:], strict=False) if b < a) + 1
    assert 2 <= runs <= 16  # ascending runs: one per cell


def test_threads_attaching_one_file_at_once_share_one_attachment(hot_dir, shared):
    import threading

    put(shared, "a")
    other = HotTables()
    found = []
    try:
        threads = [threading.Thread(target=lambda: found.append(other.get("a", "v1")))
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({t.table_name for t in found}) == 1 and None not in found
        assert other.usage()["attached_files"] == 1 and files(hot_dir) == ["v1.duckdb"]
    finally:
        other.clear()


def test_prebuild_writes_the_file_without_serving_it(hot_dir, shared):
    assert shared.prebuild("pre", "v1", LAYER.table, LAYER.schema, 0.0)
    assert files(hot_dir) == ["v1.duckdb"] and shared.usage()["attached_files"] == 0
    assert not shared.prebuild("pre", "v1", unreadable(), LAYER.schema, 0.0)  # there already
    limit = shared.cursor().execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.endswith("MiB") and float(limit.split()[0]) < 1024  # a worker's builds spill
    other = HotTables()
    try:
        found = other.get("pre", "v1")  # a web process attaches it, rows never handed over
        assert found is not None and found.count == 500
    finally:
        other.clear()


def test_prebuild_without_a_hot_folder_does_nothing(settings):
    settings.KOOP = {**settings.KOOP, "HOT_DIR": False}
    assert not HotTables().prebuild("pre", "v1", unreadable(), LAYER.schema, 0.0)


def test_a_serving_process_keeps_its_memory_limit_when_it_prebuilds(hot_dir, shared):
    put(shared, "served")
    before = shared.cursor().execute("SELECT current_setting('memory_limit')").fetchone()
    shared.prebuild("other", "v1", LAYER.table, LAYER.schema, 0.0)
    after = shared.cursor().execute("SELECT current_setting('memory_limit')").fetchone()
    assert before == after


@pytest.mark.parametrize("compress", [False, True])
def test_numbers_and_text_in_hot_files_are_stored_plain_unless_asked(hot_dir, settings, compress):
    settings.KOOP = {**settings.KOOP, "HOT_COMPRESS": compress}
    # Long, repetitive text: DuckDB samples a segment to choose its method, and short strings
    # like "name 12 of 3" were left uncompressed on some runs.
    features = [feature({"v": i / 7,
                         "s": f"North Riverside Boulevard, building number {i * 7919 % 3001} "
                              f"of block {i}"}, point(i / 3, i / 9))
                for i in range(3000)]
    values = normalize(collection(features),
                       label="numbers", assign_ids=lambda keys: pa.array(range(1, len(keys) + 1)))
    own = HotTables()
    try:
        table = own.put("numbers", "v1", values.table, values.schema, 0.0)
        # A column may span several segments, each with its own method (a short last segment
        # may not pay for FSST): keep every method a column uses.
        methods: dict[str, set[str]] = {}
        for column, method in own.cursor().execute(
                f"SELECT DISTINCT column_name, compression FROM pragma_storage_info("
                f"'{table.table_name}') WHERE segment_type IN ('DOUBLE', 'VARCHAR')").fetchall():
            methods.setdefault(column, set()).add(method)
    finally:
        own.clear()
    assert set(methods) == {"v", "s", "_koop_xmin", "_koop_ymin", "_koop_xmax", "_koop_ymax"}
    if compress:
        # DuckDB picks per segment what pays; these columns compress.
        assert "FSST" in methods["s"] and methods["_koop_xmin"] & {"ALP", "ALPRD"}
    else:
        assert set().union(*methods.values()) == {"Uncompressed"}


def test_rows_are_copied_a_chunk_at_a_time_in_their_order(tables, monkeypatch):
    monkeypatch.setattr(hot, "COPY_ROWS", 120)  # LAYER's 500 rows: 5 statements
    stream = pa.RecordBatchReader.from_batches(
        LAYER.table.schema, LAYER.table.to_batches(max_chunksize=50))
    table = tables.put("chunks", "v1", stream, LAYER.schema, 0.0)
    stored = [n for (n,) in tables.cursor().execute(f"SELECT n FROM {table.table_name}"
                                                    ).fetchall()]
    assert stored == list(range(500)) and table.count == 500


def test_chunks_of_an_empty_stream_make_one_empty_table():
    empty = pa.RecordBatchReader.from_batches(LAYER.table.schema, [])
    chunks = list(hot._chunks(empty, 100))
    assert len(chunks) == 1 and chunks[0].num_rows == 0
    sizes = [c.num_rows for c in hot._chunks(LAYER.table.to_reader(max_chunksize=30), 100)]
    assert sizes == [120, 120, 120, 120, 20]
