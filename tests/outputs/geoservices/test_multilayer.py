"""Multi-layer datasets ({layers, tables}) and queryRelatedRecords."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import collection, feature, point

BASE = "/geojson/rest/services/sites/FeatureServer"


def sites() -> dict[str, Any]:
    relationship = {"id": 3, "name": "inspections", "relatedTableId": 7,
                    "keyField": "code", "relatedKeyField": "site"}
    return {
        "layers": [
            collection([feature({"code": "A", "name": "Alpha"}, point(1, 1)),
                        feature({"code": "B", "name": "Beta"}, point(2, 2)),
                        feature({"code": "C", "name": "Gamma"}, point(3, 3))],
                       metadata={"id": 2, "name": "Sites", "relationships": [relationship]}),
            collection([feature({"road": "R1"}, {"type": "LineString",
                                                  "coordinates": [[0, 0], [5, 5]]})],
                       metadata={"id": 4, "name": "Roads"}),
        ],
        "tables": [
            collection([feature({"site": "A", "score": 5}), feature({"site": "A", "score": 7}),
                        feature({"site": "B", "score": 9}), feature({"site": "Z", "score": 1})],
                       metadata={"id": 7, "name": "Inspections"}),
        ],
    }


@pytest.fixture
def dataset(make_dataset):
    return make_dataset("geojson", "sites", sites())


def get(client, path: str, **params: Any) -> dict[str, Any]:
    return orjson.loads(client.get(BASE + path, params).content)


@pytest.mark.django_db
def test_service_lists_each_layer_with_its_own_id(client, dataset):
    body = get(client, "")
    assert [(x["id"], x["name"]) for x in body["layers"]] == [(2, "Sites"), (4, "Roads")]
    assert [x["geometryType"] for x in body["layers"]] == ["esriGeometryPoint",
                                                            "esriGeometryPolyline"]
    assert [(x["id"], x["name"]) for x in body["tables"]] == [(7, "Inspections")]
    assert body["fullExtent"]["xmin"] == 0 and body["fullExtent"]["xmax"] == 5
    layers = get(client, "/layers")
    assert [x["id"] for x in layers["layers"]] == [2, 4]
    assert [x["type"] for x in layers["tables"]] == ["Table"]


@pytest.mark.django_db
def test_each_layer_answers_on_its_id(client, dataset):
    assert get(client, "/4")["geometryType"] == "esriGeometryPolyline"
    assert get(client, "/7")["type"] == "Table"
    assert get(client, "/2/query", returnCountOnly="true") == {"count": 3}
    assert get(client, "/7/query", where="site = 'A'", returnCountOnly="true") == {"count": 2}
    assert get(client, "/0")["error"]["code"] == 404


@pytest.mark.django_db
def test_relationships_in_layer_info(client, dataset):
    origin = get(client, "/2")
    assert origin["relationships"] == [{"id": 3, "name": "inspections", "relatedTableId": 7,
                                        "cardinality": "esriRelCardinalityOneToMany",
                                        "role": "esriRelRoleOrigin", "keyField": "code",
                                        "composite": False}]
    assert origin["supportsQueryRelatedRecords"] is True
    destination = get(client, "/7")["relationships"][0]
    assert (destination["role"], destination["relatedTableId"], destination["keyField"]) == (
        "esriRelRoleDestination", 2, "site")


@pytest.mark.django_db
def test_query_related_records(client, dataset):
    body = get(client, "/2/queryRelatedRecords", objectIds="1,2,3", relationshipId="3",
               outFields="score")
    groups = {g["objectId"]: [r["attributes"]["score"] for r in g["relatedRecords"]]
              for g in body["relatedRecordGroups"]}
    assert groups == {1: [5, 7], 2: [9]}  # C has no inspections
    assert [f["name"] for f in body["fields"]] == ["OBJECTID", "score"]
    body = get(client, "/2/queryRelatedRecords", objectIds="1", relationshipId="3",
               definitionExpression="score > 6")
    assert [r["attributes"]["score"] for r in body["relatedRecordGroups"][0]["relatedRecords"]
            ] == [7]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "needle"), [
    ({"objectIds": "1"}, "relationshipId"),
    ({"objectIds": "1", "relationshipId": "9"}, "no relationship 9"),
    ({"relationshipId": "3"}, "objectIds"),
    ({"objectIds": "1", "relationshipId": "3", "definitionExpression": "nope = 1"},
     "definitionExpression"),
])
def test_query_related_records_bad_input(client, dataset, params, needle):
    body = get(client, "/2/queryRelatedRecords", **params)
    assert body["error"]["code"] == 400
    assert needle in " ".join(body["error"]["details"])


@pytest.mark.django_db
def test_object_ids_stay_stable_per_layer(client, make_dataset, data_dir):
    from tests.conftest import write_json

    make_dataset("geojson", "sites", sites())
    first = get(client, "/7/query", where="site = 'B'", outFields="OBJECTID")
    document = sites()
    document["tables"][0]["features"].insert(0, feature({"site": "Q", "score": 0}))
    write_json(data_dir / "sites.geojson", document)
    from koop_app import data
    from koop_app.models import Dataset

    data.refresh(Dataset.objects.get(dataset_id="sites"))
    second = get(client, "/7/query", where="site = 'B'", outFields="OBJECTID")
    assert first["features"] == second["features"]


@pytest.mark.django_db
@pytest.mark.parametrize("document", [
    {"layers": "nope"}, {"layers": [1]}, {"layers": []},
    {"layers": [collection([], metadata={"id": 1}), collection([], metadata={"id": 1})]},
])
def test_broken_multi_layer_documents(client, make_dataset, document):
    make_dataset("geojson", "sites", document)
    assert get(client, "")["error"]["code"] == 502
