"""Text in ``where`` compares without case by default (ArcGIS Online's hosted layers) and with
case when the dataset asks for it; ENUM (few-valued) and VARCHAR columns answer alike."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pytest

from koop_app.data.hot import hot_tables
from koop_app.data.normalize import normalize
from koop_app.encoders.esri_json import esri_query_json
from koop_app.query import RecordLimits, parse_query, run, where
from tests.conftest import collection, feature, point

LIMITS = RecordLimits(2000, 2000, 2000)
REPEAT = 8  # each label on 8 rows: 152 rows, past the ENUM threshold set below
LABELS = ["Park", "PARK", "park", "Oak Street", "OAK", "oak%x", "O_k", "School", "straße",
          "STRASSE", "Σοφία", "ΣΟΦΊΑ", "İstanbul", "istanbul", "Ünïcode", "ÜNÏCODE", "123", "",
          None]


def fold(text: str) -> str:
    """DuckDB's lower(): one character at a time (no final sigma), İ to a plain i."""
    return "".join("i" if ch == "İ" else ch.lower() for ch in text)


def exact(text: str) -> str:
    return text


def like(value: str, pattern: str, escape: str | None = None) -> bool:
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == escape:
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, value, flags=re.S) is not None


Predicate = Callable[[str, Callable[[str], str]], bool]
# (clause, its meaning on a non-NULL value with a case function; NULL matches nothing unless
# the clause says IS NULL)
CLAUSES: list[tuple[str, Predicate]] = [
    ("kind = 'park'", lambda v, f: f(v) == f("park")),
    ("kind <> 'PARK'", lambda v, f: f(v) != f("PARK")),
    ("NOT kind = 'PARK'", lambda v, f: f(v) != f("PARK")),
    ("'PARK' = kind", lambda v, f: f(v) == f("PARK")),
    ("kind = 'STRASSE'", lambda v, f: f(v) == f("STRASSE")),
    ("kind = 'σοφία'", lambda v, f: f(v) == f("σοφία")),
    ("kind = 'istanbul'", lambda v, f: f(v) == f("istanbul")),
    ("kind = 'oak%x'", lambda v, f: f(v) == f("oak%x")),
    ("kind = ''", lambda v, f: v == ""),
    ("kind = '123'", lambda v, f: v == "123"),
    ("kind = 'nothing'", lambda v, f: False),
    ("kind LIKE 'oak%'", lambda v, f: like(f(v), f("oak%"))),
    ("kind LIKE '%PARK'", lambda v, f: like(f(v), f("%PARK"))),
    ("kind LIKE '%ü%'", lambda v, f: like(f(v), f("%ü%"))),
    ("kind LIKE 'o!_k' ESCAPE '!'", lambda v, f: like(f(v), f("o!_k"), "!")),
    ("kind LIKE '%!%%' ESCAPE '!'", lambda v, f: like(f(v), "%!%%", "!")),
    ("kind LIKE '1%'", lambda v, f: v.startswith("1")),
    ("kind NOT LIKE 'p%'", lambda v, f: not like(f(v), f("p%"))),
    ("kind IN ('park', 'SCHOOL', 'nothing')", lambda v, f: f(v) in (f("park"), f("SCHOOL"))),
    ("kind NOT IN ('park')", lambda v, f: f(v) != f("park")),
    ("kind IN ('Ünïcode')", lambda v, f: f(v) == f("Ünïcode")),
    ("kind IN ('123', '')", lambda v, f: v in ("123", "")),
    ("kind = 'park' OR kind = 'school' OR kind = 'OAK'",
     lambda v, f: f(v) in (f("park"), f("school"), f("OAK"))),
    ("kind > 'p'", lambda v, f: f(v) > f("p")),
    ("kind <= 'OAK'", lambda v, f: f(v) <= f("OAK")),
    ("kind BETWEEN 'o' AND 'Q'", lambda v, f: f("o") <= f(v) <= f("Q")),
    ("kind NOT BETWEEN 'o' AND 'Q'", lambda v, f: not f("o") <= f(v) <= f("Q")),
    ("UPPER(kind) = 'PARK'", lambda v, f: f(v.upper()) == f("PARK")),
    ("LOWER(kind) LIKE 'σ%'", lambda v, f: like(f(v.lower()), f("σ%"))),
    ("kind = name", lambda v, f: True),
    ("kind || 'x' = 'PARKX'", lambda v, f: f(v + "x") == f("PARKX")),
]


