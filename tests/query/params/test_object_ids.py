"""objectIds: the KOOP['MAX_OBJECT_IDS'] limit and 64-bit ids."""

from __future__ import annotations

from koop_app.query.params.object_ids import parse_object_ids
from tests.query.params.conftest import problem


def test_object_ids(limits):
    limits(MAX_OBJECT_IDS=5)
    assert parse_object_ids({"objectIds": "1,2,3,4,5"}) == (1, 2, 3, 4, 5)
    assert parse_object_ids({"objectIds": "1, 2,,3,4,5,"}) == (1, 2, 3, 4, 5)
    assert "6 ids; at most 5" in problem({"objectIds": "1,2,3,4,5,6"}, "objectIds")


def test_object_ids_beyond_64_bits():
    assert parse_object_ids({"objectIds": f"{2**63 - 1},{-(2**63)}"}) == (2**63 - 1, -(2**63))
    assert "64 bits" in problem({"objectIds": f"1,{2**63}"}, "objectIds")


def test_object_ids_default_is_100_000():
    text = ",".join(map(str, range(100_000)))
    assert len(parse_object_ids({"objectIds": text})) == 100_000
    assert "at most 100000" in problem({"objectIds": text + ",7"}, "objectIds")
