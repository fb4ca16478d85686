"""Normalisation: schema inference over all features, ids, geometry handling and warnings."""

from __future__ import annotations

import logging

import pyarrow as pa
import pytest
import shapely

from koop_app.data.normalize import BBOX_COLUMNS, GEOMETRY_COLUMN, Overrides, normalize
from koop_app.errors import SourceFormatError
from tests.conftest import collection, feature, point


def sequential(keys: pa.Array) -> pa.Array:
    return pa.array(range(1, len(keys) + 1), pa.int64())


def run(doc, **kwargs):
    return normalize(doc, label="test/layer", assign_ids=kwargs.pop("assign_ids", sequential),
                     **kwargs)


def types(layer) -> dict[str, str]:
    return {f.name: f.type.removeprefix("esriFieldType") for f in layer.schema.fields}


def test_types_are_inferred_from_all_features_not_the_first():
    doc = collection([
        feature({"a": 1, "b": 1, "c": None, "d": "2020-01-01", "e": True, "f": 1, "g": 5}),
        feature({"a": 2, "b": 2.5, "c": "x", "d": "2021-06-30T12:00:00Z", "e": False,
                 "f": "one", "g": 2**40}),
        feature({"a": None, "b": None, "c": None, "d": None, "e": None, "f": None,
                 "h": {"nested": [1]}}),
    ])
    layer = run(doc)
    assert types(layer) == {
        "OBJECTID": "OID", "a": "Integer", "b": "Double", "c": "String", "d": "Date",
        "e": "SmallInteger", "f": "String", "g": "Double", "h": "String",
    }
    table = layer.table
    assert table["b"].to_pylist() == [1.0, 2.5, None]
    assert table["d"].to_pylist() == [1577836800000, 1625054400000, None]
    assert table["e"].to_pylist() == [1, 0, None]
    assert table["f"].to_pylist() == ["1", "one", None]
    assert table["h"].to_pylist() == [None, None, '{"nested":[1]}']
    assert [f.boolean for f in layer.schema.fields if f.name == "e"] == [True]


def test_all_null_column_is_string_and_empty_collection_works():
    layer = run(collection([feature({"x": None})]))
    assert types(layer)["x"] == "String"
    empty = run(collection([]))
    assert empty.table.num_rows == 0
    assert empty.schema.extent is None
    assert empty.schema.geometry_type is None


def test_declared_and_overridden_types_win():
    doc = collection(
        [feature({"when": 1700000000000, "code": "7", "flag": "yes"}),
         feature({"when": "2024-02-03", "code": "x", "flag": "no"})],
        metadata={"fields": [{"name": "when", "type": "Date"}, {"name": "flag",
                                                               "type": "Boolean"}]},
    )
    layer = run(doc, overrides=Overrides(fields={"code": {"type": "Integer", "alias": "Code"}}))
    assert types(layer)["when"] == "Date"
    assert layer.table["when"].to_pylist() == [1700000000000, 1706918400000]
    assert layer.table["code"].to_pylist() == [7, None]  # "x" is not an integer
    assert layer.table["flag"].to_pylist() == [1, 0]
    assert layer.schema.field("code").alias == "Code"


def test_case_insensitive_duplicate_names_are_renamed():
    layer = run(collection([feature({"Name": "a", "name": "b"})]))
    assert [f.name for f in layer.schema.fields] == ["OBJECTID", "Name", "name_1"]


def test_integer_id_field_becomes_the_object_id():
    doc = collection([feature({"fid": 10, "v": 1}), feature({"fid": 3, "v": 2})],
                     metadata={"idField": "fid"})
    called = []
    layer = run(doc, assign_ids=lambda keys: called.append(keys) or sequential(keys))
    assert layer.schema.object_id_field == "fid"
    assert layer.table["fid"].to_pylist() == [10, 3]
    assert called == []
    assert layer.schema.field("fid").type == "esriFieldTypeOID"


@pytest.mark.parametrize("ids", [[1, 1], [0, 2], [1, None], [2**31, 1], ["a", "b"]])
def test_unusable_id_field_falls_back_to_assigned_ids(ids, caplog):
    doc = collection([feature({"fid": v}) for v in ids], metadata={"idField": "fid"})
    seen = []
    layer = run(doc, assign_ids=lambda keys: seen.append(keys.to_pylist()) or sequential(keys))
    assert layer.schema.object_id_field == "OBJECTID"
    assert "fid" in [f.name for f in layer.schema.fields]
    assert "idField 'fid'" in caplog.text
    # the id field's values still key the stable ids where present
    assert seen[0][0].startswith("f:") or ids[0] is None


def test_an_objectid_property_is_used_when_valid():
    layer = run(collection([feature({"OBJECTID": 5}), feature({"OBJECTID": 9})]))
    assert layer.schema.object_id_field == "OBJECTID"
    assert layer.table["OBJECTID"].to_pylist() == [5, 9]


