"""outStatistics, groupByFieldsForStatistics and havingClause limits."""

from __future__ import annotations

import orjson

from koop_app.query.params import parse_query
from tests.query.params.conftest import SCHEMA, problem


def _stats(n: int) -> str:
    return orjson.dumps([{"statisticType": "sum", "onStatisticField": f"f{i % 20}",
                          "outStatisticFieldName": f"s{i}"} for i in range(n)]).decode()


def test_statistics(limits):
    limits(MAX_STATISTICS=3)
    assert len(parse_query({"outStatistics": _stats(3)}, SCHEMA).statistics) == 3
    assert "4 statistics; at most 3" in problem({"outStatistics": _stats(4)}, "outStatistics")


def test_group_by_fields(limits):
    limits(MAX_GROUP_BY_FIELDS=2)
    ok = parse_query({"outStatistics": _stats(1), "groupByFieldsForStatistics": "f1, f2,"},
                     SCHEMA)
    assert ok.group_by == ("f1", "f2")
    assert "at most 2 fields" in problem(
        {"outStatistics": _stats(1), "groupByFieldsForStatistics": "f1,f2,f3"},
        "groupByFieldsForStatistics")


def test_having_clause_length(limits):
    limits(MAX_WHERE_LENGTH=20)
    raw = {"outStatistics": _stats(1), "groupByFieldsForStatistics": "f1"}
    assert parse_query({**raw, "havingClause": "SUM(f0) > 1234567"}, SCHEMA).having
    assert "at most 20" in problem({**raw, "havingClause": "SUM(f0) > 123456789012"},
                                   "havingClause")
