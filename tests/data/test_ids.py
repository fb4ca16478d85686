"""Stable object ids across refreshes of changed data."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest
from django.db import connection, transaction

from koop_app import data
from koop_app.data import ids, ingest
from koop_app.data.arrowio import write_ipc
from koop_app.data.duck import quote_ident
from koop_app.models import FeatureIdChunk, FeatureIdMap
from koop_app.query import execute
from tests.conftest import collection, feature, point, write_json

pytestmark = pytest.mark.usefixtures("any_cache")


def assign(key: str, keys: list[str]) -> list[int]:
    return ids.assign_ids(key, pa.array(keys, pa.string())).to_pylist()


@pytest.mark.django_db
def test_assign_ids_keeps_known_keys_and_numbers_new_ones_after_the_highest():
    assert assign("k", ["a", "b", "c"]) == [1, 2, 3]
    assert assign("k", ["c", "x", "a", "y"]) == [3, 4, 1, 5]
    assert assign("k", ["b"]) == [2]  # a key that went away and came back keeps its id
    assert assign("other", ["a"]) == [1]  # maps are per cache key
    assert FeatureIdMap.objects.get(cache_key="k").next_id == 6


@pytest.mark.django_db
def test_assign_ids_with_no_keys():
    assert assign("k", []) == []


def names_by_id(dataset) -> dict[int, str]:
    table = data.get_table(dataset, data.provider_request(dataset))
    oid = quote_ident(table.schema.object_id_field)
    rows = execute(f"SELECT {oid}, name FROM {table.table_name}").fetchall()
    return {int(r[0]): r[1] for r in rows}


@pytest.mark.django_db
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("with_ids", [True, False], ids=["geojson-ids", "content-keys"])
def test_ids_are_stable_across_two_refreshes_of_changed_data(make_dataset, data_dir, with_ids,
                                                             streamed, monkeypatch):
    if streamed:  # every file through the DuckDB stream, however small
        monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 0)
    def doc(names: list[str]) -> dict:
        return collection([
            feature({"name": n}, point(i, i), **({"id": n} if with_ids else {}))
            for i, n in enumerate(names)
        ])

    dataset = make_dataset("geojson", "stable", doc(["a", "b", "c"]))
    first = names_by_id(dataset)
    assert sorted(first.values()) == ["a", "b", "c"]

    # Reorder, drop one, add one: the survivors keep their ids.
    write_json(data_dir / "stable.geojson",
               collection(list(reversed(doc(["a", "c", "d"])["features"]))))
    if not with_ids:
        # Content keys: the same feature content must come back with the same geometry.
        write_json(data_dir / "stable.geojson", collection([
            feature({"name": "c"}, point(2, 2)), feature({"name": "d"}, point(3, 3)),
            feature({"name": "a"}, point(0, 0))]))
    data.refresh(dataset)
    second = names_by_id(dataset)
    inverse_first = {v: k for k, v in first.items()}
    inverse_second = {v: k for k, v in second.items()}
    assert inverse_second["a"] == inverse_first["a"]
    assert inverse_second["c"] == inverse_first["c"]
    assert inverse_second["d"] not in first  # a new feature gets a new id

    # Refresh again with "b" back: it gets its old id.
    write_json(data_dir / "stable.geojson", doc(["a", "b", "c", "d"]))
    data.refresh(dataset)
    third = {v: k for k, v in names_by_id(dataset).items()}
    assert third == {**inverse_second, "b": inverse_first["b"]}


@pytest.mark.django_db
def test_provider_integer_ids_are_used_as_they_are(make_dataset):
    doc = collection([feature({"fid": 70, "name": "x"}), feature({"fid": 8, "name": "y"})],
                     metadata={"idField": "fid"})
    dataset = make_dataset("geojson", "fids", doc)
    assert names_by_id(dataset) == {70: "x", 8: "y"}


@pytest.mark.django_db
def test_dataset_id_field_override(make_dataset):
    doc = collection([feature({"code": 5, "name": "x"}), feature({"code": 6, "name": "y"})])
    dataset = make_dataset("geojson", "codes", doc, id_field="code")
    assert names_by_id(dataset) == {5: "x", 6: "y"}


@pytest.mark.django_db(transaction=True)
def test_new_keys_are_written_in_chunks_and_read_back(monkeypatch):
    monkeypatch.setattr(ids, "CHUNK_KEYS", 2)
    assert assign("k", ["a", "b", "c", "d", "e"]) == [1, 2, 3, 4, 5]
    assert FeatureIdChunk.objects.filter(cache_key="k").count() == 3
    assert assign("k", ["e", "f", "a"]) == [5, 6, 1]
    ids.forget_ids("k")
    assert not FeatureIdChunk.objects.exists()
    assert assign("k", ["e"]) == [1]


@pytest.mark.django_db(transaction=True)
def test_a_map_kept_whole_by_an_older_version_is_still_read():
    FeatureIdMap.objects.create(cache_key="k", next_id=3, data=write_ipc(pa.table({
        "key": pa.array(["a", "b"]), "oid": pa.array([1, 2], pa.int64())})))
    assert assign("k", ["b", "c", "a"]) == [2, 3, 1]


@pytest.mark.django_db(transaction=True)
def test_assigning_many_ids_leaves_the_database_writable_meanwhile():
    """Other connections write while 300k new keys are numbered and stored (SQLite too)."""
    keys = pa.array([f"key-{i}" for i in range(300_000)], pa.string())
    done = threading.Event()
    failures = []

    def assign_all() -> None:
        try:
            ids.assign_ids("big", keys)
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)
        finally:
            connection.close()
            done.set()

    worker = threading.Thread(target=assign_all)
    worker.start()
    writes, slowest = 0, 0.0
    while not done.is_set():
        clock = time.perf_counter()
        with transaction.atomic():
            FeatureIdMap.objects.update_or_create(cache_key="other",
                                                  defaults={"next_id": writes + 1})
        slowest = max(slowest, time.perf_counter() - clock)
        writes += 1
        time.sleep(0.01)
    worker.join()
    assert not failures
    assert FeatureIdChunk.objects.filter(cache_key="big").count() == 3
    assert writes >= 3  # the writes went on during the assignment, not after it
    assert slowest < 2.0  # generous: no write waited for the whole assignment