def test_an_invalid_objectid_property_does_not_clash():
    layer = run(collection([feature({"objectid": "a"}), feature({"objectid": "b"})]))
    assert layer.schema.object_id_field == "OBJECTID_1"
    assert [f.name for f in layer.schema.fields][:2] == ["OBJECTID_1", "objectid"]


def test_feature_keys_prefer_ids_then_content_and_repeat_distinctly():
    doc = collection([
        feature({"a": 1}, point(0, 0), id="x"),
        feature({"a": 1}, point(0, 0)),
        feature({"a": 1}, point(0, 0)),
        feature({"a": 2}, point(0, 0)),
    ])
    seen = []
    run(doc, assign_ids=lambda keys: seen.append(keys.to_pylist()) or sequential(keys))
    keys = seen[0]
    assert keys[0] == "i:x"
    assert keys[1].startswith("h:") and keys[2] == keys[1] + "#1"
    assert keys[3] != keys[1]
    assert len(set(keys)) == 4


def test_geometry_columns_and_extent():
    layer = run(collection([feature({}, point(1, 2)), feature({}, point(-3, 5)),
                            feature({}, None)]))
    assert layer.schema.geometry_type == "esriGeometryPoint"
    assert layer.schema.extent == (-3.0, 2.0, 1.0, 5.0)
    table = layer.table
    assert table[BBOX_COLUMNS[0]].to_pylist()[:2] == [1.0, -3.0]
    assert table[BBOX_COLUMNS[0]].to_pylist()[2] is None
    geoms = shapely.from_wkb(table[GEOMETRY_COLUMN].to_pylist())
    assert shapely.get_x(geoms[0]) == 1.0 and geoms[2] is None


def test_polygons_are_wound_per_rfc7946():
    clockwise = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
    layer = run(collection([feature({}, clockwise)]))
    geom = shapely.from_wkb(layer.table[GEOMETRY_COLUMN][0].as_py())
    assert shapely.is_ccw(geom.exterior)


def test_multi_and_single_types_share_a_layer():
    multi = {"type": "MultiPoint", "coordinates": [[0, 0], [1, 1]]}
    layer = run(collection([feature({}, point(0, 0)), feature({}, multi)]))
    assert layer.schema.geometry_type == "esriGeometryMultipoint"
    assert layer.table[GEOMETRY_COLUMN].null_count == 0


def test_foreign_geometry_types_lose_their_geometry(caplog):
    line = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    layer = run(collection([feature({}, point(0, 0)), feature({}, line)]))
    assert layer.table[GEOMETRY_COLUMN].null_count == 1
    assert "not Point" in caplog.text


def test_geometry_type_override():
    line = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    layer = run(collection([feature({}, point(0, 0)), feature({}, line)]),
                overrides=Overrides(geometry_type="esriGeometryPolyline"))
    assert layer.schema.geometry_type == "esriGeometryPolyline"


def test_bad_coordinates_become_null_geometry_with_a_warning(caplog):
    bad = {"type": "Point", "coordinates": ["a", "b"]}
    layer = run(collection([feature({"n": 1}, point(0, 0)), feature({"n": 2}, bad)]))
    assert layer.table.num_rows == 2
    assert layer.table[GEOMETRY_COLUMN].null_count == 1
    assert "test/layer" in caplog.text and "could not be read" in caplog.text


def test_validation_warnings_name_the_dataset(caplog):
    caplog.set_level(logging.WARNING)
    clockwise = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    doc = collection([feature({}, clockwise), feature({}, bowtie), feature({}, point(0, 0))])
    run(doc, check_geojson=True)
    text = caplog.text
    assert "test/layer: mixed geometry types" in text
    assert "test/layer: 1 invalid geometry" in text
    assert "right-hand rule" in text


def test_no_validation_warnings_when_off(caplog):
    clockwise = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
    run(collection([feature({}, clockwise)]), check_geojson=False)
    assert "right-hand rule" not in caplog.text


@pytest.mark.parametrize("doc", [None, [], {"type": "Feature"}, {"type": "FeatureCollection"},
                                 {"type": "FeatureCollection", "features": [1]}])
def test_broken_provider_data_is_a_source_format_error(doc):
    with pytest.raises(SourceFormatError):
        run(doc)


def test_display_field_and_metadata():
    doc = collection([feature({"n": 1, "label": "x"})],
                     metadata={"name": "N", "description": "D", "maxRecordCount": 50,
                               "displayField": "LABEL"})
    meta = run(doc).schema.metadata
    assert meta == {"name": "N", "description": "D", "displayField": "label",
                    "maxRecordCount": 50}


FAST_PATH_DOCS = {
    "typed": collection([
        feature({"i": i, "big": 1_700_000_000_000 + i, "f": i / 3, "s": f"n{i % 3}",
                 "d": f"2024-01-{i + 1:02d}", "t": f"2024-01-01T00:00:{i:02d}Z",
                 "b": i % 2 == 0, "none": None, "sparse": i if i % 4 else None},
                point(i, i))
        for i in range(20)]),
    "mixed-int-float": collection([feature({"v": 1}), feature({"v": 2.5}), feature({})]),
    "two-date-forms": collection([feature({"d": "2024-01-02"}),
                                  feature({"d": "2024-01-02T03:04:05Z"})]),
    "offsets": collection([feature({"d": "2024-01-02T05:00:00+01:00"})]),
}


