"""outFields: the KOOP['MAX_OUT_FIELDS'] limit."""

from __future__ import annotations

from koop_app.query.params import parse_query
from tests.query.params.conftest import SCHEMA, problem


def test_out_fields(limits):
    limits(MAX_OUT_FIELDS=3)
    assert parse_query({"outFields": "f1,f2,f3"}, SCHEMA).out_fields == ("f1", "f2", "f3")
    assert "4 fields; at most 3" in problem({"outFields": "f1,f2,f3,f4"}, "outFields")
