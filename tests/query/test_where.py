"""where: allow-listed AST to DuckDB SQL with bound literals."""

from __future__ import annotations

import pytest

from koop_app.data.schema import INTEGER, OID, STRING, Field, LayerSchema
from koop_app.errors import InvalidParameterError
from koop_app.query.where import compile_where

SCHEMA = LayerSchema(
    fields=(Field("OBJECTID", OID), Field("Name", STRING), Field("pop", INTEGER),
            Field("it's", STRING)),
    object_id_field="OBJECTID", geometry_type=None, extent=None,
)


@pytest.mark.parametrize("text", [None, "", "  ", "1=1", "1 = 1", "'a'='a'", "TRUE"])
def test_always_true_is_no_clause(text):
    assert compile_where(text, SCHEMA) is None


@pytest.mark.parametrize(
    ("text", "sql", "params"),
    [
        ("name = 'x'", '("Name" = ?)', ("x",)),
        ("NAME <> 'O''Hare'", '("Name" <> ?)', ("O'Hare",)),
        ("pop > 3 AND pop <= 4.5", '(("pop" > ?) AND ("pop" <= ?))', (3, 4.5)),
        ("pop IN (1, 2)", '("pop" IN (?, ?))', (1, 2)),
        ("pop BETWEEN 1 AND 2", '("pop" BETWEEN ? AND ?)', (1, 2)),
        ("name LIKE 'a!%%' ESCAPE '!'", '("Name" LIKE ? ESCAPE ?)', ("a!%%", "!")),
        ("name IS NULL", '("Name" IS NULL)', ()),
        ("name IS NOT NULL", '(NOT ("Name" IS NULL))', ()),
        ("NOT (pop = -1)", '(NOT (("pop" = (-?))))', (1,)),
        ('"it\'s" = \'a\'', '("it\'s" = ?)', ("a",)),
        ("upper(name) = 'A' OR lower(name) = 'b'",
         '((upper("Name") = ?) OR (lower("Name") = ?))', ("A", "b")),
        ("pop * 2 + 1 > pop / 3 - 1", '((("pop" * ?) + ?) > (("pop" / ?) - ?))', (2, 1, 3, 1)),
    ],
)
def test_compiles_to_bound_sql(text, sql, params):
    clause = compile_where(text, SCHEMA)
    assert (clause.sql, clause.params) == (sql, params)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("missing = 1", "'missing' is not a field"),
        ("t.name = 'a'", "qualified"),
        ("name = 'a'; DELETE FROM x", "';'"),
        ("name = 'a' -- x", "comments"),
        ("pop IN (SELECT 1)", "IN takes a list"),
        ("EXISTS (SELECT 1)", "not supported"),
        ("read_csv('/etc/passwd') = 1", "not supported"),
        ("pop IS 3", "IS takes NULL"),
        ("name LIKE 'a' ESCAPE 'ab'", "one character"),
        ("pop = ", "cannot parse"),
        ("(" * 3000 + "1" + ")" * 3000, "too long"),
        ("(" * 100 + "1" + ")" * 100 + " = 1", "nested too deeply"),
        ("pop = 1 OR " * 3000 + "pop = 1", "too long"),
        ("pop+" * 900 + "1 = 1", "too"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_rejected(text, reason):
    with pytest.raises(InvalidParameterError) as error:
        compile_where(text, SCHEMA)
    assert error.value.parameter == "where"
    assert reason in error.value.details[0]


def test_long_but_legitimate_clauses_pass():
    clause = compile_where("pop = 1 OR " * 450 + "pop = 1", SCHEMA)
    assert len(clause.params) == 451
    clause = compile_where("pop IN (" + ", ".join(["1"] * 900) + ")", SCHEMA)
    assert len(clause.params) == 900


def test_no_request_text_reaches_the_sql():
    clause = compile_where("name = 'x\"); DROP TABLE t; --'", SCHEMA)
    assert "DROP" not in clause.sql and clause.params == ('x"); DROP TABLE t; --',)