@pytest.fixture
def layers(monkeypatch):
    """The same rows twice: ``kind`` as an ENUM (hot tables' few-valued text) and as text."""
    monkeypatch.setattr("koop_app.data.normalize.ENUM_MIN_ROWS", 100)
    rows = [feature({"kind": LABELS[i % len(LABELS)], "name": LABELS[i % len(LABELS)],
                     "n": i}, point(i % 90, i % 45)) for i in range(REPEAT * len(LABELS))]
    normalized = normalize(collection(rows), label="case",
                           assign_ids=lambda keys: pa.array(range(1, len(keys) + 1), pa.int64()))
    enum = hot_tables.put("case", "v1", normalized.table, normalized.schema, 0.0)
    assert enum.schema.field("kind").enum_values is not None
    schema = dataclasses.replace(enum.schema, fields=tuple(
        dataclasses.replace(f, enum_values=None) for f in enum.schema.fields))
    table = hot_tables.cursor().execute(
        f"SELECT * REPLACE (ST_AsWKB(_koop_geom) AS _koop_geom) FROM {enum.table_name}"
    ).to_arrow_table()
    for name in ("kind", "name"):
        table = table.set_column(table.column_names.index(name), name,
                                 table[name].cast(pa.string()))
    text = hot_tables.put("case-text", "v1", table, schema, 0.0)
    return enum, text


def answer(table, *, case_sensitive: bool = False, **params: str) -> dict[str, Any]:
    query = parse_query({"f": "json", **params}, table.schema, case_sensitive=case_sensitive)
    return orjson.loads(orjson.dumps(esri_query_json(run(query, table, LIMITS))))


def expected_ids(predicate: Predicate, case: Callable[[str], str]) -> list[int]:
    values = [LABELS[i % len(LABELS)] for i in range(REPEAT * len(LABELS))]
    return [i + 1 for i, v in enumerate(values) if v is not None and predicate(v, case)]


@pytest.mark.parametrize("case_sensitive", [False, True], ids=["nocase", "case"])
@pytest.mark.parametrize(("clause", "predicate"), CLAUSES, ids=[c for c, _ in CLAUSES])
def test_enum_and_text_columns_answer_as_the_reference(layers, clause, predicate,
                                                       case_sensitive):
    enum, text = layers
    expected = expected_ids(predicate, exact if case_sensitive else fold)
    for table in (enum, text):
        got = answer(table, case_sensitive=case_sensitive, where=clause,
                     returnIdsOnly="true")["objectIds"]
        assert got == expected, (table.key, clause)


def test_the_issue_sample(layers):
    enum, text = layers
    for table in (enum, text):
        found = answer(table, where="kind LIKE 'oak%'", outFields="kind",
                       returnDistinctValues="true")
        assert {f["attributes"]["kind"] for f in found["features"]} == {
            "Oak Street", "OAK", "oak%x"}
        exact_only = answer(table, case_sensitive=True, where="kind LIKE 'oak%'",
                            outFields="kind", returnDistinctValues="true")
        assert [f["attributes"]["kind"] for f in exact_only["features"]] == ["oak%x"]


def test_the_switch_is_part_of_the_remembered_clause(layers):
    enum, text = layers
    where._compiled.clear()
    params = {"where": "kind = 'park'", "returnCountOnly": "true"}
    assert answer(text, **params)["count"] == 3 * REPEAT  # Park, PARK, park
    assert answer(text, case_sensitive=True, **params)["count"] == REPEAT
    assert answer(text, **params)["count"] == 3 * REPEAT
    assert len(where._compiled) == 2


def test_having_compares_without_case(layers):
    enum, text = layers
    stats = orjson.dumps([{"statisticType": "count", "onStatisticField": "n",
                           "outStatisticFieldName": "c"}]).decode()
    for table in (enum, text):
        for case_sensitive, groups in ((False, 3), (True, 1)):
            body = answer(table, case_sensitive=case_sensitive, outStatistics=stats,
                          groupByFieldsForStatistics="kind", havingClause="MIN(kind) = 'park'")
            assert len(body["features"]) == groups


def test_generate_renderer_and_related_filters_take_the_switch(layers):
    from koop_app.query import classify

    enum, text = layers
    for table in (enum, text):
        for case_sensitive, count in ((False, 3 * REPEAT), (True, REPEAT)):
            clause = where.compile_where("kind = 'PARK'", table.schema,
                                         case_sensitive=case_sensitive)
            values = classify.unique_values({"uniqueValueFields": ["kind"]}, table, clause)
            assert sum(n for _, n in values.values) == count


@pytest.mark.parametrize("clause", ["kind = 'park'", "kind <> 'PARK'", "kind LIKE 'oak%'",
                                    "kind IN ('park', 'school')", "kind > 'p'",
                                    "kind BETWEEN 'o' AND 'q'", "kind = 'nothing'"])
@pytest.mark.parametrize("case_sensitive", [False, True], ids=["nocase", "case"])
def test_enum_columns_keep_comparing_codes(layers, clause, case_sensitive):
    """Decided on the labels at compile time: no row's text is lowered or matched."""
    enum, text = layers
    sql = where.compile_where(clause, enum.schema, case_sensitive=case_sensitive).sql
    assert "enum_code" in sql or "AS ENUM(" in sql
    assert "lower(" not in sql and "LIKE" not in sql
    text_sql = where.compile_where(clause, text.schema, case_sensitive=case_sensitive).sql
    assert "enum" not in text_sql.lower()
