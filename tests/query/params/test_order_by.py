"""orderByFields: the KOOP['MAX_ORDER_BY_FIELDS'] limit."""

from __future__ import annotations

from koop_app.query.params import parse_query
from tests.query.params.conftest import SCHEMA, problem


def test_order_by_fields(limits):
    limits(MAX_ORDER_BY_FIELDS=2)
    assert parse_query({"orderByFields": "f1 DESC, f2"}, SCHEMA).order_by == (
        ("f1", True), ("f2", False))
    assert "at most 2 fields" in problem({"orderByFields": "f1,f2,f3 DESC"}, "orderByFields")
