"""``where`` over HTTP as on ArcGIS Online: a clause must be a condition (code 400 otherwise, in
our words), text compares without case unless the dataset says otherwise, NULLs sort first
ascending."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import collection, feature, point
from tests.outputs.geoservices.test_multilayer import sites

NAMES = ["Oak Street", "OAK", "oak", "Pine Road", None, "Öl", "ÖL"]
VALUES = [3.5, None, 1.0, 7.25, 2.0, None, 5.0]


def streets() -> dict[str, Any]:
    return collection([feature({"name": n, "value": v, "kind": "Park" if i % 2 else "PARK"},
                               point(i, i)) for i, (n, v) in enumerate(zip(NAMES, VALUES,
                                                                           strict=True))])


@pytest.fixture
def layers(make_dataset):
    make_dataset("geojson", "streets", streets())
    make_dataset("geojson", "exact", streets(), case_sensitive_strings=True)
    make_dataset("geojson", "sites", sites())


def query(client, dataset: str, **params: str) -> dict[str, Any]:
    response = client.get(f"/geojson/rest/services/{dataset}/FeatureServer/0/query",
                          {"f": "json", **params})
    assert response.status_code == 200
    return orjson.loads(response.content)


def error(body: dict[str, Any]) -> str:
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == 400
    assert body["error"]["message"] == "Unable to complete operation."
    return " ".join(body["error"]["details"])


def names(body: dict[str, Any]) -> list[Any]:
    return [f["attributes"]["name"] for f in body["features"]]


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["5", "value", "name", "name || 'x'", "1+1", "'abc'", "NULL",
                                   "NOT name", "value = 1 OR 5", "UPPER(name)"])
def test_a_clause_that_is_not_a_condition_is_a_400(client, layers, where):
    for params in ({}, {"returnCountOnly": "true"}, {"returnIdsOnly": "true"}):
        details = error(query(client, "streets", where=where, **params))
        assert details.startswith("'where' parameter is invalid: ")
        assert "is not a condition" in details


@pytest.mark.django_db
@pytest.mark.parametrize(("where", "needle"), [
    ("name > 5", "cannot compare text with a number"),
    ("value = 'abc'", "'abc' is not a number"),
    ("value > date '2024-01-01'", "cannot compare a number with a date"),
    ("value LIKE '1%'", "LIKE takes text"),
    ("ABS(name) = 1", "takes a number, not text"),
    ("name = 'a' AND value", "is not a condition"),
])
def test_kinds_are_checked_before_the_engine(client, layers, where, needle):
    details = error(query(client, "streets", where=where))
    assert needle in details
    assert "Error" not in details and "VARCHAR" not in details


@pytest.mark.django_db
def test_values_failing_at_run_time_are_a_400_in_our_words(client, layers):
    details = error(query(client, "streets", where="LOG(value - 1) > 0"))
    assert "out of range" in details and "logarithm" in details


@pytest.mark.django_db
@pytest.mark.parametrize(("where", "found"), [
    ("name LIKE 'oak%'", ["Oak Street", "OAK", "oak"]),
    ("name = 'OAK STREET'", ["Oak Street"]),
    ("name <> 'oak'", ["Oak Street", "Pine Road", "Öl", "ÖL"]),
    ("name IN ('oak', 'PINE ROAD')", ["OAK", "oak", "Pine Road"]),
    ("name = 'öl'", ["Öl", "ÖL"]),
    ("name LIKE '%ROAD'", ["Pine Road"]),
    ("name > 'P'", ["Pine Road", "Öl", "ÖL"]),
    ("UPPER(name) = 'OAK'", ["OAK", "oak"]),
    ("kind = 'park' AND name LIKE 'o%'", ["Oak Street", "OAK", "oak"]),
])
def test_text_compares_without_case_by_default(client, layers, where, found):
    assert names(query(client, "streets", where=where, outFields="name")) == found


@pytest.mark.django_db
@pytest.mark.parametrize(("where", "found"), [
    ("name LIKE 'oak%'", ["oak"]),
    ("name = 'OAK STREET'", []),
    ("name IN ('oak', 'PINE ROAD')", ["oak"]),
    ("UPPER(name) = 'OAK'", ["OAK", "oak"]),
])
def test_the_dataset_switch_compares_with_case(client, layers, where, found):
    assert names(query(client, "exact", where=where, outFields="name")) == found


@pytest.mark.django_db
def test_nulls_first_ascending_last_descending(client, layers):
    def values(order: str) -> list[Any]:
        body = query(client, "streets", orderByFields=order, outFields="value")
        return [f["attributes"]["value"] for f in body["features"]]

    assert values("value") == [None, None, 1.0, 2.0, 3.5, 5.0, 7.25]
    assert values("value DESC") == [7.25, 5.0, 3.5, 2.0, 1.0, None, None]
    body = query(client, "streets", outFields="name", returnDistinctValues="true",
                 orderByFields="name")
    assert names(body) == [None, "OAK", "Oak Street", "Pine Road", "oak", "ÖL", "Öl"]


@pytest.mark.django_db
def test_generate_renderer_and_related_records_follow_the_switch(client, layers):
    definition = orjson.dumps({"type": "uniqueValueDef", "uniqueValueFields": ["kind"]}).decode()
    counts = {}
    for dataset in ("streets", "exact"):
        body = orjson.loads(client.get(
            f"/geojson/rest/services/{dataset}/FeatureServer/0/generateRenderer",
            {"classificationDef": definition, "where": "kind = 'park'"}).content)
        counts[dataset] = sum(item["count"] for item in body["uniqueValueInfos"])
    assert counts == {"streets": 7, "exact": 0}
    body = orjson.loads(client.get(
        "/geojson/rest/services/sites/FeatureServer/2/queryRelatedRecords",
        {"objectIds": "1,2", "relationshipId": "3",
         "definitionExpression": "OBJECTID > 1 AND site = 'a'"}).content)
    groups = {g["objectId"]: [r["attributes"]["score"] for r in g["relatedRecords"]]
              for g in body["relatedRecordGroups"]}
    assert groups == {1: [7]}  # the related table's own OBJECTID; 'a' finds site A
