"""NULLs in ordered answers as ArcGIS Online (SQL Server) puts them: first when ascending, last
when descending, on feature pages, ids, statistics and distinct values."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pytest

from koop_app.data.hot import hot_tables
from koop_app.data.normalize import normalize
from koop_app.encoders.esri_json import esri_query_json
from koop_app.query import RecordLimits, parse_query, run
from tests.conftest import collection, feature, point

LIMITS = RecordLimits(2000, 2000, 2000)
VALUES = [3, None, 1, 2, None, 5]
KINDS = ["b", None, "a", "b", "a", None]


@pytest.fixture
def layer():
    rows = [feature({"v": v, "kind": k}, point(i, i)) for i, (v, k) in
            enumerate(zip(VALUES, KINDS, strict=True))]
    normalized = normalize(collection(rows), label="nulls",
                           assign_ids=lambda keys: pa.array(range(1, len(keys) + 1), pa.int64()))
    return hot_tables.put("nulls", "v1", normalized.table, normalized.schema, 0.0)


def answer(table, **params: str) -> dict[str, Any]:
    query = parse_query({"f": "json", **params}, table.schema)
    return orjson.loads(orjson.dumps(esri_query_json(run(query, table, LIMITS))))


def attributes(body: dict[str, Any], name: str) -> list[Any]:
    return [f["attributes"][name] for f in body["features"]]


def test_feature_pages(layer):
    assert attributes(answer(layer, orderByFields="v", outFields="v"), "v") == [
        None, None, 1, 2, 3, 5]
    assert attributes(answer(layer, orderByFields="v ASC", outFields="v"), "v") == [
        None, None, 1, 2, 3, 5]
    assert attributes(answer(layer, orderByFields="v DESC", outFields="v"), "v") == [
        5, 3, 2, 1, None, None]
    # Pages cut from that order, and the row past the page read with it.
    page = answer(layer, orderByFields="v", outFields="v", resultOffset="1",
                  resultRecordCount="2")
    assert attributes(page, "v") == [None, 1] and page["exceededTransferLimit"] is True
    two_keys = answer(layer, orderByFields="kind DESC, v", outFields="kind,v")
    assert list(zip(attributes(two_keys, "kind"), attributes(two_keys, "v"), strict=True)) == [
        ("b", 2), ("b", 3), ("a", None), ("a", 1), (None, None), (None, 5)]


def test_ids_follow_the_same_order(layer):
    assert answer(layer, orderByFields="v", returnIdsOnly="true")["objectIds"] == [
        2, 5, 3, 4, 1, 6]
    assert answer(layer, orderByFields="v DESC", returnIdsOnly="true")["objectIds"] == [
        6, 1, 4, 3, 2, 5]


def test_distinct_values(layer):
    assert attributes(answer(layer, outFields="kind", returnDistinctValues="true"),
                      "kind") == [None, "a", "b"]
    assert attributes(answer(layer, outFields="kind", returnDistinctValues="true",
                             orderByFields="kind DESC"), "kind") == ["b", "a", None]


STATS = orjson.dumps([{"statisticType": "count", "onStatisticField": "OBJECTID",
                       "outStatisticFieldName": "n"},
                      {"statisticType": "max", "onStatisticField": "v",
                       "outStatisticFieldName": "top"}]).decode()


def test_statistics(layer):
    grouped = {"outStatistics": STATS, "groupByFieldsForStatistics": "kind"}
    assert attributes(answer(layer, **grouped), "kind") == [None, "a", "b"]
    assert attributes(answer(layer, orderByFields="kind DESC", **grouped), "kind") == [
        "b", "a", None]
    by_top = answer(layer, orderByFields="top", **grouped)
    assert attributes(by_top, "top") == [1, 3, 5]
    by_kind_of_top = answer(layer, groupByFieldsForStatistics="v", outStatistics=STATS,
                            orderByFields="v")
    assert attributes(by_kind_of_top, "v") == [None, 1, 2, 3, 5]
