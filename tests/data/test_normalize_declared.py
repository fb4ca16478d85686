"""Normalisation of a provider's declared fields and extent when features do not carry them.

A pass-through answer with no rows (or with outFields narrowed at its source) still has the
layer's fields: a query that names one must not be refused as naming an unknown field.
"""

from __future__ import annotations

import pyarrow as pa

from koop_app.data.normalize import normalize
from tests.conftest import collection, feature, point

FIELDS = [{"name": "fid", "type": "esriFieldTypeOID"}, {"name": "name", "type": "String"},
          {"name": "opened", "type": "Date"}, {"name": "score", "type": "Double"}]


def sequential(keys: pa.Array) -> pa.Array:
    return pa.array(range(1, len(keys) + 1), pa.int64())


def run(doc):
    return normalize(doc, label="test/layer", assign_ids=sequential)


def test_declared_fields_of_an_empty_answer_are_kept():
    layer = run(collection([], metadata={"fields": FIELDS, "idField": "fid",
                                         "geometryType": "esriGeometryPoint",
                                         "extent": [-105, 39, -104, 40]}))
    assert [(f.name, f.type) for f in layer.schema.fields] == [
        ("fid", "esriFieldTypeOID"), ("name", "esriFieldTypeString"),
        ("opened", "esriFieldTypeDate"), ("score", "esriFieldTypeDouble")]
    assert layer.schema.object_id_field == "fid"
    assert layer.schema.extent == (-105, 39, -104, 40)
    assert layer.table.num_rows == 0


def test_declared_fields_missing_from_features_are_null_columns():
    layer = run(collection([feature({"fid": 7, "Name": "a"}, point(1, 2))],
                           metadata={"fields": FIELDS, "idField": "fid",
                                     "extent": [-105, 39, -104, 40]}))
    assert [f.name for f in layer.schema.fields] == ["fid", "Name", "opened", "score"]
    assert layer.table.column("score").to_pylist() == [None]
    assert layer.table.column("fid").to_pylist() == [7]
    assert layer.schema.extent == (1, 2, 1, 2)  # the features' own extent wins


def test_without_declared_fields_nothing_changes():
    layer = run(collection([feature({"a": 1}, point(1, 2))]))
    assert [f.name for f in layer.schema.fields] == ["OBJECTID", "a"]
