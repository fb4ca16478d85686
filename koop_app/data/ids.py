"""Stable object ids: the same feature key gets the same integer id across refreshes.

The map of one cache key lives in a FeatureIdMap row as an Arrow IPC stream; a refresh joins
the new keys against it in DuckDB and numbers only the unseen keys, after the highest id given.
Keys that disappear keep their id, so a feature that comes back gets its old id again.
"""

from __future__ import annotations

import pyarrow as pa
from django.db import transaction

from koop_app.data import duck
from koop_app.data.arrowio import read_ipc, write_ipc
from koop_app.models import FeatureIdMap


def assign_ids(cache_key: str, keys: pa.Array) -> pa.Array:
    """Return an int64 id per key, creating ids for keys never seen under ``cache_key``."""
    with transaction.atomic():
        row, _ = FeatureIdMap.objects.select_for_update().get_or_create(
            cache_key=cache_key, defaults={"data": b"", "next_id": 1}
        )
        if row.data:
            known = read_ipc(bytes(row.data))
        else:
            known = pa.table({"key": pa.array([], pa.string()), "oid": pa.array([], pa.int64())})
        incoming = pa.table({"key": keys, "pos": pa.array(range(len(keys)), pa.int64())})
        con = duck.connect()
        try:
            con.register("known", known)
            con.register("incoming", incoming)
            result = con.execute(
                """
                SELECT CAST(coalesce(k.oid, CAST(? AS BIGINT) - 1
                                     + count(*) FILTER (WHERE k.oid IS NULL)
                                       OVER (ORDER BY i.pos ROWS UNBOUNDED PRECEDING))
                            AS BIGINT) AS oid,
                       k.oid IS NULL AS is_new, i.key
                FROM incoming i LEFT JOIN known k ON k.key = i.key
                ORDER BY i.pos
                """,
                [row.next_id],
            ).to_arrow_table()
        finally:
            con.close()
        new = result.filter(result["is_new"])
        if new.num_rows:
            merged = pa.concat_tables(
                [known, pa.table({"key": new["key"], "oid": new["oid"]})]
            )
            row.data = write_ipc(merged)
            row.next_id = int(row.next_id) + new.num_rows
            row.save(update_fields=["data", "next_id", "updated"])
        return result["oid"].combine_chunks()


def forget_ids(cache_key: str) -> None:
    """Forget the ids of ``cache_key`` and of its layers (``<key>|<layer id>``)."""
    FeatureIdMap.objects.filter(cache_key=cache_key).delete()
    FeatureIdMap.objects.filter(cache_key__startswith=f"{cache_key}|").delete()
