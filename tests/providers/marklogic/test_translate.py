"""A checked where tree as an Optic expression (rows) and as a structured query (search)."""

from __future__ import annotations

import re

import pytest

from koop_app.data.schema import DATE, DOUBLE, INTEGER, STRING, Field, LayerSchema
from koop_app.errors import InvalidParameterError
from koop_app.query.where import checked_tree
from providers.marklogic.optic import OpticWhere, col, fn, like_regex, op
from providers.marklogic.search import SearchWhere, geo_box_query

SCHEMA = LayerSchema((Field("id", INTEGER), Field("name", STRING), Field("depth", DOUBLE),
                      Field("spud", DATE)), "id", "esriGeometryPoint", None)


def optic(where: str, **kwargs) -> dict:
    tree = checked_tree(where, SCHEMA)
    return OpticWhere(SCHEMA, column_types={"spud": "xs:date"}, **kwargs).emit(tree)


def search(where: str, **kwargs) -> tuple[list, bool]:
    return SearchWhere(SCHEMA, range_indexes={"depth": "double"}, **kwargs).emit(
        checked_tree(where, SCHEMA))


def test_text_compares_without_case_unless_it_has_none():
    assert optic("name = 'Ab'") == op("eq", fn("lower-case", col("name")), "ab")
    assert optic("name >= '_'") == op("ge", col("name"), "_")  # no letter with a case
    assert optic("name = 'Ab'", case_sensitive=True) == op("eq", col("name"), "Ab")
    assert optic("name LIKE '%1_'")["args"][2] == "s"
    assert optic("name LIKE 'a%'")["args"][2] == "is"


def test_not_means_definitely_false():
    assert optic("NOT depth > 3") == op("and", op("is-defined", col("depth")),
                                        op("not", op("gt", col("depth"), 3)))
    assert optic("NOT (depth > 3 AND id = 1)") == op(
        "or", op("and", op("is-defined", col("depth")), op("not", op("gt", col("depth"), 3))),
        op("and", op("is-defined", col("id")), op("not", op("eq", col("id"), 1))))
    assert optic("name IS NOT NULL") == op("is-defined", col("name"))
    assert optic("NOT name IS NOT NULL") == op("not", op("is-defined", col("name")))


def test_literals_take_the_kind_of_the_other_side():
    assert optic("depth = '5.5'") == op("eq", col("depth"), 5.5)
    (moment,) = optic("spud > '2020-01-02'")["args"][1]["args"]
    assert moment.startswith("2020-01-02T00:00:00")
    # an xs:date column compared as xs:dateTime
    assert optic("spud > '2020-01-02'")["args"][0] == {"ns": "xs", "fn": "dateTime",
                                                       "args": [col("spud")]}
    assert optic("depth > -2") == op("gt", col("depth"), -2)


@pytest.mark.parametrize(("pattern", "escape", "regex"), [
    ("a%", None, "^a.*$"), ("%.x_", None, "^.*\\.x.$"), ("10!%%", "!", "^10%.*$"),
    ("(a|b)*", None, "^\\(a\\|b\\)\\*$"), ("$^", None, "^\\$\\^$"),
])
def test_like_patterns(pattern, escape, regex):
    assert like_regex(pattern, escape) == regex
    re.compile(regex)


@pytest.mark.parametrize("where", ["COALESCE(name, 'x') = 'x'", "ROUND(depth, 1) = 2",
                                   "name = NULL", "EXTRACT(YEAR FROM spud) = 2020",
                                   "spud + 1 > spud", "TRIM(name) = 'a'"])
def test_what_optic_is_not_sent_is_a_400(where):
    with pytest.raises(InvalidParameterError) as info:
        optic(where)
    assert "Optic" in str(info.value.details or info.value.message)


def test_search_sends_what_a_structured_query_says_exactly():
    queries, whole = search("name = 'Ab' AND depth > 3 AND name LIKE 'a%'")
    assert not whole and [next(iter(q)) for q in queries] == ["value-query", "range-query"]
    assert queries[0]["value-query"]["term-option"][0] == "case-insensitive"
    assert search("id IN (1, 2) OR depth BETWEEN 1 AND 2")[1] is True
    assert search("id > 3") == ([], False)  # no range index on id
    assert search("depth = -2")[0] == [{"range-query": {"json-property": "depth",
                                                        "type": "xs:double",
                                                        "range-operator": "EQ",
                                                        "value": [-2]}}]
    assert search("NOT id = 1") == ([], False)
    assert search("spud = '2020-01-01'") == ([], False)
    assert search("name = 'x' OR name LIKE 'y%'") == ([], False)


def test_geo_boxes():
    box = (-1.0, 2.0, 3.0, 4.0)
    pair = geo_box_query({"geo_index": "pair", "latitude": "a.loc.lat",
                          "longitude": "a.loc.lon"}, box)
    assert pair == {"geo-json-property-pair-query": {
        "parent-property": "loc", "lat-property": "lat", "lon-property": "lon",
        "box": [{"south": 2.0, "west": -1.0, "north": 4.0, "east": 3.0}]}}
    assert geo_box_query({"geo_index": "pair", "latitude": "lat", "longitude": "lon"},
                         box) is None  # no parent property: no pair index applies
    assert geo_box_query({"geo_index": "path", "geo_path": "/loc"}, box)[
        "geo-path-query"]["path-index"] == {"text": "/loc"}
    assert geo_box_query({"geo_index": ""}, box) is None
