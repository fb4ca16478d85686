"""where: allow-listed AST to DuckDB SQL with bound literals."""

from __future__ import annotations

import pytest

from koop_app.data.schema import DATE, INTEGER, OID, STRING, Field, LayerSchema
from koop_app.errors import InvalidParameterError
from koop_app.query.where import compile_where

SCHEMA = LayerSchema(
    fields=(Field("OBJECTID", OID), Field("Name", STRING), Field("pop", INTEGER),
            Field("it's", STRING), Field("day", DATE)),
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
    clause = compile_where(text, SCHEMA, case_sensitive=True)
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
        ("(" * 3000 + "1" + ")" * 3000, "nested too deeply"),
        ("(" * 100 + "1" + ")" * 100 + " = 1", "nested too deeply"),
        ("pop = 1 OR " * 3000 + "pop = 1", "too long"),
        ("pop+" * 6000 + "1 = 1", "too long"),
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


# --- cost limits (KOOP['MAX_WHERE_*'], 'MAX_IN_LIST') ----------------------------------------

def _problem(text: str, parameter: str = "where") -> str:
    with pytest.raises(InvalidParameterError) as error:
        compile_where(text, SCHEMA, parameter=parameter)
    assert error.value.parameter == parameter
    return error.value.details[0]


def test_length_limit(settings):
    settings.KOOP = {**settings.KOOP, "MAX_WHERE_LENGTH": 40}
    at_limit = "name = '" + "x" * 31 + "'"
    assert len(at_limit) == 40 and compile_where(at_limit, SCHEMA) is not None
    problem = _problem(at_limit + " ")
    assert "too long: 41 characters, at most 40" in problem
    assert "at most 40" in _problem("pop = 1" + " " * 40, parameter="havingClause")


def test_node_limit(settings):
    settings.KOOP = {**settings.KOOP, "MAX_WHERE_NODES": 11}
    assert compile_where("pop = 1 OR pop = 2 OR pop = 3", SCHEMA) is not None  # 11 nodes
    assert "more than 11 terms" in _problem("pop = 1 OR pop = 2 OR pop = 3 OR pop = 4")


def test_depth_limit_counts_nesting_not_chains(settings):
    settings.KOOP = {**settings.KOOP, "MAX_WHERE_DEPTH": 4}
    # A chain of one operator is one level, however long.
    assert compile_where(" OR ".join(["pop = 1"] * 200), SCHEMA) is not None
    assert compile_where(" + ".join(["pop"] * 30) + " > 1", SCHEMA) is not None
    assert compile_where("abs(abs(pop)) = 1", SCHEMA) is not None  # EQ, ABS, ABS, column
    assert "at most 4 levels" in _problem("abs(abs(abs(pop))) = 1")
    assert "at most 4 levels" in _problem("((((((pop = 1))))))")


def test_in_list_limit(settings):
    settings.KOOP = {**settings.KOOP, "MAX_IN_LIST": 3}
    assert compile_where("pop IN (1, 2, 3)", SCHEMA).params == (1, 2, 3)
    assert "IN lists 4 values, at most 3" in _problem("pop IN (1, 2, 3, 4)")


def test_defaults_let_long_client_clauses_through():
    ids = [str(100_000 + i) for i in range(2001)]
    clause = compile_where("pop IN (" + ", ".join(ids[:2000]) + ")", SCHEMA)
    assert len(clause.params) == 2000
    assert "at most 2000" in _problem("pop IN (" + ", ".join(ids) + ")")
    assert len(compile_where(" OR ".join(["pop = 1"] * 600), SCHEMA).params) == 600


@pytest.mark.parametrize("text", [
    "pop + 1 + 2 + 3 + 4 + 5 + 6",
    "pop - 1 + 2 - 3 - 4 + 5 - 6 - 7",
    "100 - pop - 1 - 2 - 3 - 4 + 5",
    "1 - 2 - 3 + pop - 4 - 5 - 6 + 7 + 8 - 9",
    "pop * 2 * 3 * 4 * 5",
    "pop * 2 + 3 * pop * 4 - 5 * 6 * 7 - pop",
])
def test_operator_chains_keep_their_value(text):
    """Chains are emitted as balanced trees; their placeholders still bind in order."""
    import duckdb

    clause = compile_where(text.replace("pop", "pop") + " = 0", SCHEMA)
    value_sql = clause.sql[1:clause.sql.rindex(" = ?)")]
    for pop in (0, 7, -3):
        (value,) = duckdb.sql(f"SELECT {value_sql} FROM (SELECT {pop} AS pop)",
                              params=list(clause.params[:-1])).fetchone()
        assert value == eval(text.replace("pop", str(pop)))  # noqa: S307 (our own text)


def test_long_chains_are_balanced(settings):
    settings.KOOP = {**settings.KOOP, "MAX_WHERE_COMPUTATIONS": 1000}
    clause = compile_where(" + ".join(str(i) for i in range(450)) + " > 0", SCHEMA)
    assert clause.params == (*range(450), 0)
    depth = deepest = 0
    for char in clause.sql:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    assert deepest <= 11  # log2(450) + the comparison, not 450
    concat = compile_where(" || ".join(["name"] * 100) + " = 'x'", SCHEMA)
    assert concat.sql.count("concat(") == 1


def test_computation_limit(settings):
    """Operators and calls run on every row; comparisons, AND/OR and IN lists are not counted."""
    settings.KOOP = {**settings.KOOP, "MAX_WHERE_COMPUTATIONS": 3}
    assert compile_where("upper(name) = 'A' AND pop * 2 + 1 > 3", SCHEMA) is not None
    assert compile_where(" OR ".join(f"pop > {i}" for i in range(50)), SCHEMA) is not None
    assert "4 operators and function calls, at most 3" in _problem(
        "upper(lower(name)) = 'A' AND pop * 2 + 1 > 3")
    # Literals bound as one value are not computations: date '...', -1, CURRENT_DATE.
    dates = " OR ".join(f"pop > -{i} OR day = date '2024-01-{i % 28 + 1:02d}'"
                        for i in range(40)) + " OR day < CURRENT_DATE"
    assert compile_where(dates, SCHEMA) is not None
    # The 450-term clause of the issue: refused at once with the defaults.
    settings.KOOP = {k: v for k, v in settings.KOOP.items() if k != "MAX_WHERE_COMPUTATIONS"}
    assert "449 operators and function calls, at most 32" in _problem(
        "+".join(str(i) for i in range(450)) + " > 0")
    assert "at most 32" in _problem("+".join(["pop"] * 450) + " > 0")


def test_ored_equalities_become_one_in_list():
    clause = compile_where("pop = 1 OR name = 'a' OR pop = 2 OR 3 = pop OR pop > 9", SCHEMA)
    assert clause.sql == '(("pop" IN (?, ?, ?)) OR ("Name" ILIKE ?) OR ("pop" > ?))'
    assert clause.params == (1, 2, 3, "a", 9)
    few = compile_where("pop = 1 OR pop = 2", SCHEMA)  # two stay as they are
    assert few.sql == '(("pop" = ?) OR ("pop" = ?))'


def test_ored_equalities_on_a_date_field_compare_milliseconds():
    schema = LayerSchema(fields=(Field("OBJECTID", OID), Field("day", DATE)),
                         object_id_field="OBJECTID", geometry_type=None, extent=None)
    clause = compile_where("day = '2024-01-01' OR day = '2024-01-02' OR day = '2024-01-03'",
                           schema)
    assert clause.sql == '(("day" IN (?, ?, ?)))'
    assert clause.params == (1704067200000, 1704153600000, 1704240000000)


# --- a clause is a condition; kinds are checked before DuckDB sees it ------------------------

@pytest.mark.parametrize("text", [
    "5", "-5", "1.5", "'abc'", "''", "NULL", "pop", "name", '"pop"', "(name)", "name || 'x'",
    "1+1", "pop * 2", "-pop", "upper(name)", "abs(pop)", "coalesce(name, 'x')",
    "CAST(pop AS VARCHAR)", "day", "CURRENT_DATE", "date '2024-01-01'", "NOT pop",
    "NOT (name)", "pop = 1 AND 5", "pop OR pop = 1", "name = 'a' OR 'b'", "(pop = 1) AND pop",
    "NOT NOT name", "pop = 1 AND (name)",
])
def test_a_clause_that_is_not_a_condition_is_refused(text):
    problem = _problem(text)
    assert "is not a condition" in problem


@pytest.mark.parametrize("text", [
    "pop = 1", "1 = 2", "'a' = 'b'", "TRUE AND pop = 1", "FALSE", "NOT pop = 1",
    "NOT (pop = 1 OR name LIKE 'a%')", "pop IN (1, 2)", "pop BETWEEN 1 AND 2",
    "name IS NULL", "name IS NOT NULL", "name NOT LIKE 'x%'", "pop NOT IN (3)",
    "((pop = 1))", "pop = 1 AND (name = 'a' OR day > date '2024-01-01')",
])
def test_conditions_pass(text):
    assert compile_where(text, SCHEMA) is not None


def test_having_must_be_a_condition_too():
    def having(text: str) -> str:
        with pytest.raises(InvalidParameterError) as error:
            compile_where(text, SCHEMA, parameter="havingClause", aggregates=True)
        return error.value.details[0]

    assert "COUNT(*) is not a condition" in having("COUNT(*)")
    assert "SUM(pop) is not a condition" in having("SUM(pop)")
    assert "takes a number, not text" in having("SUM(name) > 1")
    assert "cannot compare text with a number" in having("MAX(name) > 1")
    assert compile_where("SUM(pop) > 1 AND MIN(name) = 'a'", SCHEMA, parameter="havingClause",
                         aggregates=True) is not None


@pytest.mark.parametrize(("text", "reason"), [
    ("name > 5", "cannot compare text with a number"),
    ("5 < name", "cannot compare a number with text"),
    ("name = pop", "cannot compare text with a number"),
    ("pop = 'abc'", "'abc' is not a number"),
    ("pop IN (1, 'x')", "'x' is not a number"),
    ("pop BETWEEN 'a' AND 'b'", "'a' is not a number"),
    ("pop = 'nan'", "'nan' is not a number"),
    ("name IN ('a', 1)", "cannot compare text with a number"),
    ("name BETWEEN 1 AND 2", "cannot compare text with a number"),
    ("pop = date '2024-01-01'", "cannot compare a number with a date"),
    ("name = date '2024-01-01'", "cannot compare text with a date"),
    ("day = 5", "cannot compare a date with a number"),
    ("day = name", "cannot compare a date with text"),
    ("day = 'soon'", "'soon' is not a date"),
    ("pop LIKE '1%'", "LIKE takes text, not a number"),
    ("name LIKE 5", "LIKE takes text, not a number"),
    ("upper(pop) = 'A'", "UPPER() takes text, not a number"),
    ("abs(name) = 1", "ABS() takes a number, not text"),
    ("name + 1 = 2", "'+' takes a number or a date, not text"),
    ("pop + name + pop = 2", "'+' takes a number or a date, not text"),
    ("pop * name * 2 = 2", "'*' takes a number or a date, not text"),
    ("-name = 1", "takes a number, not text"),
    ("length(pop) = 1", "takes text, not a number"),
    ("substring(name, 'a') = 'b'", "takes a number, not text"),
    ("round(name) = 1", "takes a number, not text"),
    ("TRUNCATE(name) = 1", "takes a number, not text"),
    ("coalesce(name, 1) = 'a'", "cannot compare text with a number"),
    ("nullif(pop, 'a') = 1", "'a' is not a number"),
    ("EXTRACT(YEAR FROM pop) = 1", "EXTRACT applies to dates"),
    ("CAST(pop AS DATE) = day", "takes a date or text, not a number"),
    ("(pop = 1) = (pop = 2)", "is a condition, not a value"),
    ("(pop = 1) + 1 = 2", "is a condition, not a value"),
    ("name LIKE 'a!' ESCAPE '!'", "ends with its ESCAPE character"),
    ("name LIKE name ESCAPE '!'", "ESCAPE needs a quoted pattern"),
])
def test_kinds_are_checked(text, reason):
    assert reason in _problem(text)


@pytest.mark.parametrize(("text", "params"), [
    ("pop = '5'", (5,)),
    ("'5' = pop", (5,)),
    ("pop IN ('1', 2, ' 3 ')", (1, 2, 3)),
    ("pop BETWEEN '1.5' AND '2e3'", (1.5, 2000.0)),
    ("day = '2024-01-01'", (1704067200000,)),
    ("day BETWEEN '2024-01-01' AND '2024-01-02'", (1704067200000, 1704153600000)),
    ("pop = 99999999999999999999", (1e20,)),
])
def test_quoted_numbers_and_dates_beside_their_kind(text, params):
    assert compile_where(text, SCHEMA).params == params


# --- text without case (the default) and with case (the dataset's switch) ------------------

@pytest.mark.parametrize(("text", "sql", "params"), [
    ("name = 'Oak'", '("Name" ILIKE ?)', ("Oak",)),
    ("'Oak' = name", '("Name" ILIKE ?)', ("Oak",)),
    ("name <> 'Oak'", '(NOT ("Name" ILIKE ?))', ("Oak",)),
    ("name = 'a_b'", '(lower("Name") = lower(?))', ("a_b",)),
    ("name = '12-3'", '("Name" = ?)', ("12-3",)),
    ("name > 'm'", '(lower("Name") > lower(?))', ("m",)),
    ("name LIKE 'oak%'", '("Name" ILIKE ?)', ("oak%",)),
    ("name LIKE '%oak'", '(lower("Name") LIKE lower(?))', ("%oak",)),
    ("name LIKE '1%'", '("Name" LIKE ?)', ("1%",)),
    ("name LIKE 'a!%' ESCAPE '!'", '("Name" ILIKE ? ESCAPE ?)', ("a!%", "!")),
    ("name IN ('a')", '("Name" ILIKE ?)', ("a",)),
    ("name IN ('a', 'B')", '(lower("Name") IN (SELECT lower(unnest(?::VARCHAR[]))))',
     (["a", "B"],)),
    ("name IN ('1', '2')", '("Name" IN (?, ?))', ("1", "2")),
    ("name IN ('a', name)", '(lower("Name") IN (lower(?), lower("Name")))', ("a",)),
    ("name BETWEEN 'a' AND 'b'", '(lower("Name") BETWEEN lower(?) AND lower(?))', ("a", "b")),
    ("name = \"it's\"", '(lower("Name") = lower("it\'s"))', ()),
    ("upper(name) = 'A'", '(upper("Name") ILIKE ?)', ("A",)),
    ("upper(name || 'x') = 'AX'", '(upper(concat("Name", ?)) ILIKE ?)', ("x", "AX")),
    ("'AX' = upper(name || 'x')", '(upper(concat("Name", ?)) ILIKE ?)', ("x", "AX")),
    ("name IS NULL", '("Name" IS NULL)', ()),
])
def test_text_compares_without_case_by_default(text, sql, params):
    clause = compile_where(text, SCHEMA)
    assert (clause.sql, clause.params) == (sql, params)


def test_with_case_text_compares_exactly():
    for text in ("name = 'Oak'", "name LIKE 'oak%'", "name IN ('a', 'B')", "name > 'm'",
                 "name BETWEEN 'a' AND 'b'"):
        sql = compile_where(text, SCHEMA, case_sensitive=True).sql
        assert "lower(" not in sql and "ILIKE" not in sql, text


def test_text_comparisons_run_as_compiled():
    """The forms above on DuckDB itself: placeholders in order, case folded on both sides."""
    import duckdb

    rows = ["Oak", "OAK", "oak street", "a_b", "A_B", "axb", None]
    for text, expected in [
        ("name = 'oak'", ["Oak", "OAK"]), ("'OAK' = name", ["Oak", "OAK"]),
        ("name <> 'oak'", ["oak street", "a_b", "A_B", "axb"]),
        ("name = 'a_b'", ["a_b", "A_B"]), ("name LIKE 'OAK%'", ["Oak", "OAK", "oak street"]),
        ("name LIKE '%STREET'", ["oak street"]), ("name IN ('oak', 'AXB')", ["Oak", "OAK", "axb"]),
        ("upper(name || 'x') = 'OAKX'", ["Oak", "OAK"]),
        ("name BETWEEN 'A_' AND 'AZ'", ["a_b", "A_B", "axb"]),
    ]:
        clause = compile_where(text, SCHEMA)
        got = duckdb.execute(
            f'SELECT "Name" FROM (SELECT unnest(?::VARCHAR[]) AS "Name") WHERE {clause.sql}',
            [rows, *clause.params]).fetchall()
        assert [name for (name,) in got] == expected, text
