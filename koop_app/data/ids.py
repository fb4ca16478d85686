"""Stable object ids: the same feature key gets the same integer id across refreshes.

The map of one cache key is kept in FeatureIdChunk rows (Arrow IPC streams of key, oid) and
a counter in its FeatureIdMap row. A refresh reads the chunks without a lock, joins the new
keys against them in DuckDB and numbers the unseen keys in order of appearance after the
highest id given: the ids are reserved by one short UPDATE of the counter, and the new keys
are written in chunks of at most CHUNK_KEYS, each in its own short transaction. No step
holds the database's write lock for more than a few milliseconds, whatever the number of keys.

Keys that disappear keep their id, so a feature that comes back gets its old id again. Two
refreshes of one key racing each other may both number a new key: the smaller id wins when
the map is read.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa
from django.db import transaction
from django.db.models import F

from koop_app.data import duck
from koop_app.data.arrowio import read_ipc, write_ipc
from koop_app.models import FeatureIdChunk, FeatureIdMap

CHUNK_KEYS = 100_000
_EMPTY = pa.schema([("key", pa.string()), ("oid", pa.int64())])


def assign_ids(cache_key: str, keys: pa.Array) -> pa.Array:
    """Return an int64 id per key, creating ids for keys never seen under ``cache_key``."""
    con = duck.connect()
    try:
        incoming = pa.table({"pos": pa.array(range(len(keys)), pa.int64()),
                             "key": keys.cast(pa.string())})
        con.register("incoming_keys", incoming)
        con.execute("CREATE TABLE keyed AS SELECT * FROM incoming_keys")
        con.unregister("incoming_keys")
        table = assign_in(con, cache_key, "keyed")
        result = con.execute(f"SELECT oid FROM {table} ORDER BY pos").to_arrow_table()
        return result["oid"].combine_chunks()
    finally:
        con.close()


def assign_in(con: duckdb.DuckDBPyConnection, cache_key: str, source: str,
              progress: Callable[[int], None] | None = None) -> str:
    """Number the keys of table ``source`` (pos BIGINT, key VARCHAR) in DuckDB ``con``.

    ``pos`` runs 0..n-1 and keys are distinct. Returns the name of a new table (pos, oid) in
    ``pos`` order. ``progress`` is told how many new keys have been written so far.
    """
    known = _load_known(con, cache_key)
    if not known:  # a first refresh: every key is new, numbered in order (pos is 0..n-1)
        (count,) = con.execute(f"SELECT count(*) FROM {source}").fetchone()
        first = reserve(cache_key, int(count))
        con.execute(f"CREATE TEMP TABLE _numbered AS SELECT key, pos + {int(first)} AS oid "
                    f"FROM {source}")
        con.execute(f"CREATE TEMP TABLE _oids AS SELECT pos, pos + {int(first)} AS oid "
                    f"FROM {source} ORDER BY pos")
    else:
        con.execute(f"""
            CREATE TEMP TABLE _new_keys AS
            SELECT s.pos, s.key FROM {source} s ANTI JOIN _known k ON k.key = s.key
        """)
        (count,) = con.execute("SELECT count(*) FROM _new_keys").fetchone()
        first = reserve(cache_key, int(count))
        # The number inlined (an int): binding a parameter makes DuckDB try ``import pandas``.
        con.execute(f"""
            CREATE TEMP TABLE _numbered AS
            SELECT key, CAST({int(first)} + row_number() OVER (ORDER BY pos) - 1 AS BIGINT) AS oid
            FROM _new_keys
        """)
        con.execute(f"""
            CREATE TEMP TABLE _oids AS
            SELECT s.pos, coalesce(k.oid, n.oid) AS oid
            FROM {source} s LEFT JOIN _known k ON k.key = s.key
                 LEFT JOIN _numbered n ON n.key = s.key
            ORDER BY s.pos
        """)
        con.execute("DROP TABLE _new_keys")
    if count:
        reader = con.execute("SELECT key, oid FROM _numbered ORDER BY oid").to_arrow_reader(
            CHUNK_KEYS)
        written = 0
        for batch in reader:
            # One autocommitted INSERT per chunk: a short write, the lock released between.
            FeatureIdChunk.objects.create(cache_key=cache_key,
                                          data=write_ipc(pa.Table.from_batches([batch])))
            written += batch.num_rows
            if progress is not None:
                progress(written)
    con.execute("DROP TABLE _numbered; DROP TABLE _known")
    return "_oids"


def _load_known(con: duckdb.DuckDBPyConnection, cache_key: str) -> int:
    """Table _known(key, oid) of ``cache_key``'s map, read chunk by chunk without a lock.

    Returns how many keys it holds.
    """
    con.execute("CREATE TEMP TABLE _chunks (key VARCHAR, oid BIGINT)")
    legacy = FeatureIdMap.objects.filter(cache_key=cache_key).values_list("data", flat=True)
    blobs = [bytes(data) for data in legacy if data]
    chunk_ids = FeatureIdChunk.objects.filter(cache_key=cache_key).order_by("pk").values_list(
        "pk", flat=True)
    for blob in _blobs(blobs, list(chunk_ids)):
        part = read_ipc(blob).select(["key", "oid"]).cast(_EMPTY)
        con.register("_chunk", part)
        con.execute("INSERT INTO _chunks SELECT key, oid FROM _chunk")
        con.unregister("_chunk")
    con.execute("CREATE TEMP TABLE _known AS SELECT key, min(oid) AS oid FROM _chunks "
                "GROUP BY key")
    con.execute("DROP TABLE _chunks")
    return int(con.execute("SELECT count(*) FROM _known").fetchone()[0])


def _blobs(legacy: list[bytes], chunk_ids: list[int]):
    yield from legacy
    for pk in chunk_ids:  # one at a time: the map is never held whole in Python
        data = FeatureIdChunk.objects.filter(pk=pk).values_list("data", flat=True).first()
        if data:
            yield bytes(data)


def reserve(cache_key: str, count: int) -> int:
    """Reserve ``count`` new ids for ``cache_key``; return the first (one short transaction)."""
    with transaction.atomic():
        row, _ = FeatureIdMap.objects.get_or_create(cache_key=cache_key,
                                                    defaults={"data": b"", "next_id": 1})
        if not count:
            return int(row.next_id)
        FeatureIdMap.objects.filter(pk=row.pk).update(next_id=F("next_id") + count)
        after = FeatureIdMap.objects.values_list("next_id", flat=True).get(pk=row.pk)
    return int(after) - count


def forget_ids(cache_key: str) -> None:
    """Forget the ids of ``cache_key`` and of its layers (``<key>|<layer id>``)."""
    for model in (FeatureIdMap, FeatureIdChunk):
        model.objects.filter(cache_key=cache_key).delete()
        model.objects.filter(cache_key__startswith=f"{cache_key}|").delete()
