"""Generated where clauses never reach DuckDB as something it refuses to plan.

A clause is refused by our checker (InvalidParameterError from ``parse_query``) or it runs. At
run time only the values may still fail (an overflow, the logarithm of zero): a 400 in our
words. Never DuckDB's own message, never an error that would be a code 500.
"""

from __future__ import annotations

import os
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from koop_app.data.hot import hot_tables
from koop_app.data.normalize import normalize
from koop_app.encoders.esri_json import esri_query_json
from koop_app.errors import InvalidParameterError
from koop_app.query import RecordLimits, engine, parse_query, run
from tests.conftest import collection, feature, point
from tests.outputs.geoservices import strategies as gen

EXAMPLES = int(os.environ.get("KOOP_FUZZ_EXAMPLES", "300"))
LIMITS = RecordLimits(50, 50, 50)
WORDS = ["Oak Street", "OAK", "park", "12", "2024-01-02", "", "it's", "Σοφία", None]
FIELDS = ["name", "kind", "size", "ratio", "seen", "ok", "score", "OBJECTID"]
# What a value may still do at run time; a binder error would mean the checker let through a
# clause DuckDB cannot plan.
RUN_TIME = {problem for kind, problem in engine._REFUSALS
            if kind in (duckdb.OutOfRangeException, duckdb.ConversionException)}


@pytest.fixture
def layer(monkeypatch):
    # ``kind`` (8 values) an ENUM, ``name`` (more than 20) text.
    monkeypatch.setattr("koop_app.data.normalize.ENUM_MIN_ROWS", 100)
    monkeypatch.setattr("koop_app.data.normalize.ENUM_MAX_VALUES", 20)
    rows = [feature({"name": WORDS[i % 9] if i % 7 else f"Thing {i}", "kind": WORDS[i % 9],
                     "size": i - 60, "ratio": i / 7,
                     "seen": f"2024-01-{i % 28 + 1:02d}T00:00:00Z", "ok": i % 3 == 0,
                     "score": None if i % 5 == 0 else i * 1.5},
                    point(i % 90, i % 45)) for i in range(150)]
    normalized = normalize(collection(rows), label="fuzz", assign_ids=lambda keys: pa.array(
        range(1, len(keys) + 1), pa.int64()))
    table = hot_tables.put("where-fuzz", "v1", normalized.table, normalized.schema, 0.0)
    assert table.schema.field("kind").enum_values and not table.schema.field("name").enum_values
    return table


field = st.one_of(st.sampled_from(FIELDS), st.sampled_from(FIELDS),
                  st.sampled_from(["Name", "KIND", '"size"', "nosuch"]))
quoted = st.sampled_from(["'oak%'", "'%PARK'", "'12'", "'2024-01-02'", "'O_K'", "'Σ%'",
                          "'1.5'", "'x!%' ESCAPE '!'"])
typed_tree = st.recursive(st.one_of(field, gen.literal, quoted), gen._where_node, max_leaves=8)

# Well-kinded values and conditions, so that many clauses run and reach the values' limits.
numbers = st.recursive(
    st.one_of(st.sampled_from(["size", "ratio", "score", "ok", "OBJECTID", "0", "-1", "2.5",
                               "9223372036854775807", "1e308", "'7'"]),
              st.integers(-10**20, 10**20).map(str)),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner).map(
            lambda t: f"({' '.join(t)})"),
        st.tuples(st.sampled_from(["ABS", "CEILING", "FLOOR", "ROUND", "LOG", "LOG10",
                                   "TRUNCATE"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"POWER({t[0]}, {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"ROUND({t[0]}, {t[1]})"),
        st.sampled_from(["EXTRACT(YEAR FROM seen)", "CAST(name AS INTEGER)",
                         "CAST(kind AS DOUBLE)", "POSITION('a' IN name)", "CHAR_LENGTH(kind)",
                         "MOD(size, 0)", "size / 0"])),
    max_leaves=4)
texts = st.recursive(
    st.sampled_from(["name", "kind", "'Oak'", "'%'", "''", "'Σοφία'", "'2024-01-02'",
                     "CAST(size AS VARCHAR)", "CAST(seen AS VARCHAR)"]),
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["UPPER", "LOWER", "TRIM"]), inner).map(
            lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} || {t[1]})"),
        st.tuples(inner, numbers).map(lambda t: f"SUBSTRING({t[0]}, {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"COALESCE({t[0]}, {t[1]})")),
    max_leaves=3)
dates = st.sampled_from(["seen", "date '2024-01-02'", "timestamp '2024-01-02 03:04:05'",
                         "CURRENT_DATE", "CAST(name AS DATE)", "CAST(kind AS TIMESTAMP)",
                         "'2024-01-05'", "seen + 86400000", "seen - size * 1e18"])
compare = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
typed_condition = st.recursive(
    st.one_of(
        st.tuples(numbers, compare, numbers).map(" ".join),
        st.tuples(texts, compare, texts).map(" ".join),
        st.tuples(dates, compare, dates).map(" ".join),
        st.tuples(texts, texts).map(lambda t: f"{t[0]} LIKE {t[1]}"),
        st.tuples(texts, st.lists(texts, min_size=1, max_size=4)).map(
            lambda t: f"{t[0]} IN ({', '.join(t[1])})"),
        st.tuples(numbers, numbers, numbers).map(lambda t: f"{t[0]} BETWEEN {t[1]} AND {t[2]}"),
        st.tuples(texts, texts, texts).map(lambda t: f"{t[0]} NOT BETWEEN {t[1]} AND {t[2]}"),
        st.one_of(numbers, texts, dates).map(lambda v: f"{v} IS NOT NULL")),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(lambda t: f"({' '.join(t)})"),
        inner.map(lambda c: f"NOT ({c})")),
    max_leaves=4)
clauses = st.one_of(typed_condition, typed_condition, typed_tree, gen.where)


def _answer(table: Any, params: dict[str, str], case_sensitive: bool) -> None:
    query = parse_query(params, table.schema, case_sensitive=case_sensitive)
    try:
        orjson.dumps(esri_query_json(run(query, table, LIMITS)))
    except InvalidParameterError as error:
        problem = error.details[0].split(": ", 1)[1]
        assert problem in RUN_TIME, (params, error.log_message)
        event("refused by a value at run time")
    else:
        event("ran")


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(clause=clauses, case_sensitive=st.booleans(),
       shape=st.sampled_from(["count", "page", "stats"]))
def test_generated_clauses_are_refused_by_us_or_run(layer, clause, case_sensitive, shape):
    params = {"where": clause}
    if shape == "count":
        params["returnCountOnly"] = "true"
    elif shape == "page":
        params.update(outFields="*", orderByFields="kind,score DESC", resultRecordCount="5")
    else:
        params.update(outStatistics='[{"statisticType": "count", "onStatisticField": "size",'
                                    ' "outStatisticFieldName": "n"}]',
                      groupByFieldsForStatistics="kind", havingClause=clause)
    try:
        _answer(layer, params, case_sensitive)
    except InvalidParameterError as error:
        event("refused by the checker")
        assert error.parameter in ("where", "havingClause")
        assert "Error" not in error.details[0] and "INT32" not in error.details[0]
