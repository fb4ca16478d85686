"""Property tests: the engine's answers for random where clauses, envelopes and pages agree
with a plain Python evaluation of the same question (SQL's three-valued logic included)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koop_app.data.hot import hot_tables
from koop_app.data.normalize import normalize
from koop_app.encoders.esri_json import esri_query_json
from koop_app.query import RecordLimits, parse_query, run
from tests.conftest import collection, feature, point

WORDS = ["alpha", "beta", "gamma", "delta", None]
MAX_RECORDS = 15


def make_rows(seed: int = 7, n: int = 60) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        rows.append({
            "id": i,
            "a": None if rng.random() < 0.1 else rng.randint(-5, 20),
            "b": None if rng.random() < 0.1 else round(rng.uniform(-10, 10), 2),
            "s": rng.choice(WORDS),
            "x": round(rng.uniform(-20, 20), 3),
            "y": round(rng.uniform(-10, 10), 3),
        })
    return rows


ROWS = make_rows()


@pytest.fixture
def layer():
    doc = collection([feature({k: r[k] for k in ("a", "b", "s")}, point(r["x"], r["y"]))
                      for r in ROWS])
    normalized = normalize(doc, label="props",
                           assign_ids=lambda keys: pa.array(range(1, len(keys) + 1), pa.int64()))
    return hot_tables.put("props", "v1", normalized.table, normalized.schema, 0.0)


# --- where clauses: (SQL text, Python predicate returning True/False/None) ---------------

def _cmp(op: str, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    return {"=": left == right, "<>": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[op]


numbers = st.one_of(st.integers(-6, 21), st.sampled_from([-2.5, 0.5, 3.25, 9.99]))
comparison = st.tuples(st.sampled_from(["a", "b"]),
                       st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), numbers).map(
    lambda t: (f"{t[0]} {t[1]} {t[2]}", lambda r, t=t: _cmp(t[1], r[t[0]], t[2])))
# Text compares without case (the default, as ArcGIS Online): literals in any case.
cased = st.sampled_from([str.lower, str.upper, str.title])
text_eq = st.tuples(st.sampled_from([w for w in WORDS if w]), cased,
                    st.sampled_from(["=", "<>", "<", ">="])).map(
    lambda t: (f"s {t[2]} '{t[1](t[0])}'", lambda r, t=t: _cmp(t[2], r["s"], t[0])))
text_in = st.tuples(st.lists(st.sampled_from([w for w in WORDS if w]), min_size=1, max_size=3),
                    cased).map(
    lambda t: (f"s IN ({', '.join(repr(t[1](w)) for w in t[0])})",
               lambda r, t=t: None if r["s"] is None else r["s"] in t[0]))
like = st.tuples(st.sampled_from(["a%", "b%", "%a", "%lt%", "g_mma"]), cased).map(
    lambda t: (f"s LIKE '{t[1](t[0])}'",
               lambda r, t=t: None if r["s"] is None else _like(r["s"], t[0])))
is_null = st.tuples(st.sampled_from(["a", "b", "s"]), st.booleans()).map(
    lambda t: (f"{t[0]} IS {'NOT ' if t[1] else ''}NULL",
               lambda r, t=t: (r[t[0]] is not None) if t[1] else (r[t[0]] is None)))
in_list = st.lists(st.integers(-5, 20), min_size=1, max_size=4).map(
    lambda values: (f"a IN ({', '.join(map(str, values))})",
                    lambda r, v=tuple(values): None if r["a"] is None else r["a"] in v))
between = st.tuples(st.integers(-6, 20), st.integers(0, 10)).map(
    lambda t: (f"a BETWEEN {t[0]} AND {t[0] + t[1]}",
               lambda r, t=t: None if r["a"] is None else t[0] <= r["a"] <= t[0] + t[1]))
leaf = st.one_of(comparison, text_eq, text_in, like, is_null, in_list, between)


def _like(value: str, pattern: str) -> bool:
    import re

    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.S) is not None


def _and(p, q):
    def f(r):
        a, b = p(r), q(r)
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    return f


def _or(p, q):
    def f(r):
        a, b = p(r), q(r)
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    return f


def _not(p):
    return lambda r: None if p(r) is None else not p(r)


clauses = st.recursive(leaf, lambda inner: st.one_of(
    st.tuples(inner, inner).map(lambda t: (f"({t[0][0]}) AND ({t[1][0]})", _and(t[0][1],
                                                                                t[1][1]))),
    st.tuples(inner, inner).map(lambda t: (f"({t[0][0]}) OR ({t[1][0]})", _or(t[0][1],
                                                                              t[1][1]))),
    inner.map(lambda c: (f"NOT ({c[0]})", _not(c[1]))),
), max_leaves=6)

envelopes = st.one_of(st.none(), st.tuples(
    st.floats(-25, 20), st.floats(-12, 8), st.floats(0.5, 30), st.floats(0.5, 15)).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3])))


def answer(table, params: dict[str, str]) -> dict[str, Any]:
    query = parse_query(params, table.schema)
    result = run(query, table, RecordLimits(MAX_RECORDS, MAX_RECORDS, MAX_RECORDS))
    return orjson.loads(orjson.dumps(esri_query_json(result)))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clause=clauses, envelope=envelopes, offset=st.integers(0, 70),
       count=st.one_of(st.none(), st.integers(1, 25)))
def test_where_envelope_and_page_match_a_reference(layer, clause, envelope, offset, count):
    text, predicate = clause
    expected = [r["id"] for r in ROWS if predicate(r) is True and (
        envelope is None or (envelope[0] <= r["x"] <= envelope[2]
                             and envelope[1] <= r["y"] <= envelope[3]))]
    params = {"where": text, "outFields": "OBJECTID", "resultOffset": str(offset)}
    if envelope is not None:
        params["geometry"] = ",".join(repr(v) for v in envelope)
    if count is not None:
        params["resultRecordCount"] = str(count)
    body = answer(layer, params)
    limit = min(count or MAX_RECORDS, MAX_RECORDS)
    got = [f["attributes"]["OBJECTID"] for f in body["features"]]
    assert got == expected[offset:offset + limit], text
    assert body["exceededTransferLimit"] is (len(expected) > offset + limit)
    assert answer(layer, {**params, "returnCountOnly": "true"}) == {"count": len(expected)}
    ids = answer(layer, {**params, "returnIdsOnly": "true"})["objectIds"]
    assert ids == expected


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["a", "b", "s"]), descending=st.booleans(),
       offset=st.integers(0, 65))
def test_order_by_pages_match_a_reference(layer, field, descending, offset):
    # As ArcGIS Online: nulls first ascending, last descending (the smallest value either
    # way); ties keep object-id order (Python's sort is stable).
    present = [r for r in ROWS if r[field] is not None]
    nulls = [r for r in ROWS if r[field] is None]
    ordered = sorted(present, key=lambda r: r[field], reverse=descending)
    ordered = ordered + nulls if descending else nulls + ordered
    body = answer(layer, {"orderByFields": f"{field} {'DESC' if descending else 'ASC'}",
                          "resultOffset": str(offset), "outFields": "OBJECTID"})
    got = [f["attributes"]["OBJECTID"] for f in body["features"]]
    assert got == [r["id"] for r in ordered][offset:offset + MAX_RECORDS]