@pytest.mark.parametrize("name", sorted(FAST_PATH_DOCS))
def test_columnar_and_per_value_typing_agree(name, monkeypatch):
    import importlib

    module = importlib.import_module("koop_app.data.normalize")
    fast = run(FAST_PATH_DOCS[name])
    monkeypatch.setattr(module, "_properties_struct", lambda features: None)
    slow = run(FAST_PATH_DOCS[name])
    assert fast.schema == slow.schema
    assert fast.table.equals(slow.table)


def test_columnar_typing_is_used_for_plain_layers(monkeypatch):
    import importlib

    module = importlib.import_module("koop_app.data.normalize")
    monkeypatch.setattr(module, "coerce_column", None)  # the per-value path would crash
    layer = run(FAST_PATH_DOCS["typed"])
    assert types(layer)["big"] == "Double" and types(layer)["t"] == "Date"


def test_point_fast_path_matches_the_general_path(monkeypatch):
    import importlib

    module = importlib.import_module("koop_app.data.normalize")
    doc = collection([feature({"n": 1}, point(1.5, 2.5)), feature({"n": 2}, None),
                      feature({"n": 3}, {"type": "Point", "coordinates": [3, 4, 99]})])
    fast = run(doc)
    monkeypatch.setattr(module, "_points", lambda features: None)
    slow = run(doc)
    assert fast.table.equals(slow.table) and fast.schema == slow.schema


def test_declared_fields_absent_from_the_features_stay_in_the_layer():
    # A pass-through answer with no match (or only some fields) keeps the layer's fields.
    declared = {"fields": [{"name": "rank", "type": "Integer"}, {"name": "when", "type": "Date"},
                           {"name": "name", "type": "String"}], "extent": [[0, 1], [2, 3]]}
    empty = run(collection([], metadata=declared))
    assert types(empty) == {"OBJECTID": "OID", "rank": "Integer", "when": "Date",
                            "name": "String"}
    assert empty.schema.extent == (0.0, 1.0, 2.0, 3.0)
    partial = run(collection([feature({"name": "a"}, point(5, 6))], metadata=declared))
    assert partial.table.column("rank").to_pylist() == [None]
    assert partial.schema.extent == (5.0, 6.0, 5.0, 6.0)  # the features', not the metadata's


def test_declared_fields_no_feature_carries_are_null_columns():
    """A pass-through answer with no rows (a count, statistics, nothing matched) keeps the
    fields its metadata declares, so parameters naming them are checked as usual."""
    metadata = {"fields": [{"name": "id", "type": "Integer"}, {"name": "name", "type": "String"},
                           {"name": "when", "type": "Date"}, {"name": "untyped"}],
                "idField": "id"}
    empty = run(collection([], metadata=metadata))
    assert types(empty) == {"id": "OID", "name": "String", "when": "Date"}
    assert empty.table.num_rows == 0
    some = run(collection([feature({"id": 3, "Name": "x"})], metadata=metadata))
    assert types(some) == {"id": "OID", "Name": "String", "when": "Date"}
    assert some.table["when"].to_pylist() == [None]


def test_a_source_that_says_more_follow_is_heard_alone():
    """``metadata.limitExceeded`` with nothing else done at the source still reaches the engine
    (exceededTransferLimit), e.g. a source read up to its own bound."""
    from koop_app.data.normalize import SourceAnswers

    answers = SourceAnswers.from_collection({"metadata": {"limitExceeded": True}})
    assert answers is not None and answers.limit_exceeded and not answers.filters_applied
    assert SourceAnswers.from_collection({"metadata": {"limitExceeded": False}}) is None
def test_declared_fields_absent_from_the_features_are_kept():
    # A pass-through answer with no rows (or only the columns a query asked for) still
    # describes the layer: its declared fields become columns of nulls, in declared order.
    fields = [{"name": "gid", "type": "Integer"}, {"name": "label", "type": "String"},
              {"name": "when", "type": "Date"}, {"name": "flag", "type": "Boolean"}]
    empty = run(collection([], metadata={"fields": fields, "idField": "gid",
                                         "geometryType": "Point",
                                         "extent": [-10, 40, 5, 50]}))
    assert types(empty) == {"gid": "OID", "label": "String", "when": "Date",
                            "flag": "SmallInteger"}
    assert empty.schema.geometry_type == "esriGeometryPoint"
    assert empty.schema.extent == (-10, 40, 5, 50)  # declared, no rows to compute it from
    partial = run(collection([feature({"gid": 4, "label": "x"}, point(1, 2))],
                             metadata={"fields": fields, "idField": "gid",
                                       "extent": [-10, 40, 5, 50]}))
    assert [f.name for f in partial.schema.fields] == ["gid", "label", "when", "flag"]
    assert partial.table.column("when").to_pylist() == [None]
    assert partial.schema.extent == (1, 2, 1, 2)  # rows, when there are some, give it
