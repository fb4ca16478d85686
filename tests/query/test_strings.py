"""strings.py: when case matters, label sets decided by DuckDB, and the SQL of a set of codes."""

from __future__ import annotations

import duckdb
import pytest

from koop_app.data.duck import enum_type
from koop_app.query import strings


def test_text_without_a_cased_character_compares_alike_with_and_without_case():
    """The shortcut's premise, on every code point: a character DuckDB lowers into one that
    ``cased`` calls case-free is that character itself."""
    points = [chr(i) for i in range(1, 0x30000) if not 0xD800 <= i < 0xE000]
    lowered = duckdb.execute("SELECT list(lower(c)) FROM (SELECT unnest(?::VARCHAR[]) AS c)",
                             [points]).fetchone()[0]
    offenders = [(c, low) for c, low in zip(points, lowered, strict=True)
                 if low != c and not strings.cased(low)]
    assert offenders == []
    assert not strings.cased("12-34 %_!") and strings.cased("a") and strings.cased("É")
    assert strings.cased("ß") and strings.cased("İ")


LABELS = ("OAK", "Oak Street", "PARK", "Park", "School", "park", "straße", "Σοφία")


@pytest.mark.parametrize(("predicate", "params", "expected"), [
    ("(lower(v) = lower(?))", ["park"], ["PARK", "Park", "park"]),
    ("(v = ?)", ["park"], ["park"]),
    ("(v ILIKE ?)", ["oak%"], ["OAK", "Oak Street"]),
    ("(lower(v) IN (SELECT lower(unnest(?::VARCHAR[]))))", [["school", "STRASSE", "ΣΟΦΊΑ"]],
     ["School", "Σοφία"]),
    ("(lower(v) BETWEEN lower(?) AND lower(?))", ["p", "q"], ["PARK", "Park", "park"]),
    ("(v > ?)", ["a"], ["park", "straße", "Σοφία"]),
    ("(v = ?)", ["nothing"], []),
])
def test_label_codes(predicate, params, expected):
    codes = strings.label_codes(LABELS, predicate, params)
    assert [LABELS[code] for code in codes] == expected


def test_label_codes_of_many_labels():
    labels = tuple(sorted(f"Label {i:04d}" for i in range(300)))
    codes = strings.label_codes(labels, "(v ILIKE ?)", ["label 00%"])
    assert codes == list(range(100))


def _rows(sql: str, params: list, labels: tuple[str, ...]) -> list:
    enum = enum_type(labels)
    values = [*labels, None]
    return duckdb.execute(f"SELECT {sql} FROM (SELECT CAST(unnest(?::VARCHAR[]) AS {enum}) AS c)",
                          [*params, values]).fetchall()  # the condition's "?" come first


@pytest.mark.parametrize("count", [5, 64, 65, 300])
@pytest.mark.parametrize("chosen", ["none", "all", "one", "all but one", "range", "scattered"])
def test_membership_matches_its_codes_and_keeps_null(count, chosen):
    labels = tuple(f"v{i:03d}" for i in range(count))
    codes = {"none": [], "all": list(range(count)), "one": [3], "all but one":
             [c for c in range(count) if c != 2], "range": list(range(1, 4)),
             "scattered": [0, 2, count - 1]}[chosen]
    sql, params = strings.membership('"c"', labels, codes)
    got = _rows(sql, params, labels)
    assert got == [(i in codes,) for i in range(count)] + [(None,)]


def test_membership_forms():
    labels = ("a", "b", "c", "d")
    assert strings.membership('"c"', labels, []) == ('(enum_code("c") < 0)', [])
    assert strings.membership('"c"', labels, [0, 1, 2, 3])[0] == '(enum_code("c") >= 0)'
    assert strings.membership('"c"', labels, [1])[1] == ["b"]
    assert strings.membership('"c"', labels, [0, 1, 3]) == (
        f'("c" <> CAST(? AS {enum_type(labels)}))', ["c"])
    assert strings.membership('"c"', labels, [0, 3])[1] == [0b1001]
    many = tuple(f"v{i:03d}" for i in range(100))
    assert "BETWEEN" in strings.membership('"c"', many, [5, 6, 7])[0]
    assert strings.membership('"c"', many, [5, 9])[0] == '(enum_code("c") IN (?, ?))'
